//! The RFC 7662 answer shapes: what `/introspect` and gRPC say about a token
//! (signed per RFC 9701 by [`crate::assertion::Assertions::introspection_jwt`]).

use axum::body::Bytes;
use serde_json::Value;

use crate::token::Claims;
use crate::verify::Verified;

/// The answer for every inactive token: no reason, no claims (RFC 7662 §2.2).
pub const INACTIVE: &[u8] = br#"{"active":false}"#;

/// The media type of a signed answer (RFC 9701 §5).
pub const JWT_CONTENT_TYPE: &str = "application/token-introspection+jwt";

/// The RFC 7662 answer for a verified token.
pub fn introspection_json(verified: &Verified) -> Bytes {
    claims_answer(&verified.claims).into()
}

/// The RFC 7662 §2.2 answer for an active token: every claim the token
/// carries, plus `active` and `token_type`, and `client_id` / `scope`
/// filled from `azp` / `scp` where the IdP uses those. Spliced onto the
/// token's own JSON without parsing it again, unless the token itself
/// carries `active` or `token_type` (tokend's values replace them) or a
/// `client_id` / `scope` that is not a string (made one, or left out, so
/// that the answer says what the identity headers say).
pub fn claims_answer(claims: &Claims) -> Vec<u8> {
    let json = claims.json().trim();
    if claims.renders_in_full() {
        let mut map = claims.to_map();
        map.insert("active".into(), Value::Bool(true));
        map.insert("token_type".into(), Value::String("Bearer".into()));
        for (name, value) in [("client_id", claims.client_id()), ("scope", claims.scope())] {
            match value {
                Some(v) => map.insert(name.into(), Value::String(v.into())),
                None => map.remove(name),
            };
        }
        return serde_json::to_vec(&map).unwrap_or_default();
    }
    let mut out = Vec::with_capacity(json.len() + 48);
    out.extend_from_slice(br#"{"active":true,"token_type":"Bearer""#);
    fill_from_aliases(claims, |k, v| {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        // A string always serializes.
        let _ = serde_json::to_writer(&mut out, v);
    });
    // The payload is an object: `{` members `}`, possibly with whitespace.
    let members = json[1..].trim_start();
    if !members.starts_with('}') {
        out.push(b',');
    }
    out.extend_from_slice(members.as_bytes());
    out
}

/// `client_id` from `azp` and `scope` from `scp`, when the token lacks them.
fn fill_from_aliases(claims: &Claims, mut put: impl FnMut(&str, &str)) {
    if !claims.has_own_client_id()
        && let Some(client) = claims.client_id()
    {
        put("client_id", client);
    }
    if !claims.has_own_scope()
        && let Some(scope) = claims.scope()
    {
        put("scope", scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn answer(json: &str) -> Map<String, Value> {
        let claims = Claims::parse(json.as_bytes()).unwrap();
        serde_json::from_slice(&claims_answer(&claims)).unwrap()
    }

    #[test]
    fn introspection_answer_carries_every_claim_and_tokends_own_members() {
        let a = answer(r#" { "sub" : "a\u00e9", "n": 1.5e3, "azp": "web", "scp": ["r", "w"] } "#);
        assert_eq!(a["active"], true);
        assert_eq!(a["token_type"], "Bearer");
        assert_eq!(a["sub"], "a\u{e9}", "escapes decoded by the reader");
        assert_eq!(a["n"], 1500.0);
        assert_eq!(a["client_id"], "web", "from azp");
        assert_eq!(a["scope"], "r w", "from scp");
        assert_eq!(a.len(), 8);
        let a = answer(r#"{}"#);
        assert_eq!(a.len(), 2);
        // A token cannot make its own answer say something else, nor say it twice.
        for json in [
            r#"{"active":false,"sub":"x"}"#,
            r#"{"token_type":"mac","client_id":"c","azp":"d"}"#,
        ] {
            let claims = Claims::parse(json.as_bytes()).unwrap();
            let raw = claims_answer(&claims);
            assert!(
                crate::token::parse::parse_object(&raw).is_ok(),
                "no member repeated in {json}"
            );
            let a: Map<String, Value> = serde_json::from_slice(&raw).unwrap();
            assert_eq!(a["active"], true);
            assert_eq!(a["token_type"], "Bearer");
        }
        assert_eq!(
            answer(r#"{"token_type":"mac","client_id":"c","azp":"d"}"#)["client_id"],
            "c",
            "client_id wins over azp"
        );
        // What the answer says is what the identity headers say.
        let c = Claims::parse(br#"{"client_id":5,"azp":"evil","scope":["a",1,"b"]}"#).unwrap();
        assert_eq!(
            c.client_id(),
            None,
            "azp does not stand in for a client_id of another type"
        );
        assert_eq!(c.scope(), Some("a b"));
        let a: Map<String, Value> = serde_json::from_slice(&claims_answer(&c)).unwrap();
        assert!(a.get("client_id").is_none(), "{a:?}");
        assert_eq!(a["scope"], "a b");
        assert_eq!(a["azp"], "evil");
        let a = answer(r#"{"scope":{"x":1},"scp":"r"}"#);
        assert!(
            a.get("scope").is_none(),
            "a scope that is no string is left out: {a:?}"
        );
    }
}
