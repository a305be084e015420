//! Configuration: a TOML file, overridden by `MK_AGENT_…` environment variables, overridden by
//! command-line flags. Every setting has a default that works for a first try with the
//! simulator on a laptop; see `pi-agent/agent.example.toml` for the file format.
//!
//! (The 2018 client read its meter version from a misspelt environment variable and silently
//! fell back to DSMR 2.2. Here an unknown key in the file is an error, and the effective
//! configuration is logged at start.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use protocol::channel::Tier;
use serde::Deserialize;

use crate::agent::AgentSettings;
use crate::parse::CountryArg;
use crate::source::{BaudRate, Speed};

/// Which source to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// The meter's P1 port.
    Serial,
    /// A capture file.
    Replay,
    /// A simulated household.
    Simulator,
}

/// `[source]` in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    kind: Option<SourceKind>,
    serial: Option<String>,
    baud: Option<String>,
    replay: Option<PathBuf>,
    speed: Option<String>,
    seed: Option<u64>,
}

/// The file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    state_dir: Option<PathBuf>,
    nodes: Option<Vec<String>>,
    tiers: Option<Vec<String>>,
    checkpoint_secs: Option<u64>,
    queue_capacity: Option<usize>,
    include_raw: Option<bool>,
    country: Option<String>,
    consent_poll_ms: Option<u64>,
    receipt_interval_secs: Option<u64>,
    max_backoff_secs: Option<u64>,
    #[serde(default)]
    source: SourceFile,
}

/// Flags shared by the subcommands that need the configuration (each also read from its
/// `MK_AGENT_…` variable).
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML). Default: none, unless `MK_AGENT_CONFIG` names one.
    #[arg(long, short, env = "MK_AGENT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where identity, consent state and the outbox live.
    #[arg(long, env = "MK_AGENT_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// Flags of `run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// A node to publish to (repeat for several; comma-separated in the variable).
    #[arg(long = "node", env = "MK_AGENT_NODES", value_delimiter = ',', value_name = "URL")]
    pub nodes: Vec<String>,
    /// What to read: the P1 port, a capture file, or a simulated household.
    #[arg(long, env = "MK_AGENT_SOURCE", value_enum)]
    pub source: Option<SourceKind>,
    /// Serial device of the P1 cable (implies `--source serial`).
    #[arg(long, env = "MK_AGENT_SERIAL", value_name = "DEVICE")]
    pub serial: Option<String>,
    /// Serial speed: `auto` (115200, then 9600) or a number.
    #[arg(long, env = "MK_AGENT_BAUD", value_name = "BAUD")]
    pub baud: Option<String>,
    /// Capture file to replay (implies `--source replay`).
    #[arg(long, env = "MK_AGENT_REPLAY", value_name = "FILE")]
    pub replay: Option<PathBuf>,
    /// Replay speed: a factor of the meter's pace (`1`, `10`) or `max`.
    #[arg(long, env = "MK_AGENT_SPEED", value_name = "FACTOR")]
    pub speed: Option<String>,
    /// Simulate a household (implies `--source simulator`); the number seeds it.
    #[arg(long, env = "MK_AGENT_SIMULATE", value_name = "SEED", num_args = 0..=1, default_missing_value = "1")]
    pub simulate: Option<u64>,
    /// Tiers to publish, comma-separated: second, ten-seconds, minute, fifteen-minutes, hour, day.
    #[arg(long, env = "MK_AGENT_TIERS", value_delimiter = ',')]
    pub tiers: Vec<String>,
    /// Signed checkpoint at most this many seconds after a reading (default: 60 s for fast
    /// tiers, right away for slow ones).
    #[arg(long, env = "MK_AGENT_CHECKPOINT_SECS", value_name = "SECS")]
    pub checkpoint_secs: Option<u64>,
    /// Carry each raw telegram in the 1 s stream.
    #[arg(long, env = "MK_AGENT_INCLUDE_RAW")]
    pub include_raw: Option<bool>,
    /// How often to poll the consent log, in milliseconds.
    #[arg(long, env = "MK_AGENT_CONSENT_POLL_MS", value_name = "MS")]
    pub consent_poll_ms: Option<u64>,
    /// Most data messages kept while no node is reachable.
    #[arg(long, env = "MK_AGENT_QUEUE_CAPACITY", value_name = "N")]
    pub queue_capacity: Option<usize>,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// Which.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this program.
    #[error("{path}: {source}")]
    Parse {
        /// Which.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// The source to open.
#[derive(Debug, Clone)]
pub enum SourceChoice {
    /// Serial port.
    Serial {
        /// Device.
        path: String,
        /// Speed.
        baud: BaudRate,
    },
    /// Capture replay.
    Replay {
        /// File.
        path: PathBuf,
        /// Pace.
        speed: Speed,
    },
    /// Simulator.
    Simulator {
        /// Seed.
        seed: u64,
    },
}

/// The default state directory: `$STATE_DIRECTORY` (systemd's `StateDirectory=`) or
/// `./agent-state`.
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("agent-state"))
}

fn load_file(path: Option<&Path>) -> Result<ConfigFile, ConfigError> {
    let Some(path) = path else { return Ok(ConfigFile::default()) };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|source| ConfigError::Parse { path: path.to_owned(), source: Box::new(source) })
}

/// The state directory for commands that need only that.
pub fn state_dir(args: &ConfigArgs) -> Result<PathBuf, ConfigError> {
    let file = load_file(args.config.as_deref())?;
    Ok(args.state_dir.clone().or(file.state_dir).unwrap_or_else(default_state_dir))
}

/// Parses a tier name.
pub fn parse_tier(name: &str) -> Result<Tier, ConfigError> {
    match name.trim() {
        "second" | "1s" => Ok(Tier::Second),
        "ten-seconds" | "10s" => Ok(Tier::TenSeconds),
        "minute" | "1min" => Ok(Tier::Minute),
        "fifteen-minutes" | "15min" => Ok(Tier::FifteenMinutes),
        "hour" | "1h" => Ok(Tier::Hour),
        "day" | "1d" => Ok(Tier::Day),
        other => Err(ConfigError::Invalid(format!(
            "unknown tier {other:?} (second, ten-seconds, minute, fifteen-minutes, hour, day)"
        ))),
    }
}

/// Merges flags, environment (already in the flags through clap) and file.
pub fn resolve(args: &RunArgs) -> Result<(AgentSettings, SourceChoice), ConfigError> {
    let file = load_file(args.config.config.as_deref())?;
    let state_dir =
        args.config.state_dir.clone().or(file.state_dir).unwrap_or_else(default_state_dir);
    let nodes = if args.nodes.is_empty() {
        file.nodes.unwrap_or_else(|| vec!["http://127.0.0.1:8080".to_owned()])
    } else {
        args.nodes.clone()
    };
    let tier_names =
        if args.tiers.is_empty() { file.tiers.unwrap_or_default() } else { args.tiers.clone() };
    let mut tiers: Vec<Tier> = if tier_names.is_empty() {
        Tier::ALL.to_vec()
    } else {
        tier_names.iter().map(|t| parse_tier(t)).collect::<Result<_, _>>()?
    };
    tiers.sort();
    tiers.dedup();
    let country = args_country(file.country.as_deref())?.map(Into::into);
    let settings = AgentSettings {
        state_dir,
        nodes,
        tiers,
        checkpoint_secs: args.checkpoint_secs.or(file.checkpoint_secs),
        queue_capacity: args.queue_capacity.or(file.queue_capacity).unwrap_or(20_000),
        include_raw: args.include_raw.or(file.include_raw).unwrap_or(false),
        country,
        consent_poll: Duration::from_millis(
            args.consent_poll_ms.or(file.consent_poll_ms).unwrap_or(1_000).max(50),
        ),
        receipt_interval_secs: file.receipt_interval_secs.unwrap_or(3_600),
        max_backoff: Duration::from_secs(file.max_backoff_secs.unwrap_or(30).max(1)),
    };
    let src = file.source;
    let kind = if let Some(kind) = args.source {
        kind
    } else if args.simulate.is_some() {
        SourceKind::Simulator
    } else if args.replay.is_some() {
        SourceKind::Replay
    } else if args.serial.is_some() {
        SourceKind::Serial
    } else {
        src.kind.ok_or_else(|| {
            ConfigError::Invalid(
                "no source: pass --serial /dev/ttyUSB0, --replay FILE or --simulate \
                 (or set [source] kind in the config file)"
                    .into(),
            )
        })?
    };
    let choice = match kind {
        SourceKind::Serial => {
            let path = args.serial.clone().or(src.serial).unwrap_or_else(|| "/dev/ttyUSB0".into());
            let baud = args.baud.clone().or(src.baud).unwrap_or_else(|| "auto".into());
            SourceChoice::Serial { path, baud: baud.parse().map_err(ConfigError::Invalid)? }
        }
        SourceKind::Replay => {
            let path = args.replay.clone().or(src.replay).ok_or_else(|| {
                ConfigError::Invalid("replay needs a file (--replay FILE)".into())
            })?;
            let speed = args.speed.clone().or(src.speed).unwrap_or_else(|| "1".into());
            SourceChoice::Replay { path, speed: speed.parse().map_err(ConfigError::Invalid)? }
        }
        SourceKind::Simulator => {
            SourceChoice::Simulator { seed: args.simulate.or(src.seed).unwrap_or(1) }
        }
    };
    Ok((settings, choice))
}

fn args_country(text: Option<&str>) -> Result<Option<CountryArg>, ConfigError> {
    text.map(|t| {
        CountryArg::from_str(t, true).map_err(|_| {
            ConfigError::Invalid(format!("unknown country {t:?} (nl, be, lu, at, se, hu, other)"))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn flags_override_the_file_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "state_dir = \"/tmp/x\"\nnodes = [\"http://a:1\"]\ntiers = [\"second\", \"hour\"]\n\
             [source]\nkind = \"replay\"\nreplay = \"cap.p1\"\nspeed = \"max\"\n",
        )
        .unwrap();
        let p = path.to_str().unwrap();
        let args = Wrapper::try_parse_from(["x", "--config", p, "--node", "http://b:2"]).unwrap();
        let (settings, source) = resolve(&args.run).unwrap();
        assert_eq!(settings.nodes, vec!["http://b:2"]);
        assert_eq!(settings.tiers, vec![Tier::Second, Tier::Hour]);
        assert_eq!(settings.state_dir, PathBuf::from("/tmp/x"));
        assert!(matches!(source, SourceChoice::Replay { speed: Speed::Unlimited, .. }));

        std::fs::write(&path, "stat_dir = \"/tmp/x\"\n").unwrap();
        let args = Wrapper::try_parse_from(["x", "--config", p, "--simulate"]).unwrap();
        assert!(matches!(resolve(&args.run), Err(ConfigError::Parse { .. })));
    }

    #[test]
    fn the_example_file_in_the_repository_is_valid() {
        let example = concat!(env!("CARGO_MANIFEST_DIR"), "/agent.example.toml");
        let args = Wrapper::try_parse_from(["x", "--config", example]).unwrap();
        let (settings, source) = resolve(&args.run).unwrap();
        assert_eq!(settings.tiers.len(), Tier::ALL.len());
        assert_eq!(settings.queue_capacity, 20_000);
        assert!(matches!(source, SourceChoice::Serial { baud: BaudRate::Auto, .. }));
    }
}
