//! Steps 1–2 of the token path (README, "How a token is checked"): compact JWS → header, payload bytes, signature.
//!
//! Everything here is strict: unpadded base64url with canonical trailing bits
//! only, JSON objects in which no member appears twice (serde_json silently
//! keeps the last duplicate, which would let a gateway and tokend read
//! different values from one token), and a header whose `crit` we must
//! understand. `jku`, `jwk`, `x5u` and `x5c` are deliberately never read: keys
//! come only from the issuer's own key set.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

use super::alg::Algorithm;
use super::reason::Reason;

/// The parts of a compact JWS, decoded once.
#[derive(Debug)]
pub struct Jws<'a> {
    pub header: Header,
    /// The protected header's JSON, for the rare rule on another member.
    pub header_json: Vec<u8>,
    /// `BASE64URL(header) . BASE64URL(payload)`: the bytes the signature covers.
    pub signing_input: &'a [u8],
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The protected header members tokend acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

impl<'a> Jws<'a> {
    /// Splits and decodes a compact JWS of at most `max_bytes` bytes.
    pub fn parse(token: &'a str, max_bytes: usize) -> Result<Jws<'a>, Reason> {
        Jws::parse_with(token, max_bytes, b64_decode)
    }

    /// As [`Jws::parse`], but each segment may carry the `=` padding of
    /// RFC 4648 §5 (AWS ALB sends it), and then must wherever base64 needs
    /// it: one spelling per token. The signature is still over the bytes as
    /// received. Only for issuers that need it (the verifier checks).
    pub fn parse_padded(token: &'a str, max_bytes: usize) -> Result<Jws<'a>, Reason> {
        Jws::parse_with(token, max_bytes, b64_decode_padded)
    }

    fn parse_with(
        token: &'a str,
        max_bytes: usize,
        decode: fn(&str) -> Result<Vec<u8>, Reason>,
    ) -> Result<Jws<'a>, Reason> {
        if token.len() > max_bytes {
            return Err(Reason::TooLarge);
        }
        let mut parts = token.splitn(4, '.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(Reason::Malformed);
        };
        let header_json = decode(h)?;
        let header = parse_header(&header_json)?;
        let payload = decode(p)?;
        let signature = decode(s)?;
        let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
        Ok(Jws {
            header,
            header_json,
            signing_input,
            payload,
            signature,
        })
    }
}

/// Strict base64url: the unpadded alphabet of RFC 7515 §2, no padding, no
/// whitespace, no non-canonical trailing bits.
pub fn b64_decode(segment: &str) -> Result<Vec<u8>, Reason> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Reason::BadBase64)
}

/// base64url with canonical `=` padding (required where the length needs
/// it) and canonical trailing bits.
const URL_SAFE_PADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

fn b64_decode_padded(segment: &str) -> Result<Vec<u8>, Reason> {
    URL_SAFE_PADDED
        .decode(segment)
        .map_err(|_| Reason::BadBase64)
}

/// The protected header as one pass over it reads it: `alg`, `kid`, `typ`,
/// whether `crit` is there, and every member checked against repeats at any
/// depth; nothing else is kept.
#[derive(Default)]
struct HeaderRead<'de> {
    alg: Option<Member<'de>>,
    kid: Option<Member<'de>>,
    typ: Option<Member<'de>>,
    crit: bool,
}

impl<'de> Deserialize<'de> for HeaderRead<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = HeaderRead<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<HeaderRead<'de>, A::Error> {
                let mut read = HeaderRead::default();
                let mut members = Members::default();
                while let Some(name) = access.next_key::<Text>()? {
                    if !members.insert(&name) {
                        return Err(duplicate(&name));
                    }
                    let slot = match &*name {
                        "alg" => &mut read.alg,
                        "kid" => &mut read.kid,
                        "typ" => &mut read.typ,
                        other => {
                            read.crit |= other == "crit";
                            access.next_value::<StrictIgnored>()?;
                            continue;
                        }
                    };
                    *slot = Some(access.next_value::<Member>()?);
                }
                Ok(read)
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

fn parse_header(bytes: &[u8]) -> Result<Header, Reason> {
    let read = match serde_json::from_slice::<HeaderRead>(bytes) {
        Ok(read) => read,
        Err(e) if is_duplicate(&e) => return Err(Reason::DuplicateMember),
        Err(_) => return Err(Reason::BadHeader),
    };
    let alg = match &read.alg {
        Some(Member::Text(name)) => match Algorithm::from_name(name) {
            Some(alg) => alg,
            None if name.eq_ignore_ascii_case("none") => return Err(Reason::AlgNone),
            None => return Err(Reason::UnsupportedAlg),
        },
        _ => return Err(Reason::BadHeader),
    };
    // tokend implements no JWS extension, so any `crit` is one it does not understand
    // (RFC 7515 §4.1.11); an empty or malformed `crit` is invalid as well.
    if read.crit {
        return Err(Reason::CritUnsupported);
    }
    let kid = optional_string(read.kid).ok_or(Reason::BadHeader)?;
    let typ = optional_string(read.typ).ok_or(Reason::BadHeader)?;
    Ok(Header { alg, kid, typ })
}

/// `Some(None)` when absent, `Some(Some(s))` for a string, `None` for any other type.
fn optional_string(member: Option<Member>) -> Option<Option<String>> {
    match member {
        None => Some(None),
        Some(Member::Text(s)) => Some(Some(s.to_string())),
        Some(_) => None,
    }
}

/// Parses a JSON object, rejecting duplicate members at any depth.
///
/// Errors are `Some(Reason::DuplicateMember)` for a repeated member and `None`
/// for anything else (the caller knows whether it was parsing a header or claims).
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, Option<Reason>> {
    match serde_json::from_slice::<StrictValue>(bytes) {
        Ok(StrictValue(Value::Object(map))) => Ok(map),
        Ok(_) => Err(None),
        Err(e) if is_duplicate(&e) => Err(Some(Reason::DuplicateMember)),
        Err(_) => Err(None),
    }
}

const DUPLICATE: &str = "duplicate member";

/// The error for a member that appears twice in one object.
pub fn duplicate<E: de::Error>(name: &str) -> E {
    E::custom(format_args!("{DUPLICATE} {name:?}"))
}

/// Whether a serde_json error is a repeated member.
pub fn is_duplicate(error: &serde_json::Error) -> bool {
    error.to_string().starts_with(DUPLICATE)
}

/// A JSON string as read: borrowed from the input when it holds no escapes.
#[derive(Debug, Clone)]
pub enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(v))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The member names of one object, to refuse a repeat: a short list while the
/// object is small (most are), a hash set once it is not, so that a token
/// crafted with many members costs linear time.
#[derive(Default)]
pub struct Members<'de> {
    names: Vec<Text<'de>>,
    many: Option<std::collections::HashSet<String>>,
}

impl<'de> Members<'de> {
    /// Records `name`; false if the object already had it.
    pub fn insert(&mut self, name: &Text<'de>) -> bool {
        if let Some(set) = &mut self.many {
            return set.insert(name.to_string());
        }
        if self.names.iter().any(|seen| **seen == **name) {
            return false;
        }
        self.names.push(name.clone());
        if self.names.len() > 16 {
            self.many = Some(self.names.drain(..).map(|n| n.to_string()).collect());
        }
        true
    }
}

/// A member's value, as far as tokend cares (header parameters, claims).
pub enum Member<'de> {
    Text(Text<'de>),
    Number(f64),
    /// An array: its strings, and whether it held nothing else.
    Array {
        texts: Vec<Text<'de>>,
        only_texts: bool,
    },
    Other,
}

impl<'de> Deserialize<'de> for Member<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = Member<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Member<'de>, E> {
                Ok(Member::Text(Text::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Member<'de>, E> {
                Ok(Member::Text(Text::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Member<'de>, E> {
                Ok(Member::Text(Text::Owned(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Member<'de>, E> {
                Ok(Member::Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Member<'de>, E> {
                Ok(Member::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Member<'de>, E> {
                Ok(Member::Number(v))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_unit<E>(self) -> Result<Member<'de>, E> {
                Ok(Member::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Member<'de>, A::Error> {
                let mut texts = Vec::new();
                let mut only_texts = true;
                while let Some(item) = seq.next_element::<Member>()? {
                    match item {
                        Member::Text(t) => texts.push(t),
                        _ => only_texts = false,
                    }
                }
                Ok(Member::Array { texts, only_texts })
            }
            fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Member<'de>, A::Error> {
                skip_members(access)?;
                Ok(Member::Other)
            }
        }
        deserializer.deserialize_any(MemberVisitor)
    }
}

/// Any JSON value, checked for repeated members at any depth, then dropped.
pub struct StrictIgnored;

impl<'de> Deserialize<'de> for StrictIgnored {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(IgnoredVisitor)
    }
}

struct IgnoredVisitor;

impl<'de> Visitor<'de> for IgnoredVisitor {
    type Value = StrictIgnored;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_i64<E>(self, _: i64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_u64<E>(self, _: u64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_f64<E>(self, _: f64) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_str<E>(self, _: &str) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_unit<E>(self) -> Result<StrictIgnored, E> {
        Ok(StrictIgnored)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictIgnored, A::Error> {
        while seq.next_element::<StrictIgnored>()?.is_some() {}
        Ok(StrictIgnored)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<StrictIgnored, A::Error> {
        skip_members(access)
    }
}

/// Reads the rest of an object, refusing a repeated member at any depth.
pub fn skip_members<'de, A: MapAccess<'de>>(mut access: A) -> Result<StrictIgnored, A::Error> {
    let mut members = Members::default();
    while let Some(name) = access.next_key::<Text>()? {
        if !members.insert(&name) {
            return Err(duplicate(&name));
        }
        access.next_value::<StrictIgnored>()?;
    }
    Ok(StrictIgnored)
}

/// A `serde_json::Value` whose objects never repeat a member.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.contains_key(&key) {
                return Err(duplicate(&key));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
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
#[path = "parse_tests.rs"]
mod tests;
