//! The `run`, `pair-code`, `status` and `reset` subcommands (thin shells over the modules).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use protocol::channel::{SavedDevice, Tier};

use crate::agent::{self, unix_now};
use crate::config::{self, ConfigArgs, RunArgs, SourceChoice};
use crate::source::{ReplaySource, SerialConfig, SerialSource, SimulatorSource};
use crate::state::StateDir;

/// How long `run` waits for the outbox to drain after a capture ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("pi-agent: {message}");
    ExitCode::FAILURE
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("stopping");
}

/// `pi-agent run`.
pub fn run(args: &RunArgs) -> ExitCode {
    let (settings, choice) = match config::resolve(args) {
        Ok(resolved) => resolved,
        Err(err) => return fail(err),
    };
    tracing::info!(?settings, ?choice, "configuration");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return fail(format!("cannot start the runtime: {err}")),
    };
    let result = runtime.block_on(async move {
        match choice {
            SourceChoice::Serial { path, baud } => {
                let mut serial = SerialConfig::new(path);
                serial.baud = baud;
                agent::run(settings, SerialSource::new(serial), shutdown_signal(), DRAIN_TIMEOUT)
                    .await
            }
            SourceChoice::Replay { path, speed } => match ReplaySource::open(&path, speed) {
                Ok(source) => agent::run(settings, source, shutdown_signal(), DRAIN_TIMEOUT).await,
                Err(err) => Err(err.into()),
            },
            SourceChoice::Simulator { seed } => {
                agent::run(settings, SimulatorSource::live(seed), shutdown_signal(), DRAIN_TIMEOUT)
                    .await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

/// `pi-agent pair-code`.
#[allow(clippy::print_stdout)]
pub fn pair_code(args: &ConfigArgs) -> ExitCode {
    let dir = match config::state_dir(args) {
        Ok(dir) => dir,
        Err(err) => return fail(err),
    };
    let state = match StateDir::open(&dir) {
        Ok(state) => state,
        Err(err) => return fail(err),
    };
    match (state.pairing(), state.pairing_code()) {
        (Err(err), _) | (_, Err(err)) => fail(err),
        (Ok(Some(pairing)), _) => {
            println!(
                "This device is paired (owner {}). `pi-agent reset` forgets the owner.",
                hex::encode(pairing.owner.id().0)
            );
            ExitCode::SUCCESS
        }
        (Ok(None), Ok(Some(text))) => match protocol::pairing::PairingCode::parse(&text) {
            Ok(code) => {
                agent::show_pairing_code(&code.to_text(), &code.to_uri());
                ExitCode::SUCCESS
            }
            Err(err) => fail(format!("the stored pairing code is unreadable: {err}")),
        },
        (Ok(None), Ok(None)) => fail(format!(
            "no pairing code yet: start the agent (`pi-agent run …`) with state directory {}",
            dir.display()
        )),
    }
}

/// `pi-agent status` flags.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `pi-agent status`.
#[allow(clippy::print_stdout)]
pub fn status(args: &StatusArgs) -> ExitCode {
    let dir = match config::state_dir(&args.config) {
        Ok(dir) => dir,
        Err(err) => return fail(err),
    };
    let state = match StateDir::open(&dir) {
        Ok(state) => state,
        Err(err) => return fail(err),
    };
    let status = match state.status() {
        Ok(Some(status)) => status,
        Ok(None) => return fail(format!("no status in {}: has the agent run?", dir.display())),
        Err(err) => return fail(err),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let age = unix_now().saturating_sub(status.written_at);
    println!("device      {}", status.device);
    println!(
        "agent       {}",
        if age <= 10 {
            "running".to_owned()
        } else {
            format!("not running (last seen {age} s ago)")
        }
    );
    println!("source      {}", status.source);
    println!(
        "owner       {}",
        status.owner.as_deref().unwrap_or("none — run `pi-agent pair-code`")
    );
    if status.grants.is_empty() {
        println!("grants      none");
    }
    for (grant, provider, tiers) in &status.grants {
        println!("grant       {grant} to provider {provider}: {}", tiers.join(", "));
    }
    match status.last_reading {
        Some((at, import, export)) => println!(
            "last read   {} (meter time), {import} W in, {export} W out",
            protocol::p1::UtcTime(i64::try_from(at).unwrap_or(0))
        ),
        None => println!("last read   none yet"),
    }
    println!("telegrams   {} read, {} refused", status.telegrams, status.refused);
    println!(
        "outbox      {} waiting{}",
        status.queue_depth,
        if status.queue_refused > 0 {
            format!(", {} readings dropped while full", status.queue_refused)
        } else {
            String::new()
        }
    );
    for (url, ok, error) in &status.nodes {
        let ok =
            ok.map_or("never".to_owned(), |t| format!("{} s ago", unix_now().saturating_sub(t)));
        println!(
            "node        {url}: last delivery {ok}{}",
            error.as_ref().map_or(String::new(), |e| format!("; last error: {e}"))
        );
    }
    ExitCode::SUCCESS
}

/// `pi-agent reset` flags.
#[derive(Debug, Clone, Args)]
pub struct ResetArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Reset even though the agent looks like it is running.
    #[arg(long)]
    force: bool,
}

/// `pi-agent reset`: forget the owner; membership emptied so the next start rotates every
/// stream into an epoch no provider receives a key for.
#[allow(clippy::print_stdout)]
pub fn reset(args: &ResetArgs) -> ExitCode {
    let dir = match config::state_dir(&args.config) {
        Ok(dir) => dir,
        Err(err) => return fail(err),
    };
    let state = match StateDir::open(&dir) {
        Ok(state) => state,
        Err(err) => return fail(err),
    };
    if let Ok(Some(status)) = state.status()
        && unix_now().saturating_sub(status.written_at) <= 10
        && !args.force
    {
        return fail("the agent is running; stop it first (or pass --force)");
    }
    if let Ok(Some(bytes)) = state.channel() {
        match SavedDevice::decode(&bytes) {
            Ok(mut saved) => {
                for tier in Tier::ALL {
                    for member in saved.members(tier) {
                        let _ = saved.remove_member(tier, member);
                    }
                }
                if let Err(err) = state.save_channel(&saved.encode()) {
                    return fail(err);
                }
            }
            Err(err) => return fail(format!("channel.bin is unreadable: {err}")),
        }
    }
    if let Err(err) = state.forget_pairing() {
        return fail(err);
    }
    println!(
        "Owner forgotten, every grant ended: the next start publishes in fresh epochs with no \
         members and shows a new pairing code."
    );
    ExitCode::SUCCESS
}
