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
INTEROP="JWE interop"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

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
wait_for "http://127.0.0.1:$http_port/readyz" 300 "$WORK/tokend.log" tokend

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
