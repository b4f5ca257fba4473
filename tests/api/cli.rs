//! The binary as users run it: `serve --dev` with its printed walkthrough run
//! in a real shell, and the operator CLI against that running instance.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::free_port;

/// A `tokend serve --dev` child process and what it printed.
struct DevServer {
    child: Child,
    base: String,
    walkthrough: String,
    secret: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl DevServer {
    fn start() -> DevServer {
        let (http, grpc) = (free_port(), free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_tokend"))
            .args(["serve", "--dev"])
            .env("TOKEND__SERVER__HTTP_ADDR", format!("127.0.0.1:{http}"))
            .env("TOKEND__SERVER__GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // The walkthrough ends with the final introspect line.
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut walkthrough = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                break;
            }
            walkthrough.push_str(&line);
            // The last step: its two command lines follow.
            if line.starts_with("# 11. behind AWS ALB") {
                for _ in 0..2 {
                    let mut next = String::new();
                    out.read_line(&mut next).unwrap();
                    walkthrough.push_str(&next);
                }
                break;
            }
        }
        let secret = walkthrough
            .lines()
            .find_map(|l| l.strip_prefix("export TOKEND_CLIENT_SECRET="))
            .unwrap_or_else(|| {
                panic!(
                    "no secret in the walkthrough:\n{walkthrough}\n{}",
                    stderr.lock().unwrap()
                )
            })
            .to_owned();
        DevServer {
            child,
            base: format!("http://127.0.0.1:{http}"),
            walkthrough,
            secret,
            stderr,
        }
    }

    /// Runs the CLI against this server with the dev credentials.
    fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
            .args(args)
            .env("TOKEND_URL", &self.base)
            .env("TOKEND_CLIENT_ID", "dev")
            .env("TOKEND_CLIENT_SECRET", &self.secret)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn mint(&self, body: &str) -> String {
        let out = Command::new("curl")
            .args([
                "-s",
                "-X",
                "POST",
                &format!("{}/dev/token", self.base),
                "-H",
                "content-type: application/json",
                "-d",
                body,
            ])
            .output()
            .unwrap();
        let token = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && token.split('.').count() == 3,
            "POST /dev/token: {:?} {token:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        token
    }

    fn active(&self, token: &str) -> bool {
        let (ok, out, err) = self.cli(&["introspect", token]);
        assert!(ok, "introspect failed: {err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        let active = v["active"].as_bool().unwrap();
        if !active {
            // Say why, so that a surprise is diagnosable from the test output.
            let (_, why, _) = self.cli(&["explain", token]);
            eprintln!("inactive: {why}");
        }
        active
    }

    fn stop(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("tokend --dev did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn dev_mode_walkthrough_works_when_pasted_into_a_shell() {
    let server = DevServer::start();
    // Every command line of the walkthrough, in order, in one bash.
    let script: String = server
        .walkthrough
        .lines()
        .filter(|l| {
            [
                "export ", "TOKEN=", "WRITER=", "OPAQUE=", "SESSION=", "LOGOUT=", "BOUND=",
                "PROOF=", "ALB=", "curl ",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        script.lines().count(),
        22,
        "walkthrough:\n{}",
        server.walkthrough
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12, "{stdout}");
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["active"], true);
    assert_eq!(first["sub"], "alice");
    assert_eq!(
        lines[1],
        r#"403 Bearer realm="tokend", error="insufficient_scope", scope="orders:write""#
    );
    let explained: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(explained["active"], true);
    assert_eq!(explained["route"], "orders-write");
    assert_eq!(explained["decision"], "deny");
    assert_eq!(explained["missing_scopes"], json!(["orders:write"]));
    let (status, assertion) = lines[3].split_once(' ').unwrap();
    assert_eq!(status, "200");
    assert_eq!(assertion.split('.').count(), 3, "a JWT: {assertion}");
    assert_eq!(lines[4], "200");
    assert_eq!(lines[5], r#"{"active":false}"#);
    // An opaque token, answered through the dev issuer's introspection endpoint.
    let opaque: Value = serde_json::from_str(lines[6]).unwrap();
    assert_eq!(opaque["active"], true, "{stdout}");
    assert_eq!(opaque["sub"], "bob");
    assert_eq!(opaque["iss"], format!("{}/dev", server.base));
    // A back-channel logout from the dev issuer ends the session's token.
    assert_eq!(lines[7], "200", "{stdout}");
    assert_eq!(lines[8], r#"{"active":false}"#, "{stdout}");
    // A DPoP-bound token passes with its proof; the same proof again is a replay.
    assert_eq!(lines[9], "200", "{stdout}");
    assert_eq!(
        lines[10],
        format!("401 {}", tokend::api::front::INVALID_DPOP_PROOF_CHALLENGE),
        "{stdout}"
    );
    // An ALB token in its header, its key fetched from the dev load balancer.
    assert_eq!(lines[11], "200", "{stdout}");
    // The dev issuer's discovery document and JWKS are served.
    let discovery: Value = serde_json::from_slice(
        &Command::new("curl")
            .args([
                "-s",
                &format!("{}/dev/.well-known/openid-configuration", server.base),
            ])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(discovery["issuer"], format!("{}/dev", server.base));
    let jwks: Value = serde_json::from_slice(
        &Command::new("curl")
            .args(["-s", &format!("{}/dev/jwks", server.base)])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let kty: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kty"].as_str().unwrap())
        .collect();
    assert_eq!(kty, vec!["RSA", "EC", "OKP"]);
    let status = server.stop();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn operator_cli_revokes_lists_and_lifts() {
    let server = DevServer::start();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(
            server.active(&server.mint(&format!(r#"{{"alg":"{alg}"}}"#))),
            "{alg}"
        );
    }
    let (ok, _, err) = server.cli(&["healthcheck"]);
    assert!(ok, "{err}");
    let iss = format!("{}/dev", server.base);

    // explain: an expired token's reason and detail, and a route's verdict
    let expired = server.mint(&format!(r#"{{"exp":{}}}"#, now - 120));
    let (ok, out, err) = server.cli(&["explain", &expired]);
    assert!(ok, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["reason"], "expired", "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("s past (leeway 30)"),
        "{answer}"
    );
    let reader = server.mint(r#"{"scope":"orders:read"}"#);
    let (ok, out, err) = server.cli(&[
        "explain",
        &reader,
        "--method",
        "DELETE",
        "--path",
        "/orders/7",
    ]);
    assert!(ok, "{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            &answer["route"],
            &answer["decision"],
            &answer["missing_scopes"]
        ),
        (
            &json!("orders-write"),
            &json!("deny"),
            &json!(["orders:write"])
        ),
        "{answer}"
    );

    // --token
    let t1 = server.mint(r#"{"sub":"u1"}"#);
    let (ok, out, err) = server.cli(&["revoke", "--token", &t1]);
    assert!(ok && out.contains("revoked"), "{out}{err}");
    assert!(!server.active(&t1));
    // --jti --iss --exp
    let t2 = server.mint(r#"{"sub":"u2","jti":"cli-jti"}"#);
    let (ok, _, err) = server.cli(&[
        "revoke",
        "--jti",
        "cli-jti",
        "--iss",
        &iss,
        "--exp",
        &(now + 3600).to_string(),
    ]);
    assert!(ok, "{err}");
    assert!(!server.active(&t2));
    // --sub --iss (before defaults to now)
    let t3 = server.mint(&format!(r#"{{"sub":"u3","iat":{}}}"#, now - 10));
    let (ok, _, err) = server.cli(&["revoke", "--sub", "u3", "--iss", &iss]);
    assert!(ok, "{err}");
    assert!(!server.active(&t3));
    // --iss --before
    let t4 = server.mint(&format!(r#"{{"sub":"u4","iat":{}}}"#, now - 1000));
    let t5 = server.mint(r#"{"sub":"u5"}"#);
    let (ok, _, err) = server.cli(&[
        "revoke",
        "--iss",
        &iss,
        "--before",
        &(now - 500).to_string(),
    ]);
    assert!(ok, "{err}");
    assert!(!server.active(&t4));
    assert!(server.active(&t5), "issued after --before");
    // --sid --iss: one session, not the subject's others
    let t6 = server.mint(&format!(
        r#"{{"sub":"u6","sid":"cli-s1","iat":{}}}"#,
        now - 10
    ));
    let t7 = server.mint(&format!(
        r#"{{"sub":"u6","sid":"cli-s2","iat":{}}}"#,
        now - 10
    ));
    let (ok, _, err) = server.cli(&["revoke", "--sid", "cli-s1", "--iss", &iss]);
    assert!(ok, "{err}");
    assert!(!server.active(&t6));
    assert!(server.active(&t7), "another session");

    let (ok, out, err) = server.cli(&["revocations", "list"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 5, "{out}");
    assert!(err.contains("5 entries"));
    assert!(
        out.lines()
            .any(|l| l.contains("session") && l.contains("sid=cli-s1")),
        "{out}"
    );
    let sub_line = out.lines().find(|l| l.contains("sub=u3")).unwrap();
    let id = sub_line.split_whitespace().next().unwrap();
    let (ok, out, err) = server.cli(&["revocations", "lift", id]);
    assert!(ok && out.contains("lifted"), "{err}");
    assert!(server.active(&t3), "lifted");
    let (ok, _, err) = server.cli(&["revocations", "lift", id]);
    assert!(!ok && err.contains("404"), "{err}");

    // bad invocations exit non-zero with a readable message
    let (ok, _, err) = server.cli(&[
        "revoke",
        "--iss",
        &iss,
        "--before",
        &(now + 99_999).to_string(),
    ]);
    assert!(!ok && err.contains("future"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args(["revoke", "--jti", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args([
            "introspect",
            "x",
            "--url",
            &server.base,
            "--client-id",
            "dev",
            "--client-secret",
            "wrong",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));

    // every revocation and lift left an audit line
    std::thread::sleep(Duration::from_millis(200));
    let status = server.stderr.clone();
    assert!(server.stop().success());
    let log = status.lock().unwrap().clone();
    let audit: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("tokend::audit"))
        .collect();
    assert_eq!(
        audit
            .iter()
            .filter(|l| l.contains("revocation stored"))
            .count(),
        5,
        "{log}"
    );
    assert_eq!(
        audit
            .iter()
            .filter(|l| l.contains("revocation lifted"))
            .count(),
        1,
        "{log}"
    );
    assert!(
        audit
            .iter()
            .all(|l| l.contains("caller=dev") && l.contains("from=")),
        "{audit:#?}"
    );
}

#[test]
fn healthcheck_fails_when_nothing_listens() {
    let out = Command::new(env!("CARGO_BIN_EXE_tokend"))
        .args([
            "healthcheck",
            "--url",
            &format!("http://127.0.0.1:{}", free_port()),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
