//! What a DPoP-bound token costs on the cached path next to a bearer token
//! (issue: "the proof signature dominates"). One group:
//! - `cached_bearer_dpop_off`: `Verifier::check` of a cached ES256 bearer
//!   token, its issuer with `dpop = "off"`: the baseline;
//! - `cached_bearer`: the same token, its issuer accepting DPoP (the
//!   default): what the feature costs a token that is not bound;
//! - `cached_dpop_es256`: the same token bound to a client's ES256 key, with
//!   a fresh proof each time (made outside the timing): every rule of RFC 9449
//!   §4.3 and the replay store (memory);
//! - `proof_signature_es256`: the proof's ES256 signature check alone, the floor.
//!
//! `cargo bench --bench binding`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use serde_json::json;
use std::sync::Arc;

use tokend::config::Config;
use tokend::keys::jwk::{Jwk, Source};
use tokend::keys::{IssuerId, IssuerKeys};
use tokend::metrics::Metrics;
use tokend::mint::{Signer, b64, jwks, thumbprint};
use tokend::request::{Presented, ProofTarget, Scheme, TokenSource};
use tokend::token::parse::Jws;
use tokend::token::{Algorithm, sha256};
use tokend::verify::Verifier;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ISS: &str = "https://bench.test";
const URI: &str = "https://api.example.com/orders";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn bench_binding(c: &mut Criterion) {
    tokend::metrics::install();
    let issuer_key = Signer::generate(Algorithm::ES256, "k1");
    let dir = std::env::temp_dir().join(format!("tokend-bench-binding-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks(&[&issuer_key]).to_string()).unwrap();
    let text = format!(
        "[[issuers]]\nname = \"bench\"\nissuer = \"{ISS}\"\njwks_file = {:?}\n",
        path.display().to_string()
    );
    let metrics = Arc::new(Metrics::new(&["bench".to_string()]));
    let verifier_of = |text: &str| {
        let config = Config::from_toml(text, Vec::new()).unwrap();
        let issuer = Arc::new(
            IssuerKeys::new(IssuerId(0), config.issuers[0].clone(), metrics.clone()).unwrap(),
        );
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(issuer.refresh_now())
            .unwrap();
        Verifier::new(
            vec![issuer],
            8192,
            metrics.clone(),
            Arc::new(tokend::revocation::Revocations::memory(2_592_000)),
        )
        .with_cache(100_000)
    };
    let verifier = verifier_of(&text);
    let without_dpop = verifier_of(&(text.clone() + "dpop = \"off\"\n"));

    let t = now();
    let client = Signer::generate(Algorithm::ES256, "client");
    let mut jwk = client.public_jwk();
    jwk.as_object_mut().unwrap().remove("kid");
    let claims = json!({"iss": ISS, "sub": "user", "jti": "j1", "aud": "api", "iat": t, "exp": t + 3600, "scope": "read"});
    let bearer = issuer_key.sign(Algorithm::ES256, &claims);
    let mut bound_claims = claims.clone();
    bound_claims["jti"] = json!("j2");
    bound_claims["cnf"] = json!({"jkt": thumbprint(&jwk)});
    let bound = issuer_key.sign(Algorithm::ES256, &bound_claims);
    let ath = b64(sha256(bound.as_bytes()));
    let mut n = 0u64;
    let mut proof = || {
        n += 1;
        client.sign_with_header(
            Algorithm::ES256,
            &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk}),
            &json!({"jti": format!("p{n}"), "htm": "POST", "htu": URI, "iat": t, "ath": ath}),
        )
    };
    let target = ProofTarget::Stated {
        method: "POST",
        uri: URI,
    };
    let dpop = |token: &str, proof: &str| -> bool {
        let presented = Presented::new(token, TokenSource::Authorization(Scheme::DPoP))
            .with_proof(Some(proof), target);
        verifier
            .check(&presented, t)
            .now_or_never()
            .expect("no await")
            .is_active()
    };
    // Warm the cache with both tokens.
    assert!(
        verifier
            .check(&Presented::new(&bearer, TokenSource::FormBody), t)
            .now_or_never()
            .unwrap()
            .is_active()
    );
    assert!(dpop(&bound, &proof()));

    assert!(
        without_dpop
            .check(&Presented::new(&bearer, TokenSource::FormBody), t)
            .now_or_never()
            .unwrap()
            .is_active()
    );

    let mut group = c.benchmark_group("binding");
    group.throughput(Throughput::Elements(1));
    group.bench_function("cached_bearer_dpop_off", |b| {
        b.iter(|| {
            without_dpop
                .check(&Presented::new(&bearer, TokenSource::FormBody), t)
                .now_or_never()
                .unwrap()
        })
    });
    group.bench_function("cached_bearer", |b| {
        b.iter(|| {
            verifier
                .check(&Presented::new(&bearer, TokenSource::FormBody), t)
                .now_or_never()
                .unwrap()
        })
    });
    group.bench_function("cached_dpop_es256", |b| {
        b.iter_batched(
            &mut proof,
            |p| assert!(dpop(&bound, &p)),
            BatchSize::SmallInput,
        )
    });
    let sample = proof();
    let jws = Jws::parse(&sample, 8192).unwrap();
    let key = Jwk::from_json(&jwk, Source::Fetched).unwrap();
    group.bench_function("proof_signature_es256", |b| {
        b.iter(|| assert!(key.verify(Algorithm::ES256, jws.signing_input, &jws.signature)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench_binding
}
criterion_main!(benches);
