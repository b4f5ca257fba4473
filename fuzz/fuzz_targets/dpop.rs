//! DPoP proofs (RFC 9449) of the fuzzer's choosing, signed by the client key
//! the token is bound to (its JWK put in the header, and the token's `ath` in the claims, when
//! they are JSON objects), presented with a bound token: every §4.3 check runs past the
//! signature. A proof that is not exactly right never makes the token active.
#![no_main]

#[path = "common.rs"]
mod common;

use serde_json::{Value, json};
use std::sync::OnceLock;
use tokend::fuzzing::Harness;
use tokend::token::Algorithm;

fn bound_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let h = common::harness();
        let jkt = tokend::mint::thumbprint(&h.dpop.public_jwk());
        let mut claims = h.claims(tokend::fuzzing::ISS);
        claims["cnf"] = json!({"jkt": jkt});
        h.es256.sign(Algorithm::ES256, &claims)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((selector, header, payload)) = common::parts(data) else {
        return;
    };
    let h = common::harness();
    let header = match serde_json::from_str::<Value>(&header) {
        Ok(Value::Object(mut object)) if selector % 2 == 0 => {
            object.insert("jwk".into(), h.dpop.public_jwk());
            Value::Object(object).to_string()
        }
        _ => header,
    };
    // The fuzzer cannot hash the token: put the right `ath` in when asked.
    let payload = match serde_json::from_str::<Value>(&payload) {
        Ok(Value::Object(mut object)) if selector & 2 == 0 => {
            object.insert("ath".into(), json!(Harness::ath(bound_token())));
            Value::Object(object).to_string()
        }
        _ => payload,
    };
    let proof = h.dpop.sign_parts(Algorithm::ES256, &header, &payload);
    let _ = h.check_with_proof(bound_token(), &proof);
});
