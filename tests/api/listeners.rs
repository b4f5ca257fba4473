//! Connection floods (issue 16, finding 4): silent and half-sent connections
//! are closed after the header-read timeout, a fresh request answers during a
//! storm, the quietest connection makes room at the cap, and with a 1,024
//! open-files limit the binary keeps answering without spinning on `accept`.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use tokend::mint::jwks;
use tokend::token::Algorithm;

const ISS: &str = "https://idp.test";

/// `n` connections to `addr`: every other one sends half a request head.
pub async fn storm(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: storm\r\nX-Slow: ")
                .await
                .unwrap();
        }
        sockets.push(s);
    }
    sockets
}

/// Whether the server has closed `socket` (EOF or reset) within `limit`.
pub async fn closed_by_server(socket: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // a 408 or similar before the close
        }
    }
}

pub async fn timed_get(url: &str) -> (u16, Duration) {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let status = client.get(url).send().await.map(|r| r.status().as_u16());
    (status.unwrap_or(0), started.elapsed())
}

#[tokio::test]
async fn a_storm_of_silent_and_half_sent_connections_is_shed_while_fresh_requests_answer() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let mut config = config_with(&jwks_issuer("main", ISS, &idp, ""), "");
    config.server.header_read_timeout_seconds = 1;
    let app = spawn_ready(config).await;

    let mut http_storm = storm(app.app.http_addr, 1_500).await;
    let mut grpc_storm = storm(app.app.grpc_addr, 500).await;
    let (status, took) = timed_get(&format!("{}/healthz", app.base)).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    let token = key.sign(Algorithm::ES256, &claims(ISS));
    let started = Instant::now();
    assert!(app.is_active(&token).await);
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut grpc = crate::grpc::grpc_client(&app).await;
    let answer = grpc
        .introspect(crate::grpc::with_auth(
            tokend::api::grpc::pb::IntrospectRequest {
                token: token.clone(),
                ..Default::default()
            },
            Some(("gateway", GATEWAY_SECRET)),
        ))
        .await
        .unwrap();
    assert!(answer.into_inner().active);

    let mut still_open = 0;
    for s in http_storm.iter_mut().chain(grpc_storm.iter_mut()) {
        if !closed_by_server(s, Duration::from_secs(4)).await {
            still_open += 1;
        }
    }
    assert_eq!(still_open, 0, "storm connections the server kept");
}

#[tokio::test]
async fn at_the_connection_cap_the_quietest_connection_makes_room() {
    let key = signer(Algorithm::ES256, "k1");
    let idp = Idp::start(jwks(&[&key])).await;
    let mut config = config_with(&jwks_issuer("main", ISS, &idp, ""), "");
    config.server.max_connections = 40;
    let app = spawn_ready(config).await;

    let mut idle = storm(app.app.http_addr, 40).await;
    tokio::time::sleep(Duration::from_millis(1_300)).await; // quiet long enough to evict
    let (status, took) = timed_get(&format!("{}/healthz", app.base)).await;
    assert_eq!(status, 200);
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    let mut evicted = 0;
    for s in idle.iter_mut() {
        if closed_by_server(s, Duration::from_millis(50)).await {
            evicted += 1;
        }
    }
    assert!(
        (1..=3).contains(&evicted),
        "{evicted} closed for one newcomer"
    );
}

/// CPU seconds `pid` has used (utime + stime from /proc, 100 ticks a second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

#[tokio::test]
async fn with_a_1024_open_files_limit_the_binary_answers_and_does_not_spin() {
    let (http, grpc, metrics) = (free_port(), free_port(), free_port());
    let mut child = Command::new("bash")
        .args([
            "-c",
            r#"ulimit -n 1024 && exec "$0" serve --dev"#,
            env!("CARGO_BIN_EXE_tokend"),
        ])
        .env("TOKEND__SERVER__HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env("TOKEND__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env(
            "TOKEND__SERVER__METRICS_ADDR",
            format!("127.0.0.1:{metrics}"),
        )
        .env("TOKEND__SERVER__HEADER_READ_TIMEOUT_SECONDS", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while timed_get(&format!("{base}/healthz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "tokend --dev did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr: SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let _storm = storm(addr, 1_100).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let before = cpu_seconds(child.id());
    let (status, took) = timed_get(&format!("{base}/healthz")).await;
    let (probe, _) = timed_get(&format!("http://127.0.0.1:{metrics}/readyz")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let spent = cpu_seconds(child.id()) - before;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(status, 200, "a fresh request during the storm");
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    assert_eq!(probe, 200, "the metrics port's /readyz");
    assert!(spent < 0.5, "{spent:.2} CPU seconds in about 2 s of storm");
}
