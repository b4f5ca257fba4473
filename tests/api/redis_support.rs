//! Real Redis for the tests: the shared server at `REDIS_URL` (default
//! 127.0.0.1:6379) with a key prefix per test, `redis-server` processes the
//! tests start (and kill) on free ports, a Redis Cluster of three masters, and
//! a TCP proxy that can cut one replica off.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::free_port;

pub fn shared_redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// The shared Redis must answer; say so plainly when it does not.
pub async fn require_shared_redis() -> String {
    let url = shared_redis_url();
    let client = redis::Client::open(url.as_str()).expect("REDIS_URL is a redis:// URL");
    match tokio::time::timeout(
        Duration::from_secs(3),
        client.get_multiplexed_async_connection(),
    )
    .await
    {
        Ok(Ok(mut conn)) => {
            let pong: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .expect("PING");
            assert_eq!(pong, "PONG");
            url
        }
        _ => panic!(
            "no Redis answers at {url}: start one (redis-server --port 6379) or set REDIS_URL to one that does"
        ),
    }
}

pub fn unique_prefix() -> String {
    format!("tokend-test-{:016x}:", rand::random::<u64>())
}

/// A `redis-server` process owned by a test, with AOF `appendfsync always`
/// (the setting README names for durable revocations).
pub struct RedisServer {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
}

impl RedisServer {
    pub fn start(extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("tokend-redis-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = RedisServer {
            port: free_port(),
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        self.child = Some(child);
        wait_for_ping(self.port);
    }

    /// SIGKILL: no shutdown save, only what AOF already has on disk survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn wait_for_ping(port: u16) {
    for _ in 0..200 {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output();
        if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server on port {port} did not answer");
}

/// Three masters in Redis Cluster mode, formed with `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        let mut nodes = Vec::new();
        while nodes.len() < 3 {
            // The cluster bus listens on port + 10000: both must be free.
            let port = free_port();
            if port > 55000 || std::net::TcpListener::bind(("127.0.0.1", port + 10000)).is_err() {
                continue;
            }
            let dir =
                std::env::temp_dir().join(format!("tokend-cluster-{:016x}", rand::random::<u64>()));
            std::fs::create_dir_all(&dir).unwrap();
            let mut node = RedisServer {
                port,
                dir,
                child: None,
                extra: [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            };
            node.spawn();
            nodes.push(node);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        for _ in 0..200 {
            let ok = nodes.iter().all(|n| {
                let out = Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")
            });
            if ok {
                return RedisCluster { nodes };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("Redis Cluster did not reach cluster_state:ok");
    }

    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }
}

/// A TCP proxy in front of Redis: `cut()` drops every connection and refuses
/// new ones until `restore()`, as a network partition of one replica would.
pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (gate, conns) = (open.clone(), live.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, open, live }
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for task in self.live.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
