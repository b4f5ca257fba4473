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

/// How many `.` a token holds, counted up to 5: a compact JWS has 2, a
/// compact JWE 4, an opaque token anything else. A SIMD scan (`memchr`):
/// with opaque or encrypted tokens configured it runs on every verdict, and
/// counting bytes one by one cost a cached JWT two thirds more.
pub fn dots(token: &str) -> usize {
    memchr::memchr_iter(b'.', token.as_bytes()).take(5).count()
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

#[cfg(test)]
mod tests {
    use super::dots;

    #[test]
    fn dots_tell_a_jws_from_a_jwe_from_an_opaque_token() {
        let long = "x".repeat(1000);
        assert_eq!(dots(&format!("{long}.{long}.{long}")), 2, "a JWS");
        assert_eq!(dots("h.k.iv.ct.tag"), 4, "a JWE");
        assert_eq!(dots("ory_at_abc.sig"), 1, "Hydra's opaque token");
        assert_eq!(dots("opaque"), 0);
        assert_eq!(dots("a.b.c.d.e.f.g"), 5, "counted up to 5: neither");
        assert_eq!(dots(".."), 2, "shape only: the parser judges the rest");
    }
}
