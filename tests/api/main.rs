//! One integration test binary (one link step): tokend started in-process on
//! port 0 against a real JWKS server run by the test, called over real HTTP.

mod assertion;
mod attacks;
mod authz;
mod binding;
mod cache;
mod cli;
mod faults;
mod gateways;
mod grpc;
mod hardening;
mod helpers;
mod introspect;
mod introspection_idp;
mod jwe;
mod keys;
mod listeners;
mod logout;
mod opaque;
mod ops;
mod providers;
mod redis_store;
mod redis_support;
mod reload;
mod revocation;
mod soak;
mod ssf;
mod tls;
mod wycheproof;
