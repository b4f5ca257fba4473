//! tokend: a token validation service.
//!
//! # Layout, in the order a token travels
//! - [`listen`] and [`serve`]: connections before requests — the connection
//!   budget, timeouts and eviction, then HTTP and gRPC serving over them.
//! - [`api`]: HTTP, gRPC and Envoy fronts — caller authentication (for gRPC
//!   before the body is read), request parsing, response shaping. No
//!   verification logic lives there. [`errors`]: the one error table
//!   (HTTP status, JSON body, gRPC code) of the API and of dev mode's
//!   stand-in IdP.
//! - [`request`]: the request context every front builds ([`request::Presented`])
//!   and the normal form routes match it in.
//! - [`runtime`]: the configuration snapshot a request loads once.
//! - [`verify`]: the one entry point, [`verify::Verifier::check`]: size cap,
//!   an opaque token to its issuer's introspection endpoint, else
//!   cached-or-verified (issuer by exact `iss`, algorithm allowlist and `typ`,
//!   signature, the claim rules of [`verify::check_claims`]), then revocation.
//! - [`upstream`]: an issuer's introspection and revocation endpoints, for
//!   opaque tokens (stage 0 of [`verify`]); [`jwe`]: encrypted tokens opened
//!   (stage 0 too); [`binding`]: DPoP proofs and certificate-bound tokens
//!   (stage 8).
//! - [`token`]: what a token is — the strict parse ([`token::parse`]), the
//!   claims read once ([`token::claims`]), the reasons a token is refused.
//! - [`authz`]: edge authorization after the verdict — the route a request
//!   falls under (normalized method, host, path), its scope and claim
//!   requirements, the token sources of `/auth` and Envoy `Check`.
//! - [`assertion`]: what upstreams are told — the identity headers and the
//!   signed identity assertion, kept with the verified token.
//! - [`cache`]: what was learnt about a token, indexed by a keyed hash and
//!   confirmed against the token it keeps; a verified token's hit still
//!   checks expiry, key and revocation.
//! - [`keys`]: each issuer's key set, swapped whole behind an `ArcSwap`; JWK
//!   hygiene ([`keys::jwk`]), bounded fetches ([`keys::fetch`]), key sources
//!   ([`keys::source`]), the refresher.
//! - [`revocation`]: the revocation model, the local copy checked on every
//!   request, and the stores behind it; [`events`]: revocations the IdP asks
//!   for (back-channel logouts).
//! - [`metrics`]: metric names, buckets and pre-registered handles.
//! - [`config`]: TOML + environment overlay, one file per section, validated
//!   with key paths.
//! - [`headers`] and [`clock`]: names and the injectable now, below every
//!   layer that uses them.
//! - [`app`]: builds the shared state, starts listeners and background tasks,
//!   shuts down gracefully; [`reload`]: SIGHUP and `--watch-config` build the
//!   next snapshot beside the running one and swap it in.
//! - [`dev`]: `serve --dev`, the self-contained development setup.
//! - [`mint`]: signs tokens (tokend's own assertion key; tests, benches, the
//!   load generator and dev mode).
//!
//! No module imports from one above it in this list's layering
//! (`python3 .ci/module_graph.py --check`).

pub mod api;
pub mod app;
pub mod assertion;
mod authz;
pub mod binding;
mod cache;
mod callers;
pub mod clock;
pub mod config;
pub mod dev;
pub mod errors;
pub mod events;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
mod headers;
pub mod jwe;
pub mod keys;
mod listen;
pub mod metrics;
pub mod mint;
mod prehashed;
pub mod reload;
pub mod request;
pub mod revocation;
mod runtime;
pub mod serve;
mod signals;
pub mod state;
pub mod tls;
pub mod token;
pub mod upstream;
pub mod verify;
