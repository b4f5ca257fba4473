//! Verification cost per algorithm, a distinct token per iteration.
//!
//! For each algorithm three numbers side by side:
//! - `tokend`: `Verifier::check` — parse, issuer, key lookup, signature, claims, metrics;
//! - `tokend_cached`: the same, answered from the verified-token cache;
//! - `raw_signature`: the signature check alone with the pre-parsed key (the floor);
//! - `jsonwebtoken`: `jsonwebtoken::decode` with a `DecodingKey` built once, as a
//!   team would write a verifier by hand.
//!
//! `cargo bench --bench verify`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use serde_json::json;
use std::sync::Arc;

use tokend::config::Config;
use tokend::keys::IssuerKeys;
use tokend::keys::jwk::{Jwk, Source};
use tokend::metrics::Metrics;
use tokend::mint::Signer;
use tokend::token::parse::Jws;
use tokend::token::{Algorithm, Verifier};

const ISS: &str = "https://bench.test";
const TOKENS: usize = 256;

fn verifier(signer: &Signer, alg: Algorithm) -> Verifier {
    verifier_with(signer, alg, false)
}

fn verifier_with(signer: &Signer, alg: Algorithm, cache: bool) -> Verifier {
    let dir = std::env::temp_dir().join(format!("tokend-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.json", alg.name()));
    std::fs::write(&path, tokend::mint::jwks(&[signer]).to_string()).unwrap();
    let text = format!(
        "[[issuers]]\nname = \"bench\"\nissuer = \"{ISS}\"\njwks_file = {:?}\nalgorithms = [\"{}\"]\n",
        path.display().to_string(),
        alg.name()
    );
    let config = Config::from_toml(&text, Vec::new()).unwrap();
    tokend::metrics::install();
    let metrics = Arc::new(Metrics::new(&["bench".to_string()]));
    let issuer = Arc::new(IssuerKeys::new(0, config.issuers[0].clone(), metrics.clone()).unwrap());
    if let Err(e) = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(issuer.refresh_now())
    {
        panic!("{alg}: {e}");
    }
    let verifier = Verifier::new(
        vec![issuer],
        8192,
        metrics,
        Arc::new(tokend::revocation::Revocations::memory()),
    );
    if cache {
        verifier.with_cache(100_000)
    } else {
        verifier
    }
}

fn bench_verify(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    for alg in Algorithm::ALL {
        let signer = Signer::generate(alg, "bench-key");
        let verifier = verifier(&signer, alg);
        let tokens: Vec<String> = (0..TOKENS)
            .map(|i| {
                let claims = json!({"iss": ISS, "sub": format!("user-{i}"), "jti": format!("jti-{i}"),
                                    "iat": now, "exp": now + 3600, "scope": "read write", "aud": "api"});
                signer.sign(alg, &claims)
            })
            .collect();
        assert!(
            tokens
                .iter()
                .all(|t| verifier.check(t, now).now_or_never().unwrap().is_active())
        );

        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("tokend", alg.name()),
            &tokens,
            |b, tokens| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    verifier
                        .check(&tokens[i], now)
                        .now_or_never()
                        .expect("no await for a known kid")
                })
            },
        );

        // The same tokens again through a verifier with the verified-token cache, warmed:
        // every iteration is a hit (hash, lookup, expiry, key and revocation checks).
        let cached = verifier_with(&signer, alg, true);
        for t in &tokens {
            assert!(cached.check(t, now).now_or_never().unwrap().is_active());
        }
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("tokend_cached", alg.name()),
            &tokens,
            |b, tokens| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    cached
                        .check(&tokens[i], now)
                        .now_or_never()
                        .expect("a hit never awaits")
                })
            },
        );

        let key = Jwk::from_json(&signer.public_jwk(), Source::Local).unwrap();
        let parts: Vec<(Vec<u8>, Vec<u8>)> = tokens
            .iter()
            .map(|t| {
                let jws = Jws::parse(t, 8192).unwrap();
                (jws.signing_input.to_vec(), jws.signature)
            })
            .collect();
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("raw_signature", alg.name()),
            &parts,
            |b, parts| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    assert!(key.verify(alg, &parts[i].0, &parts[i].1));
                })
            },
        );

        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(signer.public_jwk()).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(alg.name().parse().unwrap());
        validation.set_issuer(&[ISS]);
        validation.set_audience(&["api"]);
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("jsonwebtoken", alg.name()),
            &tokens,
            |b, tokens| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    jsonwebtoken::decode::<serde_json::Value>(&tokens[i], &decoding, &validation)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench_verify
}
criterion_main!(benches);
