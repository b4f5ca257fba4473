//! Where an issuer's keys come from. Each [`KeySource`] yields a whole,
//! immutable [`KeySet`] that the refresher swaps in: a new key format is a
//! new source, not a branch in the refresher.

use futures_util::future::BoxFuture;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::RefreshError;
use super::fetch::Fetcher;
use super::jwk::{Jwk, Source};
use super::set::KeySet;
use crate::config::{IssuerConfig, KeySourceConfig, Secret};

/// One load: the key set, and how long the server said it may be cached.
pub struct Loaded {
    pub set: KeySet,
    pub max_age: Option<Duration>,
    /// The last instant every key of the set is still good (an X.509
    /// certificate's `notAfter`): the next load comes just after it.
    pub valid_until: Option<SystemTime>,
}

pub trait KeySource: Send + Sync {
    /// Reads the keys as they are now.
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>>;

    /// Whether loading again can find new keys.
    fn is_remote(&self) -> bool {
        false
    }

    /// Told the `kid` of a token no key matched, before a refresh is asked
    /// for: whether loading again could find it (only then is one asked
    /// for). A source that fetches by `kid` remembers it for its next load.
    fn want(&self, _kid: Option<&str>) -> bool {
        self.is_remote()
    }

    /// The keys of the last document loaded, judged again now: after a
    /// failed load past [`Loaded::valid_until`], so a key past its dates
    /// leaves even while its server is down. `None` where nothing changes
    /// without a load.
    fn reread(&self) -> Option<Loaded> {
        None
    }
}

/// The source an issuer's configuration names.
pub fn from_config(config: &IssuerConfig) -> Result<Box<dyn KeySource>, RefreshError> {
    Ok(match config.key_source() {
        KeySourceConfig::Discovery => Box::new(Discovery {
            fetcher: Fetcher::new(config)?,
            issuer: config.issuer.clone(),
            well_known: OPENID_CONFIGURATION,
        }),
        KeySourceConfig::SsfDiscovery => Box::new(Discovery {
            fetcher: Fetcher::new(config)?,
            issuer: config.issuer.clone(),
            well_known: SSF_CONFIGURATION,
        }),
        KeySourceConfig::JwksUri(url) => Box::new(JwksUrl {
            fetcher: Fetcher::new(config)?,
            url,
        }),
        KeySourceConfig::X509MapUri(url) => Box::new(X509MapUrl {
            fetcher: Fetcher::new(config)?,
            url,
            last: Mutex::default(),
        }),
        KeySourceConfig::PemByKid(template) => {
            Box::new(super::pem::PemByKid::new(Fetcher::new(config)?, template))
        }
        KeySourceConfig::JwksFile(path) => Box::new(JwksFile { path }),
        KeySourceConfig::Inline(jwks) => Box::new(InlineJwks { jwks }),
        KeySourceConfig::Hmac => Box::new(HmacSecret {
            secret: config.hmac_key.clone().unwrap_or_default(),
        }),
        KeySourceConfig::None => Box::new(NoKeys),
    })
}

/// A JWKS at a configured URL.
struct JwksUrl {
    fetcher: Fetcher,
    url: String,
}

impl KeySource for JwksUrl {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(fetch_jwks(&self.fetcher, &self.url))
    }
    fn is_remote(&self) -> bool {
        true
    }
}

/// OpenID Connect Discovery (or the Shared Signals Framework's), then the
/// JWKS its `jwks_uri` names.
struct Discovery {
    fetcher: Fetcher,
    issuer: String,
    well_known: &'static str,
}

const OPENID_CONFIGURATION: &str = "openid-configuration";
const SSF_CONFIGURATION: &str = "ssf-configuration";

impl KeySource for Discovery {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            let url = self.fetcher.discover(&self.issuer, self.well_known).await?;
            fetch_jwks(&self.fetcher, &url).await
        })
    }
    fn is_remote(&self) -> bool {
        true
    }
}

async fn fetch_jwks(fetcher: &Fetcher, url: &str) -> Result<Loaded, RefreshError> {
    let fetched = fetcher.get(url).await?;
    Ok(Loaded {
        set: KeySet::from_jwks(&fetched.body, Source::Fetched)?,
        max_age: fetched.max_age,
        valid_until: None,
    })
}

/// An X.509 certificate map at a configured URL (see [`super::x509`]).
struct X509MapUrl {
    fetcher: Fetcher,
    url: String,
    /// The last map that loaded, for [`KeySource::reread`].
    last: Mutex<Option<Vec<u8>>>,
}

impl X509MapUrl {
    /// The keys of `body` at the current time.
    fn keys_now(body: &[u8], max_age: Option<Duration>) -> Result<Loaded, RefreshError> {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let dated = super::x509::key_set(body, now)?;
        Ok(Loaded {
            set: dated.set,
            max_age,
            valid_until: dated
                .first_expiry
                .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64)),
        })
    }
}

impl KeySource for X509MapUrl {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            let fetched = self.fetcher.get(&self.url).await?;
            let loaded = Self::keys_now(&fetched.body, fetched.max_age)?;
            if let Ok(mut last) = self.last.lock() {
                *last = Some(fetched.body);
            }
            Ok(loaded)
        })
    }
    fn is_remote(&self) -> bool {
        true
    }
    fn reread(&self) -> Option<Loaded> {
        let last = self.last.lock().ok()?.clone()?;
        Self::keys_now(&last, None).ok()
    }
}

/// A JWKS file on disk, trusted like local config (it may hold `oct` keys).
struct JwksFile {
    path: PathBuf,
}

impl KeySource for JwksFile {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            let bytes = tokio::fs::read(&self.path)
                .await
                .map_err(|e| RefreshError::File {
                    path: self.path.display().to_string(),
                    reason: e.to_string(),
                })?;
            Ok(Loaded {
                set: KeySet::from_jwks(&bytes, Source::Local)?,
                max_age: None,
                valid_until: None,
            })
        })
    }
}

/// A JWKS given in code (dev mode's built-in issuer).
struct InlineJwks {
    jwks: String,
}

impl KeySource for InlineJwks {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            Ok(Loaded {
                set: KeySet::from_jwks(self.jwks.as_bytes(), Source::Local)?,
                max_age: None,
                valid_until: None,
            })
        })
    }
}

/// One HMAC secret from config.
struct HmacSecret {
    secret: Secret,
}

impl KeySource for HmacSecret {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            Ok(Loaded {
                set: KeySet::from_keys(vec![Jwk::hmac(None, None, &self.secret.0)?]),
                max_age: None,
                valid_until: None,
            })
        })
    }
}

/// An issuer of opaque tokens only: an empty set, loaded at once, so the
/// issuer is ready and any JWT naming it fails on its key.
struct NoKeys;

impl KeySource for NoKeys {
    fn load(&self) -> BoxFuture<'_, Result<Loaded, RefreshError>> {
        Box::pin(async move {
            Ok(Loaded {
                set: KeySet::default(),
                max_age: None,
                valid_until: None,
            })
        })
    }
}
