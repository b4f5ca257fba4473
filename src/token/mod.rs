//! Steps 1, 2 and 5 of the token path: parse the compact JWS, read its header
//! and claims once, and check them (with the key found in [`crate::keys`]).

pub mod alg;
pub mod claims;
pub mod parse;
pub mod presented;
pub mod reason;
pub mod verify;

pub use alg::Algorithm;
pub use presented::{Presented, RequestFacts, TokenSource};
pub use reason::Reason;
pub use verify::{Verdict, Verified, Verifier};

/// SHA-256 of `bytes`: cache keys, revocation ids, client secrets.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A short, non-reversible fingerprint of a token for logs: the first 8 bytes of
/// its SHA-256 in hex. A token is never logged whole.
pub fn fingerprint(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}
