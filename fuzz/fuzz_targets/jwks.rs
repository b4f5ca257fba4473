//! Any bytes as a JWKS, fetched and local, as a decryption-key JWKS and as
//! an X.509 certificate map (Firebase's keys):
//! key hygiene (kty/alg/use/key_ops, sizes, curves, duplicate kids) refuses
//! what it must without panicking.
#![no_main]

use tokend::keys::jwk::Source;
use tokend::keys::set::KeySet;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = KeySet::from_jwks(data, Source::Fetched);
    let _ = KeySet::from_jwks(data, Source::Local);
    let _ = tokend::jwe::keys::load_jwks(data);
    let _ = tokend::keys::x509::key_set(data, 1_800_000_000);
});
