//! The soak test (issue 15): the release-or-debug binary under minutes of
//! mixed traffic — cached tokens, a fresh token per request (filling and
//! cycling the bounded cache), `/auth`, revocations, connection churn — with
//! its resident memory and open files read from `/proc` after warm-up and at
//! the end. Not in the default run:
//! `TOKEND_SOAK_SECONDS=300 cargo test --test api soak -- --ignored --nocapture`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokend::mint::jwks;
use tokend::token::Algorithm;

use crate::helpers::*;
use crate::reload::{ConfigFile, Served};

const ISS: &str = "https://idp.test";

/// Resident memory (KiB) and open files of a process.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: TOKEND_SOAK_SECONDS=300 cargo test --test api soak -- --ignored --nocapture"]
async fn soak_memory_and_open_files_stay_flat() {
    let seconds: u64 = std::env::var("TOKEND_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    let key = Arc::new(signer(Algorithm::ES256, "k1"));
    let idp = Idp::start(jwks(&[&key])).await;
    let port = free_port();
    let text = format!(
        "[server]\nhttp_addr = \"127.0.0.1:{port}\"\ngrpc_addr = \"127.0.0.1:0\"\n{}\
         [cache]\nmax_entries = 5000\n\
         [[clients]]\nid = \"gateway\"\nsecret = \"{GATEWAY_SECRET}\"\npermissions = [\"introspect\"]\n\
         [[clients]]\nid = \"revoker\"\nsecret = \"{REVOKER_SECRET}\"\npermissions = [\"revoke\"]\n",
        jwks_issuer("main", ISS, &idp, "")
    );
    let file = ConfigFile::new(&text);
    let served = Served::start(&file, port, false).await;
    let pid = served.child.id();
    let base = served.base.clone();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let cached = key.sign(Algorithm::ES256, &claims(ISS));
    let mut load = Vec::new();
    for worker in 0..6 {
        let (key, base, cached, stop, requests, failures) = (
            key.clone(),
            base.clone(),
            cached.clone(),
            stop.clone(),
            requests.clone(),
            failures.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut http = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                // A new client (new connections) every 500 requests.
                if n.is_multiple_of(500) {
                    http = reqwest::Client::new();
                }
                let fresh = key.sign(Algorithm::ES256, &claims(ISS));
                let (token, revoke) = match worker {
                    0 if n.is_multiple_of(25) => (fresh, true),
                    0..=2 => (fresh, false),
                    _ => (cached.clone(), false),
                };
                let ok = if revoke {
                    let r = http
                        .post(format!("{base}/revoke"))
                        .basic_auth("revoker", Some(REVOKER_SECRET))
                        .form(&[("token", &token)])
                        .send()
                        .await;
                    r.is_ok_and(|r| r.status() == 200)
                } else if worker == 5 {
                    let r = http
                        .get(format!("{base}/auth"))
                        .bearer_auth(&token)
                        .send()
                        .await;
                    r.is_ok_and(|r| r.status() == 200)
                } else {
                    let r = http
                        .post(format!("{base}/introspect"))
                        .basic_auth("gateway", Some(GATEWAY_SECRET))
                        .form(&[("token", &token)])
                        .send()
                        .await;
                    match r {
                        Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"active\":true")),
                        Err(_) => false,
                    }
                };
                requests.fetch_add(1, Ordering::Relaxed);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let at_start = footprint(pid);
    // Warm-up: the cache fills and cycles, every buffer pool reaches size.
    tokio::time::sleep(Duration::from_secs(seconds / 5)).await;
    let warm = footprint(pid);
    let mut samples = vec![(started.elapsed().as_secs(), warm)];
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_secs((seconds / 10).max(1))).await;
        samples.push((started.elapsed().as_secs(), footprint(pid)));
    }
    let end = footprint(pid);
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let (requests, failures) = (
        requests.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    );
    served.stop();
    println!("soak {seconds} s: {requests} requests, {failures} failed");
    println!(
        "RSS at start {} KiB, after warm-up {} KiB, at the end {} KiB",
        at_start.0, warm.0, end.0
    );
    println!(
        "open files at start {}, after warm-up {}, at the end {}",
        at_start.1, warm.1, end.1
    );
    println!("samples (s, (RSS KiB, fds)): {samples:?}");
    assert_eq!(failures, 0);
    assert!(
        end.0 <= warm.0 + warm.0 / 5 + 8 * 1024,
        "memory grew past warm-up: {} → {} KiB",
        warm.0,
        end.0
    );
    assert!(
        end.1 <= warm.1 + 16,
        "open files grew: {} → {}",
        warm.1,
        end.1
    );
}
