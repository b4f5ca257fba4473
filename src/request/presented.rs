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
    /// A request header (`authorization`, or one named in config).
    Header(&'a str),
    /// A cookie of the forwarded request.
    Cookie(&'a str),
    /// A query parameter of the forwarded request.
    Query(&'a str),
    /// The admin API's JSON body.
    AdminBody,
}

/// The request a token came with, as a gateway reported it (forward-auth
/// headers, Envoy's `attributes.request.http`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestFacts<'a> {
    pub method: &'a str,
    pub host: &'a str,
    /// The path with its query, as received.
    pub path: &'a str,
}

/// One token as presented, with what came with it.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    pub token: &'a str,
    pub source: TokenSource<'a>,
    /// For forward-auth and Envoy: the request being authorized.
    pub request: Option<RequestFacts<'a>>,
    /// A DPoP proof (RFC 9449) sent with the token.
    pub proof: Option<&'a str>,
    /// The DER client certificate of the connection (RFC 8705).
    pub client_cert: Option<&'a [u8]>,
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
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
