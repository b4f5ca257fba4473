//! The request context: what a request presented for one verdict ([`Presented`]:
//! the token, where it was found, the request around it, room for a proof and
//! a client certificate), and the one normal form routes match it in
//! ([`Target`]). Every API builds a `Presented`; the verifier, the route policy
//! and, later, sender-constraint checks read it. It depends on nothing else in
//! tokend, so configuration checks can normalize a route's path as requests are.

mod form;
mod presented;
mod target;

pub use form::form_pairs;
pub use presented::{
    Presented, ProofTarget, RequestFacts, Scheme, TokenSource, authorization_token, bearer,
};
pub use target::{BadRequest, Target, normalize_path, under_prefix};
