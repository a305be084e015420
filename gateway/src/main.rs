use std::process::ExitCode;

use clap::Parser;
use gateway::config::LogFormat;
use gateway::{Assets, Config, Node, NodeOptions};
use tracing_subscriber::EnvFilter;

/// How long a graceful shutdown waits for open connections before closing anyway.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    // Levels from RUST_LOG (default info); every event carries its fields (addr, store, …).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }

    match run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // One line a newcomer can act on; details are already in the message.
            eprintln!("gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), String> {
    let assets = if config.api_only {
        Assets::None
    } else {
        Assets::folder(&config.assets).map_err(|e| e.to_string())?
    };
    let listener = gateway::bind(config.listen).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let node = Node::open(NodeOptions::from_config(&config).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    tracing::info!(
        %addr,
        ?assets,
        store = %config.store.display(),
        durability = ?config.durability,
        difficulty = config.difficulty,
        last_seq = node.store().last_seq(),
        "gateway listening"
    );
    // Printed on stdout so scripts and tests can find the URL, whatever the log level.
    #[allow(clippy::print_stdout)]
    {
        println!("Meterkast gateway listening on http://{addr}/");
    }
    let router = gateway::app(&node, &assets);
    let stopping = node.clone();
    let serving = gateway::serve(listener, router, async move {
        shutdown_signal().await;
        tracing::info!("shutting down: closing subscriptions, finishing requests");
        stopping.begin_shutdown();
    });
    // In-flight requests get a grace period; a client that never reads cannot hold the node.
    let grace = async {
        node.shutdown_started().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = grace => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "connections still open after the grace period; closing anyway");
            Ok(())
        }
    };
    // Whatever ended serving, commit what was accepted and close the store cleanly.
    node.close();
    served.map_err(|e| format!("server error: {e}"))?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM (systemd's stop), so in-flight requests can finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
