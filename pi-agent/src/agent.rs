//! The agent's run loop: telegrams in, encrypted streams out, consent followed.
//!
//! The device logic itself — pairing, consent following, tier aggregation, publishing, the
//! replay after a restart — is `protocol::device::Device`, the same state machine the web app
//! runs when a browser shares as a device. This module is its driver on a Pi: the serial port,
//! the state directory, the durable outbox and the nodes.
//!
//! ```text
//!  source task ──bytes──► Framer ─► Telegram ─► reading_from_telegram ─► Device::on_reading
//!                                   (CRC must hold)                          │ DeviceStep:
//!  consent poll (1 s) ─► Device::poll_addresses ─► fetch ─► Device::on_message│ save channel.bin
//!                        then Device::tick (checkpoints, grant starts/ends)   ▼ (over-claims,
//!                                                                   Outbox::push (fsync)  never under)
//!  sender task ◄───────────────────────────── front of the outbox ◄─────────────┘
//!     └─ tangle-client: PoW, POST to every node; retry with backoff; pop only when acknowledged
//! ```
//!
//! Restart safety: the outbox records which telegram was accepted last, and the channel state
//! is saved *before* its messages enter the outbox, so the epoch link a restarted device sends
//! never claims fewer messages than were queued (a claimed message that never arrives shows as
//! a gap, an unclaimed one would be invisible). The count of consent-log entries acted upon is
//! saved after their messages are queued; the device replays those entries silently after a
//! restart, so their keyloads and notices are not sent twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use getrandom::SysRng;
use protocol::channel::{OutgoingKind, Reading, SavedDevice, Tier};
use protocol::consent::{ConsentReport, Publish, PublishKind};
use protocol::device::{
    Device, DeviceError, DeviceEvent, DeviceSettings, DeviceStep, Ownership, Resume,
    reading_from_telegram,
};
use protocol::p1::{Country, Framer, Readings, Telegram};
use protocol::tangle::{Address, MessageId};
use rand_core::UnwrapErr;
use tokio::sync::{Notify, mpsc};

use crate::queue::{MessageKind, NewMessage, Outbox, QueueError};
use crate::source::{Source, SourceError};
use crate::state::{Pairing, StateDir, StateError, Status};

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
    /// A local protocol operation of the device failed (not caused by a peer).
    #[error("device: {0}")]
    Device(#[from] DeviceError),
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

/// The running agent (owned by the run loop): the shared device state machine plus the Pi's
/// state directory, durable outbox, nodes and meter port.
struct Agent {
    settings: AgentSettings,
    state: StateDir,
    device: Device,
    outbox: Arc<Mutex<Outbox>>,
    wake_sender: Arc<Notify>,
    client: tangle_client::Client,
    poller: Poller,
    rng: Rng,
    framer: Framer,
    last_reading: Option<Reading>,
    telegrams: u64,
    refused: u64,
    health: Arc<Mutex<Vec<NodeHealth>>>,
    source_name: String,
}

impl Agent {
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

    fn save_channel(&self) -> Result<(), AgentError> {
        self.state.save_channel(&self.device.channel_state())?;
        Ok(())
    }

    /// Carries out what the device asked for: state saved first (the channel before its
    /// messages enter the outbox, the pairing before its confirmation), then the messages,
    /// then the count of consent-log entries whose effects are now queued.
    fn apply(&mut self, step: DeviceStep, reading_at: Option<u64>) -> Result<(), AgentError> {
        if step.channel_changed {
            self.save_channel()?;
        }
        for event in step.events {
            self.on_event(event)?;
        }
        self.push(to_new(step.publish), reading_at)?;
        if let Some(applied) = step.consent_entries_applied {
            let mut progress = self.state.progress()?;
            progress.consent_entries_applied = applied;
            self.state.save_progress(&progress)?;
        }
        Ok(())
    }

    fn on_event(&mut self, event: DeviceEvent) -> Result<(), AgentError> {
        match event {
            DeviceEvent::PairingCode(code) => {
                // The seed first: a crash before the code file is written still brings the
                // same code back on the next start.
                if let Some(seed) = self.device.pairing_seed() {
                    self.state.save_pairing_seed(seed)?;
                }
                self.state.save_pairing_code(&code.to_text())?;
                show_pairing_code(&code.to_text(), &code.to_uri());
            }
            DeviceEvent::Paired(paired) => {
                let pairing = Pairing {
                    owner: paired.owner().clone(),
                    log_key: paired.log_key().clone(),
                    pairing_id: paired.pairing_id(),
                    paired_at: paired.paired_at(),
                };
                self.state.save_pairing(&pairing)?;
                tracing::info!(owner = ?pairing.owner.id(), "paired");
            }
            DeviceEvent::ClaimRefused(reason) => {
                tracing::warn!(%reason, "pairing claim refused");
            }
            DeviceEvent::PairingRestarted(error) => {
                tracing::error!(%error, "pairing failed locally; showing a new code");
            }
            DeviceEvent::Consent(report) => match report {
                ConsentReport::Ignored(_) => tracing::debug!(?report, "consent log"),
                ConsentReport::Anomaly(_) => tracing::warn!(?report, "consent log anomaly"),
                _ => tracing::info!(?report, "consent"),
            },
            DeviceEvent::ConsentFailed(error) => {
                tracing::warn!(%error, "consent entry could not be carried out");
            }
            DeviceEvent::ReadingNotPublishable { tier, error } => {
                tracing::warn!(%error, ?tier, "reading not publishable; skipped");
            }
            DeviceEvent::ReadingNotNewer { timestamp } => {
                tracing::debug!(at = timestamp, "reading already published (or clock went back)");
            }
            DeviceEvent::TiersWithoutStream(tiers) => tracing::warn!(
                ?tiers,
                "the saved channel has no stream for these tiers; they are not published"
            ),
        }
        Ok(())
    }

    /// Signs a checkpoint now for every stream with uncovered messages, so providers can
    /// verify the last readings before a stop instead of waiting for the next start.
    fn checkpoint_all(&mut self) -> Result<(), AgentError> {
        let step = self.device.checkpoint_all(unix_now(), &mut self.rng)?;
        self.apply(step, None)
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
            let step = self.device.on_reading(&reading, unix_now(), &mut self.rng);
            // Only a reading newer than the last one changes the channel; only it is recorded.
            let published = step.channel_changed.then_some(reading.timestamp);
            self.apply(step, published)?;
            if published.is_some() {
                self.last_reading = Some(reading);
            }
        }
        Ok(())
    }

    /// Polls the pairing inbox or the consent log until nothing new turns up, then lets time
    /// pass for checkpoints and grants.
    async fn on_consent_tick(&mut self) -> Result<(), AgentError> {
        loop {
            let mut progressed = false;
            for address in self.device.poll_addresses() {
                let payloads = self.poller.fetch(&self.client, address).await;
                for payload in payloads {
                    progressed = true;
                    let step =
                        self.device.on_message(&address, &payload, unix_now(), &mut self.rng)?;
                    self.apply(step, None)?;
                }
            }
            if !progressed {
                break;
            }
        }
        let step = self.device.tick(unix_now(), &mut self.rng)?;
        self.apply(step, None)
    }

    fn write_status(&self) -> Result<(), AgentError> {
        let outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        let (queue_depth, queue_refused) = (outbox.len(), outbox.refused());
        drop(outbox);
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let status = Status {
            written_at: unix_now(),
            source: self.source_name.clone(),
            device: hex::encode(self.device.keys().id().0),
            owner: self.device.owner().map(|owner| hex::encode(owner.0)),
            grants: self
                .device
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
    let client = tangle_client::Client::new(settings.nodes.clone())?;
    let outbox = Outbox::open(&state.outbox_dir(), settings.queue_capacity)?;
    let last_reading_at = outbox.last_reading_at();
    let pending = outbox.len();
    let outbox = Arc::new(Mutex::new(outbox));

    // What the state directory kept: the channel (resumed with fresh epochs and keyloads to
    // its members), the owner, and how many consent-log entries were already acted upon.
    let channel = match state.channel()? {
        Some(bytes) => Some(SavedDevice::decode(&bytes).map_err(|_| StateError::Corrupt {
            path: state.root().join("channel.bin"),
            why: "undecodable".into(),
        })?),
        None => None,
    };
    let resume = Resume {
        channel,
        ownership: state
            .pairing()?
            .map(|pairing| Ownership { owner: pairing.owner, log_key: pairing.log_key }),
        consent_entries_applied: state.progress()?.consent_entries_applied,
        last_reading_at,
    };
    let device_settings = DeviceSettings {
        tiers: settings.tiers.clone(),
        checkpoint_secs: settings.checkpoint_secs,
        receipt_interval_secs: settings.receipt_interval_secs,
    };
    // An unpaired device shows the code it showed before the restart (drawn from the kept seed).
    let pairing_seed = state.pairing_seed()?;
    let (device, first_step) = Device::start_with_pairing_seed(
        secret,
        device_settings,
        resume,
        pairing_seed,
        unix_now(),
        &mut rng,
    )
    .map_err(|error| match error {
        DeviceError::ForeignChannel => AgentError::ForeignChannel,
        other => AgentError::Device(other),
    })?;
    if created {
        tracing::info!(device = ?device.keys().id(), "created a new device identity");
    }

    let wake = Arc::new(Notify::new());
    let health = Arc::new(Mutex::new(vec![NodeHealth::default(); client.nodes().len()]));
    let mut agent = Agent {
        state: state.clone(),
        device,
        outbox: outbox.clone(),
        wake_sender: wake.clone(),
        client: client.clone(),
        poller: Poller::default(),
        rng,
        framer: Framer::default(),
        last_reading: None,
        telegrams: 0,
        refused: 0,
        health: health.clone(),
        source_name: source.describe(),
        settings: settings.clone(),
    };
    agent.apply(first_step, None)?;
    if let Some(at) = last_reading_at {
        source.resume_after(at);
    }
    tracing::info!(source = %agent.source_name, nodes = ?settings.nodes, outbox = pending,
        resume_after = ?last_reading_at, device = ?agent.device.keys().id(), "agent running");

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
