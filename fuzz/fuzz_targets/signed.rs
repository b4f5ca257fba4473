//! Header and claims of the fuzzer's choosing, correctly signed by a
//! trusted key: every claim rule (exp, nbf, iat, aud, typ, crit, kid, alg
//! against key), the logout-token rules and the SET rules run on input that
//! gets past the signature.
#![no_main]

#[path = "common.rs"]
mod common;

use tokend::token::Algorithm;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((selector, header, payload)) = common::parts(data) else {
        return;
    };
    let h = common::harness();
    let token = match selector % 2 {
        0 => h.es256.sign_parts(Algorithm::ES256, &header, &payload),
        _ => h.hs256.sign_parts(Algorithm::HS256, &header, &payload),
    };
    match (selector >> 1) % 3 {
        0 => {
            let _ = h.check(&token);
        }
        1 => {
            let _ = h.logout(&token);
        }
        _ => {
            let _ = h.set(&token);
        }
    }
});
