//! `pi-agent`: the Meterkast meter reader. The only crate that opens serial ports.
//!
//! ```text
//!  pi-agent parse FILE|-  ─► protocol::p1 (framer → telegram → readings) ─► stdout (text or JSON)
//! ```
//!
//! Each subcommand lives in its own module; `run`, `pair-code`, `status` and `reset` join them as
//! they are built.

mod parse;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Meterkast meter reader for a Raspberry Pi on the meter's P1 port.
#[derive(Debug, Parser)]
#[command(name = "pi-agent", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parse P1 telegrams (or an encrypted Smarty frame) from a file or stdin and print them.
    Parse(parse::ParseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Parse(args) => parse::run(&args),
    }
}
