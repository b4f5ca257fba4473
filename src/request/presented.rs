//! What a request presented for one verdict: the token, where it was found,
//! and the request around it. Every API builds one and hands it to
//! [`Verifier::check`](crate::verify::Verifier::check); the route policy reads the
//! request facts, sender-constraint checks the proof and the certificate.

/// Where the token was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource<'a> {
    /// The `token` parameter of an RFC 7662 or RFC 7009 form body.
    FormBody,
    /// The `token` field of a gRPC message.
    GrpcMessage,
    /// The `Authorization` header, with the scheme it was sent under.
    Authorization(Scheme),
    /// A request header other than `authorization`, named in config.
    Header(&'a str),
    /// A cookie of the forwarded request.
    Cookie(&'a str),
    /// A query parameter of the forwarded request.
    Query(&'a str),
    /// The admin API's JSON body.
    AdminBody,
}

/// The `Authorization` scheme a token came under (RFC 6750, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    DPoP,
}

/// The request a token came with, as a gateway reported it (forward-auth
/// headers, Envoy's `attributes.request.http`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    /// `http` or `https` (`X-Forwarded-Proto`; empty: not said, taken as `http`).
    pub scheme: &'a str,
    pub host: &'a str,
    /// The path with its query, as received.
    pub path: &'a str,
}

/// The request a DPoP proof must name (`htm`, `htu`): the forwarded request,
/// or, for introspection, the method and URI the resource server says it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofTarget<'a> {
    Forwarded(RequestFacts<'a>),
    Stated { method: &'a str, uri: &'a str },
}

/// One token as presented, with what came with it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    pub source: TokenSource<'a>,
    /// For forward-auth and Envoy: the request being authorized.
    pub request: Option<RequestFacts<'a>>,
    /// A DPoP proof (RFC 9449) sent with the token, and what it must name.
    pub proof: Option<(&'a str, ProofTarget<'a>)>,
    /// The SHA-256 of the presenting client's DER certificate (RFC 8705).
    pub client_cert: Option<[u8; 32]>,
}

impl<'a> Presented<'a> {
    pub fn new(token: &'a str, source: TokenSource<'a>) -> Presented<'a> {
        Presented {
            token,
            source,
            request: None,
            proof: None,
            client_cert: None,
        }
    }

    /// With the request it was presented for.
    pub fn for_request(self, request: RequestFacts<'a>) -> Presented<'a> {
        Presented {
            request: Some(request),
            ..self
        }
    }

    /// With a DPoP proof for `target`.
    pub fn with_proof(self, proof: Option<&'a str>, target: ProofTarget<'a>) -> Presented<'a> {
        Presented {
            proof: proof.map(|p| (p, target)),
            ..self
        }
    }

    /// With the SHA-256 of the presenting client's certificate.
    pub fn with_client_cert(self, sha256: Option<[u8; 32]>) -> Presented<'a> {
        Presented {
            client_cert: sha256,
            ..self
        }
    }

    /// Whether the token came as `Authorization: DPoP …`.
    pub fn under_dpop_scheme(&self) -> bool {
        self.source == TokenSource::Authorization(Scheme::DPoP)
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer(authorization: &str) -> Option<&str> {
    match authorization_token(authorization)? {
        (Scheme::Bearer, token) => Some(token),
        (Scheme::DPoP, _) => None,
    }
}

/// The scheme and token of an `Authorization` value: `Bearer` or `DPoP`
/// (schemes case-insensitive); any other scheme is no token.
pub fn authorization_token(authorization: &str) -> Option<(Scheme, &str)> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    if token.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, token))
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Some((Scheme::DPoP, token))
    } else {
        None
    }
}
