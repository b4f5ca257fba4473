//! What `tokend check-config` prints about an issuer a `provider` preset
//! filled in: every key a preset may set, as the issuer now reads, and what
//! a preset turns on that no key spells (base64 padding, `auth_time` not in
//! the future, the header its tokens travel in), so a user can see what is
//! checked without reading tokend's source.

use std::fmt::Write;

use super::IssuerConfig;

impl IssuerConfig {
    /// One line, `key = value` in Rust's debug spelling, issuer first.
    pub fn effective(&self) -> String {
        let mut line = String::new();
        let _ = write!(
            line,
            "issuer = {:?}, issuer_aliases = {:?}, tenants = {:?}, audiences = {:?}, \
             audience_claims = {:?}, required_claims = {:?}, required_claim_values = {:?}, \
             header_claim_values = {:?}, algorithms = {:?}, token_types = {:?}, keys = {:?}, \
             padded_base64 = {}, auth_time_not_in_future = {}",
            self.issuer,
            self.issuer_aliases,
            self.tenants,
            self.audiences,
            self.audience_claims,
            self.required_claims,
            self.required_claim_values,
            self.header_claim_values,
            self.algorithms,
            self.token_types,
            self.key_source(),
            self.padded_base64,
            self.auth_time_in_past,
        );
        match self.provider.and_then(|p| p.token_header()) {
            Some(header) => {
                let _ = write!(line, ", token_header = {header:?}");
            }
            None => line.push_str(", token_header = none"),
        }
        line
    }
}
