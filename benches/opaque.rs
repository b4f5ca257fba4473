//! What an opaque token costs next to a JWT (issue: "a cache hit for an
//! opaque token costs what a cached JWT costs; an uncached one adds one
//! upstream round trip and nothing else"). One group, five numbers:
//! - `cached_jwt_es256`: `Verifier::check` answered from the verified-token cache;
//! - `cached_jwt_beside_opaque_issuer`: the same JWTs through a verifier
//!   that also has the opaque issuer (the opaque stage's shape check runs
//!   first): what the feature costs a JWT that does not use it;
//! - `cached_opaque`: an opaque token answered from the introspection cache;
//! - `uncached_opaque`: a new opaque token each time, introspected over HTTP
//!   at a loopback endpoint (tokend's whole path, the call included);
//! - `bare_round_trip`: the same POST to the same endpoint with a plain
//!   reqwest client, no tokend: the floor the previous number is compared with.
//!
//! `cargo bench --bench opaque`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use serde_json::json;
use std::sync::Arc;

use tokend::config::Config;
use tokend::keys::{IssuerId, IssuerKeys};
use tokend::metrics::Metrics;
use tokend::mint::Signer;
use tokend::request::{Presented, TokenSource};
use tokend::token::Algorithm;
use tokend::verify::Verifier;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const JWT_ISS: &str = "https://jwt.bench";
const TOKENS: usize = 256;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RFC 7662 endpoint on loopback that calls every token active, on a
/// runtime thread of its own. Returns its URL (also the issuer).
fn start_endpoint() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            let iss = base.clone();
            let router = axum::Router::new().route(
                "/introspect",
                axum::routing::post(move || {
                    let iss = iss.clone();
                    async move {
                        axum::Json(json!({"active": true, "iss": iss, "sub": "user", "client_id": "web",
                                          "scope": "read write", "aud": "api", "iat": now(), "exp": now() + 3600}))
                    }
                }),
            );
            tx.send(base).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

fn issuer(
    (id, text): (usize, &str),
    metrics: &Arc<Metrics>,
    runtime: &tokio::runtime::Runtime,
) -> Arc<IssuerKeys> {
    let config = Config::from_toml(text, Vec::new()).unwrap();
    let issuer = Arc::new(
        IssuerKeys::new(IssuerId(id), config.issuers[0].clone(), metrics.clone()).unwrap(),
    );
    runtime.block_on(issuer.refresh_now()).unwrap();
    issuer
}

/// A token as an introspection request presents it.
fn presented(token: &str) -> Presented<'_> {
    Presented::new(token, TokenSource::FormBody)
}

fn bench_opaque(c: &mut Criterion) {
    tokend::metrics::install();
    let metrics = Arc::new(Metrics::new(&["bench".to_string()]));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let revocations = Arc::new(tokend::revocation::Revocations::memory(2_592_000));
    let t = now();

    // A JWT issuer, its verifier with the cache, warmed.
    let signer = Signer::generate(Algorithm::ES256, "k1");
    let dir = std::env::temp_dir().join(format!("tokend-bench-opaque-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, tokend::mint::jwks(&[&signer]).to_string()).unwrap();
    let jwt_config = format!(
        "[[issuers]]\nname = \"bench\"\nissuer = \"{JWT_ISS}\"\njwks_file = {:?}\n",
        path.display().to_string()
    );
    let jwt_issuer = issuer((0, &jwt_config), &metrics, &runtime);
    let jwts = Verifier::new(vec![jwt_issuer], 8192, metrics.clone(), revocations.clone())
        .with_cache(100_000);
    let jwt_tokens: Vec<String> = (0..TOKENS)
        .map(|i| {
            signer.sign(
                Algorithm::ES256,
                &json!({"iss": JWT_ISS, "sub": "user", "jti": format!("j{i}"), "client_id": "web",
                        "scope": "read write", "aud": "api", "iat": t, "exp": t + 3600}),
            )
        })
        .collect();

    // An opaque issuer introspecting at the loopback endpoint.
    let base = start_endpoint();
    let endpoint = format!("{base}/introspect");
    let opaque_config = format!(
        "[[issuers]]\nname = \"bench\"\nissuer = \"{base}\"\nintrospection_endpoint = \"{endpoint}\"\n\
         introspection_client_id = \"tokend\"\nintrospection_client_secret = \"s\"\nallow_insecure_http = true\n"
    );
    let opaque_issuer = issuer((0, &opaque_config), &metrics, &runtime);
    let opaques = Verifier::new(
        vec![opaque_issuer],
        8192,
        metrics.clone(),
        revocations.clone(),
    )
    .with_introspection(1_000_000)
    .unwrap();
    // Both issuers in one verifier, as a configuration with both has them.
    let both = Verifier::new(
        vec![
            issuer((0, &jwt_config), &metrics, &runtime),
            issuer((1, &opaque_config), &metrics, &runtime),
        ],
        8192,
        metrics.clone(),
        revocations,
    )
    .with_cache(100_000)
    .with_introspection(1_000_000)
    .unwrap();
    let opaque_tokens: Vec<String> = (0..TOKENS)
        .map(|i| format!("ory_at_bench{i:06}.sig"))
        .collect();

    for token in &jwt_tokens {
        for verifier in [&jwts, &both] {
            assert!(
                verifier
                    .check(&presented(token), t)
                    .now_or_never()
                    .unwrap()
                    .is_active()
            );
        }
    }
    for token in &opaque_tokens {
        assert!(
            runtime
                .block_on(opaques.check(&presented(token), t))
                .is_active()
        );
    }

    let mut group = c.benchmark_group("opaque");
    group.throughput(Throughput::Elements(1));
    let mut i = 0;
    group.bench_function("cached_jwt_es256", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            jwts.check(&presented(&jwt_tokens[i]), t)
                .now_or_never()
                .expect("a hit never awaits")
        })
    });
    group.bench_function("cached_jwt_beside_opaque_issuer", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            both.check(&presented(&jwt_tokens[i]), t)
                .now_or_never()
                .expect("a hit never awaits")
        })
    });
    group.bench_function("cached_opaque", |b| {
        b.iter(|| {
            i = (i + 1) % TOKENS;
            opaques
                .check(&presented(&opaque_tokens[i]), t)
                .now_or_never()
                .expect("a hit never awaits")
        })
    });
    let mut n = 0u64;
    group.bench_function("uncached_opaque", |b| {
        b.iter(|| {
            n += 1;
            let token = format!("ory_at_fresh{n:012}.sig");
            assert!(
                runtime
                    .block_on(opaques.check(&presented(&token), t))
                    .is_active()
            );
        })
    });
    let client = reqwest::Client::new();
    group.bench_function("bare_round_trip", |b| {
        b.iter(|| {
            n += 1;
            let token = format!("ory_at_fresh{n:012}.sig");
            runtime.block_on(async {
                let body = client
                    .post(&endpoint)
                    .basic_auth("tokend", Some("s"))
                    .form(&[
                        ("token", token.as_str()),
                        ("token_type_hint", "access_token"),
                    ])
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert!(body.starts_with(b"{"));
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench_opaque
}
criterion_main!(benches);
