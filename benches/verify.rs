//! Verification cost per algorithm, a distinct token per iteration.
//!
//! For each algorithm three numbers side by side:
//! - `tokend`: `Verifier::check` — parse, issuer, key lookup, signature, claims, metrics;
//! - `tokend_cached`: the same, answered from the verified-token cache;
//! - `raw_signature`: the signature check alone with the pre-parsed key (the floor);
//! - `jsonwebtoken`: `jsonwebtoken::decode` with a `DecodingKey` built once, as a
//!   team would write a verifier by hand.
//!
//! Then, in groups of their own:
//! - `key_lookup`: an issuer's key lookup (the `ArcSwap` load and the `kid` map)
//!   alone, and while another thread swaps a freshly loaded key set in as fast
//!   as it can;
//! - `http_entry`: a whole HTTP request through tokend's HTTP entry (request
//!   id, span, panic guard, then `/auth`'s handler or the axum router) without
//!   sockets, for a cached token: `/auth` plain and with three routes and the
//!   assertion, `/introspect`.
//!
//! It also prints the memory a cached token costs: resident growth while
//! 100,000 distinct tokens enter the cache, per token, next to the token's length.
//!
//! `cargo bench --bench verify`

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use serde_json::json;
use std::sync::Arc;

use tokend::config::Config;
use tokend::keys::IssuerKeys;
use tokend::keys::jwk::{Jwk, Source};
use tokend::metrics::Metrics;
use tokend::mint::Signer;
use tokend::token::Algorithm;
use tokend::token::parse::Jws;
use tokend::verify::Verifier;

const ISS: &str = "https://bench.test";

/// The allocator the tokend binary uses, so that memory and time match the service.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    let issuer = Arc::new(
        IssuerKeys::new(
            tokend::keys::IssuerId(0),
            config.issuers[0].clone(),
            metrics.clone(),
        )
        .unwrap(),
    );
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
        Arc::new(tokend::revocation::Revocations::memory(2_592_000)),
    );
    if cache {
        verifier.with_cache(100_000)
    } else {
        verifier
    }
}

/// An access token's usual claims.
fn claims(i: usize, now: u64) -> serde_json::Value {
    json!({"iss": ISS, "sub": format!("user-{i}"), "jti": format!("jti-{i}"), "client_id": "web",
           "iat": now, "exp": now + 3600, "scope": "read write", "aud": "api"})
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
            .map(|i| signer.sign(alg, &claims(i, now)))
            .collect();
        assert!(tokens.iter().all(|t| {
            verifier
                .check(&presented(t), now)
                .now_or_never()
                .unwrap()
                .is_active()
        }));

        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("tokend", alg.name()),
            &tokens,
            |b, tokens| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    verifier
                        .check(&presented(&tokens[i]), now)
                        .now_or_never()
                        .expect("no await for a known kid")
                })
            },
        );

        // The same tokens again through a verifier with the verified-token cache, warmed:
        // every iteration is a hit (hash, lookup, expiry, key and revocation checks).
        let cached = verifier_with(&signer, alg, true);
        for t in &tokens {
            assert!(
                cached
                    .check(&presented(t), now)
                    .now_or_never()
                    .unwrap()
                    .is_active()
            );
        }
        let mut i = 0;
        group.bench_with_input(
            BenchmarkId::new("tokend_cached", alg.name()),
            &tokens,
            |b, tokens| {
                b.iter(|| {
                    i = (i + 1) % TOKENS;
                    cached
                        .check(&presented(&tokens[i]), now)
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

fn bench_key_lookup(c: &mut Criterion) {
    let signer = Signer::generate(Algorithm::RS256, "k1");
    let others: Vec<Signer> = (2..6)
        .map(|i| Signer::generate(Algorithm::ES256, format!("k{i}")))
        .collect();
    let mut all: Vec<&Signer> = others.iter().collect();
    all.push(&signer);
    let dir = std::env::temp_dir().join(format!("tokend-bench-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, tokend::mint::jwks(&all).to_string()).unwrap();
    let text = format!(
        "[[issuers]]\nname = \"bench\"\nissuer = \"{ISS}\"\njwks_file = {:?}\n",
        path.display().to_string()
    );
    let config = Config::from_toml(&text, Vec::new()).unwrap();
    tokend::metrics::install();
    let metrics = Arc::new(Metrics::new(&["bench".to_string()]));
    let issuer = Arc::new(
        IssuerKeys::new(
            tokend::keys::IssuerId(0),
            config.issuers[0].clone(),
            metrics,
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(issuer.refresh_now()).unwrap();
    let fingerprint = issuer
        .keys()
        .select(Some("k1"), Algorithm::RS256)
        .unwrap()
        .fingerprint;

    let mut group = c.benchmark_group("key_lookup");
    group.throughput(Throughput::Elements(1));
    let lookup = |b: &mut criterion::Bencher| {
        b.iter(|| {
            let keys = issuer.keys();
            let key = keys.select(Some("k1"), Algorithm::RS256).unwrap();
            assert!(keys.has_key(key.fingerprint) && key.fingerprint == fingerprint);
        })
    };
    group.bench_function("steady", lookup);
    // Another thread reads the file, parses five keys and swaps the set in, again and again.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (issuer, stop) = (issuer.clone(), stop.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                runtime.block_on(issuer.refresh_now()).unwrap();
                swaps += 1;
            }
            swaps
        })
    };
    let started = std::time::Instant::now();
    group.bench_function("while_swapping", lookup);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    println!(
        "key_lookup/while_swapping: {swaps} key sets swapped in ({:.0}/s)",
        swaps as f64 / started.elapsed().as_secs_f64()
    );
    group.finish();
}

/// Three routes and the assertion, as `loadtest/edge_auth.py` runs them: the
/// request lands on the third.
const POLICY: &str = r#"
[[routes]]
name = "health"
path = "/healthz"
anonymous = true

[[routes]]
name = "orders-write"
path_prefix = "/orders"
methods = ["POST"]
scopes_all = ["orders:write"]

[[routes]]
name = "api-read"
hosts = ["api.example.com"]
path_prefix = "/api"
scopes_any = ["read", "admin"]

[assertion]
enabled = true
"#;

/// A request through the HTTP entry (request id, span, panic guard, then the
/// handler or the router), as a connection hands it over, minus the socket.
fn bench_http_entry(c: &mut Criterion) {
    let signer = Signer::generate(Algorithm::ES256, "k1");
    let dir = std::env::temp_dir().join(format!("tokend-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, tokend::mint::jwks(&[&signer]).to_string()).unwrap();
    let base = format!(
        "[server]\nhttp_addr = \"127.0.0.1:0\"\ngrpc_addr = \"127.0.0.1:0\"\n\n\
         [[issuers]]\nname = \"bench\"\nissuer = \"{ISS}\"\njwks_file = {:?}\n\n\
         [[clients]]\nid = \"gw\"\nsecret = \"bench-secret-bench-secret\"\npermissions = [\"introspect\"]\n",
        path.display().to_string()
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = |text: String| {
        let config = Config::from_toml(&text, Vec::new()).unwrap();
        let app = runtime
            .block_on(tokend::app::start(config, tokend::clock::system_clock()))
            .unwrap();
        runtime.block_on(async {
            while !app.state.runtime().issuers[0].is_loaded() {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        });
        let router = tokend::api::http::router(app.state.clone());
        let entry = tokend::api::entry::Entry::new(app.state.clone(), router);
        (app, entry)
    };
    let (plain_app, plain) = start(base.clone());
    let (policy_app, policy) = start(base + POLICY);
    let peer = tokend::serve::Peer {
        addr: "127.0.0.1:40000".parse().unwrap(),
        names: None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tokens: Vec<String> = (0..TOKENS)
        .map(|i| signer.sign(Algorithm::ES256, &claims(i, now)))
        .collect();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "gw:bench-secret-bench-secret"
        )
    );
    let auth = |token: &str| {
        axum::http::Request::get("/auth")
            .header("authorization", format!("Bearer {token}"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-host", "api.example.com")
            .header("x-forwarded-uri", "/api/items/7?page=2")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let introspect = |token: &str| {
        axum::http::Request::post("/introspect")
            .header("authorization", &basic)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(axum::body::Body::from(format!("token={token}")))
            .unwrap()
    };
    for entry in [&plain, &policy] {
        for t in &tokens {
            let response = runtime.block_on(entry.answer(auth(t), peer.clone()));
            assert_eq!(response.status(), 200, "warming the cache");
        }
    }
    let mut group = c.benchmark_group("http_entry");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    for (name, entry) in [
        ("auth_cached", &plain),
        ("auth_cached_3_routes_assertion", &policy),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % TOKENS;
                let response = runtime.block_on(entry.answer(auth(&tokens[i]), peer.clone()));
                assert_eq!(response.status(), 200);
            })
        });
    }
    group.bench_function("introspect_cached", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            let body = runtime.block_on(async {
                let response = plain.answer(introspect(&tokens[i]), peer.clone()).await;
                axum::body::to_bytes(response.into_body(), 1 << 16)
                    .await
                    .unwrap()
            });
            assert!(body.starts_with(b"{"));
        })
    });
    group.finish();
    runtime.block_on(plain_app.shutdown());
    runtime.block_on(policy_app.shutdown());
}

/// Resident memory per cached token: growth while 100,000 distinct tokens are
/// verified into the cache. Everything measured stays alive to the end, so
/// that one measurement cannot reuse memory another freed.
fn cache_memory() {
    const N: usize = 100_000;
    let mut keep = Vec::new();
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let signer = Signer::generate(alg, "k1");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let tokens: Vec<String> = (0..N).map(|i| signer.sign(alg, &claims(i, now))).collect();
        let token_bytes = tokens.iter().map(String::len).sum::<usize>() as f64 / N as f64;
        let cached = verifier_with(&signer, alg, true);
        let before = support::rss_bytes();
        for t in &tokens {
            assert!(
                cached
                    .check(&presented(t), now)
                    .now_or_never()
                    .unwrap()
                    .is_active()
            );
        }
        let after = support::rss_bytes();
        let per = (after - before) as f64 / N as f64;
        println!(
            "cache memory, {alg}: {N} tokens of {token_bytes:.0} bytes, {:.1} MiB resident, {per:.0} bytes per cached token, {:.0} beyond the token's length",
            (after - before) as f64 / (1 << 20) as f64,
            per - token_bytes
        );
        keep.push((cached, tokens));
    }
}

fn bench_all(c: &mut Criterion) {
    cache_memory();
    bench_verify(c);
    bench_key_lookup(c);
    bench_http_entry(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = bench_all
}
criterion_main!(benches);

/// A token as an introspection request presents it.
fn presented(token: &str) -> tokend::request::Presented<'_> {
    tokend::request::Presented::new(token, tokend::request::TokenSource::FormBody)
}
