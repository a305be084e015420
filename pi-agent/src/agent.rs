//! The agent's run loop: telegrams in, encrypted streams out, consent followed.
//!
//! ```text
//!  source task ──bytes──► Framer ─► Telegram ─► Reading ─► TierAggregator ─► DeviceChannel::publish
//!                                   (CRC must hold)                             │ save channel.bin
//!                                                                               ▼ (over-claims, never under)
//!  consent poll (1 s) ─► pairing claims / consent-log entries ─► follower ─► Outbox::push (fsync)
//!                                                                               │
//!  sender task ◄───────────────────────────── front of the outbox ◄─────────────┘
//!     └─ tangle-client: PoW, POST to every node; retry with backoff; pop only when acknowledged
//! ```
//!
//! Restart safety: the outbox records which telegram was accepted last, and the channel state
//! is saved *before* its messages enter the outbox, so the epoch link a restarted device sends
//! never claims fewer messages than were queued (a claimed message that never arrives shows as
//! a gap, an unclaimed one would be invisible). Consent-log entries already acted upon are
//! replayed on a scratch channel after a restart, so their keyloads and notices are not sent
//! twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use getrandom::SysRng;
use protocol::channel::{DeviceChannel, OutgoingKind, Reading, SavedDevice, StreamConfig, Tier};
use protocol::consent::{
    ConsentFollowerConfig, ConsentReport, DeviceConsentFollower, Publish, PublishKind,
};
use protocol::crypto::{PartyKeys, PartySecret};
use protocol::p1::{Country, Framer, Readings, Telegram};
use protocol::pairing::{ClaimOutcome, ExpectClaim};
use protocol::tangle::{Address, MessageId};
use rand_core::UnwrapErr;
use tokio::sync::{Notify, mpsc};

use crate::queue::{MessageKind, NewMessage, Outbox, QueueError};
use crate::reading::reading_from_telegram;
use crate::source::{Source, SourceError};
use crate::state::{Pairing, StateDir, StateError, Status};
use crate::tiers::TierAggregator;

/// The operating system's CSPRNG in the shape `protocol` takes.
pub type Rng = UnwrapErr<SysRng>;

/// A fresh system RNG.
pub fn system_rng() -> Rng {
    UnwrapErr(SysRng)
}

/// UTC seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What `run` needs besides a source.
#[derive(Debug, Clone)]
pub struct AgentSettings {
    /// The state directory.
    pub state_dir: PathBuf,
    /// Node base URLs (messages go to all, reads come from any).
    pub nodes: Vec<String>,
    /// Tiers published.
    pub tiers: Vec<Tier>,
    /// Checkpoint interval override (seconds) for every tier; `None`: the tier's default.
    pub checkpoint_secs: Option<u64>,
    /// Most data messages waiting in the outbox.
    pub queue_capacity: usize,
    /// Carry the raw telegram in 1 s readings (lets a provider check each reading against it).
    pub include_raw: bool,
    /// Interpret tariffs for this country instead of detecting it.
    pub country: Option<Country>,
    /// How often the consent log and pairing inbox are polled.
    pub consent_poll: Duration,
    /// Seconds between delivery receipts.
    pub receipt_interval_secs: u64,
    /// Longest wait between retries when every node fails.
    pub max_backoff: Duration,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// State directory trouble.
    #[error(transparent)]
    State(#[from] StateError),
    /// Outbox trouble.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The source failed for good.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The node list is unusable.
    #[error("node list: {0}")]
    Nodes(#[from] tangle_client::ClientError),
    /// A local protocol operation failed (not caused by a peer).
    #[error("channel: {0}")]
    Channel(#[from] protocol::channel::ChannelError),
    /// Pairing set-up failed.
    #[error("pairing: {0}")]
    Pairing(#[from] protocol::pairing::PairingError),
    /// The saved channel does not belong to this identity.
    #[error("channel.bin belongs to another device identity; run `pi-agent reset`")]
    ForeignChannel,
}

/// Per-node delivery health, for `status`.
#[derive(Debug, Clone, Default)]
struct NodeHealth {
    last_ok: Option<u64>,
    last_error: Option<String>,
}

/// Cursors for polling addresses on the nodes (sequences are node-local).
#[derive(Debug, Default)]
struct Poller {
    cursors: HashMap<(usize, [u8; 32]), u64>,
    seen: HashSet<MessageId>,
    seen_order: VecDeque<MessageId>,
}

const SEEN_WINDOW: usize = 4096;

impl Poller {
    /// New payloads at `address`, in arrival order, from the first node that answers.
    async fn fetch(&mut self, client: &tangle_client::Client, address: [u8; 32]) -> Vec<Vec<u8>> {
        for node in 0..client.nodes().len() {
            let mut out = Vec::new();
            let mut ok = true;
            loop {
                let after = self.cursors.get(&(node, address)).copied().unwrap_or(0);
                match client.list(node, Address(address), after, 100).await {
                    Ok(page) => {
                        for (_, message) in &page.messages {
                            let id = message.id();
                            if self.seen.insert(id) {
                                self.seen_order.push_back(id);
                                if self.seen_order.len() > SEEN_WINDOW
                                    && let Some(old) = self.seen_order.pop_front()
                                {
                                    self.seen.remove(&old);
                                }
                                out.push(message.payload().to_vec());
                            }
                        }
                        self.cursors.insert((node, address), page.next_after);
                        if !page.more {
                            break;
                        }
                    }
                    Err(err) => {
                        tracing::debug!(node, error = %err, "poll failed; trying the next node");
                        ok = false;
                        break;
                    }
                }
            }
            if ok || !out.is_empty() {
                return out;
            }
        }
        Vec::new()
    }
}

fn message_kind(kind: PublishKind) -> MessageKind {
    match kind {
        PublishKind::Channel(OutgoingKind::Data) => MessageKind::Data,
        _ => MessageKind::Control,
    }
}

fn to_new(items: impl IntoIterator<Item = Publish>) -> Vec<NewMessage> {
    let time_ms = unix_now_ms();
    items
        .into_iter()
        .map(|p| NewMessage {
            kind: message_kind(p.kind),
            time_ms,
            address: p.address,
            payload: p.payload,
        })
        .collect()
}

enum Consent {
    /// Waiting for a claim.
    Unpaired(Option<ExpectClaim>),
    /// Following the log.
    Paired {
        follower: Box<DeviceConsentFollower>,
        owner: String,
        /// Entries acted upon before this start (replayed silently).
        replay_until: u64,
        /// Entries accepted in this process.
        accepted: u64,
        scratch: Option<Box<DeviceChannel>>,
    },
}

/// Prints the pairing code as text and as a terminal QR code (stdout, for the installer).
#[allow(clippy::print_stdout)]
pub fn show_pairing_code(text: &str, uri: &str) {
    println!("Pair this meter reader with your Meterkast wallet.");
    println!("Scan the QR code, or type the code:\n\n  {text}\n");
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let art = code
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build();
            println!("{art}\n");
        }
        Err(err) => println!("(no QR code: {err})"),
    }
    println!("`pi-agent pair-code` shows this again.");
}

/// The running agent (owned by the run loop).
struct Agent {
    settings: AgentSettings,
    state: StateDir,
    keys: PartyKeys,
    secret: PartySecret,
    channel: DeviceChannel,
    consent: Consent,
    outbox: Arc<Mutex<Outbox>>,
    wake_sender: Arc<Notify>,
    client: tangle_client::Client,
    poller: Poller,
    rng: Rng,
    framer: Framer,
    aggregator: TierAggregator,
    last_reading_at: Option<u64>,
    last_reading: Option<Reading>,
    telegrams: u64,
    refused: u64,
    health: Arc<Mutex<Vec<NodeHealth>>>,
    source_name: String,
}

impl Agent {
    fn stream_configs(settings: &AgentSettings) -> Vec<StreamConfig> {
        settings
            .tiers
            .iter()
            .map(|&tier| {
                let mut config = StreamConfig::new(tier);
                if let Some(secs) = settings.checkpoint_secs {
                    config.checkpoint_interval_secs = secs;
                }
                config
            })
            .collect()
    }

    fn push(&self, items: Vec<NewMessage>, reading_at: Option<u64>) -> Result<(), AgentError> {
        if items.is_empty() && reading_at.is_none() {
            return Ok(());
        }
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox.push(items, reading_at)?;
        drop(outbox);
        self.wake_sender.notify_one();
        Ok(())
    }

    /// Signs a checkpoint now for every stream with uncovered messages, so providers can
    /// verify the last readings before a stop instead of waiting for the next start.
    fn checkpoint_all(&mut self) -> Result<(), AgentError> {
        let now = unix_now();
        let mut items = Vec::new();
        for &tier in &self.settings.tiers {
            if let Some(item) = self.channel.checkpoint_now(tier, now, &mut self.rng)? {
                items.push(Publish::from(item));
            }
        }
        if !items.is_empty() {
            self.save_channel()?;
            self.push(to_new(items), None)?;
        }
        Ok(())
    }

    fn save_channel(&self) -> Result<(), AgentError> {
        self.state.save_channel(&self.channel.save())?;
        Ok(())
    }

    /// Frames, parses and publishes whatever complete telegrams `bytes` finish.
    fn on_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentError> {
        self.framer.feed(bytes);
        let mut readings = Vec::new();
        while let Some(step) = self.framer.next_frame() {
            let frame = match step {
                Ok(frame) => frame,
                Err(err) => {
                    tracing::debug!(error = %err, "bytes outside a telegram");
                    continue;
                }
            };
            self.telegrams += 1;
            let telegram = match Telegram::parse(frame) {
                Ok(t) => t,
                Err(err) => {
                    self.refused += 1;
                    tracing::warn!(error = %err, "unparseable telegram dropped");
                    continue;
                }
            };
            let parsed = match self.settings.country {
                Some(country) => Readings::with_country(&telegram, country),
                None => Readings::from_telegram(&telegram),
            };
            match reading_from_telegram(&telegram, &parsed, self.settings.include_raw) {
                Ok(reading) => readings.push(reading),
                Err(err) => {
                    self.refused += 1;
                    tracing::warn!(error = %err, offset = telegram.offset(), "telegram dropped");
                }
            }
        }
        for reading in readings {
            self.publish_reading(reading)?;
        }
        Ok(())
    }

    fn publish_reading(&mut self, reading: Reading) -> Result<(), AgentError> {
        if self.last_reading_at.is_some_and(|last| reading.timestamp <= last) {
            tracing::debug!(
                at = reading.timestamp,
                "reading already published (or clock went back)"
            );
            return Ok(());
        }
        let now = unix_now();
        let mut items = Vec::new();
        for (tier, tier_reading) in self.aggregator.push(&reading, &self.settings.tiers) {
            let mut raw_free = tier_reading;
            if tier != Tier::Second {
                raw_free.raw_telegram = None;
            }
            let out = match self.channel.publish(tier, &[raw_free], now, &mut self.rng) {
                Ok(out) => out,
                Err(err) => {
                    // A reading the channel cannot carry (more tariffs than the format holds):
                    // the meter's data, not a reason to stop reading the meter.
                    tracing::warn!(error = %err, ?tier, "reading not publishable; skipped");
                    continue;
                }
            };
            if let Consent::Paired { follower, .. } = &mut self.consent {
                follower.record_published(tier, &out);
            }
            items.extend(out.into_iter().map(Publish::from));
        }
        // Save first: the epoch link may then over-claim (a gap), never under-claim.
        self.save_channel()?;
        self.push(to_new(items), Some(reading.timestamp))?;
        self.last_reading_at = Some(reading.timestamp);
        self.last_reading = Some(reading);
        Ok(())
    }

    /// Polls pairing claims or the consent log, and lets time pass for grants and checkpoints.
    async fn on_consent_tick(&mut self) -> Result<(), AgentError> {
        let now = unix_now();
        let checkpoints = self.channel.tick(now, &mut self.rng)?;
        if !checkpoints.is_empty() {
            self.save_channel()?;
            self.push(to_new(checkpoints.into_iter().map(Publish::from)), None)?;
        }
        if matches!(self.consent, Consent::Paired { .. }) {
            return self.follow_log(now).await;
        }
        let inbox = self.keys.public().inbox_address();
        let payloads = self.poller.fetch(&self.client, inbox).await;
        for payload in payloads {
            let Consent::Unpaired(waiting) = &mut self.consent else { break };
            let Some(state) = waiting.take() else { break };
            match state.receive_claim(&self.keys, &payload, now, &mut self.rng) {
                Ok(ClaimOutcome::Paired { state, confirmation }) => {
                    let pairing = Pairing {
                        owner: state.owner().clone(),
                        log_key: state.log_key().clone(),
                        pairing_id: state.pairing_id(),
                        paired_at: state.paired_at(),
                    };
                    self.state.save_pairing(&pairing)?;
                    let mut progress = self.state.progress()?;
                    progress.consent_entries_applied = 0;
                    self.state.save_progress(&progress)?;
                    self.push(to_new([confirmation]), None)?;
                    tracing::info!(owner = ?pairing.owner.id(), "paired");
                    self.consent = Consent::Paired {
                        follower: Box::new(self.new_follower(&pairing)),
                        owner: hex::encode(pairing.owner.id().0),
                        replay_until: 0,
                        accepted: 0,
                        scratch: None,
                    };
                    return Ok(());
                }
                Ok(ClaimOutcome::Refused { state, reason, announcement }) => {
                    tracing::warn!(%reason, "pairing claim refused");
                    *waiting = Some(state);
                    if let Some(announcement) = announcement {
                        self.push(to_new([announcement]), None)?;
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "pairing failed locally; showing a new code");
                    self.start_pairing(now, true)?;
                }
            }
        }
        Ok(())
    }

    /// Starts waiting for a claim with a fresh code: stores and (optionally) shows it, and
    /// queues the signed announcement.
    fn start_pairing(&mut self, now: u64, show: bool) -> Result<(), AgentError> {
        let (waiting, code, announcement) = ExpectClaim::start(&self.keys, now, &mut self.rng)?;
        self.state.save_pairing_code(&code.to_text())?;
        if show {
            show_pairing_code(&code.to_text(), &code.to_uri());
        }
        self.push(to_new([announcement]), None)?;
        self.consent = Consent::Unpaired(Some(waiting));
        Ok(())
    }

    fn new_follower(&self, pairing: &Pairing) -> DeviceConsentFollower {
        DeviceConsentFollower::new(
            self.keys.id(),
            pairing.owner.clone(),
            &pairing.log_key,
            ConsentFollowerConfig { receipt_interval_secs: self.settings.receipt_interval_secs },
        )
    }

    async fn follow_log(&mut self, now: u64) -> Result<(), AgentError> {
        loop {
            let Consent::Paired { follower, .. } = &self.consent else { return Ok(()) };
            let addresses = follower.watch_addresses();
            let mut progressed = false;
            for address in addresses {
                let payloads = self.poller.fetch(&self.client, address).await;
                for payload in payloads {
                    progressed = true;
                    self.apply_log_payload(&address, &payload, now)?;
                }
            }
            if !progressed {
                break;
            }
        }
        let Consent::Paired { follower, replay_until, accepted, scratch, .. } = &mut self.consent
        else {
            return Ok(());
        };
        if *accepted >= *replay_until {
            *scratch = None;
            match follower.tick(&self.keys, &mut self.channel, now, &mut self.rng) {
                Ok(step) => {
                    log_reports(&step.reports);
                    if !step.publish.is_empty() {
                        self.state.save_channel(&self.channel.save())?;
                        self.push(to_new(step.publish), None)?;
                    }
                }
                Err(err) => tracing::warn!(error = %err, "consent tick failed"),
            }
        }
        Ok(())
    }

    fn apply_log_payload(
        &mut self,
        address: &[u8; 32],
        payload: &[u8],
        now: u64,
    ) -> Result<(), AgentError> {
        let Consent::Paired { follower, replay_until, accepted, scratch, .. } = &mut self.consent
        else {
            return Ok(());
        };
        let silent = *accepted < *replay_until;
        let result = if silent {
            let scratch = match scratch {
                Some(s) => s,
                None => {
                    let configs = Self::stream_configs(&self.settings);
                    let keys = StateDir::device_keys(&self.secret);
                    scratch.insert(Box::new(DeviceChannel::new(keys, &configs, &mut self.rng)?))
                }
            };
            follower.receive(&self.keys, scratch, address, payload, now, &mut self.rng)
        } else {
            follower.receive(&self.keys, &mut self.channel, address, payload, now, &mut self.rng)
        };
        let step = match result {
            Ok(step) => step,
            Err(err) => {
                tracing::warn!(error = %err, "consent entry could not be carried out");
                return Ok(());
            }
        };
        let counted = step
            .reports
            .iter()
            .any(|r| !matches!(r, ConsentReport::Ignored(_) | ConsentReport::Anomaly(_)));
        if counted {
            *accepted += 1;
        }
        if silent {
            return Ok(());
        }
        log_reports(&step.reports);
        let applied = *accepted;
        self.state.save_channel(&self.channel.save())?;
        self.push(to_new(step.publish), None)?;
        if counted {
            let mut progress = self.state.progress()?;
            progress.consent_entries_applied = applied;
            self.state.save_progress(&progress)?;
        }
        Ok(())
    }

    fn write_status(&self) -> Result<(), AgentError> {
        let outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        let (queue_depth, queue_refused) = (outbox.len(), outbox.refused());
        drop(outbox);
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let (owner, grants) = match &self.consent {
            Consent::Unpaired(_) => (None, Vec::new()),
            Consent::Paired { follower, owner, .. } => (
                Some(owner.clone()),
                follower
                    .live_grants()
                    .into_iter()
                    .map(|(id, provider, tiers)| {
                        (
                            hex::encode(id.0),
                            hex::encode(provider.0),
                            tiers.iter().map(|t| format!("{t:?}")).collect(),
                        )
                    })
                    .collect(),
            ),
        };
        let status = Status {
            written_at: unix_now(),
            source: self.source_name.clone(),
            device: hex::encode(self.keys.id().0),
            owner,
            grants,
            last_reading: self
                .last_reading
                .as_ref()
                .map(|r| (r.timestamp, r.power_import_w, r.power_export_w)),
            telegrams: self.telegrams,
            refused: self.refused,
            queue_depth,
            queue_refused,
            nodes: self
                .client
                .nodes()
                .iter()
                .zip(health.iter())
                .map(|(url, h)| (url.clone(), h.last_ok, h.last_error.clone()))
                .collect(),
        };
        self.state.save_status(&status)?;
        Ok(())
    }
}

fn log_reports(reports: &[ConsentReport]) {
    for report in reports {
        match report {
            ConsentReport::Ignored(_) => tracing::debug!(?report, "consent log"),
            ConsentReport::Anomaly(_) => tracing::warn!(?report, "consent log anomaly"),
            _ => tracing::info!(?report, "consent"),
        }
    }
}

/// Sends the outbox front to the nodes until it is empty, forever; backs off while all fail.
async fn sender(
    client: tangle_client::Client,
    outbox: Arc<Mutex<Outbox>>,
    wake: Arc<Notify>,
    health: Arc<Mutex<Vec<NodeHealth>>>,
    max_backoff: Duration,
) {
    const FIRST_BACKOFF: Duration = Duration::from_millis(250);
    let mut backoff = FIRST_BACKOFF;
    loop {
        let front = outbox.lock().unwrap_or_else(|p| p.into_inner()).front().cloned();
        let Some(message) = front else {
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        let result = client
            .publish(Address(message.address), message.time_ms, message.payload.clone())
            .await;
        let now = unix_now();
        match result {
            Ok(report) => {
                {
                    let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
                    for (i, url) in client.nodes().iter().enumerate() {
                        if report.acknowledged.iter().any(|r| &r.node == url) {
                            health[i].last_ok = Some(now);
                        }
                    }
                    for err in &report.failed {
                        let text = err.to_string();
                        if let Some(i) =
                            client.nodes().iter().position(|u| text.contains(u.as_str()))
                        {
                            health[i].last_error = Some(text);
                        }
                    }
                }
                let popped = outbox.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                if let Err(err) = popped {
                    tracing::error!(error = %err, "cannot advance the outbox head");
                    tokio::time::sleep(backoff).await;
                }
                backoff = FIRST_BACKOFF;
            }
            Err(err) => {
                {
                    let mut health = health.lock().unwrap_or_else(|p| p.into_inner());
                    for h in health.iter_mut() {
                        h.last_error = Some(err.to_string());
                    }
                }
                tracing::warn!(error = %err, retry_in = ?backoff, seq = message.seq,
                    "no node accepted the message; it stays in the outbox");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(max_backoff);
            }
        }
    }
}

/// Runs the agent until `shutdown` completes or the source ends (then waits for the outbox to
/// drain, at most `drain_timeout`).
pub async fn run<S: Source + 'static>(
    settings: AgentSettings,
    mut source: S,
    shutdown: impl Future<Output = ()>,
    drain_timeout: Duration,
) -> Result<(), AgentError> {
    let mut rng = system_rng();
    let state = StateDir::open(&settings.state_dir)?;
    let (secret, created) = state.identity_or_create(&mut rng)?;
    let keys = StateDir::device_keys(&secret);
    if created {
        tracing::info!(device = ?keys.id(), "created a new device identity");
    }
    let client = tangle_client::Client::new(settings.nodes.clone())?;
    let outbox = Outbox::open(&state.outbox_dir(), settings.queue_capacity)?;
    let last_reading_at = outbox.last_reading_at();
    let pending = outbox.len();
    let outbox = Arc::new(Mutex::new(outbox));
    let now = unix_now();

    // The channel: resumed (fresh epochs, keyloads to members) or new.
    let configs = Agent::stream_configs(&settings);
    let (channel, resume_items) = match state.channel()? {
        Some(bytes) => {
            let saved = SavedDevice::decode(&bytes).map_err(|_| StateError::Corrupt {
                path: state.root().join("channel.bin"),
                why: "undecodable".into(),
            })?;
            if saved.device() != keys.id() {
                return Err(AgentError::ForeignChannel);
            }
            saved.resume(StateDir::device_keys(&secret), now, &mut rng)?
        }
        None => {
            (DeviceChannel::new(StateDir::device_keys(&secret), &configs, &mut rng)?, Vec::new())
        }
    };
    state.save_channel(&channel.save())?;
    // A state directory created with fewer tiers (an older version, or another `tiers`
    // setting) has no stream for the others; say so once instead of failing every reading.
    let mut settings = settings;
    let unpublishable: Vec<Tier> =
        settings.tiers.iter().copied().filter(|&tier| channel.stream_id(tier).is_err()).collect();
    if !unpublishable.is_empty() {
        tracing::warn!(
            tiers = ?unpublishable,
            "the saved channel has no stream for these tiers; they are not published"
        );
        settings.tiers.retain(|tier| !unpublishable.contains(tier));
    }

    let progress = state.progress()?;
    let wake = Arc::new(Notify::new());
    let health = Arc::new(Mutex::new(vec![NodeHealth::default(); client.nodes().len()]));
    let mut agent = Agent {
        consent: Consent::Unpaired(None),
        state: state.clone(),
        keys,
        secret,
        channel,
        outbox: outbox.clone(),
        wake_sender: wake.clone(),
        client: client.clone(),
        poller: Poller::default(),
        rng,
        framer: Framer::default(),
        aggregator: TierAggregator::new(),
        last_reading_at,
        last_reading: None,
        telegrams: 0,
        refused: 0,
        health: health.clone(),
        source_name: source.describe(),
        settings: settings.clone(),
    };
    agent.push(to_new(resume_items.into_iter().map(Publish::from)), None)?;
    agent.consent = match state.pairing()? {
        Some(pairing) => Consent::Paired {
            follower: Box::new(agent.new_follower(&pairing)),
            owner: hex::encode(pairing.owner.id().0),
            replay_until: progress.consent_entries_applied,
            accepted: 0,
            scratch: None,
        },
        None => {
            agent.start_pairing(now, true)?;
            std::mem::replace(&mut agent.consent, Consent::Unpaired(None))
        }
    };
    if let Some(at) = last_reading_at {
        source.resume_after(at);
    }
    tracing::info!(source = %agent.source_name, nodes = ?settings.nodes, outbox = pending,
        resume_after = ?last_reading_at, device = ?agent.keys.id(), "agent running");

    let sender_task =
        tokio::spawn(sender(client, outbox.clone(), wake, health, settings.max_backoff));
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let source_task = tokio::spawn(async move {
        loop {
            match source.next_chunk().await {
                Ok(Some(bytes)) => {
                    if tx.send(bytes).await.is_err() {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    });

    let mut consent_tick = tokio::time::interval(settings.consent_poll);
    consent_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut status_tick = tokio::time::interval(Duration::from_secs(2));
    tokio::pin!(shutdown);
    let mut source_ended = false;
    let result: Result<(), AgentError> = loop {
        tokio::select! {
            () = &mut shutdown => break agent.checkpoint_all(),
            chunk = rx.recv(), if !source_ended => match chunk {
                Some(bytes) => if let Err(err) = agent.on_bytes(&bytes) { break Err(err) },
                None => {
                    source_ended = true;
                    tracing::info!("source ended; draining the outbox");
                    if let Err(err) = agent.checkpoint_all() {
                        break Err(err);
                    }
                }
            },
            _ = consent_tick.tick() => if let Err(err) = agent.on_consent_tick().await {
                break Err(err);
            },
            _ = status_tick.tick() => {
                if let Err(err) = agent.write_status() {
                    tracing::warn!(error = %err, "cannot write status");
                }
                if source_ended {
                    let empty = outbox.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
                    if empty { break Ok(()) }
                }
            }
        }
    };
    let _ = agent.write_status();
    if source_ended && result.is_ok() {
        let deadline = tokio::time::Instant::now() + drain_timeout;
        while !outbox.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    sender_task.abort();
    if source_task.is_finished() {
        if let Ok(Err(err)) = source_task.await {
            return Err(err.into());
        }
    } else {
        source_task.abort();
    }
    agent.save_channel()?;
    result
}
