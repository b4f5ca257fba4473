//! What a gRPC introspection answer says about a verdict, in one place
//! ([`Fields`]), and the two ways it leaves: an owned
//! `tokend.v1.IntrospectResponse` for a single call, and
//! [`IntrospectBatchResponse`], encoded straight from the verdicts.
//!
//! A batch is encoded without first copying every verdict's claims into
//! owned strings: in a profile of cached `IntrospectBatch` calls, building
//! and freeing those messages (seven strings and a list per verdict) and
//! measuring them again for the encoder took about a quarter of the CPU.

use bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::{DecodeError, Message};
use std::collections::BTreeMap;

use super::grpc::pb;
use crate::verify::{Verdict, Verified};

/// The answer to one token, as `IntrospectResponse` fields.
pub fn introspect_response(verdict: &Verdict, include_claims: bool) -> pb::IntrospectResponse {
    let Verdict::Active(verified) = verdict else {
        return pb::IntrospectResponse::default();
    };
    let f = Fields::of(verified);
    pb::IntrospectResponse {
        active: true,
        iss: f.iss.to_owned(),
        sub: f.sub.to_owned(),
        aud: f.verified.claims.audiences().map(str::to_owned).collect(),
        exp: f.exp,
        iat: f.iat,
        nbf: f.nbf,
        jti: f.jti.to_owned(),
        scope: f.scope.to_owned(),
        client_id: f.client_id.to_owned(),
        username: f.username.unwrap_or_default(),
        token_type: TOKEN_TYPE.into(),
        claims: include_claims.then(|| claims_struct(verified)),
    }
}

const TOKEN_TYPE: &str = "Bearer";

/// An active verdict's answer fields, borrowed from its claims (absent
/// claims are empty or 0, as proto3 leaves them out).
struct Fields<'a> {
    verified: &'a Verified,
    iss: &'a str,
    sub: &'a str,
    exp: i64,
    iat: i64,
    nbf: i64,
    jti: &'a str,
    scope: &'a str,
    client_id: &'a str,
    username: Option<String>,
}

impl<'a> Fields<'a> {
    fn of(verified: &'a Verified) -> Fields<'a> {
        let c = &verified.claims;
        let date = |value: Option<f64>| value.map_or(0, |d| d as i64);
        Fields {
            verified,
            iss: c.iss().unwrap_or_default(),
            sub: c.sub().unwrap_or_default(),
            exp: date(c.exp()),
            iat: date(c.iat()),
            nbf: date(c.nbf()),
            jti: c.jti().unwrap_or_default(),
            scope: c.scope().unwrap_or_default(),
            client_id: c.client_id().unwrap_or_default(),
            username: c.username(),
        }
    }

    /// The fields in tag order, as `IntrospectResponse` numbers them.
    fn write(&self, claims: Option<&prost_types::Struct>, out: &mut impl Out) {
        out.varint(1, 1);
        out.string(2, self.iss);
        out.string(3, self.sub);
        for aud in self.verified.claims.audiences() {
            out.repeated_string(4, aud);
        }
        out.varint(5, self.exp as u64);
        out.varint(6, self.iat as u64);
        out.varint(7, self.nbf as u64);
        out.string(8, self.jti);
        out.string(9, self.scope);
        out.string(10, self.client_id);
        out.string(11, self.username.as_deref().unwrap_or_default());
        out.string(12, TOKEN_TYPE);
        if let Some(claims) = claims {
            out.message(13, claims);
        }
    }
}

/// Where [`Fields::write`] goes: a length count or a buffer. proto3 leaves
/// out a singular field at its default (0, "").
trait Out {
    fn varint(&mut self, tag: u32, value: u64);
    fn repeated_string(&mut self, tag: u32, value: &str);
    fn message(&mut self, tag: u32, value: &prost_types::Struct);
    fn string(&mut self, tag: u32, value: &str) {
        if !value.is_empty() {
            self.repeated_string(tag, value);
        }
    }
}

/// Counts the bytes [`Fields::write`] would write.
struct Len(usize);

impl Out for Len {
    fn varint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            self.0 += encoding::key_len(tag) + encoding::encoded_len_varint(value);
        }
    }
    fn repeated_string(&mut self, tag: u32, value: &str) {
        let len = value.len();
        self.0 += encoding::key_len(tag) + encoding::encoded_len_varint(len as u64) + len;
    }
    fn message(&mut self, tag: u32, value: &prost_types::Struct) {
        self.0 += encoding::message::encoded_len(tag, value);
    }
}

/// Writes the fields into a buffer with room for them.
struct Put<'b, B>(&'b mut B);

impl<B: BufMut> Out for Put<'_, B> {
    fn varint(&mut self, tag: u32, value: u64) {
        if value != 0 {
            encoding::encode_key(tag, WireType::Varint, self.0);
            encoding::encode_varint(value, self.0);
        }
    }
    fn repeated_string(&mut self, tag: u32, value: &str) {
        encoding::encode_key(tag, WireType::LengthDelimited, self.0);
        encoding::encode_varint(value.len() as u64, self.0);
        self.0.put_slice(value.as_bytes());
    }
    fn message(&mut self, tag: u32, value: &prost_types::Struct) {
        encoding::message::encode(tag, value, self.0);
    }
}

/// One verdict of a batch, with its claims as a `Struct` when asked for
/// and the length of its encoded `IntrospectResponse`, counted once.
#[derive(Debug)]
struct Answered {
    verdict: Verdict,
    claims: Option<prost_types::Struct>,
    len: usize,
}

impl Answered {
    /// Its fields; none when inactive (every field at its default).
    fn fields(&self) -> Option<Fields<'_>> {
        match &self.verdict {
            Verdict::Active(verified) => Some(Fields::of(verified)),
            Verdict::Inactive(_) => None,
        }
    }
}

/// `tokend.v1.IntrospectBatchResponse` as it travels (`build.rs` maps the
/// message here). A server [`push`](Self::push)es verdicts and it is
/// encoded from them; a client decodes it into `responses`.
#[derive(Debug, Default)]
pub struct IntrospectBatchResponse {
    /// The answers, one per token in the request's order (what a client reads).
    pub responses: Vec<pb::IntrospectResponse>,
    answered: Vec<Answered>,
}

impl IntrospectBatchResponse {
    /// An answer with room for `tokens` verdicts.
    pub fn with_capacity(tokens: usize) -> Self {
        IntrospectBatchResponse {
            responses: Vec::new(),
            answered: Vec::with_capacity(tokens),
        }
    }

    /// The next token's verdict, with its claims when its request asked.
    pub fn push(&mut self, verdict: Verdict, include_claims: bool) {
        let claims = match &verdict {
            Verdict::Active(verified) if include_claims => Some(claims_struct(verified)),
            _ => None,
        };
        let mut len = Len(0);
        if let Verdict::Active(verified) = &verdict {
            Fields::of(verified).write(claims.as_ref(), &mut len);
        }
        self.answered.push(Answered {
            verdict,
            claims,
            len: len.0,
        });
    }
}

impl Message for IntrospectBatchResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encoding::message::encode_repeated(1, &self.responses, buf);
        for answered in &self.answered {
            encoding::encode_key(1, WireType::LengthDelimited, buf);
            encoding::encode_varint(answered.len as u64, buf);
            if let Some(fields) = answered.fields() {
                fields.write(answered.claims.as_ref(), &mut Put(buf));
            }
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => encoding::message::merge_repeated(wire_type, &mut self.responses, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let answered: usize = self
            .answered
            .iter()
            .map(|a| encoding::key_len(1) + encoding::encoded_len_varint(a.len as u64) + a.len)
            .sum();
        encoding::message::encoded_len_repeated(1, &self.responses) + answered
    }

    fn clear(&mut self) {
        self.responses.clear();
        self.answered.clear();
    }
}

/// Every claim of the token as a `google.protobuf.Struct`.
fn claims_struct(verified: &Verified) -> prost_types::Struct {
    to_struct(&verified.claims.to_map())
}

fn to_struct(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map
            .iter()
            .map(|(k, v)| (k.clone(), to_value(v)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn to_value(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(*b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or(0.0)),
        J::String(s) => Kind::StringValue(s.clone()),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(to_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}
