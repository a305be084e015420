//! `pi-agent`: the Meterkast meter reader. The only crate that opens serial ports.
//!
//! ```text
//!  pi-agent run        P1 port / capture / simulator ─► protocol::p1 ─► tiers ─► channel
//!                      ─► durable outbox ─► tangle nodes; consent log followed
//!  pi-agent pair-code  the code (and QR) to pair with a wallet
//!  pi-agent status     owner, grants, last reading, outbox depth, nodes
//!  pi-agent parse      FILE|- ─► telegrams and readings (text or JSON)
//!  pi-agent reset      forget the owner; every stream starts a new epoch nobody holds
//! ```

use pi_agent::{commands, config, parse};

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Meterkast meter reader for a Raspberry Pi on the meter's P1 port.
///
/// First time? Try it without a meter: start a node (`gateway --api-only`), then
/// `pi-agent run --simulate --node http://127.0.0.1:8080`. It prints a pairing code for your
/// wallet and starts publishing encrypted readings that only providers you grant can read.
#[derive(Debug, Parser)]
#[command(name = "pi-agent", version, about, long_about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, env = "MK_AGENT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Read the meter and publish: runs until stopped (Ctrl-C or SIGTERM).
    ///
    /// Examples:
    ///   pi-agent run --serial /dev/ttyUSB0 --node https://node.example
    ///   pi-agent run --replay capture.p1 --speed 10 --node http://127.0.0.1:8080
    ///   pi-agent run --simulate --node http://127.0.0.1:8080
    #[command(verbatim_doc_comment)]
    Run(config::RunArgs),
    /// Show the pairing code (text and QR) while the device has no owner.
    PairCode(config::ConfigArgs),
    /// Show owner, grants, last reading, outbox depth and node health.
    Status(commands::StatusArgs),
    /// Parse P1 telegrams (or an encrypted Smarty frame) from a file or stdin and print them.
    Parse(parse::ParseArgs),
    /// Forget the owner and end every grant: streams restart in epochs nobody holds a key for,
    /// and a new pairing code is shown at the next start. Stop the agent first.
    Reset(commands::ResetArgs),
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MK_AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse(args) => parse::run(&args),
        Command::Run(args) => {
            init_logging(cli.log_format);
            commands::run(&args)
        }
        Command::PairCode(args) => commands::pair_code(&args),
        Command::Status(args) => commands::status(&args),
        Command::Reset(args) => {
            init_logging(cli.log_format);
            commands::reset(&args)
        }
    }
}
