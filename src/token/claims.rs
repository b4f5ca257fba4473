//! Step 5b of the token path: the claims, parsed once and checked against the
//! issuer's policy (RFC 7519 §4.1, RFC 8725 §3.8–3.11, RFC 9068).

use serde_json::{Map, Value};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;

use super::parse::{Member as Claim, Members, StrictIgnored, Text, duplicate, is_duplicate};
use super::reason::Reason;
use crate::config::IssuerConfig;

/// The payload as one pass over it reads it: the claims tokend acts on, each
/// member name checked against repeats, and everything else validated (no
/// member repeated at any depth) without being kept. Strings without escapes
/// stay borrowed from the payload.
#[derive(Default)]
struct Read<'de> {
    iss: Option<Claim<'de>>,
    sub: Option<Claim<'de>>,
    jti: Option<Claim<'de>>,
    client_id: Option<Claim<'de>>,
    azp: Option<Claim<'de>>,
    scope: Option<Claim<'de>>,
    scp: Option<Claim<'de>>,
    username: Option<Claim<'de>>,
    aud: Option<Claim<'de>>,
    exp: Option<Claim<'de>>,
    iat: Option<Claim<'de>>,
    nbf: Option<Claim<'de>>,
    flags: u8,
}

impl<'de> Deserialize<'de> for Read<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ReadVisitor;
        impl<'de> Visitor<'de> for ReadVisitor {
            type Value = Read<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Read<'de>, A::Error> {
                let mut read = Read::default();
                let mut members = Members::default();
                while let Some(name) = access.next_key::<Text>()? {
                    if !members.insert(&name) {
                        return Err(duplicate(&name));
                    }
                    let slot = match &*name {
                        "iss" => &mut read.iss,
                        "sub" => &mut read.sub,
                        "jti" => &mut read.jti,
                        "client_id" => &mut read.client_id,
                        "azp" => &mut read.azp,
                        "scope" => &mut read.scope,
                        "scp" => &mut read.scp,
                        "username" => &mut read.username,
                        "aud" => &mut read.aud,
                        "exp" => &mut read.exp,
                        "iat" => &mut read.iat,
                        "nbf" => &mut read.nbf,
                        other => {
                            if matches!(other, "active" | "token_type") {
                                read.flags |= RENDER_IN_FULL;
                            }
                            access.next_value::<StrictIgnored>()?;
                            continue;
                        }
                    };
                    *slot = Some(access.next_value::<Claim>()?);
                }
                // RFC 7662 has `client_id` and `scope` as strings: a token that
                // carries them otherwise gets its answer rendered in full, with
                // those members made strings or left out.
                match read.client_id {
                    Some(Claim::Text(_)) => read.flags |= HAS_CLIENT_ID,
                    Some(_) => read.flags |= RENDER_IN_FULL,
                    None => {}
                }
                match read.scope {
                    Some(Claim::Text(_)) => read.flags |= HAS_SCOPE,
                    Some(_) => read.flags |= RENDER_IN_FULL,
                    None => {}
                }
                Ok(read)
            }
        }
        deserializer.deserialize_map(ReadVisitor)
    }
}

/// Where a decoded claim sits in [`Claims::buf`]; `start == u32::MAX` is absent.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    len: u32,
}

impl Span {
    const NONE: Span = Span {
        start: u32::MAX,
        len: 0,
    };
}

/// The claims the request path reads, by index into `Claims::spans`.
const ISS: usize = 0;
const SUB: usize = 1;
const JTI: usize = 2;
const CLIENT_ID: usize = 3;
const SCOPE: usize = 4;
const USERNAME: usize = 5;

/// What the introspection answer needs to know about the payload's members
/// (`client_id` and `scope` are filled from `azp` and `scp` only when the
/// token has no string `client_id` / `scope`).
const HAS_CLIENT_ID: u8 = 1;
const HAS_SCOPE: u8 = 2;
/// The token has members named `active` or `token_type`, or a `client_id` or
/// `scope` that is not a string.
const RENDER_IN_FULL: u8 = 4;

/// A token's claims, kept compact because verified tokens live in the cache:
/// one buffer holds the payload JSON exactly as the token carried it (already
/// checked: an object, no member repeated, registered claims well typed),
/// followed by the decoded values of the claims the request path reads that do
/// not appear verbatim in it; the dates are numbers. Answers that need every claim (RFC 7662 introspection,
/// gRPC `include_claims`) are built from the JSON when asked.
#[derive(Debug, Clone)]
pub struct Claims {
    buf: Box<str>,
    json_len: u32,
    spans: [Span; 6],
    /// The first audience, and any others (most tokens name one: no allocation).
    aud: Span,
    more_aud: Box<[Span]>,
    /// `NaN` when absent.
    exp: f64,
    iat: f64,
    nbf: f64,
    flags: u8,
}

fn present(x: f64) -> Option<f64> {
    (!x.is_nan()).then_some(x)
}

impl Claims {
    /// Parses the payload: a JSON object without repeated members in which `iss`,
    /// `sub`, `jti` are strings, `aud` a string or array of strings, and `exp`,
    /// `nbf`, `iat` numbers.
    pub fn parse(payload: &[u8]) -> Result<Claims, Reason> {
        let read: Read = match serde_json::from_slice::<Read>(payload) {
            Ok(read) => read,
            Err(e) if is_duplicate(&e) => return Err(Reason::DuplicateMember),
            Err(_) => return Err(Reason::BadClaims),
        };
        // Valid JSON is UTF-8.
        let json = std::str::from_utf8(payload).map_err(|_| Reason::BadClaims)?;
        let must_be_text = |claim: &Option<Claim>| match claim {
            None | Some(Claim::Text(_)) => Ok(()),
            Some(_) => Err(Reason::BadClaims),
        };
        must_be_text(&read.iss)?;
        must_be_text(&read.sub)?;
        must_be_text(&read.jti)?;
        let audiences: &[Text] = match &read.aud {
            None => &[],
            Some(Claim::Text(a)) => std::slice::from_ref(a),
            Some(Claim::Array {
                texts,
                only_texts: true,
            }) => texts,
            Some(_) => return Err(Reason::BadClaims),
        };
        let date = |claim: &Option<Claim>| match claim {
            None => Ok(f64::NAN),
            Some(Claim::Number(n)) => Ok(*n),
            Some(_) => Err(Reason::BadClaims),
        };
        let (exp, iat, nbf) = (date(&read.exp)?, date(&read.iat)?, date(&read.nbf)?);

        fn text<'a>(claim: &'a Option<Claim>) -> Option<&'a str> {
            match claim {
                Some(Claim::Text(t)) => Some(t),
                _ => None,
            }
        }
        let joined;
        let scope = match read.scope.as_ref().or(read.scp.as_ref()) {
            Some(Claim::Text(s)) => Some(&**s),
            Some(Claim::Array { texts, .. }) => {
                joined = texts.iter().map(|t| &**t).collect::<Vec<_>>().join(" ");
                Some(joined.as_str())
            }
            _ => None,
        };
        let values: [Option<&str>; 6] = [
            text(&read.iss),
            text(&read.sub),
            text(&read.jti),
            // `azp` stands in only when there is no `client_id` at all.
            match &read.client_id {
                Some(_) => text(&read.client_id),
                None => text(&read.azp),
            },
            scope,
            text(&read.username),
        ];
        // A value read without escapes lies in the JSON already and is pointed
        // at there; only the others are appended, decoded.
        let mut buf = String::with_capacity(json.len() + 16);
        buf.push_str(json);
        let too_long = |_| Reason::BadClaims;
        let locate = |buf: &mut String, value: &str| -> Result<Span, Reason> {
            let offset = (value.as_ptr() as usize).wrapping_sub(json.as_ptr() as usize);
            let inside = offset
                .checked_add(value.len())
                .and_then(|end| json.get(offset..end));
            let start = if inside == Some(value) {
                offset
            } else {
                let at = buf.len();
                buf.push_str(value);
                at
            };
            Ok(Span {
                start: u32::try_from(start).map_err(too_long)?,
                len: u32::try_from(value.len()).map_err(too_long)?,
            })
        };
        let mut spans = [Span::NONE; 6];
        for (slot, value) in spans.iter_mut().zip(values) {
            if let Some(value) = value {
                *slot = locate(&mut buf, value)?;
            }
        }
        let mut aud = Span::NONE;
        let mut more_aud = Vec::new();
        for (i, a) in audiences.iter().enumerate() {
            let span = locate(&mut buf, a)?;
            if i == 0 {
                aud = span;
            } else {
                more_aud.push(span);
            }
        }
        Ok(Claims {
            json_len: u32::try_from(json.len()).map_err(too_long)?,
            buf: buf.into_boxed_str(),
            spans,
            aud,
            more_aud: more_aud.into_boxed_slice(),
            exp,
            iat,
            nbf,
            flags: read.flags,
        })
    }

    /// The payload JSON as the token carried it.
    pub fn json(&self) -> &str {
        &self.buf[..self.json_len as usize]
    }

    /// Every claim, parsed from the payload again: for answers that return them all.
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.json()).unwrap_or_default()
    }

    fn text(&self, span: Span) -> Option<&str> {
        if span.start == u32::MAX {
            return None;
        }
        self.buf
            .get(span.start as usize..span.start as usize + span.len as usize)
    }

    pub fn iss(&self) -> Option<&str> {
        self.text(self.spans[ISS])
    }
    pub fn sub(&self) -> Option<&str> {
        self.text(self.spans[SUB])
    }
    pub fn jti(&self) -> Option<&str> {
        self.text(self.spans[JTI])
    }
    /// `client_id` (RFC 9068), or `azp` as OIDC providers name it.
    pub fn client_id(&self) -> Option<&str> {
        self.text(self.spans[CLIENT_ID])
    }
    /// Scopes as one space-separated string: `scope` (RFC 8693), or `scp` as a
    /// string or array (Okta, Azure AD).
    pub fn scope(&self) -> Option<&str> {
        self.text(self.spans[SCOPE])
    }
    pub fn username(&self) -> Option<&str> {
        self.text(self.spans[USERNAME])
    }
    /// `aud`, whether sent as a string or an array.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.aud)
            .chain(self.more_aud.iter().copied())
            .filter_map(|span| self.text(span))
    }
    pub fn exp(&self) -> Option<f64> {
        present(self.exp)
    }
    pub fn iat(&self) -> Option<f64> {
        present(self.iat)
    }
    pub fn nbf(&self) -> Option<f64> {
        present(self.nbf)
    }

    /// The RFC 7662 §2.2 answer for an active token: every claim the token
    /// carries, plus `active` and `token_type`, and `client_id` / `scope`
    /// filled from `azp` / `scp` where the IdP uses those. Spliced onto the
    /// token's own JSON without parsing it again, unless the token itself
    /// carries `active` or `token_type` (tokend's values replace them) or a
    /// `client_id` / `scope` that is not a string (made one, or left out, so
    /// that the answer says what the identity headers say).
    pub fn introspection_json(&self) -> Vec<u8> {
        let json = self.json().trim();
        if self.flags & RENDER_IN_FULL != 0 {
            let mut map = self.to_map();
            map.insert("active".into(), Value::Bool(true));
            map.insert("token_type".into(), Value::String("Bearer".into()));
            for (name, value) in [("client_id", self.client_id()), ("scope", self.scope())] {
                match value {
                    Some(v) => map.insert(name.into(), Value::String(v.into())),
                    None => map.remove(name),
                };
            }
            return serde_json::to_vec(&map).unwrap_or_default();
        }
        let mut out = Vec::with_capacity(json.len() + 48);
        out.extend_from_slice(br#"{"active":true,"token_type":"Bearer""#);
        self.fill_from_aliases(|k, v| {
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
    fn fill_from_aliases(&self, mut put: impl FnMut(&str, &str)) {
        if self.flags & HAS_CLIENT_ID == 0
            && let Some(client) = self.client_id()
        {
            put("client_id", client);
        }
        if self.flags & HAS_SCOPE == 0
            && let Some(scope) = self.scope()
        {
            put("scope", scope);
        }
    }

    /// Checks time, lifetime, audience and required claims at `now` (Unix seconds).
    pub fn check(&self, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
        let now = now as f64;
        let leeway = policy.leeway_seconds as f64;
        let exp = self.exp().ok_or(Reason::MissingExp)?;
        if now >= exp + leeway {
            return Err(Reason::Expired);
        }
        if self.nbf().is_some_and(|nbf| nbf > now + leeway) {
            return Err(Reason::NotYetValid);
        }
        if self.iat().is_some_and(|iat| iat > now + leeway) {
            return Err(Reason::IssuedInFuture);
        }
        if policy.max_lifetime_seconds > 0 {
            let lifetime = exp - self.iat().unwrap_or(now);
            if lifetime > policy.max_lifetime_seconds as f64 {
                return Err(Reason::LifetimeTooLong);
            }
        }
        if !policy.audiences.is_empty()
            && !self
                .audiences()
                .any(|a| policy.audiences.iter().any(|want| want == a))
        {
            return Err(Reason::AudienceMismatch);
        }
        if !policy.required_claims.is_empty() {
            // Rarely configured: the member names are read from the JSON again.
            let members: std::collections::HashMap<std::borrow::Cow<str>, serde::de::IgnoredAny> =
                serde_json::from_str(self.json()).unwrap_or_default();
            if policy
                .required_claims
                .iter()
                .any(|c| !members.contains_key(c.as_str()))
            {
                return Err(Reason::MissingRequiredClaim);
            }
        }
        Ok(())
    }
}

/// Whether a header `typ` is accepted: media types compare case-insensitively and
/// `application/` may be left out (RFC 7515 §4.1.9).
pub fn typ_accepted(typ: Option<&str>, accepted: &[String]) -> bool {
    if accepted.is_empty() {
        return true;
    }
    let Some(typ) = typ else { return false };
    let short = |t: &str| {
        let t = t.trim();
        // `get`: byte 12 may fall inside a character of an attacker's `typ`.
        if t.len() > 12
            && let (Some(prefix), Some(rest)) = (t.get(..12), t.get(12..))
            && prefix.eq_ignore_ascii_case("application/")
        {
            rest.to_owned()
        } else {
            t.to_owned()
        }
    };
    let typ = short(typ);
    accepted.iter().any(|a| short(a).eq_ignore_ascii_case(&typ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn policy(extra: &str) -> IssuerConfig {
        let lifetime = if extra.contains("max_lifetime_seconds") {
            ""
        } else {
            "max_lifetime_seconds = 3600"
        };
        let text = format!(
            "[[issuers]]\nname = \"a\"\nissuer = \"https://a\"\njwks_uri = \"https://a/k\"\nleeway_seconds = 30\n{lifetime}\n{extra}"
        );
        Config::from_toml(&text, Vec::new())
            .unwrap()
            .issuers
            .remove(0)
    }

    fn check(json: &str, policy: &IssuerConfig, now: u64) -> Result<(), Reason> {
        Claims::parse(json.as_bytes())?.check(policy, now)
    }

    #[test]
    fn time_rules_with_leeway() {
        let p = policy("");
        let now = 1_000_000;
        assert_eq!(
            check(r#"{"iss":"https://a","exp":1000100}"#, &p, now),
            Ok(())
        );
        assert_eq!(
            check(r#"{"iss":"https://a"}"#, &p, now),
            Err(Reason::MissingExp)
        );
        assert_eq!(check(r#"{"exp":999980}"#, &p, now), Ok(()), "within leeway");
        assert_eq!(
            check(r#"{"exp":999970}"#, &p, now),
            Err(Reason::Expired),
            "exp + leeway == now is expired"
        );
        assert_eq!(check(r#"{"exp":1000100,"nbf":1000030}"#, &p, now), Ok(()));
        assert_eq!(
            check(r#"{"exp":1000100,"nbf":1000031}"#, &p, now),
            Err(Reason::NotYetValid)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"iat":1000031}"#, &p, now),
            Err(Reason::IssuedInFuture)
        );
        assert_eq!(
            check(r#"{"exp":1000100.5,"iat":999999.5}"#, &p, now),
            Ok(()),
            "fractional dates"
        );
    }

    #[test]
    fn lifetime_is_capped() {
        let p = policy("");
        let now = 1_000_000;
        assert_eq!(check(r#"{"exp":1003600,"iat":1000000}"#, &p, now), Ok(()));
        assert_eq!(
            check(r#"{"exp":1003601,"iat":1000000}"#, &p, now),
            Err(Reason::LifetimeTooLong)
        );
        assert_eq!(
            check(r#"{"exp":1003601}"#, &p, now),
            Err(Reason::LifetimeTooLong),
            "without iat: exp - now"
        );
        let uncapped = policy("max_lifetime_seconds = 0");
        assert_eq!(check(r#"{"exp":9000000}"#, &uncapped, now), Ok(()));
    }

    #[test]
    fn malformed_registered_claims() {
        for bad in [
            r#"{"iss":["https://a"],"exp":1}"#,
            r#"{"exp":"1000100"}"#,
            r#"{"exp":1000100,"nbf":true}"#,
            r#"{"exp":1000100,"sub":42}"#,
            r#"{"exp":1000100,"aud":[1]}"#,
            r#"{"exp":1000100,"jti":null}"#,
        ] {
            assert_eq!(
                Claims::parse(bad.as_bytes()).unwrap_err(),
                Reason::BadClaims,
                "{bad}"
            );
        }
        assert_eq!(
            Claims::parse(br#"{"exp":1,"exp":2}"#).unwrap_err(),
            Reason::DuplicateMember
        );
    }

    #[test]
    fn audience_and_required_claims() {
        let p =
            policy("audiences = [\"orders\", \"billing\"]\nrequired_claims = [\"exp\", \"sub\"]");
        let now = 1_000_000;
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"orders","sub":"u"}"#, &p, now),
            Ok(())
        );
        assert_eq!(
            check(
                r#"{"exp":1000100,"aud":["x","billing"],"sub":"u"}"#,
                &p,
                now
            ),
            Ok(())
        );
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"x","sub":"u"}"#, &p, now),
            Err(Reason::AudienceMismatch)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"sub":"u"}"#, &p, now),
            Err(Reason::AudienceMismatch)
        );
        assert_eq!(
            check(r#"{"exp":1000100,"aud":"orders"}"#, &p, now),
            Err(Reason::MissingRequiredClaim)
        );
    }

    #[test]
    fn typ_matching() {
        let accepted = vec!["at+jwt".to_string(), "JWT".to_string()];
        assert!(typ_accepted(Some("at+jwt"), &accepted));
        assert!(typ_accepted(Some("application/AT+JWT"), &accepted));
        assert!(typ_accepted(Some("jwt"), &accepted));
        assert!(!typ_accepted(Some("id+jwt"), &accepted));
        assert!(!typ_accepted(None, &accepted));
        assert!(typ_accepted(None, &[]));
        assert!(
            !typ_accepted(Some("aaaaaaaaaaa\u{e9}"), &accepted),
            "a multi-byte character across the prefix's end"
        );
        assert!(!typ_accepted(Some("applicatio\u{e9}at+jwt"), &accepted));
    }

    #[test]
    fn scope_from_scope_or_scp() {
        let c = Claims::parse(br#"{"scp":["read","write"]}"#).unwrap();
        assert_eq!(c.scope(), Some("read write"));
        let c = Claims::parse(br#"{"scope":"a b","scp":"x"}"#).unwrap();
        assert_eq!(c.scope(), Some("a b"));
    }

    #[test]
    fn a_member_repeated_at_any_depth_is_refused() {
        let many: String = (0..40).map(|i| format!(r#""m{i}":{i},"#)).collect();
        for json in [
            r#"{"sub":"a","sub":"b"}"#.to_string(),
            r#"{"a":1,"\u0061":2}"#.to_string(),
            r#"{"x":{"k":1,"k":2}}"#.to_string(),
            r#"{"x":[1,{"k":1,"k":2}]}"#.to_string(),
            r#"{"aud":[{"k":1,"k":2}]}"#.to_string(),
            r#"{"sub":{"k":1,"k":2}}"#.to_string(),
            format!(r#"{{{many}"m7":0}}"#),
            format!(r#"{{{many}"x":{{{many}"m39":1}}}}"#),
        ] {
            assert_eq!(
                Claims::parse(json.as_bytes()).unwrap_err(),
                Reason::DuplicateMember,
                "{json}"
            );
        }
        let fine = format!(r#"{{{many}"x":{{{many}"y":1}},"sub":"s"}}"#);
        assert_eq!(Claims::parse(fine.as_bytes()).unwrap().sub(), Some("s"));
        for bad in ["[]", "\"x\"", "{", r#"{"a":1}x"#, r#"{"a":"\u00"}"#] {
            assert_eq!(
                Claims::parse(bad.as_bytes()).unwrap_err(),
                Reason::BadClaims,
                "{bad}"
            );
        }
    }

    #[test]
    fn claims_read_back_decoded_whether_or_not_they_appear_verbatim() {
        let c = Claims::parse(
            br#"{"sub":"a\u00e9","iss":"x\"y","jti":"j-1","azp":"j","aud":["p","x\"y","q"],"username":"j-1"}"#,
        )
        .unwrap();
        assert_eq!(c.sub(), Some("a\u{e9}"));
        assert_eq!(c.iss(), Some("x\"y"));
        assert_eq!(c.jti(), Some("j-1"));
        assert_eq!(c.client_id(), Some("j"));
        assert_eq!(c.username(), Some("j-1"));
        assert_eq!(c.scope(), None);
        assert_eq!(c.audiences().collect::<Vec<_>>(), ["p", "x\"y", "q"]);
        let c = Claims::parse(br#"{"aud":"only"}"#).unwrap();
        assert_eq!(c.audiences().collect::<Vec<_>>(), ["only"]);
        assert_eq!(Claims::parse(b"{}").unwrap().audiences().count(), 0);
    }

    fn answer(json: &str) -> Map<String, Value> {
        let claims = Claims::parse(json.as_bytes()).unwrap();
        serde_json::from_slice(&claims.introspection_json()).unwrap()
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
            let raw = claims.introspection_json();
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
        let a: Map<String, Value> = serde_json::from_slice(&c.introspection_json()).unwrap();
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
