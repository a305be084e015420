//! Command line and environment configuration of the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::store::Durability;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

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

    /// The message store (an SQLite database; `-wal` and `-shm` files appear beside it). Its
    /// folder is created if missing.
    #[arg(long, env = "MK_GATEWAY_STORE", default_value = "data/node.sqlite")]
    pub store: PathBuf,

    /// When to acknowledge: `full` fsyncs every commit (survives a power cut); `normal` commits to
    /// the OS page cache (survives a killed process, like NATS JetStream's file store).
    #[arg(long, env = "MK_GATEWAY_DURABILITY", value_enum, default_value = "full")]
    pub durability: Durability,

    /// Refuse new messages (HTTP 507) once the store file reaches this many MiB.
    #[arg(long, env = "MK_GATEWAY_STORE_MAX_MIB")]
    pub store_max_mib: Option<u64>,

    /// Proof-of-work difficulty in leading zero bits (0 = none). The default costs a Raspberry Pi
    /// a few milliseconds per message.
    #[arg(long, env = "MK_GATEWAY_DIFFICULTY", default_value_t = protocol::tangle::Difficulty::DEFAULT.bits(),
          value_parser = clap::value_parser!(u8).range(0..=i64::from(protocol::tangle::MAX_DIFFICULTY)))]
    pub difficulty: u8,

    /// Requests per second allowed per client IP address on `/api` (0 = no limit).
    #[arg(long, env = "MK_GATEWAY_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit: u32,

    /// Requests a client may send in a burst above the steady rate.
    #[arg(long, env = "MK_GATEWAY_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,

    /// Log format on stderr: `text` for people, `json` (one object per line) for log collectors.
    #[arg(long, env = "MK_GATEWAY_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// How many messages a live subscriber may fall behind before the node drops it.
    #[arg(long, env = "MK_GATEWAY_SUBSCRIBER_BUFFER", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub subscriber_buffer: u32,
}
