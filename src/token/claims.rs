//! Step 2 of the token path (README, "How a token is checked"): the claims,
//! read once in one strict pass and kept compact; [`crate::verify::check_claims`]
//! applies an issuer's rules to them (step 6).

use serde_json::{Map, Value};

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use std::fmt;

use super::parse::{Member as Claim, Members, StrictIgnored, Text, duplicate, is_duplicate};
use super::reason::Reason;

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
    sid: Option<Claim<'de>>,
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
                        "sid" => &mut read.sid,
                        "aud" => &mut read.aud,
                        "exp" => &mut read.exp,
                        "iat" => &mut read.iat,
                        "nbf" => &mut read.nbf,
                        other => {
                            if matches!(other, "active" | "token_type") {
                                read.flags |= RENDER_IN_FULL;
                            }
                            match other {
                                "cnf" => read.flags |= HAS_CNF,
                                "username" => read.flags |= HAS_USERNAME,
                                _ => {}
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
const SID: usize = 5;

/// What the introspection answer needs to know about the payload's members
/// (`client_id` and `scope` are filled from `azp` and `scp` only when the
/// token has no string `client_id` / `scope`).
const HAS_CLIENT_ID: u8 = 1;
const HAS_SCOPE: u8 = 2;
/// The token has members named `active` or `token_type`, or a `client_id` or
/// `scope` that is not a string.
const RENDER_IN_FULL: u8 = 4;
/// The token has a `cnf` (confirmation) member: it may be sender-constrained.
const HAS_CNF: u8 = 8;
/// The token has a `username` member (read only when an answer asks).
const HAS_USERNAME: u8 = 16;

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
        must_be_text(&read.sid)?;
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
            text(&read.sid),
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
    /// The session id (OpenID Connect), which session revocations match.
    pub fn sid(&self) -> Option<&str> {
        self.text(self.spans[SID])
    }

    /// `username` (RFC 7662), read from the JSON when asked: only gRPC
    /// answers carry it, and most tokens have none.
    pub fn username(&self) -> Option<String> {
        if self.flags & HAS_USERNAME == 0 {
            return None;
        }
        match self.to_map().remove("username") {
            Some(Value::String(name)) => Some(name),
            _ => None,
        }
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

    /// The token carries `active` or `token_type`, or a `client_id` / `scope`
    /// that is not a string: an RFC 7662 answer must be rebuilt from the
    /// parsed claims rather than spliced onto the payload.
    pub fn renders_in_full(&self) -> bool {
        self.flags & RENDER_IN_FULL != 0
    }

    /// Whether the token has a `cnf` member (RFC 7800): only then is it read.
    pub fn has_cnf(&self) -> bool {
        self.flags & HAS_CNF != 0
    }

    /// The token has a string `client_id` of its own (not one taken from `azp`).
    pub fn has_own_client_id(&self) -> bool {
        self.flags & HAS_CLIENT_ID != 0
    }

    /// The token has a `scope` of its own (not one taken from `scp`).
    pub fn has_own_scope(&self) -> bool {
        self.flags & HAS_SCOPE != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            br#"{"sub":"a\u00e9","iss":"x\"y","jti":"j-1","azp":"j","aud":["p","x\"y","q"],"username":"j-1","sid":"s\u0031"}"#,
        )
        .unwrap();
        assert_eq!(c.sub(), Some("a\u{e9}"));
        assert_eq!(c.iss(), Some("x\"y"));
        assert_eq!(c.jti(), Some("j-1"));
        assert_eq!(c.client_id(), Some("j"));
        assert_eq!(c.username().as_deref(), Some("j-1"));
        assert_eq!(c.sid(), Some("s1"));
        assert_eq!(c.scope(), None);
        assert_eq!(c.audiences().collect::<Vec<_>>(), ["p", "x\"y", "q"]);
        let c = Claims::parse(br#"{"aud":"only"}"#).unwrap();
        assert_eq!(c.audiences().collect::<Vec<_>>(), ["only"]);
        assert_eq!(Claims::parse(b"{}").unwrap().audiences().count(), 0);
    }
}
