//! Getting the payloads at the addresses the provider watches: live subscriptions (server-sent
//! events, `tangle_client::Follow`), or polling when the nodes refuse subscriptions.
//!
//! ```text
//!  notices + inbox ── one Follow, from the start, resumed by its cursor ─┐
//!  device A: next positions ── one Follow, replaced as the window moves ─┼─► mpsc ─► follow loop
//!  device B: …                                                           ┘
//! ```
//!
//! A stream's addresses move with every message (each position has its own address), while a
//! subscription names a fixed set of at most 64. So each device gets a subscription to its next
//! `window` awaited positions, replaced by a new one once half of them have arrived. A new
//! subscription replays its addresses from the node's start (`after = 0`): each position
//! address holds one message, so this is cheap (the node reads an index on address), and
//! whatever arrived while the old subscription was being replaced is delivered by the replay —
//! no gap. Anything delivered twice (by both subscriptions, or after a fail-over) has an id
//! already in [`SeenIds`] and is dropped — no duplicate. Reconnects within one subscription
//! resume from its cursor (`Follow`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use protocol::tangle::{Address, MessageId};
use tangle_client::{ClientError, FollowEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The node's cap on addresses per subscription (`MAX_SUBSCRIPTION_ADDRESSES`).
pub const MAX_SUBSCRIPTION_ADDRESSES: usize = 64;

/// Who a payload is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The provider's notice address or inbox (the fixed addresses).
    Fixed,
    /// A stream position of this device (hex id).
    Device(String),
}

/// A message found at a watched address.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who asked for the address.
    pub target: Target,
    /// The address it was found at.
    pub address: [u8; 32],
    /// Its payload.
    pub payload: Vec<u8>,
}

/// What a subscription task reports.
#[derive(Debug)]
pub enum Report {
    /// A message, not seen before by this task.
    Delivered(Delivery, MessageId),
    /// A node answered the subscription request with an error: it serves no subscriptions
    /// (an older node, a proxy that blocks event streams).
    Refused(ClientError),
}

/// Ids already handed on, in a bounded window (a fail-over or a replaced subscription may
/// deliver a message again; ids older than the window are long settled by the follower).
#[derive(Debug, Default)]
pub struct SeenIds {
    order: VecDeque<MessageId>,
    set: HashSet<MessageId>,
}

impl SeenIds {
    /// Ids remembered (~1 MiB).
    pub const CAPACITY: usize = 20_000;

    /// False if `id` was already seen.
    pub fn insert(&mut self, id: MessageId) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
        true
    }
}

/// A running subscription: the addresses it names and the task forwarding its messages.
#[derive(Debug)]
struct Subscription {
    addresses: BTreeSet<[u8; 32]>,
    task: JoinHandle<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The provider's live subscriptions.
#[derive(Debug)]
pub struct Subscriptions {
    client: tangle_client::Client,
    sender: mpsc::Sender<Report>,
    receiver: mpsc::Receiver<Report>,
    _fixed: Subscription,
    devices: BTreeMap<String, Subscription>,
    /// Subscriptions opened so far (the fixed one included), for the log and tests.
    opened: u64,
}

impl Subscriptions {
    /// Subscribes to the fixed addresses from the start of the node's history (notices and
    /// keyloads are read again after a restart; the consent reader and followers ignore what
    /// they already applied).
    pub fn start(client: &tangle_client::Client, fixed: &[[u8; 32]]) -> Self {
        let (sender, receiver) = mpsc::channel(1024);
        let fixed_subscription = spawn(client, Target::Fixed, fixed, &sender);
        Self {
            client: client.clone(),
            sender,
            receiver,
            _fixed: fixed_subscription,
            devices: BTreeMap::new(),
            opened: 1,
        }
    }

    /// The next report (waits).
    pub async fn recv(&mut self) -> Option<Report> {
        self.receiver.recv().await
    }

    /// A report already waiting, if any.
    pub fn try_recv(&mut self) -> Option<Report> {
        self.receiver.try_recv().ok()
    }

    /// Subscriptions opened so far.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Makes `device`'s subscription cover `awaited` (its next awaited positions, at most
    /// [`MAX_SUBSCRIPTION_ADDRESSES`] are used): replaced when fewer than half of them are still
    /// covered, dropped when nothing is awaited.
    pub fn watch(&mut self, device: &str, awaited: &[[u8; 32]]) {
        let awaited: BTreeSet<[u8; 32]> =
            awaited.iter().copied().take(MAX_SUBSCRIPTION_ADDRESSES).collect();
        if awaited.is_empty() {
            self.devices.remove(device);
            return;
        }
        if let Some(current) = self.devices.get(device)
            && !needs_replacing(&current.addresses, &awaited)
        {
            return;
        }
        let addresses: Vec<[u8; 32]> = awaited.into_iter().collect();
        let subscription =
            spawn(&self.client, Target::Device(device.to_owned()), &addresses, &self.sender);
        // Dropping the old one aborts it; the new one replays what it may not have delivered.
        self.devices.insert(device.to_owned(), subscription);
        self.opened += 1;
    }
}

/// True when fewer than half of the awaited addresses are covered by the current subscription.
fn needs_replacing(current: &BTreeSet<[u8; 32]>, awaited: &BTreeSet<[u8; 32]>) -> bool {
    let covered = current.intersection(awaited).count();
    covered * 2 <= awaited.len() && covered < awaited.len()
}

fn spawn(
    client: &tangle_client::Client,
    target: Target,
    addresses: &[[u8; 32]],
    sender: &mpsc::Sender<Report>,
) -> Subscription {
    let follow = client.follow(addresses.iter().copied().map(Address).collect(), Some(0));
    let task = tokio::spawn(forward(follow, target, sender.clone()));
    Subscription { addresses: addresses.iter().copied().collect(), task }
}

/// Forwards one subscription's messages until the receiver goes or a node refuses it.
async fn forward(mut follow: tangle_client::Follow, target: Target, sender: mpsc::Sender<Report>) {
    while let Some(event) = follow.next().await {
        let report = match event {
            Ok(FollowEvent::Message(m)) => Report::Delivered(
                Delivery {
                    target: target.clone(),
                    address: m.message.address().0,
                    payload: m.message.payload().to_vec(),
                },
                m.id,
            ),
            Ok(FollowEvent::Live { node }) => {
                tracing::debug!(%node, ?target, "subscription live");
                continue;
            }
            Ok(FollowEvent::Reconnecting { node, reason }) => {
                tracing::info!(%node, %reason, "subscription closed by the node; resuming");
                continue;
            }
            Err(err) if refuses_subscriptions(&err) => Report::Refused(err),
            Err(err) => {
                // A node down or a broken connection: the follow retries and fails over.
                tracing::debug!(error = %err, "subscription interrupted");
                continue;
            }
        };
        let refused = matches!(report, Report::Refused(_));
        if sender.send(report).await.is_err() || refused {
            return;
        }
    }
}

/// A node that answered the subscription request with a client error or "not implemented"
/// has no usable subscription endpoint; rate limiting and server trouble are passing.
fn refuses_subscriptions(err: &ClientError) -> bool {
    match err {
        ClientError::Api { status, .. } => {
            (*status >= 400 && *status < 500 && *status != 429) || *status == 501
        }
        _ => false,
    }
}

/// Polling, the fallback: `GET /addresses/{a}/messages?after=…` per address and node.
#[derive(Debug, Default)]
pub struct Poller {
    cursors: HashMap<(usize, [u8; 32]), u64>,
}

impl Poller {
    /// New messages at `address` from the first node that answers.
    pub async fn fetch(
        &mut self,
        client: &tangle_client::Client,
        address: [u8; 32],
        seen: &mut SeenIds,
    ) -> Vec<Vec<u8>> {
        for node in 0..client.nodes().len() {
            let after = self.cursors.get(&(node, address)).copied().unwrap_or(0);
            match client.list(node, Address(address), after, 200).await {
                Ok(page) => {
                    self.cursors.insert((node, address), page.next_after);
                    return page
                        .messages
                        .into_iter()
                        .filter(|(_, m)| seen.insert(m.id()))
                        .map(|(_, m)| m.payload().to_vec())
                        .collect();
                }
                Err(err) => tracing::debug!(node, error = %err, "poll failed; next node"),
            }
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(range: std::ops::Range<u8>) -> BTreeSet<[u8; 32]> {
        range.map(|n| [n; 32]).collect()
    }

    #[test]
    fn a_subscription_is_replaced_once_half_its_window_has_arrived() {
        let current = set(0..16);
        assert!(!needs_replacing(&current, &set(0..16)));
        assert!(!needs_replacing(&current, &set(7..23)), "9 of 16 still covered");
        assert!(needs_replacing(&current, &set(8..24)), "only 8 of 16 covered");
        assert!(needs_replacing(&current, &set(100..101)), "a new epoch");
        assert!(!needs_replacing(&current, &set(14..16)), "fewer awaited, all covered");
    }

    #[test]
    fn only_client_errors_and_not_implemented_mean_no_subscriptions() {
        let api = |status| ClientError::Api {
            node: "n".into(),
            status,
            code: "c".into(),
            message: "m".into(),
        };
        assert!(refuses_subscriptions(&api(404)));
        assert!(refuses_subscriptions(&api(405)));
        assert!(refuses_subscriptions(&api(501)));
        assert!(!refuses_subscriptions(&api(429)));
        assert!(!refuses_subscriptions(&api(503)));
        assert!(!refuses_subscriptions(&ClientError::NoNodes));
    }

    #[test]
    fn seen_ids_forget_the_oldest_beyond_capacity() {
        let id = |n: usize| {
            let mut bytes = [0; 32];
            bytes[..8].copy_from_slice(&(n as u64).to_be_bytes());
            MessageId(bytes)
        };
        let mut seen = SeenIds::default();
        assert!(seen.insert(id(0)));
        assert!(!seen.insert(id(0)));
        for n in 1..=SeenIds::CAPACITY {
            assert!(seen.insert(id(n)));
        }
        assert!(seen.insert(id(0)), "the oldest was forgotten");
        assert!(!seen.insert(id(SeenIds::CAPACITY)));
    }
}
