//! The dashboard's connection to the nodes: live follows feeding [`ProviderWatch`], and the
//! signals the page draws from.
//!
//! ```text
//!  follow(notice address, inbox) ──┐  (server-sent events, replayed from the start, then live)
//!  follow(stream positions ≤ 62) ──┼─► channel ─► ProviderWatch ─► signals (grants, readings)
//!  one tick per second ────────────┘                 └─► acknowledgements published
//! ```
//!
//! The notice address and the inbox never change, so one follow serves them for the whole
//! session. Stream positions move with every reading (each position has its own address), so
//! the stream follow is replaced when the positions still awaited have moved past the ones it
//! covers; the old one is aborted, which closes its connection.

use std::collections::HashSet;
use std::sync::Arc;

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures_util::StreamExt;
use futures_util::future::{AbortHandle, abortable};
use getrandom::SysRng;
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::crypto::PartyKeys;
use protocol::tangle::{Address, MessageId};
use rand_core::UnwrapErr;
use tangle_client::{Client, Follow, FollowEvent};

use super::received::ReceivedReadings;
use super::watch::{GrantView, ProviderWatch, WatchEvent};
use crate::chart::Series;

/// Addresses in the stream follow: a node subscription takes at most 64.
const STREAM_SUBSCRIPTION: usize = 62;

/// Current UTC time in seconds (the browser's clock).
pub fn now_secs() -> u64 {
    now_ms() / 1000
}

/// Current UTC time in milliseconds.
pub fn now_ms() -> u64 {
    // `Date.now()` is a non-negative whole number of milliseconds.
    js_sys::Date::now().max(0.0) as u64
}

/// The live chart's series for the device shown.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LiveSeries {
    /// Net power (import − export), kW.
    pub net: Series,
    /// Per phase net power, kW.
    pub phases: [Series; 3],
    /// Meter time of the last point charted.
    pub last_time: Option<u64>,
    /// The newest figures.
    pub now: Option<PowerNow>,
}

/// The newest power figures, in W.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowerNow {
    /// Taken from the grid.
    pub import: u32,
    /// Delivered to the grid.
    pub export: u32,
    /// Per phase: (import, export).
    pub phases: Vec<(u32, u32)>,
}

/// Whether the follows are connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Connection {
    /// Starting.
    Connecting,
    /// Replay done, messages arrive as they are stored.
    Live,
    /// The last attempt failed (the follow retries by itself).
    Trouble(String),
}

/// Everything the dashboard draws, updated by the feed.
#[derive(Debug, Clone, Copy)]
pub struct DashboardSignals {
    /// Grants, oldest first.
    pub grants: RwSignal<Vec<GrantView>>,
    /// Every reading received.
    pub readings: RwSignal<ReceivedReadings>,
    /// The live chart.
    pub live: RwSignal<LiveSeries>,
    /// The device whose data the live view shows (the newest grant's).
    pub live_device: RwSignal<Option<protocol::crypto::PartyId>>,
    /// Connection state.
    pub connection: RwSignal<Connection>,
    /// Refused messages and stream problems, newest last (bounded).
    pub warnings: RwSignal<Vec<String>>,
}

impl DashboardSignals {
    /// Empty signals.
    pub fn new() -> Self {
        Self {
            grants: RwSignal::new(Vec::new()),
            readings: RwSignal::new(ReceivedReadings::default()),
            live: RwSignal::new(LiveSeries::default()),
            live_device: RwSignal::new(None),
            connection: RwSignal::new(Connection::Connecting),
            warnings: RwSignal::new(Vec::new()),
        }
    }

    /// True while the shown device still has a grant that has not ended (tracked).
    pub fn live_open(&self) -> bool {
        let Some(device) = self.live_device.get() else { return false };
        self.grants.with(|grants| grants.iter().any(|g| g.device == device && !g.state.ended()))
    }

    /// [`Self::live_open`] outside the reactive graph.
    fn live_open_untracked(&self) -> bool {
        let Some(device) = self.live_device.get_untracked() else { return false };
        self.grants
            .with_untracked(|grants| grants.iter().any(|g| g.device == device && !g.state.ended()))
    }
}

impl Default for DashboardSignals {
    fn default() -> Self {
        Self::new()
    }
}

enum Input {
    Message { address: [u8; 32], id: MessageId, payload: Vec<u8> },
    Live,
    Trouble(String),
    Tick,
}

/// Running follows; aborting them closes their connections.
#[derive(Debug, Default)]
pub struct Feed {
    handles: Vec<AbortHandle>,
}

impl Feed {
    /// Stops every task of the feed.
    pub fn stop(&self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

/// Starts following everything addressed to `keys` on the nodes of `client`.
pub fn start(keys: Arc<PartyKeys>, client: Client, signals: DashboardSignals) -> Feed {
    let (tx, rx) = unbounded();
    let watch = ProviderWatch::new(keys);
    let fixed = client
        .follow(vec![Address(watch.notice_address()), Address(watch.inbox_address())], Some(0));
    let handles = vec![
        spawn_abortable(forward(fixed, tx.clone())),
        spawn_abortable(ticks(tx.clone())),
        // Aborted with the others when the page goes away; it owns the stream follow.
        spawn_abortable(run(watch, client, signals, tx, rx)),
    ];
    Feed { handles }
}

fn spawn_abortable(task: impl Future<Output = ()> + 'static) -> AbortHandle {
    let (task, handle) = abortable(task);
    spawn_local(async move {
        let _ = task.await;
    });
    handle
}

async fn forward(mut follow: Follow, tx: UnboundedSender<Input>) {
    while let Some(event) = follow.next().await {
        let input = match event {
            Ok(FollowEvent::Message(m)) => Input::Message {
                address: m.message.address().0,
                id: m.id,
                payload: m.message.payload().to_vec(),
            },
            Ok(FollowEvent::Live { .. }) => Input::Live,
            Ok(FollowEvent::Reconnecting { reason, .. }) => Input::Trouble(reason),
            Err(error) => Input::Trouble(error.to_string()),
        };
        if tx.unbounded_send(input).is_err() {
            break;
        }
    }
}

async fn ticks(tx: UnboundedSender<Input>) {
    loop {
        gloo_timers::future::TimeoutFuture::new(1_000).await;
        if tx.unbounded_send(Input::Tick).is_err() {
            break;
        }
    }
}

/// The stream follow in place: the addresses it covers and its task.
struct StreamFollow {
    addresses: HashSet<[u8; 32]>,
    handle: AbortHandle,
}

impl Drop for StreamFollow {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

/// True when the awaited positions have moved away from what `current` covers: the next ones
/// are not in it, or a third of them are not.
fn needs_new_follow(current: Option<&StreamFollow>, wanted: &[[u8; 32]]) -> bool {
    let Some(current) = current else { return !wanted.is_empty() };
    if wanted.is_empty() {
        return true;
    }
    let missing = wanted.iter().filter(|a| !current.addresses.contains(*a)).count();
    wanted.iter().take(4).any(|a| !current.addresses.contains(a)) || missing * 3 > wanted.len()
}

async fn run(
    mut watch: ProviderWatch,
    client: Client,
    signals: DashboardSignals,
    tx: UnboundedSender<Input>,
    mut rx: UnboundedReceiver<Input>,
) {
    let mut rng = UnwrapErr(SysRng);
    let mut stream: Option<StreamFollow> = None;
    while let Some(input) = rx.next().await {
        let now = now_secs();
        let events = match input {
            Input::Message { address, id, payload } => {
                watch.receive(id, address, &payload, now, &mut rng)
            }
            Input::Tick => watch.tick(now),
            Input::Live => {
                signals.connection.set(Connection::Live);
                continue;
            }
            Input::Trouble(reason) => {
                signals.connection.set(Connection::Trouble(reason));
                continue;
            }
        };
        apply(events, &signals, &client);
        let wanted = watch.stream_addresses(STREAM_SUBSCRIPTION);
        if needs_new_follow(stream.as_ref(), &wanted) {
            stream = None; // aborts the old follow before the new one connects
            if !wanted.is_empty() {
                let follow = client.follow(wanted.iter().copied().map(Address).collect(), Some(0));
                let handle = spawn_abortable(forward(follow, tx.clone()));
                stream = Some(StreamFollow { addresses: wanted.into_iter().collect(), handle });
            }
        }
    }
}

fn apply(events: Vec<WatchEvent>, signals: &DashboardSignals, client: &Client) {
    for event in events {
        match event {
            WatchEvent::Grant(view) => {
                if view.state == super::watch::GrantState::Pending
                    || signals.live_device.get_untracked().is_none()
                {
                    signals.live_device.set(Some(view.device));
                }
                signals.grants.update(|grants| match grants.iter_mut().find(|g| g.id == view.id) {
                    Some(known) => *known = view,
                    None => grants.push(view),
                });
            }
            WatchEvent::Readings(found) => {
                signals.readings.update(|readings| {
                    readings.add(&found);
                });
                chart(&found, signals);
            }
            WatchEvent::Publish(item) => {
                let client = client.clone();
                let warnings = signals.warnings;
                spawn_local(async move {
                    if let Err(error) =
                        client.publish(Address(item.address), now_ms(), item.payload).await
                    {
                        push_warning(
                            warnings,
                            format!("publishing an acknowledgement failed: {error}"),
                        );
                    }
                });
            }
            WatchEvent::Warning(text) => push_warning(signals.warnings, text),
        }
    }
}

/// Adds the shown device's new readings to the live chart, while its access lasts.
fn chart(found: &[super::watch::Received], signals: &DashboardSignals) {
    let Some(device) = signals.live_device.get_untracked() else { return };
    if !signals.live_open_untracked() {
        return; // access ended: the chart stops where it was
    }
    let tier = signals.readings.with_untracked(|r| r.finest_tier(device));
    signals.live.update(|live| {
        for item in found.iter().filter(|f| f.device == device && Some(f.position.tier) == tier) {
            let r = &item.reading;
            if live.last_time.is_some_and(|last| r.timestamp <= last) {
                continue;
            }
            let seconds = r.timestamp as f64;
            let net = |import: u32, export: u32| (f64::from(import) - f64::from(export)) / 1000.0;
            live.net.push(seconds, net(r.power_import_w, r.power_export_w));
            for (series, phase) in live.phases.iter_mut().zip(&r.phases) {
                series.push(seconds, net(phase.power_import_w, phase.power_export_w));
            }
            live.last_time = Some(r.timestamp);
            live.now = Some(PowerNow {
                import: r.power_import_w,
                export: r.power_export_w,
                phases: r.phases.iter().map(|p| (p.power_import_w, p.power_export_w)).collect(),
            });
        }
    });
}

fn push_warning(warnings: RwSignal<Vec<String>>, text: String) {
    warnings.update(|list| {
        list.push(text);
        if list.len() > 20 {
            list.remove(0);
        }
    });
}
