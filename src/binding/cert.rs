//! Certificate-bound tokens (RFC 8705 §3): `cnf."x5t#S256"` is the
//! base64url SHA-256 of the client's DER certificate. The certificate comes
//! from the gateway that terminated the client's TLS: Envoy's
//! `attributes.source.certificate` or `x-forwarded-client-cert` header
//! (XFCC: `Hash=` hex SHA-256, `Cert=` URL-encoded PEM), or nginx's
//! `$ssl_client_escaped_cert` (URL-encoded PEM). The gateway must strip any
//! copy the client sent; tokend trusts the header as it trusts the gateway.

use crate::mint::b64;
use crate::token::{Reason, sha256};

/// The token's thumbprint against the certificate's SHA-256.
pub fn check(x5t_s256: &str, cert: Option<[u8; 32]>) -> Result<(), Reason> {
    let cert = cert.ok_or(Reason::CertMissing)?;
    // Both are public values; no timing to hide.
    if b64(cert) == x5t_s256 {
        Ok(())
    } else {
        Err(Reason::CertMismatch)
    }
}

/// The SHA-256 of the first certificate in a URL-encoded PEM (Envoy's
/// `attributes.source.certificate`, nginx's `$ssl_client_escaped_cert`).
pub fn from_url_encoded_pem(value: &str) -> Option<[u8; 32]> {
    let pem: String =
        url::form_urlencoded::parse(format!("pem={}", value.replace('+', "%2B")).as_bytes())
            .next()?
            .1
            .into_owned();
    let der = rustls_pemfile::certs(&mut pem.as_bytes()).next()?.ok()?;
    Some(sha256(der.as_ref()))
}

/// The client certificate of a header value: an Envoy XFCC header (its first
/// element: the client's; `Cert=` if present, else `Hash=`), or a bare
/// URL-encoded PEM.
pub fn from_header_value(value: &str) -> Option<[u8; 32]> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") || value.starts_with("-----") || value.starts_with("%2D") {
        return from_url_encoded_pem(value);
    }
    let element = first_xfcc_element(value);
    let mut hash = None;
    for (key, val) in xfcc_pairs(element) {
        match key.to_ascii_lowercase().as_str() {
            "cert" => return from_url_encoded_pem(&val),
            "hash" => hash = decode_hex32(&val),
            _ => {}
        }
    }
    hash
}

/// The XFCC element up to the first comma outside quotes.
fn first_xfcc_element(value: &str) -> &str {
    let mut quoted = false;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => return &value[..i],
            _ => {}
        }
    }
    value
}

/// `key=value` pairs separated by `;` outside quotes, values unquoted.
fn xfcc_pairs(element: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    let mut push = |part: &str| {
        if let Some((k, v)) = part.split_once('=') {
            pairs.push((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()));
        }
    };
    for (i, c) in element.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ';' if !quoted => {
                push(&element[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&element[start..]);
    pairs
}

fn decode_hex32(text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(text).ok()?;
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xfcc_elements_and_pairs() {
        let digest = [7u8; 32];
        let hex = hex::encode(digest);
        let header = format!(
            r#"By=spiffe://a;Hash={hex};Subject="CN=x,O=y";URI=spiffe://c,By=spiffe://b;Hash={}"#,
            hex::encode([9u8; 32])
        );
        assert_eq!(
            from_header_value(&header),
            Some(digest),
            "the first element: the client's"
        );
        assert_eq!(from_header_value("By=x;Subject=y"), None);
        assert_eq!(from_header_value("Hash=zz"), None);
        assert_eq!(check(&b64(digest), Some(digest)), Ok(()));
        assert_eq!(
            check(&b64(digest), Some([1; 32])),
            Err(Reason::CertMismatch)
        );
        assert_eq!(check(&b64(digest), None), Err(Reason::CertMissing));
    }
}
