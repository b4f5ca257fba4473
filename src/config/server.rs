//! `[server]` and `[server.tls]`: listeners, limits, timeouts, TLS.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::defaults;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// REST, forward-auth, health and metrics.
    pub http_addr: String,
    /// gRPC API, gRPC health, reflection.
    pub grpc_addr: String,
    /// Optional separate plain listener for `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: String,
    /// Larger tokens are inactive without being parsed.
    pub max_token_bytes: usize,
    /// Most tokens in one `IntrospectBatch`.
    pub max_batch: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_grace_seconds: u64,
    /// A request head must arrive within this long of connecting (or, on
    /// HTTP/1.1, of the previous response); a connection that sends nothing
    /// at all is closed after it too.
    pub header_read_timeout_seconds: u64,
    /// A connection with no traffic for this long is closed (0: never).
    pub idle_timeout_seconds: u64,
    /// Open connections across the HTTP and gRPC listeners; at the cap the one
    /// quiet longest is closed for a new one. 0: from the open-files limit.
    pub max_connections: usize,
    /// Concurrent HTTP/2 streams per connection (HTTP and gRPC).
    pub max_concurrent_streams: u32,
    /// HTTP/2 PING after this long without reads (0: off), and how long the
    /// answer may take before the connection is dropped.
    pub http2_keepalive_interval_seconds: u64,
    pub http2_keepalive_timeout_seconds: u64,
    /// `IntrospectBatch` calls decoded at once; more wait (0: twice the CPUs).
    pub max_concurrent_batches: usize,
    /// TLS (and, with a client CA, mTLS) on the HTTP and gRPC listeners;
    /// `metrics_addr` stays plain for Prometheus and kubelet probes.
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM roots for client certificates; enables mTLS.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate (with `client_ca_file`).
    #[serde(default)]
    pub require_client_cert: bool,
    /// How often certificate files are checked for changes (SIGHUP reloads at once).
    #[serde(default = "defaults::tls_poll")]
    pub reload_poll_seconds: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http_addr: "0.0.0.0:8080".into(),
            grpc_addr: "0.0.0.0:50051".into(),
            metrics_addr: String::new(),
            max_token_bytes: 8192,
            max_batch: 1000,
            shutdown_grace_seconds: 10,
            header_read_timeout_seconds: 10,
            idle_timeout_seconds: 300,
            max_connections: 0,
            max_concurrent_streams: 128,
            http2_keepalive_interval_seconds: 60,
            http2_keepalive_timeout_seconds: 20,
            max_concurrent_batches: 0,
            tls: None,
        }
    }
}

/// Checks `[server]`, collecting every problem.
pub(super) fn validate(s: &ServerConfig, errors: &mut Vec<String>) {
    check_addr(errors, "server.http_addr", &s.http_addr);
    check_addr(errors, "server.grpc_addr", &s.grpc_addr);
    if !s.metrics_addr.is_empty() {
        check_addr(errors, "server.metrics_addr", &s.metrics_addr);
    }
    if s.max_token_bytes == 0 || s.max_token_bytes > 1 << 20 {
        errors.push("server.max_token_bytes: must be between 1 and 1048576".into());
    }
    if let Some(tls) = &s.tls {
        for (key, path) in [
            ("cert_file", Some(&tls.cert_file)),
            ("key_file", Some(&tls.key_file)),
            ("client_ca_file", tls.client_ca_file.as_ref()),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                errors.push(format!(
                    "server.tls.{key}: {} is not a readable file",
                    path.display()
                ));
            }
        }
        if tls.require_client_cert && tls.client_ca_file.is_none() {
            errors.push("server.tls.require_client_cert: needs client_ca_file".into());
        }
    }
    if s.max_batch == 0 || s.max_batch > 100_000 {
        errors.push("server.max_batch: must be between 1 and 100000".into());
    }
    if s.header_read_timeout_seconds == 0 || s.header_read_timeout_seconds > 3600 {
        errors.push("server.header_read_timeout_seconds: must be between 1 and 3600".into());
    }
    if s.max_concurrent_streams == 0 {
        errors.push("server.max_concurrent_streams: must be at least 1".into());
    }
    if s.http2_keepalive_interval_seconds > 0 && s.http2_keepalive_timeout_seconds == 0 {
        errors.push(
            "server.http2_keepalive_timeout_seconds: must be at least 1 with keepalive on".into(),
        );
    }
}

pub(super) fn check_addr(errors: &mut Vec<String>, key: &str, value: &str) {
    if value.parse::<SocketAddr>().is_err() {
        errors.push(format!(
            "{key}: {value:?} is not an address like 0.0.0.0:8080"
        ));
    }
}
