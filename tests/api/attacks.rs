//! Every attack tokend defends against, with the token built by hand the way
//! an attacker builds it. Each test first shows the honest token is active, so
//! a failure to reject can't hide behind a setup that rejects everything.

use base64::Engine;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

use crate::helpers::*;
use tokend::mint::{Signer, b64, jwks};
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

async fn setup(keys: &[&Signer], policy: &str) -> (Idp, TestApp) {
    let idp = Idp::start(jwks(keys)).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, policy), "")).await;
    (idp, app)
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    Signer::hmac(secret, "x").sign_with_header(Algorithm::HS256, header, claims)
}

#[tokio::test]
async fn alg_none_is_never_accepted() {
    let key = signer(Algorithm::RS256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    assert!(
        app.is_active(&key.sign(Algorithm::RS256, &claims(ISS)))
            .await
    );
    let body = b64(claims(ISS).to_string());
    for alg in ["none", "None", "NONE"] {
        let header = b64(json!({"alg": alg, "kid": "k1"}).to_string());
        assert!(
            !app.is_active(&format!("{header}.{body}.")).await,
            "{alg} unsigned"
        );
        assert!(
            !app.is_active(&format!("{header}.{body}.c2ln")).await,
            "{alg} with a signature"
        );
    }
}

#[tokio::test]
async fn public_keys_are_never_hmac_secrets() {
    // Algorithm confusion (CVE-2015-9235 and kin): HS256 keyed with the public key bytes.
    let rsa = signer(Algorithm::RS256, "rsa");
    let ec = signer(Algorithm::ES256, "ec");
    let ed = signer(Algorithm::EdDSA, "ed");
    let (_idp, app) = setup(&[&rsa, &ec, &ed], "").await;
    assert!(
        app.is_active(&rsa.sign(Algorithm::RS256, &claims(ISS)))
            .await
    );
    for signer in [&rsa, &ec, &ed] {
        let jwk = signer.public_jwk();
        let mut candidates: Vec<Vec<u8>> = vec![jwk.to_string().into_bytes()];
        for member in ["n", "x", "y"] {
            if let Some(v) = jwk[member].as_str() {
                candidates.push(v.as_bytes().to_vec());
                candidates.push(
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(v)
                        .unwrap(),
                );
            }
        }
        for secret in candidates {
            let token = hs256(
                &secret,
                &json!({"alg": "HS256", "kid": signer.kid}),
                &claims(ISS),
            );
            assert!(
                !app.is_active(&token).await,
                "HS256 keyed with {}'s public key",
                signer.kid
            );
        }
    }
}

#[tokio::test]
async fn ps_and_rs_are_not_interchangeable() {
    let pinned = signer(Algorithm::RS256, "pinned"); // JWK says alg RS256
    let free = signer(Algorithm::RS256, "free"); // JWK without alg
    let mut doc = jwks(&[&pinned, &free]);
    doc["keys"][0]["alg"] = json!("RS256");
    let idp = Idp::start(doc).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    assert!(
        app.is_active(&pinned.sign(Algorithm::RS256, &claims(ISS)))
            .await
    );
    // A key pinned to RS256 never verifies PS256, even with a valid PS256 signature.
    let ps = pinned.sign_with_header(
        Algorithm::PS256,
        &json!({"alg": "PS256", "kid": "pinned"}),
        &claims(ISS),
    );
    assert!(!app.is_active(&ps).await);
    // An RS256 signature relabelled PS256 (and the reverse) fails on an unpinned key.
    let rs = free.sign(Algorithm::RS256, &claims(ISS));
    let relabelled = relabel(&rs, json!({"alg": "PS256", "kid": "free", "typ": "JWT"}));
    assert!(!app.is_active(&relabelled).await);
    let ps = free.sign(Algorithm::PS256, &claims(ISS));
    assert!(app.is_active(&ps).await);
    assert!(
        !app.is_active(&relabel(
            &ps,
            json!({"alg": "RS256", "kid": "free", "typ": "JWT"})
        ))
        .await
    );
}

/// Replaces a token's header, keeping payload and signature.
fn relabel(token: &str, header: Value) -> String {
    let (_, rest) = token.split_once('.').unwrap();
    format!("{}.{rest}", b64(header.to_string()))
}

#[tokio::test]
async fn keys_named_in_the_header_are_never_used_or_fetched() {
    let key = signer(Algorithm::ES256, "k1");
    let (idp, app) = setup(&[&key], "").await;
    let attacker = signer(Algorithm::ES256, "k1");
    let trap = format!("{}/attacker-keys", idp.url());
    for header in [
        json!({"alg": "ES256", "jwk": attacker.public_jwk()}),
        json!({"alg": "ES256", "kid": "k1", "jwk": attacker.public_jwk()}),
        json!({"alg": "ES256", "jku": trap}),
        json!({"alg": "ES256", "kid": "k1", "jku": trap}),
        json!({"alg": "ES256", "kid": "evil", "x5u": trap}),
        json!({"alg": "ES256", "x5c": ["MIIB"]}),
    ] {
        let token = attacker.sign_with_header(Algorithm::ES256, &header, &claims(ISS));
        assert!(!app.is_active(&token).await, "{header}");
    }
    assert_eq!(
        idp.state.other_hits.load(Ordering::SeqCst),
        0,
        "tokend fetched a URL from a token"
    );
}

#[tokio::test]
async fn crit_with_unknown_extensions_rejects() {
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!("x")] {
        let header = json!({"alg": "ES256", "kid": "k1", "crit": crit, "exp": 1, "b64": true});
        assert!(
            !app.is_active(&key.sign_with_header(Algorithm::ES256, &header, &claims(ISS)))
                .await,
            "{crit}"
        );
    }
}

#[tokio::test]
async fn ecdsa_signatures_must_be_fixed_width_and_nonzero() {
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    assert!(app.is_active(&token).await);
    let (input, sig) = token.rsplit_once('.').unwrap();
    // r = s = 0 ("psychic signatures", CVE-2022-21449)
    assert!(!app.is_active(&format!("{input}.{}", b64([0u8; 64]))).await);
    // The same valid signature in ASN.1 DER form instead of r‖s
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    let der = der_signature(&raw[..32], &raw[32..]);
    assert!(!app.is_active(&format!("{input}.{}", b64(der))).await);
    // Truncated, and with a trailing byte
    assert!(!app.is_active(&format!("{input}.{}", b64(&raw[..63]))).await);
    let mut longer = raw.clone();
    longer.push(0);
    assert!(!app.is_active(&format!("{input}.{}", b64(longer))).await);
}

fn der_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let int = |v: &[u8]| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut out = vec![0x02];
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push((v.len() + pad as usize) as u8);
        if pad {
            out.push(0);
        }
        out.extend(v);
        out
    };
    let body = [int(r), int(s)].concat();
    [vec![0x30, body.len() as u8], body].concat()
}

#[tokio::test]
async fn duplicate_members_reject_the_token() {
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    let t = now();
    let good = format!(r#"{{"iss":"{ISS}","sub":"alice","exp":{}}}"#, t + 300);
    assert!(
        app.is_active(&key.sign_parts(Algorithm::ES256, r#"{"alg":"ES256","kid":"k1"}"#, &good))
            .await
    );
    let dup_sub = format!(
        r#"{{"iss":"{ISS}","sub":"alice","sub":"admin","exp":{}}}"#,
        t + 300
    );
    assert!(
        !app.is_active(&key.sign_parts(
            Algorithm::ES256,
            r#"{"alg":"ES256","kid":"k1"}"#,
            &dup_sub
        ))
        .await
    );
    let dup_exp = format!(r#"{{"iss":"{ISS}","exp":{},"exp":{}}}"#, t - 10, t + 300);
    assert!(
        !app.is_active(&key.sign_parts(
            Algorithm::ES256,
            r#"{"alg":"ES256","kid":"k1"}"#,
            &dup_exp
        ))
        .await
    );
    let dup_alg = r#"{"alg":"HS256","kid":"k1","alg":"ES256"}"#;
    assert!(
        !app.is_active(&key.sign_parts(Algorithm::ES256, dup_alg, &good))
            .await
    );
}

#[tokio::test]
async fn malformed_claims_reject_the_token() {
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    let t = now();
    for claims in [
        json!({"iss": [ISS], "exp": t + 300}),
        json!({"iss": ISS, "exp": (t + 300).to_string()}),
        json!({"iss": ISS, "exp": t + 300, "nbf": "0"}),
        json!({"iss": ISS, "exp": t + 300, "sub": {"id": 1}}),
        json!({"iss": ISS}),
        json!([ISS]),
    ] {
        assert!(
            !app.is_active(&key.sign(Algorithm::ES256, &claims)).await,
            "{claims}"
        );
    }
    // strict base64url: padding or the standard alphabet in an otherwise valid token
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    let (h, rest) = token.split_once('.').unwrap();
    assert!(!app.is_active(&format!("{h}=.{rest}")).await);
    assert!(!app.is_active(&format!("{h}+.{rest}")).await);
}

#[tokio::test]
async fn an_issuer_never_borrows_another_issuers_key() {
    // Both issuers publish a key with kid "shared"; a token claiming issuer A but
    // signed with B's key must fail.
    let a_key = signer(Algorithm::ES256, "shared");
    let b_key = signer(Algorithm::ES256, "shared");
    let idp_a = Idp::start(jwks(&[&a_key])).await;
    let idp_b = Idp::start(jwks(&[&b_key])).await;
    let issuers = format!(
        "{}{}",
        jwks_issuer("a", "https://a.test", &idp_a, ""),
        jwks_issuer("b", "https://b.test", &idp_b, "")
    );
    let app = spawn_ready(config_with(&issuers, "")).await;
    assert!(
        app.is_active(&a_key.sign(Algorithm::ES256, &claims("https://a.test")))
            .await
    );
    assert!(
        app.is_active(&b_key.sign(Algorithm::ES256, &claims("https://b.test")))
            .await
    );
    assert!(
        !app.is_active(&b_key.sign(Algorithm::ES256, &claims("https://a.test")))
            .await
    );
    assert!(
        !app.is_active(&a_key.sign(Algorithm::ES256, &claims("https://b.test")))
            .await
    );
}

#[tokio::test]
async fn oversized_tokens_are_inactive_without_parsing() {
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "").await;
    let mut c = claims(ISS);
    c["padding"] = json!("p".repeat(9000));
    let token = key.sign(Algorithm::ES256, &c);
    assert!(token.len() > 8192);
    assert!(!app.is_active(&token).await);
}

#[tokio::test]
async fn unusable_keys_never_enter_the_set() {
    let good = signer(Algorithm::ES256, "good");
    let enc = signer(Algorithm::ES256, "enc");
    let dup1 = signer(Algorithm::ES256, "dup");
    let dup2 = signer(Algorithm::ES256, "dup");
    let secret = b"an-hmac-secret-served-by-the-idp-32+bytes";
    let mut doc = jwks(&[&good, &enc, &dup1, &dup2]);
    doc["keys"][1]["use"] = json!("enc");
    doc["keys"]
        .as_array_mut()
        .unwrap()
        .push(json!({"kty": "oct", "kid": "oct", "k": b64(secret)}));
    doc["keys"].as_array_mut().unwrap().push(rsa_1024_jwk());
    let idp = Idp::start(doc).await;
    let app = spawn_ready(config_with(&jwks_issuer("main", ISS, &idp, ""), "")).await;
    assert!(
        app.is_active(&good.sign(Algorithm::ES256, &claims(ISS)))
            .await
    );
    assert!(
        !app.is_active(&enc.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "use: enc"
    );
    assert!(
        !app.is_active(&dup1.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "duplicate kid"
    );
    assert!(
        !app.is_active(&dup2.sign(Algorithm::ES256, &claims(ISS)))
            .await,
        "duplicate kid"
    );
    let hs = hs256(secret, &json!({"alg": "HS256", "kid": "oct"}), &claims(ISS));
    assert!(!app.is_active(&hs).await, "oct key from a fetched JWKS");
    let rs = rsa_1024_token(&claims(ISS));
    assert!(!app.is_active(&rs).await, "1024-bit RSA");

    let issuers: Value = app
        .http
        .get(format!("{}/admin/issuers", app.base))
        .basic_auth("ops", Some(OPS_SECRET))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rejected = issuers["issuers"][0]["rejected_keys"].to_string();
    assert!(rejected.contains("symmetric keys"), "{rejected}");
    assert!(rejected.contains("1024 bits"), "{rejected}");
    assert!(rejected.contains("\\\"enc\\\""), "{rejected}");
}

/// A 1024-bit RSA key (too small) with a token that key really signed (by the
/// openssl CLI, since aws-lc refuses to sign with keys under 2048 bits).
fn rsa_1024_jwk() -> Value {
    serde_json::from_str(include_str!("../fixtures/rsa1024.jwk.json")).unwrap()
}

fn rsa_1024_token(claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(json!({"alg": "RS256", "kid": "rsa1024"}).to_string()),
        b64(claims.to_string())
    );
    let dir = std::env::temp_dir().join(format!("tokend-rsa1024-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("input"), &input).unwrap();
    let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/rsa1024.pem");
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", key])
        .arg(dir.join("input"))
        .output()
        .expect("openssl on PATH");
    assert!(
        out.status.success() && out.stdout.len() == 128,
        "openssl signing failed"
    );
    format!("{input}.{}", b64(out.stdout))
}

#[tokio::test]
async fn a_storm_of_random_kids_costs_one_refresh() {
    let key = signer(Algorithm::ES256, "k1");
    let (idp, app) = setup(&[&key], "").await;
    let before = idp.jwks_hits();
    let attacker = signer(Algorithm::ES256, "x");
    let tokens: Vec<String> = (0..300)
        .map(|i| {
            let header =
                json!({"alg": "ES256", "kid": format!("random-{i}-{}", rand::random::<u64>())});
            attacker.sign_with_header(Algorithm::ES256, &header, &claims(ISS))
        })
        .collect();
    let started = std::time::Instant::now();
    let answers = futures_util::future::join_all(tokens.iter().map(|t| app.is_active(t))).await;
    assert!(answers.iter().all(|a| !a));
    assert!(
        idp.jwks_hits() - before <= 1,
        "{} fetches for a kid storm",
        idp.jwks_hits() - before
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "the storm took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_typ_cut_inside_a_character_is_an_answer_not_a_crash() {
    // A forged token whose `typ` puts a multi-byte character across byte 12,
    // where tokend looks for "application/": read before any signature check.
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "token_types = [\"at+jwt\"]").await;
    let honest = key.sign_with_header(
        Algorithm::ES256,
        &json!({"alg": "ES256", "kid": "k1", "typ": "application/at+jwt"}),
        &claims(ISS),
    );
    assert!(app.is_active(&honest).await);
    let forger = Signer::generate(Algorithm::ES256, "k1");
    for typ in [
        "aaaaaaaaaaa\u{e9}",
        "applicatio\u{e9}at+jwt",
        "\u{1f600}\u{1f600}\u{1f600}\u{1f600}",
    ] {
        let token = forger.sign_with_header(
            Algorithm::ES256,
            &json!({"alg": "ES256", "kid": "k1", "typ": typ}),
            &claims(ISS),
        );
        assert_eq!(
            app.introspect(&token).await,
            json!({"active": false}),
            "{typ}"
        );
        let auth = reqwest::Client::new()
            .get(format!("http://{}/auth", app.app.http_addr))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(auth.status(), 401, "{typ}");
    }
}

/// Random JSON in the shapes an attacker tries: every type in every place,
/// non-ASCII text, escapes, deep nesting.
fn random_value(rng: &mut rand::rngs::StdRng, depth: u32) -> Value {
    use rand::Rng;
    let text = |rng: &mut rand::rngs::StdRng| -> String {
        const PIECES: [&str; 14] = [
            "a",
            "abc",
            "application/",
            "at+jwt",
            "\u{e9}",
            "\u{1f600}",
            "\"",
            "\\",
            "\u{0}",
            " ",
            "k1",
            ISS,
            "\u{7ff}",
            "\u{20ac}",
        ];
        (0..rng.random_range(0..12))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    };
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(rng.random::<i64>() >> rng.random_range(0..64)),
        3 => json!(rng.random::<f64>() * 1e12 - 5e11),
        4 | 5 => json!(text(rng)),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..4))
                .map(|_| (text(rng), random_value(rng, depth + 1)))
                .collect(),
        ),
    }
}

#[tokio::test]
async fn random_tokens_never_crash_and_active_answers_stay_well_formed() {
    use rand::{Rng, SeedableRng};
    let key = signer(Algorithm::ES256, "k1");
    let (_idp, app) = setup(&[&key], "token_types = [\"at+jwt\"]").await;
    let verifier = app.app.state.runtime().verifier.clone();
    // A fresh seed each run, printed (shown when the test fails); set
    // TOKEND_FUZZ_SEED to replay one.
    let seed = std::env::var("TOKEND_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    println!("TOKEND_FUZZ_SEED={seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let members = [
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "scope",
        "scp",
        "client_id",
        "azp",
        "username",
        "active",
        "token_type",
    ];
    let mut active = 0;
    let upstream = tokend::assertion::Assertions::new(&Default::default(), None).unwrap();
    for i in 0..10_000 {
        let mut header = json!({"alg": "ES256", "kid": "k1", "typ": "at+jwt"});
        let mut body = claims(ISS);
        for _ in 0..rng.random_range(0..3) {
            let name = ["alg", "kid", "typ", "crit", "jku", "x"][rng.random_range(0..6)];
            header[name] = random_value(&mut rng, 0);
        }
        for _ in 0..rng.random_range(0..4) {
            let name = members[rng.random_range(0..members.len())];
            body[name] = random_value(&mut rng, 0);
        }
        let (mut h, mut p) = (header.to_string(), body.to_string());
        if rng.random_bool(0.1) {
            // A member repeated, as raw text (a JSON library would merge it).
            let name = members[rng.random_range(0..members.len())];
            p = format!("{{\"{name}\":1,{}", &p[1..]);
        }
        if rng.random_bool(0.05) {
            h = format!("{{\"alg\":\"ES256\",{}", &h[1..]);
        }
        let token = match rng.random_range(0..10) {
            // signed with the issuer's key: reaches the claim rules and the answers
            0..=5 => key.sign_parts(Algorithm::ES256, &h, &p),
            6 | 7 => format!("{}.{}.{}", b64(&h), b64(&p), b64(rng.random::<[u8; 32]>())),
            // arbitrary text
            _ => (0..rng.random_range(0..200))
                .map(|_| char::from_u32(rng.random_range(0..0x800)).unwrap_or('.'))
                .collect(),
        };
        if let tokend::verify::Verdict::Active(verified) =
            verifier.check(&presented(&token), now()).await
        {
            active += 1;
            let answer = tokend::api::introspection::introspection_json(&verified);
            let parsed = tokend::token::parse::parse_object(&answer)
                .unwrap_or_else(|e| panic!("seed {seed}, token {i}: answer {answer:?}: {e:?}"));
            assert_eq!(parsed["active"], true, "seed {seed}, token {i}");
            assert_eq!(parsed["token_type"], "Bearer");
            // Either every header carries its claim exactly, or the request is refused.
            if let Ok(headers) = upstream.upstream(&verified, now()) {
                let client = headers["x-auth-client-id"].to_str().unwrap();
                assert!(
                    client.is_empty()
                        || parsed.get("client_id").and_then(Value::as_str) == Some(client),
                    "seed {seed}, token {i}: the answer's client_id is the header's"
                );
            }
            tokend::api::grpc_answer::introspect_response(
                &tokend::verify::Verdict::Active(verified),
                true,
            );
        }
    }
    assert!(
        active > 100,
        "the signed tokens reached the answers ({active})"
    );
}
