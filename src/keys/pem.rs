//! `keys_format = "pem_by_kid"`: one PEM public key per `kid`, at a URL
//! made from `keys_url_template`, as AWS ALB publishes its signing keys
//! (`https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`, described at
//! https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-authenticate-users.html#user-claims-encoding).
//!
//! There is no list to fetch: a key is fetched the first time a token names
//! its `kid`. The request path only records the `kid` ([`KeySource::want`]);
//! the issuer's refresher fetches it, so the fetch is single flight and
//! under the same unknown-`kid` rate limit as a JWKS refresh. A `kid` goes
//! into a URL only when it is letters, digits and `-` (ALB's are UUIDs):
//! no `/`, `.`, `%` or `?` can steer the fetch. Keys once fetched are kept
//! (ALB never changes the key behind a `kid`), the newest [`MAX_KEYS`].

use futures_util::future::BoxFuture;
use std::sync::Mutex;

use super::RefreshError;
use super::fetch::{FetchError, Fetcher};
use super::jwk::{Jwk, Source};
use super::set::{JwksError, KeySet};
use super::source::{KeySource, Loaded};
use crate::config::KID;

/// The most keys kept; the oldest fetched goes first.
pub const MAX_KEYS: usize = 32;
/// The most `kid`s waiting for the next load (see [`remember`]).
const MAX_WANTED: usize = 8;

pub struct PemByKid {
    fetcher: Fetcher,
    template: String,
    /// `kid`s tokens named and no key matched, for the next load, with how
    /// many requests named each.
    wanted: Mutex<Vec<(String, u32)>>,
    /// Keys fetched so far, oldest first: `(kid, JWK)`.
    known: Mutex<Vec<(String, serde_json::Value)>>,
}

impl PemByKid {
    pub fn new(fetcher: Fetcher, template: String) -> PemByKid {
        PemByKid {
            fetcher,
            template,
            wanted: Mutex::default(),
            known: Mutex::default(),
        }
    }

    /// The key of one `kid`: `Ok(None)` when the server has none (4xx).
    async fn fetch(&self, kid: &str) -> Result<Option<serde_json::Value>, RefreshError> {
        let url = self.template.replacen(KID, kid, 1);
        let fetched = match self.fetcher.get(&url).await {
            Ok(fetched) => fetched,
            Err(FetchError::Status { status, .. })
                if (400..500).contains(&status) && status != 429 =>
            {
                tracing::warn!(kid, status, "key endpoint has no key for this kid");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let Some(jwk) = public_key_jwk(kid, &fetched.body) else {
            tracing::warn!(kid, "key endpoint sent no PEM public key of a known type");
            return Ok(None);
        };
        // The hygiene of any fetched key (size, curve, point), before it is
        // kept: one bad key must not spoil every later load.
        match Jwk::from_json(&jwk, Source::Fetched) {
            Ok(_) => Ok(Some(jwk)),
            Err(why) => {
                tracing::warn!(kid, %why, "key left out");
                Ok(None)
            }
        }
    }

    /// The set of every known key.
    fn key_set(&self) -> Result<KeySet, JwksError> {
        let known = self.known.lock().map(|k| k.clone()).unwrap_or_default();
        if known.is_empty() {
            return Ok(KeySet::default());
        }
        let keys: Vec<_> = known.into_iter().map(|(_, jwk)| jwk).collect();
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        KeySet::from_jwks(jwks.as_bytes(), Source::Fetched)
    }

    fn is_known(&self, kid: &str) -> bool {
        self.known
            .lock()
            .is_ok_and(|known| known.iter().any(|(k, _)| k == kid))
    }
}

impl KeySource for PemByKid {
    /// Fetches the wanted `kid`s not known yet; the set is every known key.
    /// A `kid` whose fetch fails (network, 5xx, 429) is wanted again at the
    /// next load and does not hold up the others; when every fetch failed
    /// the load fails and the last good set keeps serving.
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            // Most asked for first: a kid the users' tokens name again and
            // again goes before one a single stray token named.
            let mut wanted = self
                .wanted
                .lock()
                .map(|mut w| std::mem::take(&mut *w))
                .unwrap_or_default();
            wanted.sort_by_key(|(_, count)| std::cmp::Reverse(*count));
            let wanted: Vec<String> = wanted.into_iter().map(|(kid, _)| kid).collect();
            let mut failed = None;
            let mut fetched_any = false;
            for kid in &wanted {
                if self.is_known(kid) {
                    continue;
                }
                match self.fetch(kid).await {
                    Ok(Some(jwk)) => {
                        fetched_any = true;
                        if let Ok(mut known) = self.known.lock() {
                            if known.len() == MAX_KEYS {
                                known.remove(0);
                            }
                            known.push((kid.clone(), jwk));
                        }
                    }
                    Ok(None) => {}
                    // Tried again at the next load; the other kids go on.
                    Err(e) => {
                        self.want(Some(kid));
                        failed = Some(e);
                    }
                }
            }
            if let Some(e) = failed
                && !fetched_any
            {
                return Err(e);
            }
            Ok(Loaded {
                set: self.key_set()?,
                max_age: None,
                valid_until: None,
            })
        })
    }

    fn is_remote(&self) -> bool {
        true
    }

    fn want(&self, kid: Option<&str>) -> bool {
        let Some(kid) = kid.filter(|kid| is_url_safe_kid(kid)) else {
            return false;
        };
        if let Ok(mut wanted) = self.wanted.lock() {
            remember(&mut wanted, kid);
        }
        true
    }
}

/// Counts one more request for `kid`. When the list is full, the `kid`
/// named by the fewest requests (the oldest of them) makes room, so a flood
/// of stray `kid`s, each named once, cannot push out the one every user's
/// token names.
fn remember(wanted: &mut Vec<(String, u32)>, kid: &str) {
    if let Some((_, count)) = wanted.iter_mut().find(|(k, _)| k == kid) {
        *count = count.saturating_add(1);
        return;
    }
    if wanted.len() == MAX_WANTED
        && let Some(fewest) = wanted
            .iter()
            .enumerate()
            .min_by_key(|(_, (_, count))| *count)
            .map(|(i, _)| i)
    {
        wanted.remove(fewest);
    }
    wanted.push((kid.to_owned(), 1));
}

/// A `kid` that may stand in a URL path: 1 to 64 letters, digits and `-`.
pub fn is_url_safe_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The JWK of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) under `kid`.
fn public_key_jwk(kid: &str, body: &[u8]) -> Option<serde_json::Value> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(body).ok()?;
    if pem.label != "PUBLIC KEY" {
        return None;
    }
    let (rest, spki) = <x509_parser::x509::SubjectPublicKeyInfo as x509_parser::prelude::FromDer<
        _,
    >>::from_der(&pem.contents)
    .ok()?;
    if !rest.is_empty() {
        return None;
    }
    super::x509::spki_jwk(kid, &spki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_kids_go_into_a_url() {
        for kid in ["beec8bbc-84e0-4736-9745-a6bd96fde712", "k1", "A-z"] {
            assert!(is_url_safe_kid(kid), "{kid}");
        }
        let long = "a".repeat(65);
        for kid in [
            "", "../x", "a/b", "a.b", "a%2fb", "a?b", "a#b", "a b", "é", &long,
        ] {
            assert!(!is_url_safe_kid(kid), "{kid:?}");
        }
    }

    #[test]
    fn a_flood_of_stray_kids_does_not_push_out_the_one_users_present() {
        let mut wanted = Vec::new();
        for _ in 0..3 {
            remember(&mut wanted, "real");
        }
        for i in 0..100 {
            remember(&mut wanted, &format!("stray-{i}"));
        }
        assert_eq!(wanted.len(), MAX_WANTED);
        assert!(wanted.contains(&("real".to_owned(), 3)), "{wanted:?}");
        // The newest stray kid still gets a place.
        assert!(wanted.iter().any(|(k, _)| k == "stray-99"));
    }

    #[test]
    fn a_pem_public_key_becomes_its_jwk() {
        // A P-256 key as the ALB key endpoint serves it.
        let pem = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAcO4kEtYgXZZdyCvhaOMjAFLTqN0\nDtAEB6AvI2T4KfYNr2VFeGjMwo0pCaDw3S6kKDLOSUkOD5cyAgPzCpZ9lw==\n-----END PUBLIC KEY-----\n";
        let jwk = public_key_jwk("k", pem.as_bytes()).unwrap();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["kid"], "k");
        let cert_label = pem.replace("PUBLIC KEY", "CERTIFICATE");
        assert!(public_key_jwk("k", cert_label.as_bytes()).is_none());
        assert!(public_key_jwk("k", b"not pem").is_none());
    }
}
