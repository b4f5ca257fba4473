// Makes what tests/interop/jwe.sh needs, with panva/jose (not tokend's code):
// an issuer signing key, the recipient's decryption keys (RSA 2048, EC P-256),
// and one nested JWT (a JWS inside a JWE, cty JWT) per alg and enc tokend
// accepts. Writes signing.jwks.json (public), decryption.jwks.json (private)
// and tokens.json ([{alg, enc, token}]) into the directory given.
import { generateKeyPair, exportJWK, SignJWT, CompactEncrypt } from "jose";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

const [dir, issuer] = process.argv.slice(2);
const signing = await generateKeyPair("ES256", { extractable: true });
const signingJwk = { ...(await exportJWK(signing.publicKey)), kid: "sig-1", alg: "ES256", use: "sig" };
const rsa = await generateKeyPair("RSA-OAEP-256", { extractable: true, modulusLength: 2048 });
const ec = await generateKeyPair("ECDH-ES", { extractable: true, crv: "P-256" });
const rsaJwk = { ...(await exportJWK(rsa.privateKey)), kid: "enc-rsa" };
const ecJwk = { ...(await exportJWK(ec.privateKey)), kid: "enc-ec" };
writeFileSync(join(dir, "signing.jwks.json"), JSON.stringify({ keys: [signingJwk] }));
writeFileSync(join(dir, "decryption.jwks.json"), JSON.stringify({ keys: [rsaJwk, ecJwk] }));

const now = Math.floor(Date.now() / 1000);
const tokens = [];
const algs = [
  ["RSA-OAEP", rsa.publicKey, "enc-rsa"],
  ["RSA-OAEP-256", rsa.publicKey, "enc-rsa"],
  ["ECDH-ES", ec.publicKey, "enc-ec"],
  ["ECDH-ES+A128KW", ec.publicKey, "enc-ec"],
  ["ECDH-ES+A256KW", ec.publicKey, "enc-ec"],
];
for (const [alg, key, kid] of algs) {
  for (const enc of ["A128GCM", "A256GCM", "A128CBC-HS256", "A256CBC-HS512"]) {
    const jws = await new SignJWT({ sub: `user-${alg}-${enc}`, scope: "read" })
      .setProtectedHeader({ alg: "ES256", kid: "sig-1", typ: "JWT" })
      .setIssuer(issuer)
      .setAudience("orders")
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(signing.privateKey);
    const jwe = await new CompactEncrypt(new TextEncoder().encode(jws))
      .setProtectedHeader({ alg, enc, kid, cty: "JWT" })
      .encrypt(key);
    tokens.push({ alg, enc, token: jwe });
  }
}
writeFileSync(join(dir, "tokens.json"), JSON.stringify(tokens));
