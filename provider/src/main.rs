//! `meterkast-provider`: a provider's backend tool.
//!
//! ```text
//!  init      identity + signed card (published)       request   signed access request → link + QR
//!  follow    granted streams → CSV / JSON lines        receipts  consent receipts and their state
//!  forget    delete a grant's keys and data; print a signed deletion statement
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use getrandom::SysRng;
use protocol::channel::Tier;
use protocol::consent::GrantId;
use protocol::crypto::SignatureContext;
use protocol::provider::{AccessRequest, DataItem, ProviderCard, PurposeCategory};
use protocol::tangle::Address;
use provider::follow::{FollowOptions, OutputFormat};
use provider::store::ProviderStore;
use rand_core::{Rng, UnwrapErr};

/// Meterkast provider tool: ask households for access, receive their meter data, and prove
/// you deleted it.
///
/// Typical first run:
///   meterkast-provider init --name "Wattt" --url https://wattt.example/ --contact privacy@wattt.example
///   meterkast-provider request --purpose "Show your usage per hour" --tier hour --days 365
///   meterkast-provider follow --format csv --out readings.csv
#[derive(Debug, Parser)]
#[command(name = "meterkast-provider", version, about, long_about, verbatim_doc_comment)]
struct Cli {
    /// State directory (identity, card, receipts, follower keys).
    #[arg(long, global = true, env = "MK_PROVIDER_STATE_DIR", default_value = "provider-state")]
    state_dir: PathBuf,
    /// Node to use (repeat for several).
    #[arg(
        long = "node",
        global = true,
        env = "MK_PROVIDER_NODES",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:8080"
    )]
    nodes: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create (or load) the provider identity and publish its signed card.
    Init(InitArgs),
    /// Publish a signed access request and print it as a link and a QR code.
    Request(RequestArgs),
    /// Follow every granted stream and write verified readings.
    Follow(FollowArgs),
    /// List consent receipts and their state.
    Receipts,
    /// Delete a grant's keys and stored state (crypto-shredding) and print a signed statement.
    Forget {
        /// The grant id (hex, as `receipts` shows it).
        grant: String,
    },
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Name shown to households.
    #[arg(long)]
    name: String,
    /// The provider's web address (its origin is shown to households).
    #[arg(long)]
    url: String,
    /// Privacy contact.
    #[arg(long)]
    contact: String,
}

#[derive(Debug, Args)]
struct RequestArgs {
    /// Why the data is needed, in plain words.
    #[arg(long)]
    purpose: String,
    /// Finest resolution asked for: second, ten-seconds, minute, fifteen-minutes, hour, day.
    #[arg(long, default_value = "hour")]
    tier: String,
    /// How long access lasts.
    #[arg(long, default_value_t = 365)]
    days: u64,
    /// Days after the end by which all data is deleted.
    #[arg(long, default_value_t = 30)]
    delete_after_days: u64,
}

#[derive(Debug, Args)]
struct FollowArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: OutputFormat,
    /// Write to this file (appending) instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also write readings not yet covered by a device checkpoint, marked `provisional`.
    #[arg(long)]
    provisional: bool,
    /// Messages arrive by live subscription; every this many milliseconds the followers check
    /// time-based events (and, when the nodes refuse subscriptions, poll).
    #[arg(long, default_value_t = 500)]
    poll_ms: u64,
    /// Awaited positions per device one subscription (or poll) covers, at most 64 (more
    /// catches up faster after an outage, fewer makes a lighter steady state).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// Poll instead of subscribing (for nodes behind a proxy that blocks event streams).
    #[arg(long)]
    poll_only: bool,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("meterkast-provider: {message}");
    ExitCode::FAILURE
}

fn parse_tier(name: &str) -> Option<Tier> {
    Some(match name {
        "second" => Tier::Second,
        "ten-seconds" => Tier::TenSeconds,
        "minute" => Tier::Minute,
        "fifteen-minutes" => Tier::FifteenMinutes,
        "hour" => Tier::Hour,
        "day" => Tier::Day,
        _ => return None,
    })
}

async fn publish(nodes: &[String], address: [u8; 32], payload: Vec<u8>) -> Result<(), String> {
    let client = tangle_client::Client::new(nodes.to_vec()).map_err(|e| e.to_string())?;
    client
        .publish(Address(address), now() * 1000, payload)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[allow(clippy::print_stdout)]
fn print_link(link: &str) {
    println!("{link}\n");
    if let Ok(code) = qrcode::QrCode::new(link.as_bytes()) {
        let art = code
            .render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .build();
        println!("{art}");
    }
}

#[allow(clippy::print_stdout)]
async fn run(cli: Cli) -> Result<(), String> {
    let store = ProviderStore::open(&cli.state_dir).map_err(|e| e.to_string())?;
    let mut rng = UnwrapErr(SysRng);
    match cli.command {
        Command::Init(args) => {
            let (keys, created) = store.init(&mut rng).map_err(|e| e.to_string())?;
            let card =
                ProviderCard::create(&keys, &args.name, &args.url, &args.contact, now(), &mut rng)
                    .map_err(|e| e.to_string())?;
            store.save_card(&card).map_err(|e| e.to_string())?;
            publish(&cli.nodes, card.address(), card.encode().to_vec()).await?;
            println!(
                "{} provider {} ({}); card published",
                if created { "created" } else { "loaded" },
                hex::encode(keys.id().0),
                card.origin().as_str()
            );
        }
        Command::Request(args) => {
            let keys = store.keys().map_err(|e| e.to_string())?;
            let card = store.card().map_err(|e| e.to_string())?.ok_or("run `init` first")?;
            let tier =
                parse_tier(&args.tier).ok_or_else(|| format!("unknown tier {:?}", args.tier))?;
            let mut nonce = [0u8; 16];
            rng.fill_bytes(&mut nonce);
            let start = now();
            let end = start + args.days * 86_400;
            let request = AccessRequest {
                provider: keys.id(),
                nonce,
                purpose: args.purpose,
                category: PurposeCategory::EnergyInsight,
                data_items: vec![DataItem::EnergyImport, DataItem::EnergyExport, DataItem::Power],
                max_resolution: tier,
                start,
                end,
                delete_by: end + args.delete_after_days * 86_400,
                return_url: card.url().to_owned(),
                created_at: start,
            }
            .sign(&keys, &mut rng)
            .map_err(|e| e.to_string())?;
            publish(&cli.nodes, request.address(), request.encode().to_vec()).await?;
            print_link(&request.link().to_uri());
        }
        Command::Follow(args) => {
            let options = FollowOptions {
                nodes: cli.nodes.clone(),
                format: args.format,
                provisional: args.provisional,
                poll: Duration::from_millis(args.poll_ms.max(20)),
                window: args.window.clamp(1, provider::watch::MAX_SUBSCRIPTION_ADDRESSES),
                force_polling: args.poll_only,
            };
            let mut out: Box<dyn Write + Send> = match &args.out {
                Some(path) => Box::new(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                ),
                None => Box::new(std::io::stdout()),
            };
            let stop = async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = async { if let Some(t) = term.as_mut() { t.recv().await; } else { std::future::pending::<()>().await } } => {},
                }
            };
            provider::follow(&store, &options, &mut out, stop).await.map_err(|e| e.to_string())?;
        }
        Command::Receipts => {
            for receipt in store.receipts().map_err(|e| e.to_string())? {
                let grant = receipt.grant();
                let state = if now() >= grant.end { "ended" } else { "active (as last known)" };
                println!(
                    "{}  device {}  tiers {:?}  from {} to {}  {}  purpose: {}",
                    hex::encode(grant.id.0),
                    hex::encode(receipt.device().id().0),
                    grant.tiers,
                    grant.start,
                    grant.end,
                    state,
                    grant.purpose
                );
            }
        }
        Command::Forget { grant } => {
            let keys = store.keys().map_err(|e| e.to_string())?;
            let id: [u8; 16] = hex::decode(&grant)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or("a grant id is 32 hex digits")?;
            let grant_id = GrantId(id);
            let receipt = store
                .receipt(grant_id)
                .map_err(|e| e.to_string())?
                .ok_or("no receipt for this grant")?;
            let device = hex::encode(receipt.device().id().0);
            let others = store
                .receipts()
                .map_err(|e| e.to_string())?
                .iter()
                .any(|r| r.grant().id != grant_id && hex::encode(r.device().id().0) == device);
            store.remove(&format!("receipts/{grant}.bin")).map_err(|e| e.to_string())?;
            if !others {
                // The follower state holds the epoch keys: without it nothing stored on any node
                // for this device can be decrypted by this provider again.
                store.remove(&format!("followers/{device}.bin")).map_err(|e| e.to_string())?;
            }
            let statement = serde_json::json!({
                "statement": "meterkast deletion statement v1",
                "provider": hex::encode(keys.id().0),
                "grant": grant,
                "device": device,
                "request_digest": hex::encode(receipt.grant().request_digest),
                "deleted_at": now(),
                "deleted": ["consent receipt", if others { "no stream keys (another grant still uses them)" } else { "stream epoch keys" }],
            });
            let message = serde_json::to_vec(&statement).map_err(|e| e.to_string())?;
            let signature = keys
                .sign(SignatureContext::DeletionStatement, &message, &mut rng)
                .map_err(|e| e.to_string())?;
            let signed = serde_json::json!({
                "statement": statement,
                "signature": hex::encode(signature),
                "provider_keys": hex::encode(keys.public().encode()),
            });
            let text = serde_json::to_string_pretty(&signed).map_err(|e| e.to_string())?;
            store.save_deletion(grant_id, text.as_bytes()).map_err(|e| e.to_string())?;
            println!("{text}");
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MK_PROVIDER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(err) => return fail(err),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}
