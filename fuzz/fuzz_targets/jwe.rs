//! Encrypted tokens (RFC 7516): any five-segment text, and plaintexts of the
//! fuzzer's choosing sealed correctly to the `jwe` issuer's key with every
//! alg × enc, so the nested-JWS path and the header checks (zip, crit, cty)
//! run past decryption.
#![no_main]

#[path = "common.rs"]
mod common;

use serde_json::json;

use tokend::jwe::{ALGS, ENCS};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((selector, header, plaintext)) = common::parts(data) else {
        return;
    };
    let h = common::harness();
    if selector & 1 == 0 {
        let _ = h.check(&format!("{header}{plaintext}"));
        return;
    }
    let alg = ALGS[usize::from(selector >> 1) % ALGS.len()];
    let enc = ENCS[usize::from(selector >> 4) % ENCS.len()];
    let extra = serde_json::from_str(&header).unwrap_or(json!({}));
    if let Ok(sealed) = tokend::jwe::seal::seal(&plaintext, &h.encryption_key, alg, enc, &extra) {
        let _ = h.check(&sealed);
    }
});
