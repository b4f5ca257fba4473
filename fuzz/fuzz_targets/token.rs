//! Any text as a bearer token: the size cap, the strict parse (segments,
//! base64url, header and claims JSON), issuer lookup, JWE detection, the
//! opaque-token hygiene; and the padded parse of ALB tokens. Nothing may
//! panic; garbage is never active.
#![no_main]

#[path = "common.rs"]
mod common;

use tokend::token::parse::Jws;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let h = common::harness();
    let _ = h.check(token);
    let _ = h.logout(token);
    let _ = h.set(token);
    // The padded parse signs over the bytes received, and a token that
    // parses strictly reads the same either way.
    if let Ok(padded) = Jws::parse_padded(token, 16 * 1024) {
        let cut = token.rfind('.').unwrap_or(0);
        assert_eq!(padded.signing_input, &token.as_bytes()[..cut]);
        if let Ok(strict) = Jws::parse(token, 16 * 1024) {
            assert_eq!(strict.payload, padded.payload);
            assert_eq!(strict.signature, padded.signature);
        }
    }
});
