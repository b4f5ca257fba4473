//! The fronts callers reach. Each one authenticates the caller, parses the
//! request, asks [`crate::verify::Verifier`] and shapes the answer.

pub mod admin;
pub mod edge;
pub mod entry;
pub mod envoy;
pub mod events;
pub mod explain;
pub mod front;
pub mod grpc;
pub mod grpc_answer;
pub mod grpc_gate;
pub mod http;
pub mod introspection;
pub mod probes;
pub mod revoke;
