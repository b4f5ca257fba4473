#!/usr/bin/env bash
# JWE interop with an independent JOSE implementation: npm's jose (panva)
# signs a JWT and encrypts it for every alg and enc tokend accepts (RSA-OAEP,
# RSA-OAEP-256, ECDH-ES, ECDH-ES+A128KW, ECDH-ES+A256KW × A128GCM, A256GCM,
# A128CBC-HS256, A256CBC-HS512); tokend, given the recipient's private keys,
# must find each active with its claims, and each one with a flipped
# ciphertext or tag character inactive.
#
# Usage: tests/interop/jwe.sh path/to/tokend
set -euo pipefail

TOKEND=${1:?usage: $0 path/to/tokend}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
fail() { echo "JWE interop FAILED: $*" >&2; exit 1; }

(cd "$HERE/jwe" && npm ci --no-audit --no-fund --silent)
ISSUER="https://idp.interop.test"
node "$HERE/jwe/make.mjs" "$WORK" "$ISSUER"

http_port=$(free_port); grpc_port=$(free_port)
cat >"$WORK/tokend.toml" <<TOML
[server]
http_addr = "127.0.0.1:$http_port"
grpc_addr = "127.0.0.1:$grpc_port"

[[issuers]]
name = "jose"
issuer = "$ISSUER"
jwks_file = "$WORK/signing.jwks.json"
decryption_keys_file = "$WORK/decryption.jwks.json"
audiences = ["orders"]

[[clients]]
id = "gateway"
secret = "gateway-secret"
permissions = ["introspect"]
TOML
"$TOKEND" check-config "$WORK/tokend.toml" >/dev/null
"$TOKEND" serve --config "$WORK/tokend.toml" >"$WORK/tokend.log" 2>&1 &
PIDS+=($!)
ready=""
for _ in $(seq 300); do
  if curl -fs "http://127.0.0.1:$http_port/readyz" >/dev/null; then ready=1; break; fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$WORK/tokend.log"; fail "tokend did not become ready"; }

python3 - "$WORK/tokens.json" "http://127.0.0.1:$http_port/introspect" <<'PY' || fail "see above"
import base64, json, sys, urllib.parse, urllib.request

tokens, url = json.load(open(sys.argv[1])), sys.argv[2]
auth = "Basic " + base64.b64encode(b"gateway:gateway-secret").decode()

def introspect(token):
    body = urllib.parse.urlencode({"token": token}).encode()
    request = urllib.request.Request(url, data=body, headers={"Authorization": auth})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)

def flip(token, segment):
    parts = token.split(".")
    text = parts[segment]
    parts[segment] = text[:-2] + ("A" if text[-2] != "A" else "B") + text[-1:]
    return ".".join(parts)

failures = 0
for case in tokens:
    name = f'{case["alg"]} + {case["enc"]}'
    answer = introspect(case["token"])
    expected_sub = f'user-{case["alg"]}-{case["enc"]}'
    if answer.get("active") is not True or answer.get("sub") != expected_sub:
        print(f"{name}: genuine token answered {answer}"); failures += 1; continue
    for segment, what in [(3, "ciphertext"), (4, "tag")]:
        answer = introspect(flip(case["token"], segment))
        if answer != {"active": False}:
            print(f"{name}: {what} tampered, answered {answer}"); failures += 1
    print(f"JWE interop {name}: active, tampered ciphertext and tag inactive")
sys.exit(1 if failures else 0)
PY
echo "JWE interop: every alg and enc of npm jose decrypted and verified"
