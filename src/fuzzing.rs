//! Entry points for the fuzz targets in `fuzz/`, compiled only under
//! `--cfg fuzzing` (cargo-fuzz sets it). Not an API: it builds a verifier
//! the way the server does (from config text, through [`Runtime::build`])
//! and lets a target reach the parsers that have no public door.

use serde_json::{Value, json};
use std::sync::Arc;

use crate::config::Config;
use crate::events::ssf::Transmitter;
use crate::mint::Signer;
use crate::request::{Presented, ProofTarget, Scheme, TokenSource};
use crate::revocation::Revocations;
use crate::runtime::Runtime;
use crate::token::Algorithm;

/// The issuer every harness token claims.
pub const ISS: &str = "https://fuzz.test";
/// Where a DPoP proof must point.
pub const HTU: &str = "https://api.fuzz.test/orders";

/// A verifier with three issuers — `es` (ES256 keys from a file), `hs`
/// (an HMAC secret) and `jwe` (encrypted tokens to a P-256 key, signed by
/// `es`'s key) — a logout-capable verifier, an SSF transmitter, and the
/// private keys to sign with.
pub struct Harness {
    pub runtime: Runtime,
    pub transmitter: Transmitter,
    /// Signs for `es` (and the transmitter).
    pub es256: Signer,
    /// Signs for `hs`.
    pub hs256: Signer,
    /// The DPoP client's key.
    pub dpop: Signer,
    /// The `jwe` issuer's public encryption key.
    pub encryption_key: Value,
    pub now: u64,
    tokio: tokio::runtime::Runtime,
}

impl Harness {
    pub fn new() -> Harness {
        let dir = std::env::temp_dir().join(format!("tokend-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let es256 = Signer::generate(Algorithm::ES256, "es1");
        let hs256 = Signer::hmac(b"fuzz-secret-of-thirty-two-bytes!", "hs1");
        let dpop = Signer::generate(Algorithm::ES256, "dpop");
        let jwks = dir.join("es.json");
        std::fs::write(&jwks, crate::mint::jwks(&[&es256]).to_string()).expect("write");
        let private = crate::jwe::seal::generate_ec_jwk("enc1");
        let decryption = dir.join("enc.json");
        std::fs::write(&decryption, json!({"keys": [private]}).to_string()).expect("write");
        let mut encryption_key = private;
        if let Some(key) = encryption_key.as_object_mut() {
            key.remove("d");
        }
        let text = format!(
            r#"
[[issuers]]
name = "es"
issuer = "{ISS}"
jwks_file = "{jwks}"
[[issuers]]
name = "hs"
issuer = "{ISS}/hs"
hmac_secret = "fuzz-secret-of-thirty-two-bytes!"
algorithms = ["HS256"]
[[issuers]]
name = "jwe"
issuer = "{ISS}/jwe"
jwks_file = "{jwks}"
decryption_keys_file = "{decryption}"
[[ssf_transmitters]]
name = "ssf"
issuer = "{ISS}/ssf"
jwks_uri = "https://ssf.fuzz.test/jwks"
audience = "https://tokend.fuzz.test"
authorization = "Bearer push-secret"
applies_to = ["es", "hs"]
[[clients]]
id = "gateway"
secret = "gateway-secret"
permissions = ["introspect"]
[[clients]]
id = "ops"
secret_sha256 = "32323cfa9ec9d62750daad0836a4cf3d7b60d23723b7852a529667deed01669f"
permissions = ["admin"]
"#,
            jwks = jwks.display(),
            decryption = decryption.display(),
        );
        let config = Config::from_toml(&text, Vec::new()).expect("harness config");
        let revocations = Arc::new(Revocations::memory(3600));
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio");
        let runtime = Runtime::build(config, None, &revocations)
            .expect("harness runtime")
            .runtime;
        for issuer in &runtime.issuers {
            tokio
                .block_on(issuer.refresh_now())
                .expect("local keys load");
        }
        let transmitter = Transmitter {
            config: runtime.config.ssf_transmitters[0].clone(),
            keys: runtime.issuers[0].clone(),
            applies_to: runtime.issuers.clone(),
            retired: Default::default(),
        };
        let harness = Harness {
            runtime,
            transmitter,
            es256,
            hs256,
            dpop,
            encryption_key,
            now: 1_800_000_000,
            tokio,
        };
        harness.assert_good_input_passes();
        harness
    }

    /// Good claims for an issuer of the harness.
    pub fn claims(&self, iss: &str) -> Value {
        json!({"iss": iss, "sub": "alice", "aud": "orders", "iat": self.now,
               "exp": self.now + 300, "jti": "j1"})
    }

    /// The `ath` a DPoP proof for `token` carries.
    pub fn ath(token: &str) -> String {
        crate::mint::b64(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            token.as_bytes(),
        ))
    }

    /// A target whose well-formed input were refused anyway would only ever
    /// explore the refusals: each kind of good input must pass first.
    fn assert_good_input_passes(&self) {
        let es = self.es256.sign(Algorithm::ES256, &self.claims(ISS));
        assert!(
            self.check(&es),
            "a good ES256 token: {:?}",
            self.verdict(&es)
        );
        // A configured HMAC secret has no kid: neither may its tokens.
        let hs = self.hs256.sign_with_header(
            Algorithm::HS256,
            &json!({"alg": "HS256", "typ": "JWT"}),
            &self.claims(&format!("{ISS}/hs")),
        );
        assert!(
            self.check(&hs),
            "a good HS256 token: {:?}",
            self.verdict(&hs)
        );
        let nested = self
            .es256
            .sign(Algorithm::ES256, &self.claims(&format!("{ISS}/jwe")));
        let sealed = crate::jwe::seal::seal(
            &nested,
            &self.encryption_key,
            "ECDH-ES",
            "A128GCM",
            &json!({}),
        )
        .expect("seal");
        assert!(
            self.check(&sealed),
            "a good JWE: {:?}",
            self.verdict(&sealed)
        );
        let jkt = crate::mint::thumbprint(&self.dpop.public_jwk());
        let mut bound = self.claims(ISS);
        bound["cnf"] = json!({"jkt": jkt});
        let bound = self.es256.sign(Algorithm::ES256, &bound);
        let proof = self.dpop.sign_with_header(
            Algorithm::ES256,
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop.public_jwk()}),
            &json!({"jti": "p", "htm": "POST", "htu": HTU, "iat": self.now, "ath": Harness::ath(&bound)}),
        );
        assert!(self.check_with_proof(&bound, &proof), "a good DPoP proof");
    }

    /// The verifier's verdict on a bearer token.
    pub fn check(&self, token: &str) -> bool {
        self.verdict(token).is_active()
    }

    pub fn verdict(&self, token: &str) -> crate::verify::Verdict {
        let presented = Presented::new(token, TokenSource::Authorization(Scheme::Bearer));
        self.tokio
            .block_on(self.runtime.verifier.check(&presented, self.now))
    }

    /// The verdict on a token sent under the DPoP scheme with `proof`.
    pub fn check_with_proof(&self, token: &str, proof: &str) -> bool {
        let target = ProofTarget::Stated {
            method: "POST",
            uri: HTU,
        };
        let presented = Presented::new(token, TokenSource::Authorization(Scheme::DPoP))
            .with_proof(Some(proof), target);
        self.tokio
            .block_on(self.runtime.verifier.check(&presented, self.now))
            .is_active()
    }

    /// Whether `token` is accepted as an OpenID back-channel logout token.
    pub fn logout(&self, token: &str) -> bool {
        let checked = crate::events::logout::check(&self.runtime.verifier, token, self.now);
        self.tokio.block_on(checked).is_ok()
    }

    /// Whether `set` is accepted as a Security Event Token from the transmitter.
    pub fn set(&self, set: &str) -> bool {
        let checked = crate::events::set::check(&self.transmitter, set, 65_536, self.now);
        self.tokio.block_on(checked).is_ok()
    }

    /// Whether `authorization` authenticates a caller (Basic or Bearer).
    pub fn authenticate(&self, authorization: &str) -> bool {
        self.runtime
            .clients
            .authenticate_with_cert(Some(authorization), &[])
            .is_ok()
    }
}

impl Default for Harness {
    fn default() -> Self {
        Harness::new()
    }
}

/// The pairs of a form body, as `/introspect` and `/revoke` read them.
pub fn form_pairs(body: &[u8]) -> usize {
    crate::request::form_pairs(body).count()
}
