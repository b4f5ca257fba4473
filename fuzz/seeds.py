#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target into fuzz/seeds/<target>/.

Seeds come from the Wycheproof JOSE vectors (../shared/vectors/wycheproof or
$WYCHEPROOF), the project's key fixtures, the deploy configs, and the shapes
the attack tests build by hand (alg none, crit, mismatched typ, logout tokens
with a nonce, SETs with two events, DPoP proofs with a private key in the
header...). Selector bytes follow fuzz_targets/common.rs::parts.
Run from anywhere: python3 fuzz/seeds.py
"""
import base64, hashlib, json, os, pathlib, sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "seeds"
WYCHEPROOF = pathlib.Path(os.environ.get("WYCHEPROOF", ROOT.parent / "shared" / "vectors" / "wycheproof"))
ISS = "https://fuzz.test"
HTU = "https://api.fuzz.test/orders"
NOW = 1_800_000_000


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def j(value):
    return json.dumps(value, separators=(",", ":"))


def write(target, seeds):
    folder = OUT / target
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        data = seed.encode() if isinstance(seed, str) else seed
        (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{target}: {len(seeds)} seeds")


def wycheproof(name):
    path = WYCHEPROOF / name
    if not path.exists():
        sys.exit(f"missing {path}: set WYCHEPROOF to the vectors folder")
    return json.loads(path.read_text())


jws_vectors = [t["jws"] for f in ("json_web_signature_test.json", "json_web_key_test.json")
               for g in wycheproof(f)["testGroups"] for t in g["tests"] if "jws" in t]
jwk_vectors = [g["private"] for f in ("json_web_signature_test.json", "json_web_key_test.json")
               for g in wycheproof(f)["testGroups"] if "private" in g]

claims = {"iss": ISS, "sub": "alice", "aud": "orders", "iat": NOW, "exp": NOW + 300, "jti": "j1", "scope": "read"}
logout = {"iss": ISS, "aud": "orders", "iat": NOW, "exp": NOW + 120, "jti": "l1", "sid": "s1",
          "events": {"http://schemas.openid.net/event/backchannel-logout": {}}}
set_claims = {"iss": ISS + "/ssf", "aud": "https://tokend.fuzz.test", "iat": NOW, "jti": "e1",
              "sub_id": {"format": "iss_sub", "iss": ISS, "sub": "alice"},
              "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked":
                         {"event_timestamp": NOW}}}
headers = [
    {"alg": "ES256", "kid": "es1", "typ": "JWT"},
    {"alg": "ES256", "kid": "es1", "typ": "at+jwt"},
    {"alg": "ES256", "kid": "es1", "crit": ["exp"]},
    {"alg": "HS256"},
    {"alg": "ES256", "kid": "es1", "typ": "logout+jwt"},
    {"alg": "ES256", "kid": "es1", "typ": "secevent+jwt"},
    {"alg": "none"},
    {"alg": "ES256", "jku": "https://evil.test/jwks", "kid": "es1"},
]
bodies = [
    claims,
    dict(claims, exp=NOW - 1),
    dict(claims, nbf=NOW + 600),
    dict(claims, aud=["orders", "other"], exp=1e300),
    dict(claims, iss=ISS + "/hs"),
    dict(claims, cnf={"jkt": "abc"}),
    dict(claims, cnf={"x5t#S256": "abc"}),
    logout,
    dict(logout, nonce="n"),
    dict(logout, events={"http://schemas.openid.net/event/backchannel-logout": 1}),
    set_claims,
    dict(set_claims, events={}),
]
signed = []
for selector in range(6):
    for header in headers:
        for body in bodies:
            signed.append(bytes([selector]) + (j(header) + "\n" + j(body)).encode())
signed.append(bytes([0]) + b'{"alg":"ES256"}\n{"exp":1e999}')
signed.append(bytes([1]) + b'{"alg":"HS256","alg":"none"}\n{"iss":"x","iss":"y"}')
write("signed", signed)

tokens = jws_vectors + [
    "", ".", "..", "....", "a.b.c", "a.b.c.d.e",
    b64(j({"alg": "none"})) + "." + b64(j(claims)) + ".",
    b64(j({"alg": "ES256", "kid": "es1"})) + "." + b64(j(claims)) + "." + "A" * 86,
    b64(j({"alg": "RSA-OAEP", "enc": "A128GCM"})) + ".AAAA.AAAA.AAAA.AAAA",
    "opaque-token_~+/=", "x" * 9000,
]
write("token", tokens)

proof_headers = [{"typ": "dpop+jwt", "alg": "ES256"}, {"typ": "JWT", "alg": "ES256"},
                 {"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256", "d": "x"}}]
proof_bodies = [
    {"jti": "p1", "htm": "POST", "htu": HTU, "iat": NOW, "ath": b64(b"\0" * 32)},
    {"jti": "p2", "htm": "GET", "htu": HTU + "?q=1#f", "iat": NOW - 3600},
    {"jti": "p3", "htm": "POST", "htu": "HTTPS://API.FUZZ.TEST:443/orders", "iat": NOW, "nonce": "n"},
]
write("dpop", [bytes([s]) + (j(h) + "\n" + j(b)).encode()
               for s in (0, 1) for h in proof_headers for b in proof_bodies])

nested = b64(j({"alg": "ES256", "kid": "es1"})) + "." + b64(j(dict(claims, iss=ISS + "/jwe"))) + "." + "A" * 86
jwe = []
for selector in range(0, 40):
    for extra in ({}, {"zip": "DEF"}, {"crit": ["b64"]}, {"cty": "text/plain"}):
        jwe.append(bytes([selector]) + (j(extra) + "\n" + nested).encode())
jwe.append(bytes([0]) + (b64(j({"alg": "RSA1_5", "enc": "A128GCM"})) + "\n.AAAA.AAAA.AAAA.AAAA").encode())
write("jwe", jwe)

key_files = [ROOT / "tests" / "fixtures" / "rsa1024.jwk.json",
             ROOT / "tests" / "fixtures" / "jwe" / "rsa-2048.private.json"]
jwks = [json.dumps(k) if isinstance(k, dict) else k for k in jwk_vectors]
jwks += [p.read_text() for p in key_files if p.exists()]
jwks += [j({"keys": [k]}) for k in jwk_vectors if isinstance(k, dict) and "kty" in k]
jwks += [j({"keys": []}), j({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}),
         j({"keys": [{"kty": "oct", "k": "AA"}, {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "a"},
                     {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "a"}]})]
write("jwks", jwks)

configs = [(ROOT / "deploy" / "compose" / "tokend.toml").read_text()]
configs += [
    '[server]\nhttp_addr = "127.0.0.1:0"\n[[issuers]]\nname = "a"\nissuer = "https://a"\njwks_uri = "https://a/k"\n',
    '[[issuers]]\nname = "a"\njwks_uri = "https://a/k"\nalgorithms = ["none"]\n[[issuers]]\nname = "a"\n',
    '[[issuers]]\nname = "a"\nissuer = "https://a"\ndiscovery = true\n\0ISSUERS__0__LEEWAY_SECONDS=5\nSERVER__MAX_BATCH=x\n',
    '[[routes]]\nname = "r"\npath_prefix = "/o"\nscopes_all = ["a"]\nclaims = { "a.b" = "c" }\n[authorization]\ntoken_sources = ["header:x", "cookie:"]\n',
    '[[ssf_transmitters]]\nname = "s"\nissuer = "https://s"\naudience = "x"\napplies_to = ["nobody"]\n',
    '[revocation]\nbackend = "redis"\nredis_url = "redis://:pw@h:1/2"\n[cache]\nmax_entries = 0\n',
]
write("config", configs)

write("forms", [
    "token=abc&token_type_hint=access_token", "token=a&token=b", "token=%zz", "token=a+b%2Bc",
    "Basic " + base64.b64encode(b"gateway:gateway-secret").decode(),
    "Basic " + base64.b64encode(b"g%61teway:gateway%2Dsecret").decode(),
    "basic   " + base64.b64encode(b"ops:ops-secret").decode(), "Basic ====", "Bearer abc", "Basic",
])
