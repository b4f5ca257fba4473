//! Prometheus metrics: names, buckets and pre-built handles.
//!
//! Label values come only from closed sets (configured issuer names or
//! `unknown`, supported algorithms or `other`, [`Reason`] labels or `active`,
//! fixed API and result names), so nothing a caller sends becomes a series.
//! Handles are created once (eagerly, or on first use for the large
//! issuer × alg × result cross product) and then cost no allocation per request.

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

use crate::token::alg::Algorithm;
use crate::token::reason::Reason;

pub const VERIFY_DURATION: &str = "tokend_verify_duration_seconds";
pub const REQUESTS: &str = "tokend_requests_total";
pub const REQUEST_DURATION: &str = "tokend_request_duration_seconds";
pub const IN_FLIGHT: &str = "tokend_requests_in_flight";
pub const JWKS_REFRESH: &str = "tokend_jwks_refresh_total";
pub const JWKS_FETCH_DURATION: &str = "tokend_jwks_fetch_duration_seconds";
pub const JWKS_KEYS: &str = "tokend_jwks_keys";
pub const JWKS_LAST_SUCCESS: &str = "tokend_jwks_last_success_timestamp_seconds";
pub const REVOCATIONS: &str = "tokend_revocations_total";
pub const REVOCATION_STORE_UP: &str = "tokend_revocation_store_up";
pub const REVOCATION_ENTRIES: &str = "tokend_revocation_entries";
pub const CACHE_HITS: &str = "tokend_cache_hits_total";
pub const CACHE_MISSES: &str = "tokend_cache_misses_total";
pub const CACHE_ENTRIES: &str = "tokend_cache_entries";
pub const AUTHZ_DECISIONS: &str = "tokend_authz_decisions_total";
pub const REVOCATION_FEED_LAG: &str = "tokend_revocation_feed_lag_seconds";
pub const REVOCATION_RESYNCS: &str = "tokend_revocation_resyncs_total";
pub const REVOCATION_EVENTS: &str = "tokend_revocation_events_total";
pub const REVOCATION_PROPAGATION: &str = "tokend_revocation_propagation_seconds";
pub const UPSTREAM_INTROSPECTION: &str = "tokend_upstream_introspection_total";
pub const UPSTREAM_REVOCATIONS: &str = "tokend_upstream_revocations_total";
pub const UPSTREAM_CACHE_HITS: &str = "tokend_upstream_cache_hits_total";
pub const UPSTREAM_CACHE_MISSES: &str = "tokend_upstream_cache_misses_total";
pub const UPSTREAM_CACHE_ENTRIES: &str = "tokend_upstream_cache_entries";
pub const CONFIG_RELOADS: &str = "tokend_config_reloads_total";
pub const CONFIG_LAST_RELOAD: &str = "tokend_config_last_reload_success_timestamp_seconds";
pub const CONFIG_LAST_RELOAD_OK: &str = "tokend_config_last_reload_successful";

/// Buckets from 5 µs to 1 s: verification is microseconds, a refresh-wait is up to 500 ms.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Installs the process-wide Prometheus recorder once and starts its upkeep
/// (so histograms are drained even when nobody scrapes). Later calls return the same handle.
///
/// A histogram keeps every sample until upkeep folds it into the buckets, so
/// upkeep runs each second: at a million verdicts a second that bounds the
/// pending samples to about 8 MB (every five seconds, it was 40 MB).
pub fn install() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full(JWKS_FETCH_DURATION.into()),
                    &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
                )
                .expect("bucket list is not empty")
                .set_buckets_for_metric(
                    Matcher::Full(REVOCATION_PROPAGATION.into()),
                    &[
                        0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0, 30.0,
                    ],
                )
                .expect("bucket list is not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(
                    "a metrics recorder was already installed; tokend's metrics go there"
                );
            }
            describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(1));
                        upkeep.run_upkeep();
                    }
                })
                .expect("spawn metrics upkeep thread");
            handle
        })
        .clone()
}

/// HELP texts (and units) for every metric tokend exports.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        VERIFY_DURATION,
        Unit::Seconds,
        "Time to verify one token, by issuer, algorithm and result (active or the inactive reason)."
    );
    describe_counter!(REQUESTS, "Requests answered, by API and result.");
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time to answer one request, by API."
    );
    describe_gauge!(IN_FLIGHT, "Requests being answered now, by API.");
    describe_counter!(
        AUTHZ_DECISIONS,
        "Edge authorization decisions of /auth and Envoy Check, by route (configured name or default) and decision (allow, deny_unauthenticated, deny_policy)."
    );
    describe_counter!(
        JWKS_REFRESH,
        "Key set refreshes, by issuer and result (ok, error)."
    );
    describe_histogram!(
        JWKS_FETCH_DURATION,
        Unit::Seconds,
        "Time to fetch and load an issuer's key set."
    );
    describe_gauge!(JWKS_KEYS, "Usable keys in the issuer's current key set.");
    describe_gauge!(
        JWKS_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the issuer's last successful key refresh."
    );
    describe_counter!(
        REVOCATIONS,
        "New revocation entries stored, by kind (jti, subject, issuer)."
    );
    describe_gauge!(
        REVOCATION_STORE_UP,
        "1 when the revocation store is reachable and the local copy in sync."
    );
    describe_gauge!(
        REVOCATION_ENTRIES,
        "Entries in this replica's local revocation copy."
    );
    describe_histogram!(
        REVOCATION_FEED_LAG,
        Unit::Seconds,
        "Time from a revocation written in Redis to its application on this replica."
    );
    describe_counter!(
        REVOCATION_RESYNCS,
        "Full loads of the local revocation copy from the store."
    );
    describe_counter!(CACHE_HITS, "Tokens answered from the verified-token cache.");
    describe_counter!(
        CACHE_MISSES,
        "Cache lookups without a usable entry (the token was verified in full)."
    );
    describe_gauge!(CACHE_ENTRIES, "Tokens in the verified-token cache.");
    describe_counter!(
        REVOCATION_EVENTS,
        "Revocation events from identity providers, by source (backchannel_logout, ssf_push, ssf_poll), event and result (applied, invalid, replayed, unavailable, ignored)."
    );
    describe_histogram!(
        REVOCATION_PROPAGATION,
        Unit::Seconds,
        "Time from a revocation entry's creation (on any replica) to its application on this replica."
    );
    describe_counter!(
        UPSTREAM_INTROSPECTION,
        "Calls to an issuer's introspection endpoint for opaque tokens, by issuer and result (active, inactive, other_issuer, timeout, unavailable, bad_status, bad_answer)."
    );
    describe_counter!(
        UPSTREAM_REVOCATIONS,
        "Revocations of opaque tokens forwarded to the issuer's revocation endpoint, by issuer and result (ok, error)."
    );
    describe_counter!(
        UPSTREAM_CACHE_HITS,
        "Opaque tokens answered from the introspection cache."
    );
    describe_counter!(
        UPSTREAM_CACHE_MISSES,
        "Opaque tokens not in the introspection cache (asked upstream, or joined a call under way)."
    );
    describe_gauge!(
        UPSTREAM_CACHE_ENTRIES,
        "Answers (active and inactive) in the introspection cache."
    );
    describe_counter!(
        CONFIG_RELOADS,
        "Configuration reloads (SIGHUP or a watched file's change), by result (ok, error)."
    );
    describe_gauge!(
        CONFIG_LAST_RELOAD,
        "Unix time the running configuration was loaded (at start, then each successful reload)."
    );
    describe_gauge!(
        CONFIG_LAST_RELOAD_OK,
        "1 when the last reload succeeded (or none was tried), 0 when the file was refused and an older configuration is running."
    );
}

/// The API a request came through (label `api`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Http,
    Grpc,
    Envoy,
    ForwardAuth,
    /// `/admin/*`: revocations and issuers.
    Admin,
    /// Revocation events from identity providers (`/backchannel-logout`).
    Events,
}

impl Api {
    const ALL: [Api; 6] = [
        Api::Http,
        Api::Grpc,
        Api::Envoy,
        Api::ForwardAuth,
        Api::Admin,
        Api::Events,
    ];
    fn label(self) -> &'static str {
        match self {
            Api::Http => "http",
            Api::Grpc => "grpc",
            Api::Envoy => "envoy",
            Api::ForwardAuth => "forward_auth",
            Api::Admin => "admin",
            Api::Events => "events",
        }
    }
}

/// How a request ended (label `result` of `tokend_requests_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Active,
    Inactive,
    /// Active, but a claim cannot travel losslessly in an identity header.
    UnsafeClaim,
    InvalidClient,
    Forbidden,
    BadRequest,
    Unavailable,
    Ok,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Active,
        Outcome::Inactive,
        Outcome::UnsafeClaim,
        Outcome::InvalidClient,
        Outcome::Forbidden,
        Outcome::BadRequest,
        Outcome::Unavailable,
        Outcome::Ok,
    ];
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Active => "active",
            Outcome::Inactive => "inactive",
            Outcome::UnsafeClaim => "claim_not_header_safe",
            Outcome::InvalidClient => "invalid_client",
            Outcome::Forbidden => "forbidden",
            Outcome::BadRequest => "bad_request",
            Outcome::Unavailable => "unavailable",
            Outcome::Ok => "ok",
        }
    }
}

const ALG_SLOTS: usize = Algorithm::ALL.len() + 1; // + "other"

/// All of tokend's metric handles.
pub struct Metrics {
    issuer_labels: Vec<String>, // configured names, then "unknown"
    verify: Box<[OnceLock<Histogram>]>,
    requests: Vec<Counter>,
    request_duration: Vec<Histogram>,
    in_flight: Vec<Gauge>,
    jwks_ok: Vec<Counter>,
    jwks_err: Vec<Counter>,
    jwks_fetch: Vec<Histogram>,
    jwks_keys: Vec<Gauge>,
    jwks_last_success: Vec<Gauge>,
}

impl Metrics {
    /// Registers handles for these issuer names (the recorder must be installed first).
    pub fn new(issuer_names: &[String]) -> Metrics {
        let mut issuer_labels: Vec<String> = issuer_names.to_vec();
        issuer_labels.push("unknown".into());
        let slots = issuer_labels.len() * ALG_SLOTS * (Reason::ALL.len() + 1);
        let per_issuer = |name: &'static str, result: Option<&'static str>| -> Vec<Counter> {
            issuer_names
                .iter()
                .map(|issuer| match result {
                    Some(r) => metrics::counter!(name, "issuer" => issuer.clone(), "result" => r),
                    None => metrics::counter!(name, "issuer" => issuer.clone()),
                })
                .collect()
        };
        let mut requests = Vec::new();
        for api in Api::ALL {
            for outcome in Outcome::ALL {
                requests.push(
                    metrics::counter!(REQUESTS, "api" => api.label(), "result" => outcome.label()),
                );
            }
        }
        Metrics {
            verify: (0..slots).map(|_| OnceLock::new()).collect(),
            requests,
            request_duration: Api::ALL
                .iter()
                .map(|api| metrics::histogram!(REQUEST_DURATION, "api" => api.label()))
                .collect(),
            in_flight: Api::ALL
                .iter()
                .map(|api| metrics::gauge!(IN_FLIGHT, "api" => api.label()))
                .collect(),
            jwks_ok: per_issuer(JWKS_REFRESH, Some("ok")),
            jwks_err: per_issuer(JWKS_REFRESH, Some("error")),
            jwks_fetch: issuer_names
                .iter()
                .map(|i| metrics::histogram!(JWKS_FETCH_DURATION, "issuer" => i.clone()))
                .collect(),
            jwks_keys: issuer_names
                .iter()
                .map(|i| metrics::gauge!(JWKS_KEYS, "issuer" => i.clone()))
                .collect(),
            jwks_last_success: issuer_names
                .iter()
                .map(|i| metrics::gauge!(JWKS_LAST_SUCCESS, "issuer" => i.clone()))
                .collect(),
            issuer_labels,
        }
    }

    /// Records one verification. `issuer`/`alg` are `None` when the token failed
    /// before they were known; `result` is `None` for an active token.
    pub fn verified(
        &self,
        issuer: Option<usize>,
        alg: Option<Algorithm>,
        result: Option<Reason>,
        took: Duration,
    ) {
        let unknown = self.issuer_labels.len() - 1;
        let i = issuer.filter(|i| *i < unknown).unwrap_or(unknown);
        let a = alg.map_or(ALG_SLOTS - 1, Algorithm::index);
        let r = result.map_or(Reason::ALL.len(), Reason::index);
        let slot = (i * ALG_SLOTS + a) * (Reason::ALL.len() + 1) + r;
        let histogram = self.verify[slot].get_or_init(|| {
            metrics::histogram!(
                VERIFY_DURATION,
                "issuer" => self.issuer_labels[i].clone(),
                "alg" => alg.map_or("other", Algorithm::name),
                "result" => result.map_or("active", Reason::as_str),
            )
        });
        histogram.record(took.as_secs_f64());
    }

    pub fn request(&self, api: Api, outcome: Outcome, took: Duration) {
        let a = Api::ALL.iter().position(|x| *x == api).unwrap_or(0);
        let o = Outcome::ALL.iter().position(|x| *x == outcome).unwrap_or(0);
        self.requests[a * Outcome::ALL.len() + o].increment(1);
        self.request_duration[a].record(took.as_secs_f64());
    }

    /// Counts a request in flight until the returned guard drops.
    pub fn in_flight(&self, api: Api) -> InFlight {
        let gauge = self.in_flight[Api::ALL.iter().position(|x| *x == api).unwrap_or(0)].clone();
        gauge.increment(1.0);
        InFlight(gauge)
    }

    pub fn jwks_refresh(&self, issuer: usize, ok: bool) {
        let counters = if ok { &self.jwks_ok } else { &self.jwks_err };
        if let Some(c) = counters.get(issuer) {
            c.increment(1);
        }
    }

    pub fn jwks_fetch_seconds(&self, issuer: usize, took: Duration) {
        if let Some(h) = self.jwks_fetch.get(issuer) {
            h.record(took.as_secs_f64());
        }
    }

    pub fn key_set_loaded(&self, issuer: usize, keys: usize) {
        if let Some(g) = self.jwks_keys.get(issuer) {
            g.set(keys as f64);
        }
        if let Some(g) = self.jwks_last_success.get(issuer) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            g.set(now.as_secs_f64());
        }
    }
}

/// A request in flight; decrements `tokend_requests_in_flight` when dropped.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}
