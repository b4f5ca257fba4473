//! What a token is, before anyone judges it: the compact JWS parsed with
//! strict base64url and JSON ([`parse`]), its algorithm ([`alg`]), its claims
//! read once ([`claims`]), its digest, and the one list of reasons a token can
//! be refused ([`reason`]). Nothing here knows issuers, keys or stores: the
//! pipeline that judges a token is [`crate::verify`].

pub mod alg;
pub mod claims;
pub mod parse;
pub mod reason;

pub use alg::Algorithm;
pub use claims::Claims;
pub use reason::Reason;

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
