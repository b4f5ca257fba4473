//! TLS and mTLS for the HTTP and gRPC listeners (rustls, aws-lc-rs provider).
//!
//! The server configuration lives behind an `ArcSwap`: each new connection
//! takes the current one, so a reload (certificate files changed on disk, or
//! SIGHUP) applies to new connections while established ones carry on. With a
//! client CA, callers may present a certificate; one that verifies and whose
//! CN or DNS name is listed in a client's `cert_names` authenticates as that
//! client, no secret needed.

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

use crate::config::TlsConfig;

/// Installs aws-lc-rs as the process-wide rustls provider (once; later calls are no-ops).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| TlsError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(TlsError::File {
            path: path.display().to_string(),
            reason: "no PEM certificate".into(),
        });
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| TlsError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?
        .ok_or_else(|| TlsError::File {
            path: path.display().to_string(),
            reason: "no PEM private key".into(),
        })
}

/// Builds a server configuration from the files, offering `alpn` protocols.
fn build(config: &TlsConfig, alpn: &[&[u8]]) -> Result<ServerConfig, TlsError> {
    let builder = ServerConfig::builder();
    let builder = match &config.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| TlsError::Config(format!("client CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots));
            let verifier = if config.require_client_cert {
                verifier
            } else {
                verifier.allow_unauthenticated()
            };
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?,
            )
        }
    };
    let mut server = builder
        .with_single_cert(certs(&config.cert_file)?, key(&config.key_file)?)
        .map_err(|e| TlsError::Config(format!("certificate and key: {e}")))?;
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(server)
}

/// A listener's TLS configuration, reloadable.
pub struct ReloadingTls {
    config: TlsConfig,
    alpn: Vec<&'static [u8]>,
    current: ArcSwap<ServerConfig>,
}

impl ReloadingTls {
    pub fn new(config: &TlsConfig, alpn: &[&'static [u8]]) -> Result<Arc<ReloadingTls>, TlsError> {
        let current = ArcSwap::from_pointee(build(config, alpn)?);
        Ok(Arc::new(ReloadingTls {
            config: config.clone(),
            alpn: alpn.to_vec(),
            current,
        }))
    }

    /// The configuration for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.current.load_full())
    }

    /// Rereads the files; on error the previous configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let next = build(&self.config, &self.alpn)?;
        self.current.store(Arc::new(next));
        Ok(())
    }

    fn files(&self) -> Vec<PathBuf> {
        let mut files = vec![self.config.cert_file.clone(), self.config.key_file.clone()];
        files.extend(self.config.client_ca_file.clone());
        files
    }
}

fn modified(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reloads every listener's TLS on SIGHUP or when a certificate file changes
/// (checked every `poll`), until `shutdown`.
pub async fn watch(listeners: Vec<Arc<ReloadingTls>>, poll: Duration, shutdown: CancellationToken) {
    let files: Vec<PathBuf> = listeners.iter().flat_map(|l| l.files()).collect();
    let mut seen = modified(&files);
    let mut hangups = crate::signals::Hangups::new();
    loop {
        let reason = tokio::select! {
            _ = tokio::time::sleep(poll) => {
                let now = modified(&files);
                if now == seen { continue; }
                // Let a writer finish replacing cert and key before reading them.
                tokio::time::sleep(Duration::from_millis(200)).await;
                "certificate files changed"
            }
            _ = hangups.next() => "SIGHUP",
            _ = shutdown.cancelled() => return,
        };
        seen = modified(&files);
        for listener in &listeners {
            match listener.reload() {
                Ok(()) => {
                    tracing::info!(reason, cert = %listener.config.cert_file.display(), "TLS certificates reloaded")
                }
                Err(e) => {
                    tracing::error!(reason, error = %e, "TLS reload failed; the previous certificates stay in use")
                }
            }
        }
    }
}

/// The names a client certificate carries: its subject CN and DNS SANs.
pub fn certificate_names(cert: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, parsed)) = x509_parser::parse_x509_certificate(cert.as_ref()) else {
        return Vec::new();
    };
    let mut names: Vec<String> = parsed
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}

/// A verified client certificate's names, attached to each request on its connection.
#[derive(Clone, Debug, Default)]
pub struct PeerNames(pub Arc<Vec<String>>);

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn peer_names(conn: &rustls::ServerConnection) -> PeerNames {
    let names = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(certificate_names)
        .unwrap_or_default();
    PeerNames(Arc::new(names))
}

/// The TLS handshake of one accepted connection, within [`HANDSHAKE_TIMEOUT`]:
/// the stream and its client certificate's names, or `None` (logged at debug).
pub async fn handshake<IO>(
    tls: &ReloadingTls,
    io: IO,
    peer: std::net::SocketAddr,
) -> Option<(tokio_rustls::server::TlsStream<IO>, PeerNames)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(io)).await {
        Ok(Ok(stream)) => {
            let names = peer_names(stream.get_ref().1);
            Some((stream, names))
        }
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}
