//! Any text as a bearer token: the size cap, the strict parse (segments,
//! base64url, header and claims JSON), issuer lookup, JWE detection, the
//! opaque-token hygiene. Nothing may panic; garbage is never active.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let h = common::harness();
    let _ = h.check(token);
    let _ = h.logout(token);
    let _ = h.set(token);
});
