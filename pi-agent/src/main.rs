//! `pi-agent`: the Meterkast meter reader. The only crate that opens serial ports.

use clap::Parser;

/// Meterkast meter reader for a Raspberry Pi on the meter's P1 port.
#[derive(Debug, Parser)]
#[command(name = "pi-agent", version, about, long_about = None)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
}
