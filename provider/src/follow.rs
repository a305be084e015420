//! Following everything granted to this provider: notices, keys and stream messages.
//!
//! Messages arrive through the nodes' live subscriptions (`watch.rs`: one for the notice
//! address and inbox, one per device for its next awaited positions, replaced as the window
//! moves). If a node refuses subscriptions, the loop falls back to polling
//! (`GET /addresses/{a}/messages?after=…`) every `poll` interval. Either way each message is
//! handed on once (ids are deduplicated), and the followers' time-based checks and the saving
//! of their state run every `poll` interval.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use getrandom::SysRng;
use protocol::channel::{FollowerConfig, FollowerEvent, Position, ProviderFollower, Reading};
use protocol::consent::{NoticeOutcome, ProviderConsent, notice_address};
use protocol::crypto::PartyKeys;
use protocol::tangle::Address;
use rand_core::UnwrapErr;
use serde::Serialize;

use crate::store::{ProviderStore, StoreError};
use crate::watch::{Delivery, Poller, Report, SeenIds, Subscriptions, Target};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line: readings and notices.
    Json,
    /// CSV of readings (header first); notices go to the log only.
    Csv,
}

/// How to follow.
#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// Node URLs.
    pub nodes: Vec<String>,
    /// Output format.
    pub format: OutputFormat,
    /// Also write readings not yet covered by a signed checkpoint (marked `provisional`).
    pub provisional: bool,
    /// Housekeeping interval (followers' time checks, saving), and the poll interval when the
    /// nodes refuse subscriptions.
    pub poll: Duration,
    /// Awaited positions per device that one subscription (or one poll) covers.
    pub window: usize,
    /// Poll from the start instead of subscribing (for nodes known to refuse subscriptions).
    pub force_polling: bool,
}

/// One line of output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadingRecord {
    /// Always `reading`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Device id (hex).
    pub device: String,
    /// Tier name.
    pub tier: String,
    /// Epoch id (hex).
    pub epoch: String,
    /// Position in the epoch.
    pub seq: u64,
    /// `verified` (covered by the device's signed checkpoint) or `provisional`.
    pub status: &'static str,
    /// Meter time (UTC s).
    pub timestamp: u64,
    /// Per tariff, Wh.
    pub energy_import_wh: Vec<u64>,
    /// Per tariff, Wh.
    pub energy_export_wh: Vec<u64>,
    /// W.
    pub power_import_w: u32,
    /// W.
    pub power_export_w: u32,
    /// Per phase: voltage (0.1 V), current (mA), import W, export W.
    pub phases: Vec<(Option<u32>, Option<u32>, u32, u32)>,
    /// Gas register (dm³) and its capture time.
    pub gas: Option<(u64, u64)>,
    /// The raw telegram, when the device shares it.
    pub raw_telegram: Option<String>,
    /// When this provider decrypted it (ms since 1970), for latency measurements.
    pub received_at_ms: u64,
}

impl ReadingRecord {
    fn new(device: &str, position: &Position, status: &'static str, r: &Reading) -> Self {
        Self {
            kind: "reading",
            device: device.to_owned(),
            tier: format!("{:?}", position.tier),
            epoch: hex::encode(position.epoch.0),
            seq: position.seq,
            status,
            timestamp: r.timestamp,
            energy_import_wh: r.energy_import_wh.clone(),
            energy_export_wh: r.energy_export_wh.clone(),
            power_import_w: r.power_import_w,
            power_export_w: r.power_export_w,
            phases: r
                .phases
                .iter()
                .map(|p| (p.voltage_dv, p.current_ma, p.power_import_w, p.power_export_w))
                .collect(),
            gas: r.gas.as_ref().map(|g| (g.volume_dm3, g.captured_at)),
            raw_telegram: r.raw_telegram.as_ref().map(|t| String::from_utf8_lossy(t).into_owned()),
            received_at_ms: now_ms(),
        }
    }

    fn csv(&self) -> String {
        let join = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join("|");
        format!(
            "{},{},{},{},{},{},{},{},{},{},{}",
            self.device,
            self.tier,
            self.epoch,
            self.seq,
            self.status,
            self.timestamp,
            join(&self.energy_import_wh),
            join(&self.energy_export_wh),
            self.power_import_w,
            self.power_export_w,
            self.gas.map_or(String::new(), |g| g.0.to_string()),
        )
    }
}

/// The CSV header.
pub const CSV_HEADER: &str = "device,tier,epoch,seq,status,timestamp,energy_import_wh,energy_export_wh,power_import_w,power_export_w,gas_dm3";

/// Following failures (local only: a misbehaving peer is logged, never fatal).
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    /// State directory.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Node list.
    #[error(transparent)]
    Nodes(#[from] tangle_client::ClientError),
    /// Output.
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn now_secs() -> u64 {
    now_ms() / 1000
}

struct DeviceFollow {
    follower: ProviderFollower,
    received: HashSet<[u8; 32]>,
    /// Has been offered every inbox payload seen so far.
    caught_up: bool,
}

/// Follows until `stop` completes, writing readings to `out`.
pub async fn follow(
    store: &ProviderStore,
    options: &FollowOptions,
    out: &mut (dyn Write + Send),
    stop: impl Future<Output = ()>,
) -> Result<(), FollowError> {
    let keys = store.keys()?;
    let client = tangle_client::Client::new(options.nodes.clone())?;
    let mut rng = UnwrapErr(SysRng);
    let mut consent = ProviderConsent::new();
    let mut devices: BTreeMap<String, DeviceFollow> = BTreeMap::new();
    // Resume followers saved by an earlier run (keys of epochs already received).
    for receipt in store.receipts()? {
        let device = hex::encode(receipt.device().id().0);
        if devices.contains_key(&device) {
            continue;
        }
        let follower = match store.follower(&device)? {
            Some(saved) => ProviderFollower::restore(&keys, &saved).ok(),
            None => None,
        }
        .unwrap_or_else(|| {
            ProviderFollower::new(&keys, receipt.device().clone(), FollowerConfig::default())
        });
        devices
            .insert(device, DeviceFollow { follower, received: HashSet::new(), caught_up: false });
    }
    if options.format == OutputFormat::Csv {
        writeln!(out, "{CSV_HEADER}")?;
    }
    let notices = notice_address(keys.id());
    let inbox = keys.public().inbox_address();
    let mut source = if options.force_polling {
        Source::Polling(Poller::default())
    } else {
        Source::Subscribed(Subscriptions::start(&client, &[notices, inbox]))
    };
    let mut seen = SeenIds::default();
    let mut interval = tokio::time::interval(options.poll);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_save = now_secs();
    let mut inbox_payloads: Vec<Vec<u8>> = Vec::new();
    let mut context = Context { store, keys: &keys, client: &client, options, rng: &mut rng };
    tokio::pin!(stop);
    loop {
        // Wait for messages (subscribed) or the next round (polling); then take what is there.
        let mut deliveries = Vec::new();
        match &mut source {
            Source::Subscribed(subscriptions) => {
                let first = tokio::select! {
                    () = &mut stop => break,
                    report = subscriptions.recv() => report,
                    _ = interval.tick() => None,
                };
                let mut refused = None;
                for report in
                    first.into_iter().chain(std::iter::from_fn(|| subscriptions.try_recv()))
                {
                    match report {
                        Report::Delivered(delivery, id) => {
                            if seen.insert(id) {
                                deliveries.push(delivery);
                            }
                        }
                        Report::Refused(err) => refused = Some(err),
                    }
                }
                if let Some(err) = refused {
                    tracing::warn!(error = %err, "the node refuses subscriptions; polling instead");
                    source = Source::Polling(Poller::default());
                }
            }
            Source::Polling(poller) => {
                tokio::select! {
                    () = &mut stop => break,
                    _ = interval.tick() => {}
                }
                for address in [notices, inbox] {
                    for payload in poller.fetch(&client, address, &mut seen).await {
                        deliveries.push(Delivery { target: Target::Fixed, address, payload });
                    }
                }
            }
        }
        let now = now_secs();
        for delivery in deliveries {
            context
                .deliver(&mut consent, &mut devices, &mut inbox_payloads, delivery, now, out)
                .await?;
        }
        for (device, follow) in &mut devices {
            // The inbox is shared by every device's keyloads, and kept, so a follower created
            // later (a new grant) sees the keyloads sent before it existed.
            if !follow.caught_up {
                for payload in &inbox_payloads {
                    let events = follow.follower.receive(&keys, &inbox, payload, now);
                    write_events(device, &events, options, out)?;
                }
                follow.caught_up = true;
            }
            let mut awaited: Vec<[u8; 32]> = Vec::new();
            for address in follow.follower.watch_addresses() {
                if address != inbox && !follow.received.contains(&address) {
                    awaited.push(address);
                }
                if awaited.len() >= options.window {
                    break;
                }
            }
            match &mut source {
                Source::Subscribed(subscriptions) => subscriptions.watch(device, &awaited),
                Source::Polling(poller) => {
                    for address in awaited {
                        for payload in poller.fetch(&client, address, &mut seen).await {
                            follow.received.insert(address);
                            let events = follow.follower.receive(&keys, &address, &payload, now);
                            write_events(device, &events, options, out)?;
                        }
                    }
                }
            }
            let events = follow.follower.tick(now);
            write_events(device, &events, options, out)?;
        }
        out.flush()?;
        if now >= last_save + 10 {
            save_followers(store, &keys, &devices, context.rng)?;
            last_save = now;
        }
    }
    if let Source::Subscribed(subscriptions) = &source {
        tracing::info!(opened = subscriptions.opened(), "subscriptions used");
    }
    save_followers(store, &keys, &devices, &mut rng)?;
    out.flush()?;
    Ok(())
}

/// Where messages come from.
enum Source {
    Subscribed(Subscriptions),
    Polling(Poller),
}

/// What handling a message needs besides the followers.
struct Context<'a> {
    store: &'a ProviderStore,
    keys: &'a PartyKeys,
    client: &'a tangle_client::Client,
    options: &'a FollowOptions,
    rng: &'a mut UnwrapErr<SysRng>,
}

impl Context<'_> {
    /// Hands one message to whoever watches its address: notices to the consent reader,
    /// inbox keyloads to every device follower, stream messages to their device's follower.
    async fn deliver(
        &mut self,
        consent: &mut ProviderConsent,
        devices: &mut BTreeMap<String, DeviceFollow>,
        inbox_payloads: &mut Vec<Vec<u8>>,
        delivery: Delivery,
        now: u64,
        out: &mut (dyn Write + Send),
    ) -> Result<(), FollowError> {
        let Delivery { target, address, payload } = delivery;
        let keys = self.keys;
        match target {
            Target::Fixed if address == notice_address(keys.id()) => {
                match consent.receive(keys, &payload) {
                    Ok(outcome) => {
                        on_notice(
                            self.store,
                            keys,
                            self.client,
                            devices,
                            &outcome,
                            self.options,
                            out,
                            self.rng,
                        )
                        .await?;
                    }
                    Err(err) => tracing::warn!(error = %err, "notice refused"),
                }
            }
            Target::Fixed => {
                // A keyload for another device is refused by that follower as not for it.
                for (device, follow) in devices.iter_mut() {
                    let events = follow.follower.receive(keys, &address, &payload, now);
                    write_events(device, &events, self.options, out)?;
                }
                inbox_payloads.push(payload);
            }
            Target::Device(device) => {
                if let Some(follow) = devices.get_mut(&device) {
                    follow.received.insert(address);
                    let events = follow.follower.receive(keys, &address, &payload, now);
                    write_events(&device, &events, self.options, out)?;
                }
            }
        }
        Ok(())
    }
}

fn save_followers(
    store: &ProviderStore,
    keys: &PartyKeys,
    devices: &BTreeMap<String, DeviceFollow>,
    rng: &mut UnwrapErr<SysRng>,
) -> Result<(), FollowError> {
    for (device, follow) in devices {
        match follow.follower.save(keys, rng) {
            Ok(bytes) => store.save_follower(device, &bytes)?,
            Err(err) => tracing::warn!(error = %err, "cannot save follower state"),
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct NoticeRecord {
    #[serde(rename = "type")]
    kind: &'static str,
    notice: &'static str,
    grant: String,
    received_at_ms: u64,
}

#[allow(clippy::too_many_arguments)]
async fn on_notice(
    store: &ProviderStore,
    keys: &PartyKeys,
    client: &tangle_client::Client,
    devices: &mut BTreeMap<String, DeviceFollow>,
    outcome: &NoticeOutcome,
    options: &FollowOptions,
    out: &mut (dyn Write + Send),
    rng: &mut UnwrapErr<SysRng>,
) -> Result<(), FollowError> {
    let (notice, grant) = match outcome {
        NoticeOutcome::Granted(receipt) => {
            store.save_receipt(receipt)?;
            let device = hex::encode(receipt.device().id().0);
            devices.entry(device).or_insert_with(|| DeviceFollow {
                follower: ProviderFollower::new(
                    keys,
                    receipt.device().clone(),
                    FollowerConfig::default(),
                ),
                received: HashSet::new(),
                caught_up: false,
            });
            match receipt.acknowledge(keys, now_secs(), rng) {
                Ok((_, publish)) => {
                    if let Err(err) =
                        client.publish(Address(publish.address), now_ms(), publish.payload).await
                    {
                        tracing::warn!(error = %err, "acknowledgement not published");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot acknowledge"),
            }
            tracing::info!(grant = %hex::encode(receipt.grant().id.0),
                tiers = ?receipt.grant().tiers, purpose = %receipt.grant().purpose, "granted");
            ("granted", receipt.grant().id)
        }
        NoticeOutcome::Amended { grant, tiers, .. } => {
            tracing::info!(grant = %hex::encode(grant.0), ?tiers, "amended");
            ("amended", *grant)
        }
        NoticeOutcome::Revoked { grant, reason } => {
            tracing::info!(grant = %hex::encode(grant.0), %reason, "revoked by the owner");
            ("revoked", *grant)
        }
        NoticeOutcome::Expired { grant } => {
            tracing::info!(grant = %hex::encode(grant.0), "expired");
            ("expired", *grant)
        }
        other => {
            tracing::info!(?other, "notice");
            return Ok(());
        }
    };
    if options.format == OutputFormat::Json {
        let record = NoticeRecord {
            kind: "notice",
            notice,
            grant: hex::encode(grant.0),
            received_at_ms: now_ms(),
        };
        writeln!(out, "{}", serde_json::to_string(&record).unwrap_or_default())?;
    }
    Ok(())
}

fn write_events(
    device: &str,
    events: &[FollowerEvent],
    options: &FollowOptions,
    out: &mut (dyn Write + Send),
) -> Result<(), FollowError> {
    for event in events {
        let (position, status, readings) = match event {
            FollowerEvent::Verified { position, readings, .. } => (position, "verified", readings),
            FollowerEvent::Provisional { position, readings, .. } if options.provisional => {
                (position, "provisional", readings)
            }
            FollowerEvent::Provisional { .. } => continue,
            FollowerEvent::Rejected { .. }
            | FollowerEvent::Forged { .. }
            | FollowerEvent::Fork { .. }
            | FollowerEvent::ChainMismatch { .. } => {
                tracing::warn!(?event, "stream message refused");
                continue;
            }
            other => {
                tracing::info!(event = ?other, "stream");
                continue;
            }
        };
        for reading in readings {
            let record = ReadingRecord::new(device, position, status, reading);
            match options.format {
                OutputFormat::Json => {
                    writeln!(out, "{}", serde_json::to_string(&record).unwrap_or_default())?;
                }
                OutputFormat::Csv => writeln!(out, "{}", record.csv())?,
            }
        }
    }
    Ok(())
}
