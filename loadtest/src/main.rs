//! Load generator for tokend.
//!
//! ```text
//! loadtest setup --alg ES256 --tokens 10000 --out /tmp/lt      # keys, tokens and a tokend config trusting them
//! loadtest dev-tokens --alg ES256 --tokens 1000 --out /tmp/dev  # or tokens from a running `tokend serve --dev`
//! loadtest run --target http-auth --url http://127.0.0.1:8080 --tokens /tmp/lt/tokens.txt --concurrency 32 --duration 10
//! loadtest run --target grpc-batch --url http://127.0.0.1:50051 --tokens /tmp/lt/tokens.txt --batch 100 --rate 2000
//! loadtest noop --addr 127.0.0.1:9999                           # the no-work HTTP server (the ceiling)
//! ```
//!
//! Closed loop (`--concurrency`): that many requests always in flight.
//! Open loop (`--rate`): requests start on a fixed schedule, and latency is
//! measured from when each request *should* have started, so a stalled server
//! cannot hide its stall (no coordinated omission). Results come from an HDR
//! histogram, as a table on stdout and, with `--json FILE`, as JSON.

use anyhow::{Context, bail};
use axum::response::IntoResponse;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokend::api::grpc::pb;
use tokend::mint::Signer;
use tokend::token::Algorithm;

#[derive(Parser)]
#[command(name = "loadtest", about = "Load generator for tokend")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Mint a token pool with fresh keys and write a tokend config that trusts them.
    Setup {
        #[arg(long, default_value = "ES256")]
        alg: String,
        #[arg(long, default_value_t = 10_000)]
        tokens: usize,
        #[arg(long)]
        out: PathBuf,
        /// HTTP and gRPC ports for the written config.
        #[arg(long, default_value_t = 8080)]
        http_port: u16,
        #[arg(long, default_value_t = 50051)]
        grpc_port: u16,
    },
    /// Fetch a token pool from a running `tokend serve --dev` (its `/dev/token`).
    DevTokens {
        /// tokend's HTTP address.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// RS256, ES256 or EdDSA (the development issuer's algorithms).
        #[arg(long, default_value = "ES256")]
        alg: String,
        #[arg(long, default_value_t = 1_000)]
        tokens: usize,
        /// Where tokens.txt goes.
        #[arg(long)]
        out: PathBuf,
    },
    /// Drive load against a target.
    Run(RunArgs),
    /// Serve 200 with an empty body to every request: the ceiling to compare with.
    Noop {
        #[arg(long, default_value = "127.0.0.1:9999")]
        addr: String,
    },
    /// A verifier as a team would write it by hand: axum + jsonwebtoken, keys
    /// from a JWKS file decoded once, `/auth` answering 200 or 401.
    Handwritten {
        #[arg(long, default_value = "127.0.0.1:9998")]
        addr: String,
        /// The JWKS (`setup` writes one as jwks.json).
        #[arg(long)]
        jwks: PathBuf,
        #[arg(long, default_value = "https://loadtest.tokend.invalid")]
        issuer: String,
    },
    /// The floor: seconds of signature checks alone over a token pool, with
    /// keys parsed once (aws-lc-rs, as tokend uses it); prints µs per check.
    RawVerify {
        #[arg(long)]
        tokens: PathBuf,
        #[arg(long)]
        jwks: PathBuf,
        #[arg(long, default_value_t = 3)]
        duration: u64,
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum Target {
    HttpIntrospect,
    HttpAuth,
    GrpcIntrospect,
    GrpcBatch,
    /// Envoy's ext_authz `Check`, as Envoy sends it (GET /, the token in the
    /// request's `authorization` header).
    GrpcCheck,
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    #[arg(long, value_enum)]
    target: Target,
    /// Base URL (http://host:port), of the HTTP or the gRPC listener.
    #[arg(long)]
    url: String,
    /// One token per line.
    #[arg(long)]
    tokens: PathBuf,
    /// Use only the first token (the cache-friendly case).
    #[arg(long)]
    repeat: bool,
    /// Closed loop: requests in flight.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Open loop: requests per second (overrides the closed loop).
    #[arg(long)]
    rate: Option<u64>,
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Tokens per IntrospectBatch.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    #[arg(long, default_value = "load")]
    client_id: String,
    #[arg(long, default_value = "load-secret")]
    client_secret: String,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Setup {
            alg,
            tokens,
            out,
            http_port,
            grpc_port,
        } => setup(&alg, tokens, &out, http_port, grpc_port),
        Command::DevTokens {
            url,
            alg,
            tokens,
            out,
        } => runtime.block_on(dev_tokens(&url, &alg, tokens, &out)),
        Command::Run(args) => runtime.block_on(run(args)),
        Command::Noop { addr } => runtime.block_on(noop(&addr)),
        Command::Handwritten { addr, jwks, issuer } => {
            runtime.block_on(handwritten(&addr, &jwks, &issuer))
        }
        Command::RawVerify {
            tokens,
            jwks,
            duration,
            json,
        } => raw_verify(&tokens, &jwks, duration, json),
    }
}

fn setup(
    alg: &str,
    count: usize,
    out: &std::path::Path,
    http_port: u16,
    grpc_port: u16,
) -> anyhow::Result<()> {
    let alg = Algorithm::from_name(alg).with_context(|| format!("unknown algorithm {alg}"))?;
    std::fs::create_dir_all(out)?;
    let issuer = "https://loadtest.tokend.invalid";
    let signer = Signer::generate(alg, "load-1");
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let started = Instant::now();
    let mut tokens = String::with_capacity(count * 400);
    for i in 0..count {
        let claims = json!({"iss": issuer, "sub": format!("user-{i}"), "aud": "load", "iat": now,
                            "exp": now + 86_000, "jti": format!("load-{i}"), "scope": "read", "client_id": "load"});
        tokens.push_str(&signer.sign(alg, &claims));
        tokens.push('\n');
        if count >= 10_000 && i % 10_000 == 0 {
            eprint!("\rminted {i}/{count}");
        }
    }
    eprintln!(
        "\rminted {count} {} tokens in {:.1?}",
        alg.name(),
        started.elapsed()
    );
    std::fs::write(out.join("tokens.txt"), tokens)?;
    // A local key file may hold HMAC keys as well as public ones.
    std::fs::write(
        out.join("jwks.json"),
        tokend::mint::jwks(&[&signer]).to_string(),
    )?;
    let algorithms = format!("[\"{}\"]", alg.name());
    let config = format!(
        "[server]\nhttp_addr = \"127.0.0.1:{http_port}\"\ngrpc_addr = \"127.0.0.1:{grpc_port}\"\nmax_batch = 10000\n\n\
         [[issuers]]\nname = \"load\"\nissuer = \"{issuer}\"\njwks_file = {:?}\nalgorithms = {algorithms}\n\n\
         [[clients]]\nid = \"load\"\nsecret = \"load-secret\"\npermissions = [\"introspect\"]\n\n\
         [cache]\nenabled = true\nmax_entries = 1000000\n",
        out.join("jwks.json").display().to_string()
    );
    std::fs::write(out.join("tokend.toml"), config)?;
    // PKCS#8, for peers that want a PEM public key (`openssl pkey -pubout`).
    std::fs::write(out.join("private.der"), signer.private_der())?;
    println!(
        "wrote {}/tokens.txt, jwks.json and tokend.toml",
        out.display()
    );
    Ok(())
}

async fn dev_tokens(
    url: &str,
    alg: &str,
    count: usize,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let endpoint = format!("{}/dev/token", url.trim_end_matches('/'));
    let mut tokens = String::with_capacity(count * 400);
    for i in 0..count {
        let claims = json!({"alg": alg, "sub": format!("user-{i}"), "jti": format!("load-{i}")});
        let request = hyper::Request::post(&endpoint)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(claims.to_string())))?;
        let response = client
            .request(request)
            .await
            .with_context(|| format!("POST {endpoint}: is `tokend serve --dev` running?"))?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "POST {endpoint}: {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        tokens.push_str(std::str::from_utf8(&body)?.trim());
        tokens.push('\n');
        if i % 1_000 == 0 {
            eprint!("\rfetched {i}/{count}");
        }
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("tokens.txt"), tokens)?;
    eprintln!(
        "\rfetched {count} {alg} tokens into {}/tokens.txt",
        out.display()
    );
    Ok(())
}

async fn noop(addr: &str) -> anyhow::Result<()> {
    let router = axum::Router::new().fallback(|| async { "" });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("no-work server on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

async fn handwritten(addr: &str, jwks: &std::path::Path, issuer: &str) -> anyhow::Result<()> {
    use axum::http::{HeaderMap, StatusCode};
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&std::fs::read(jwks)?)?;
    let mut keys = std::collections::HashMap::new();
    for jwk in &set.keys {
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        keys.insert(kid, jsonwebtoken::DecodingKey::from_jwk(jwk)?);
    }
    let keys = Arc::new(keys);
    let issuer = issuer.to_owned();
    let router = axum::Router::new().route(
        "/auth",
        axum::routing::any(move |headers: HeaderMap| {
            let (keys, issuer) = (keys.clone(), issuer.clone());
            async move {
                let verified = (|| {
                    let token = headers
                        .get("authorization")?
                        .to_str()
                        .ok()?
                        .strip_prefix("Bearer ")?;
                    let header = jsonwebtoken::decode_header(token).ok()?;
                    let key = keys.get(header.kid.as_deref().unwrap_or(""))?;
                    let mut validation = jsonwebtoken::Validation::new(header.alg);
                    validation.set_issuer(&[&issuer]);
                    validation.set_audience(&["load"]);
                    jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).ok()
                })();
                match verified {
                    Some(data) => {
                        let sub = data.claims["sub"].as_str().unwrap_or("").to_owned();
                        (StatusCode::OK, [("x-auth-subject", sub)]).into_response()
                    }
                    None => StatusCode::UNAUTHORIZED.into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("hand-written verifier on {}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

fn raw_verify(
    tokens: &std::path::Path,
    jwks: &std::path::Path,
    duration: u64,
    json_out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use tokend::keys::jwk::{Jwk, Source};
    use tokend::token::parse::Jws;
    let set: serde_json::Value = serde_json::from_slice(&std::fs::read(jwks)?)?;
    let key = Jwk::from_json(&set["keys"][0], Source::Local).context("the JWKS's first key")?;
    let parts: Vec<(Algorithm, Vec<u8>, Vec<u8>)> = std::fs::read_to_string(tokens)?
        .lines()
        .take(10_000)
        .map(|t| {
            let jws = Jws::parse(t, 8192).map_err(|r| anyhow::anyhow!("a token: {r:?}"))?;
            Ok((jws.header.alg, jws.signing_input.to_vec(), jws.signature))
        })
        .collect::<anyhow::Result<_>>()?;
    if parts.is_empty() {
        bail!("no tokens in {}", tokens.display());
    }
    let started = Instant::now();
    let mut checks = 0u64;
    while started.elapsed() < Duration::from_secs(duration) {
        for (alg, input, signature) in &parts {
            if !key.verify(*alg, input, signature) {
                bail!("a signature did not verify");
            }
            checks += 1;
        }
    }
    let us = started.elapsed().as_secs_f64() * 1e6 / checks as f64;
    println!("raw signature check: {us:.2} µs ({checks} checks)");
    if let Some(path) = json_out {
        std::fs::write(
            path,
            json!({"us_per_check": us, "checks": checks}).to_string(),
        )?;
    }
    Ok(())
}

/// Per-worker results, merged at the end.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    inactive: u64,
    errors: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ok: 0,
            inactive: 0,
            errors: 0,
        }
    }
}

/// One request of the target kind; returns whether the answer was active.
type CheckClient =
    envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient<
        tonic::transport::Channel,
    >;

#[derive(Clone)]
enum Driver {
    Http {
        client: Box<Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>>,
        url: String,
        auth: String,
        target: Target,
    },
    Grpc {
        clients: Vec<pb::token_service_client::TokenServiceClient<tonic::transport::Channel>>,
        auth: String,
        batch: usize,
    },
    Check {
        clients: Vec<CheckClient>,
    },
}

impl Driver {
    async fn send(&mut self, tokens: &[String], i: usize) -> Result<bool, String> {
        match self {
            Driver::Http {
                client,
                url,
                auth,
                target,
            } => {
                let token = &tokens[i % tokens.len()];
                let request = match target {
                    Target::HttpAuth => hyper::Request::get(format!("{url}/auth"))
                        .header("authorization", format!("Bearer {token}"))
                        .body(Full::new(Bytes::new())),
                    _ => hyper::Request::post(format!("{url}/introspect"))
                        .header("authorization", auth.as_str())
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(Full::new(Bytes::from(format!("token={token}")))),
                }
                .map_err(|e| e.to_string())?;
                let response = client.request(request).await.map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                match (*target, status) {
                    (Target::HttpAuth, 200) => Ok(true),
                    (Target::HttpAuth, 401) => Ok(false),
                    (_, 200) => Ok(body.starts_with(b"{\"active\":true")
                        || body.windows(13).any(|w| w == b"\"active\":true")),
                    (_, s) => Err(format!("HTTP {s}")),
                }
            }
            Driver::Grpc {
                clients,
                auth,
                batch,
            } => {
                let n = clients.len();
                let client = &mut clients[i % n];
                let request = |token: &String| pb::IntrospectRequest {
                    token: token.clone(),
                    ..Default::default()
                };
                if *batch <= 1 {
                    let mut req = tonic::Request::new(request(&tokens[i % tokens.len()]));
                    req.metadata_mut()
                        .insert("authorization", auth.parse().map_err(|_| "bad auth")?);
                    let answer = client.introspect(req).await.map_err(|e| e.to_string())?;
                    Ok(answer.into_inner().active)
                } else {
                    let requests = (0..*batch)
                        .map(|k| request(&tokens[(i * *batch + k) % tokens.len()]))
                        .collect();
                    let mut req = tonic::Request::new(pb::IntrospectBatchRequest { requests });
                    req.metadata_mut()
                        .insert("authorization", auth.parse().map_err(|_| "bad auth")?);
                    let answer = client
                        .introspect_batch(req)
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok(answer.into_inner().responses.iter().all(|r| r.active))
                }
            }
            Driver::Check { clients } => {
                let n = clients.len();
                let client = &mut clients[i % n];
                let answer = client
                    .check(check_request(&tokens[i % tokens.len()]))
                    .await
                    .map_err(|e| e.to_string())?;
                // OK (0) allows; anything else is Envoy's denial.
                Ok(answer.into_inner().status.is_some_and(|s| s.code == 0))
            }
        }
    }
}

/// A `Check` as Envoy's ext_authz filter builds it for `GET /` on `api.example.com`.
fn check_request(token: &str) -> envoy_types::ext_authz::v3::pb::CheckRequest {
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
    let headers = [("authorization".to_owned(), format!("Bearer {token}"))].into();
    envoy_types::ext_authz::v3::pb::CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: "/".into(),
                    host: "api.example.com".into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn driver(args: &RunArgs) -> anyhow::Result<Driver> {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", args.client_id, args.client_secret));
    let auth = format!("Basic {basic}");
    let url = args.url.trim_end_matches('/').to_owned();
    Ok(match args.target {
        Target::HttpAuth | Target::HttpIntrospect => {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            let client = Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(4096)
                .build(connector);
            Driver::Http {
                client: Box::new(client),
                url,
                auth,
                target: args.target,
            }
        }
        Target::GrpcIntrospect | Target::GrpcBatch => {
            let clients = channels(&url, args.concurrency)
                .await?
                .into_iter()
                .map(|channel| {
                    pb::token_service_client::TokenServiceClient::new(channel)
                        .max_decoding_message_size(256 << 20)
                        .max_encoding_message_size(256 << 20)
                })
                .collect();
            let batch = if args.target == Target::GrpcBatch {
                args.batch.max(1)
            } else {
                1
            };
            Driver::Grpc {
                clients,
                auth,
                batch,
            }
        }
        Target::GrpcCheck => {
            let channels = channels(&url, args.concurrency).await?;
            Driver::Check {
                clients: channels.into_iter().map(CheckClient::new).collect(),
            }
        }
    })
}

/// Up to 8 HTTP/2 connections: the streams of `concurrency` requests share them.
async fn channels(url: &str, concurrency: usize) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    let mut channels = Vec::new();
    for _ in 0..concurrency.clamp(1, 8) {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(channel);
    }
    Ok(channels)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(&args.tokens).with_context(|| args.tokens.display().to_string())?;
    let mut tokens: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if tokens.is_empty() {
        bail!("no tokens in {}", args.tokens.display());
    }
    if args.repeat {
        tokens.truncate(1);
    }
    let tokens = Arc::new(tokens);
    let base = driver(&args).await?;
    let duration = Duration::from_secs(args.duration);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    // progress, once a second
    let progress = {
        let (stop, done) = (stop.clone(), done.clone());
        tokio::spawn(async move {
            let mut last = 0;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = done.load(Ordering::Relaxed);
                eprintln!(
                    "  {:>4.0}s  {:>9} req/s",
                    started.elapsed().as_secs_f64(),
                    now - last
                );
                last = now;
            }
        })
    };

    let mut handles = Vec::new();
    match args.rate {
        None => {
            let workers = args.concurrency;
            for w in 0..workers {
                let (mut d, tokens, stop, done) =
                    (base.clone(), tokens.clone(), stop.clone(), done.clone());
                handles.push(tokio::spawn(async move {
                    let mut tally = Tally::new();
                    let mut i = w;
                    while !stop.load(Ordering::Relaxed) {
                        let t0 = Instant::now();
                        let result = d.send(&tokens, i).await;
                        record(&mut tally, result, t0.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                        // Strided: together the workers walk the pool in order,
                        // so N distinct tokens come round once every N requests.
                        i += workers;
                    }
                    tally
                }));
            }
        }
        Some(rate) => {
            // Open loop: request n is due at start + n / rate, and its latency
            // counts from then, however late a worker picks it up. A thread
            // hands out the due times (std's sleep is finer than tokio's 1 ms
            // timer: tickets leave at most ~0.15 ms late); `concurrency` workers,
            // each with its own connection and histogram, send them.
            let workers = args.concurrency.max(1);
            let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers)
                .map(|_| tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>())
                .unzip();
            let stop_tickets = stop.clone();
            std::thread::spawn(move || {
                let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
                let mut n: u32 = 0;
                while !stop_tickets.load(Ordering::Relaxed) {
                    let due = started + interval * n;
                    let now = Instant::now();
                    if due > now {
                        // Wake at most every 100 µs and release what is due:
                        // fewer wake-ups stealing the generator's core.
                        std::thread::sleep((due - now).max(Duration::from_micros(100)));
                    }
                    // Round robin, as wrk2 does per connection: a stalled
                    // connection's tickets wait for it, and their wait counts.
                    if senders[n as usize % workers]
                        .send((n as usize, due))
                        .is_err()
                    {
                        break;
                    }
                    n += 1;
                }
            });
            for mut rx in receivers {
                let (mut d, tokens, stop, done) =
                    (base.clone(), tokens.clone(), stop.clone(), done.clone());
                handles.push(tokio::spawn(async move {
                    let mut tally = Tally::new();
                    while !stop.load(Ordering::Relaxed) {
                        let Some((n, due)) = rx.recv().await else {
                            break;
                        };
                        let result = d.send(&tokens, n).await;
                        record(&mut tally, result, due.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    tally
                }));
            }
        }
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::new();
    for h in handles {
        merge(&mut total, h.await?);
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress.abort();
    report(&args, &total, elapsed)
}

fn record(tally: &mut Tally, result: Result<bool, String>, took: Duration) {
    match result {
        Ok(true) => tally.ok += 1,
        Ok(false) => tally.inactive += 1,
        Err(_) => tally.errors += 1,
    }
    let _ = tally.latency.record((took.as_micros() as u64).max(1));
}

fn merge(total: &mut Tally, other: Tally) {
    let _ = total.latency.add(&other.latency);
    total.ok += other.ok;
    total.inactive += other.inactive;
    total.errors += other.errors;
}

fn report(args: &RunArgs, t: &Tally, elapsed: f64) -> anyhow::Result<()> {
    let requests = t.ok + t.inactive + t.errors;
    let per_request = if args.target == Target::GrpcBatch {
        args.batch as u64
    } else {
        1
    };
    let q = |p: f64| t.latency.value_at_quantile(p) as f64 / 1000.0;
    let result = json!({
        "target": format!("{:?}", args.target),
        "mode": if args.rate.is_some() { "open" } else { "closed" },
        "concurrency": args.concurrency,
        "rate": args.rate,
        "tokens": if args.repeat { 1 } else { 0 },
        "duration_s": elapsed,
        "requests": requests,
        "active": t.ok,
        "inactive": t.inactive,
        "errors": t.errors,
        "requests_per_s": requests as f64 / elapsed,
        "verdicts_per_s": (requests * per_request) as f64 / elapsed,
        "latency_ms": {"p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p99.9": q(0.999), "max": t.latency.max() as f64 / 1000.0},
    });
    println!(
        "target {:?}  mode {}  requests {requests}  errors {}  inactive {}",
        args.target, result["mode"], t.errors, t.inactive
    );
    println!(
        "throughput {:.0} req/s  ({:.0} verdicts/s)",
        result["requests_per_s"].as_f64().unwrap_or(0.0),
        result["verdicts_per_s"].as_f64().unwrap_or(0.0)
    );
    println!(
        "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        t.latency.max() as f64 / 1000.0
    );
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&result)?)?;
    }
    Ok(())
}
