//! Steps 1, 2 and 5 of the token path: parse the compact JWS, read its header
//! and claims once, and check them (with the key found in [`crate::keys`]).

pub mod alg;
pub mod claims;
pub mod explain;
pub mod parse;
pub mod presented;
pub mod reason;
pub mod verify;

pub use alg::Algorithm;
pub use explain::Explanation;
pub use presented::{Presented, RequestFacts, TokenSource, bearer};
pub use reason::Reason;
pub use verify::{Stamp, UnsafeClaim, Verdict, Verified, Verifier};

/// SHA-256 of `bytes`: cache keys, revocation ids, client secrets.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// The SHA-256 of a whole token string: the verified-token cache key (each
/// distinct encoding is verified once on its own), and the id of revocations
/// stored before ids moved to the signing input. Computed at most once per
/// request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(sha256(token.as_bytes()))
    }
}

/// One request's token text with its [`TokenDigest`], hashed on first use
/// (by the cache, or by a legacy revocation lookup) and then shared.
#[derive(Debug)]
pub struct WholeToken<'a> {
    pub text: &'a str,
    digest: std::sync::OnceLock<TokenDigest>,
}

impl<'a> WholeToken<'a> {
    pub fn new(text: &'a str) -> WholeToken<'a> {
        WholeToken {
            text,
            digest: std::sync::OnceLock::new(),
        }
    }

    pub fn digest(&self) -> &TokenDigest {
        self.digest.get_or_init(|| TokenDigest::of(self.text))
    }
}

/// A short, non-reversible fingerprint of a token for logs: the first 8 bytes of
/// its SHA-256 in hex. A token is never logged whole.
pub fn fingerprint(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    hex::encode(&digest.as_ref()[..8])
}
