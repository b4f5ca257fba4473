//! tokend: a token validation service.
//!
//! # Layout, in the order a token travels
//! - [`listen`] and [`serve`]: connections before requests — the connection
//!   budget, timeouts and eviction, then HTTP and gRPC serving over them.
//! - [`api`]: HTTP, gRPC and Envoy fronts — caller authentication (for gRPC
//!   before the body is read), request parsing, response shaping. No
//!   verification logic lives there.
//! - [`runtime`]: the configuration snapshot a request loads once.
//! - [`token`]: the one entry point, [`token::Verifier::check`], given a
//!   [`token::Presented`] (the request context): size cap, strict
//!   base64url and JSON ([`token::parse`]), issuer by exact `iss`, algorithm
//!   allowlist and `typ`, then the signature and the claim rules ([`token::claims`]).
//! - [`authz`]: edge authorization after the verdict — the route a request
//!   falls under (normalized method, host, path), its scope and claim
//!   requirements, the token sources of `/auth` and Envoy `Check`.
//! - [`assertion`]: what upstreams are told — the identity headers and the
//!   signed identity assertion, kept with the verified token.
//! - [`cache`]: verified tokens by SHA-256; a hit still checks expiry, key and revocation.
//! - [`keys`]: each issuer's key set, swapped whole behind an `ArcSwap`; JWK
//!   hygiene ([`keys::jwk`]), bounded fetches ([`keys::fetch`]), key sources
//!   ([`keys::source`]), the refresher.
//! - [`revocation`]: the revocation model, the local copy checked on every
//!   request, and the stores behind it.
//! - [`metrics`]: metric names, buckets and pre-registered handles.
//! - [`config`]: TOML + environment overlay, one file per section, validated
//!   with key paths.
//! - [`clock`]: the injectable now, below every layer that asks for it.
//! - [`app`]: builds the shared state, starts listeners and background tasks,
//!   shuts down gracefully.
//! - [`dev`]: `serve --dev`, the self-contained development setup.
//! - [`mint`]: signs tokens (tests, benches, the load generator and dev mode).

pub mod api;
pub mod app;
pub mod assertion;
mod authz;
mod cache;
mod callers;
pub mod clock;
pub mod config;
pub mod dev;
mod headers;
pub mod keys;
mod listen;
pub mod metrics;
pub mod mint;
pub mod request;
pub mod revocation;
mod runtime;
pub mod serve;
pub mod tls;
pub mod token;
pub mod verify;
