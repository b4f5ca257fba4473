//! Header names tokend writes upstream, spelled once: the assertion stage
//! sets them, every front strips a client's forged copies, and configuration
//! keeps `[assertion] header` apart from them.

/// The identity headers tokend sets upstream and strips from clients.
pub const IDENTITY_HEADERS: [&str; 5] = [
    "x-auth-subject",
    "x-auth-issuer",
    "x-auth-scope",
    "x-auth-client-id",
    "x-auth-expires",
];
