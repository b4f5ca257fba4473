//! The `tokend` command: parses the CLI, sets up logging, and hands over to the library.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

use tokend::config::Config;

#[derive(Parser)]
#[command(
    name = "tokend",
    version,
    about = "Token validation service: JWT verification, RFC 7662 introspection"
)]
struct Cli {
    /// Log output format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "TOKEND_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// TOML configuration file.
        #[arg(long, required_unless_present = "dev")]
        config: Option<PathBuf>,
        /// Run with embedded defaults and a built-in development issuer.
        #[arg(long, conflicts_with = "config")]
        dev: bool,
        /// Reload the configuration when the file's content changes (SIGHUP always reloads).
        #[arg(long, requires = "config")]
        watch_config: bool,
    },
    /// Validate a configuration file; print every error with its key path.
    CheckConfig { file: PathBuf },
    /// Ask a running tokend whether a token is active.
    Introspect {
        token: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Ask a running tokend why a token is or is not active, and what the
    /// route policy decides for a request (needs `admin`).
    Explain {
        token: String,
        #[arg(long, default_value = "GET")]
        method: String,
        #[arg(long)]
        host: Option<String>,
        #[arg(long, default_value = "/")]
        path: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke through a running tokend's admin API: one token, a token by id,
    /// every token of a subject or a session, or every token of an issuer
    /// issued before a time.
    #[command(group(clap::ArgGroup::new("what").required(true).multiple(true).args(["token", "jti", "sub", "sid", "iss"])))]
    Revoke {
        /// The token itself (revoked by its jti, or its SHA-256 when it has none).
        #[arg(long, conflicts_with_all = ["jti", "sub", "sid", "iss", "exp", "before"])]
        token: Option<String>,
        /// Revoke by jti (with --iss and --exp).
        #[arg(long, requires_all = ["iss", "exp"], conflicts_with_all = ["sub", "sid"])]
        jti: Option<String>,
        /// Revoke every token of this subject (with --iss; --before defaults to now + the issuer leeway).
        #[arg(long, requires = "iss", conflicts_with = "sid")]
        sub: Option<String>,
        /// Revoke every token of this session (the `sid` claim; with --iss; --before as for --sub).
        #[arg(long, requires = "iss")]
        sid: Option<String>,
        #[arg(long)]
        iss: Option<String>,
        /// The token's exp (Unix seconds), for --jti.
        #[arg(long)]
        exp: Option<u64>,
        /// Tokens issued at or before this Unix time are revoked.
        #[arg(long, conflicts_with = "jti")]
        before: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List or lift revocation entries.
    Revocations {
        #[command(subcommand)]
        action: RevocationsAction,
    },
    /// Exit 0 when a running tokend is ready (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080", env = "TOKEND_URL")]
        url: String,
    },
}

#[derive(Subcommand)]
enum RevocationsAction {
    /// List entries (all pages).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Lift one entry by id.
    Lift {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(clap::Args)]
struct ClientArgs {
    /// Base URL of the running tokend.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "TOKEND_URL")]
    url: String,
    #[arg(long, env = "TOKEND_CLIENT_ID")]
    client_id: Option<String>,
    #[arg(long, env = "TOKEND_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// mimalloc instead of glibc's malloc: the request path allocates small,
/// short-lived buffers (HTTP heads, protobuf strings), where glibc's free-list
/// upkeep showed up as a quarter of a batch's CPU in a profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokend: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => {
                println!(
                    "{}: OK ({} issuers, {} clients)",
                    file.display(),
                    config.issuers.len(),
                    config.clients.len()
                );
                let sources: Vec<String> = config
                    .authorization
                    .sources
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                println!("token sources: {}", sources.join(", "));
                // What a provider preset filled in, as the issuer now reads.
                for (i, issuer) in config.issuers.iter().enumerate() {
                    if let Some(provider) = issuer.provider {
                        println!(
                            "issuers[{i}] ({}): provider {}: {}",
                            issuer.name,
                            provider.name(),
                            issuer.effective()
                        );
                    }
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} error(s)", file.display(), errors.0.len());
                ExitCode::FAILURE
            }
        },
        Command::Serve {
            config,
            dev,
            watch_config,
        } => {
            let (config, path) = match (config, dev) {
                (Some(path), _) => match Config::load(&path) {
                    Ok(c) => (c, path),
                    Err(errors) => {
                        for e in &errors.0 {
                            eprintln!("{e}");
                        }
                        eprintln!(
                            "tokend: refusing to start: {} configuration error(s) in {}",
                            errors.0.len(),
                            path.display()
                        );
                        return ExitCode::FAILURE;
                    }
                },
                (None, _) => return serve_dev().await,
            };
            if config.revocation.backend == tokend::config::Backend::Memory {
                tracing::warn!(
                    "revocation.backend = \"memory\": revocations are neither shared between replicas nor kept across restarts"
                );
            }
            match tokend::app::start(config, tokend::clock::system_clock()).await {
                Ok(mut app) => {
                    app.watch_config(path, watch_config);
                    app.run_until(tokend::app::shutdown_signal()).await;
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("tokend: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Introspect { token, client } => introspect(token, client).await,
        Command::Explain {
            token,
            method,
            host,
            path,
            client,
        } => {
            let body =
                serde_json::json!({"token": token, "method": method, "host": host, "path": path});
            let request = |http: &reqwest::Client, url: &str| {
                http.post(format!("{url}/admin/explain")).json(&body)
            };
            match call(&client, request).await {
                Ok(answer) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&answer).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Revoke {
            token,
            jti,
            sub,
            sid,
            iss,
            exp,
            before,
            client,
        } => {
            let mut body = serde_json::Map::new();
            let mut put = |k: &str, v: Option<serde_json::Value>| {
                if let Some(v) = v {
                    body.insert(k.into(), v);
                }
            };
            put("token", token.map(Into::into));
            put("jti", jti.map(Into::into));
            put("sub", sub.map(Into::into));
            put("sid", sid.map(Into::into));
            put("iss", iss.map(Into::into));
            put("exp", exp.map(Into::into));
            put("before", before.map(Into::into));
            let request = |http: &reqwest::Client, url: &str| {
                http.post(format!("{url}/admin/revocations")).json(&body)
            };
            match call(&client, request).await {
                Ok(entry) => {
                    println!(
                        "revoked: {}",
                        serde_json::to_string_pretty(&entry).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Revocations {
            action: RevocationsAction::List { client },
        } => list_revocations(client).await,
        Command::Revocations {
            action: RevocationsAction::Lift { id, client },
        } => {
            let request = |http: &reqwest::Client, url: &str| {
                http.delete(format!("{url}/admin/revocations/{id}"))
            };
            match call(&client, request).await {
                Ok(_) => {
                    println!("lifted {id}");
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Healthcheck { url } => {
            let url = format!("{}/readyz", url.trim_end_matches('/'));
            match reqwest::get(&url).await {
                Ok(r) if r.status().is_success() => ExitCode::SUCCESS,
                Ok(r) => {
                    eprintln!(
                        "tokend: not ready (HTTP {}): {}",
                        r.status().as_u16(),
                        r.text().await.unwrap_or_default()
                    );
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("tokend: cannot reach {url}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs `serve --dev`: prints credentials and a walkthrough to stdout, then serves.
async fn serve_dev() -> ExitCode {
    let clock = tokend::clock::system_clock();
    let dev = match tokend::dev::setup(std::env::vars(), clock.clone()) {
        Ok(dev) => dev,
        Err(errors) => {
            eprintln!("tokend: {errors}");
            return ExitCode::FAILURE;
        }
    };
    let routes = tokend::dev::routes(dev.issuer.clone());
    match tokend::app::start_with(dev.config, clock, routes).await {
        Ok(app) => {
            print!(
                "{}",
                tokend::dev::walkthrough(
                    app.http_addr,
                    app.grpc_addr,
                    &dev.issuer.issuer,
                    &dev.client_secret
                )
            );
            use std::io::Write;
            let _ = std::io::stdout().flush();
            app.run_until(tokend::app::shutdown_signal()).await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tokend: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Calls the admin API with the client's credentials; prints the error and
/// returns the exit code on failure.
async fn call(
    client: &ClientArgs,
    request: impl FnOnce(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Result<serde_json::Value, ExitCode> {
    let (Some(id), Some(secret)) = (&client.client_id, &client.client_secret) else {
        eprintln!(
            "tokend: set --client-id/--client-secret or TOKEND_CLIENT_ID/TOKEND_CLIENT_SECRET"
        );
        return Err(ExitCode::FAILURE);
    };
    let url = client.url.trim_end_matches('/');
    let http = reqwest::Client::new();
    let response = match request(&http, url)
        .basic_auth(id, Some(secret))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tokend: cannot reach {url}: {e}");
            return Err(ExitCode::FAILURE);
        }
    };
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let detail = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("error_description")
                    .and_then(|d| d.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or(body);
        eprintln!("tokend: HTTP {}: {detail}", status.as_u16());
        return Err(ExitCode::FAILURE);
    }
    Ok(serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

async fn list_revocations(client: ClientArgs) -> ExitCode {
    let mut cursor: Option<String> = None;
    let mut count = 0;
    loop {
        let page = cursor.clone();
        let request = |http: &reqwest::Client, url: &str| {
            let mut r = http
                .get(format!("{url}/admin/revocations"))
                .query(&[("limit", "1000")]);
            if let Some(c) = &page {
                r = r.query(&[("cursor", c.as_str())]);
            }
            r
        };
        let body = match call(&client, request).await {
            Ok(b) => b,
            Err(code) => return code,
        };
        for e in body["entries"].as_array().into_iter().flatten() {
            count += 1;
            let what = match e["kind"].as_str() {
                Some("jti") => format!("jti={}", e["jti"].as_str().unwrap_or("")),
                Some("subject") => format!(
                    "sub={} before={}",
                    e["sub"].as_str().unwrap_or(""),
                    e["before"]
                ),
                Some("session") => format!(
                    "sid={} before={}",
                    e["sid"].as_str().unwrap_or(""),
                    e["before"]
                ),
                _ => format!("before={}", e["before"]),
            };
            println!(
                "{}  {:<7}  iss={}  {what}  expires_at={}  by={}",
                e["id"].as_str().unwrap_or(""),
                e["kind"].as_str().unwrap_or(""),
                e["iss"].as_str().unwrap_or(""),
                e["expires_at"],
                e["created_by"].as_str().unwrap_or("")
            );
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    eprintln!("{count} entries");
    ExitCode::SUCCESS
}

async fn introspect(token: String, client: ClientArgs) -> ExitCode {
    let (Some(id), Some(secret)) = (client.client_id, client.client_secret) else {
        eprintln!(
            "tokend: set --client-id/--client-secret or TOKEND_CLIENT_ID/TOKEND_CLIENT_SECRET"
        );
        return ExitCode::FAILURE;
    };
    let url = format!("{}/introspect", client.url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .basic_auth(id, Some(secret))
        .form(&[("token", token.as_str())])
        .send()
        .await;
    match response {
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            match serde_json::from_str::<serde_json::Value>(&body) {
                Ok(v) if status.is_success() => {
                    println!("{}", serde_json::to_string_pretty(&v).unwrap_or(body));
                    ExitCode::SUCCESS
                }
                _ => {
                    eprintln!("tokend: HTTP {}: {body}", status.as_u16());
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("tokend: cannot reach {url}: {e}");
            ExitCode::FAILURE
        }
    }
}
