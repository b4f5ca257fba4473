//! Unit tests of `parse.rs`: shapes, encodings, headers, repeated members.

use super::*;

fn enc(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn splits_a_compact_jws_and_keeps_the_signing_input() {
    let token = format!(
        "{}.{}.{}",
        enc(r#"{"alg":"ES256","kid":"k1","typ":"at+jwt"}"#),
        enc("{}"),
        enc("sig")
    );
    let jws = Jws::parse(&token, 8192).unwrap();
    assert_eq!(jws.header.alg, Algorithm::ES256);
    assert_eq!(jws.header.kid.as_deref(), Some("k1"));
    assert_eq!(jws.header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(jws.signature, b"sig");
    assert_eq!(
        jws.signing_input,
        token.rsplit_once('.').unwrap().0.as_bytes()
    );
}

#[test]
fn rejects_wrong_shapes_sizes_and_encodings() {
    let h = enc(r#"{"alg":"HS256"}"#);
    assert_eq!(
        Jws::parse(&format!("{h}.e30"), 8192).unwrap_err(),
        Reason::Malformed
    );
    assert_eq!(
        Jws::parse(&format!("{h}.e30.AA.AA"), 8192).unwrap_err(),
        Reason::Malformed
    );
    assert_eq!(
        Jws::parse(&format!("{h}.e30.AA"), 10).unwrap_err(),
        Reason::TooLarge
    );
    // padding, standard alphabet, whitespace, non-canonical trailing bits
    assert_eq!(
        Jws::parse(&format!("{h}.e30=.AA"), 8192).unwrap_err(),
        Reason::BadBase64
    );
    assert_eq!(
        Jws::parse(&format!("{h}.e30.A+"), 8192).unwrap_err(),
        Reason::BadBase64
    );
    assert_eq!(
        Jws::parse(&format!("{h}.e3 0.AA"), 8192).unwrap_err(),
        Reason::BadBase64
    );
    assert_eq!(
        Jws::parse(&format!("{h}.e30.AB"), 8192).unwrap_err(),
        Reason::BadBase64
    );
}

#[test]
fn padded_parsing_requires_canonical_padding_and_keeps_the_received_bytes() {
    // {"alg":"ES256"} is 15 bytes: 20 characters, no padding either way;
    // {} is 2 bytes: "e30=" padded.
    let h = enc(r#"{"alg":"ES256"}"#);
    let token = format!("{h}.e30=.AA==");
    let jws = Jws::parse_padded(&token, 8192).unwrap();
    assert_eq!(jws.payload, b"{}");
    assert_eq!(jws.signature, [0]);
    assert_eq!(jws.signing_input, format!("{h}.e30=").as_bytes());
    for wrong in [
        format!("{h}.e30.AA=="),   // padding left out where needed
        format!("{h}.e30=.AA="),   // too little
        format!("{h}.e30==.AA=="), // too much
        format!("{h}.e30=.AB=="),  // non-canonical trailing bits
        format!("{h}.e30=.A+=="),  // standard alphabet
    ] {
        assert_eq!(
            Jws::parse_padded(&wrong, 8192).unwrap_err(),
            Reason::BadBase64,
            "{wrong}"
        );
    }
}

#[test]
fn header_rules() {
    let parse = |h: &str| Jws::parse(&format!("{}.e30.AA", enc(h)), 8192).map(|j| j.header);
    assert_eq!(parse(r#"{"alg":"none"}"#).unwrap_err(), Reason::AlgNone);
    assert_eq!(parse(r#"{"alg":"NoNe"}"#).unwrap_err(), Reason::AlgNone);
    assert_eq!(
        parse(r#"{"alg":"ES512"}"#).unwrap_err(),
        Reason::UnsupportedAlg
    );
    assert_eq!(
        parse(r#"{"alg":["RS256"]}"#).unwrap_err(),
        Reason::BadHeader
    );
    assert_eq!(parse(r#"{"kid":"x"}"#).unwrap_err(), Reason::BadHeader);
    assert_eq!(
        parse(r#"{"alg":"RS256","kid":7}"#).unwrap_err(),
        Reason::BadHeader
    );
    assert_eq!(
        parse(r#"{"alg":"RS256","crit":["exp"],"exp":1}"#).unwrap_err(),
        Reason::CritUnsupported
    );
    assert_eq!(
        parse(r#"{"alg":"RS256","alg":"HS256"}"#).unwrap_err(),
        Reason::DuplicateMember
    );
    assert_eq!(parse(r#"["alg"]"#).unwrap_err(), Reason::BadHeader);
    assert_eq!(parse("not json").unwrap_err(), Reason::BadHeader);
    // key-bearing members are accepted but never read
    let h =
        parse(r#"{"alg":"RS256","jku":"https://evil","jwk":{"kty":"oct"},"x5u":"u","x5c":["c"]}"#)
            .unwrap();
    assert_eq!(
        h,
        Header {
            alg: Algorithm::RS256,
            kid: None,
            typ: None
        }
    );
}

#[test]
fn duplicates_are_found_at_any_depth() {
    assert_eq!(
        parse_object(br#"{"a":{"b":1,"b":2}}"#).unwrap_err(),
        Some(Reason::DuplicateMember)
    );
    assert_eq!(
        parse_object(br#"{"a":[{"b":1,"b":2}]}"#).unwrap_err(),
        Some(Reason::DuplicateMember)
    );
    assert_eq!(
        parse_object(br#"{"sub":"a","sub":"b"}"#).unwrap_err(),
        Some(Reason::DuplicateMember)
    );
    // the same name escaped differently is still the same member
    assert_eq!(
        parse_object(br#"{"sub":"a","s\u0075b":"b"}"#).unwrap_err(),
        Some(Reason::DuplicateMember)
    );
    assert!(parse_object(br#"{"a":1,"b":{"a":2}}"#).is_ok());
    assert_eq!(parse_object(b"[1]").unwrap_err(), None);
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
