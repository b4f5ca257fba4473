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
    },
    /// Validate a configuration file; print every error with its key path.
    CheckConfig { file: PathBuf },
    /// Ask a running tokend whether a token is active.
    Introspect {
        token: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Exit 0 when a running tokend is ready (for container health checks).
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
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
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

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
        Command::Serve { config, dev } => {
            let config = match (config, dev) {
                (Some(path), _) => match Config::load(&path) {
                    Ok(c) => c,
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
                (None, _) => {
                    eprintln!(
                        "tokend: serve --dev arrives with the dev-mode issue; use serve --config FILE"
                    );
                    return ExitCode::FAILURE;
                }
            };
            if config.revocation.backend == "memory" {
                tracing::warn!(
                    "revocation.backend = \"memory\": revocations are neither shared between replicas nor kept across restarts"
                );
            }
            match tokend::app::start(config, tokend::api::http::system_clock()).await {
                Ok(app) => {
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
