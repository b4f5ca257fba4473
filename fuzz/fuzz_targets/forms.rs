//! Form bodies (`/introspect`, `/revoke`) and `Authorization` values
//! (Basic with form-encoded id and secret, Bearer) as callers send them.
#![no_main]

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tokend::fuzzing::form_pairs(data);
    if let Ok(authorization) = std::str::from_utf8(data) {
        let _ = common::harness().authenticate(authorization);
    }
});
