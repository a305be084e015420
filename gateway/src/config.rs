//! Command line and environment configuration of the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

/// A Meterkast tangle node that also serves the web app.
#[derive(Debug, Clone, Parser)]
#[command(name = "gateway", version, about)]
pub struct Config {
    /// Address to listen on. Loopback by default: expose it on purpose, not by accident.
    #[arg(long, env = "MK_GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Folder holding the built web app (`trunk build` output, with an `index.html`).
    #[arg(long, env = "MK_GATEWAY_ASSETS", default_value = "dist")]
    pub assets: PathBuf,

    /// Serve only the node API, not the web app (for node operators without the app).
    #[arg(long, env = "MK_GATEWAY_API_ONLY", conflicts_with = "assets")]
    pub api_only: bool,
}
