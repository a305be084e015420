//! Live subscriptions: server-sent events that first replay an address's history from a cursor,
//! then stream new messages as they commit — with no gap and no duplicate at the switch.
//!
//! ```text
//!  1. subscribe to the store's broadcast        (from here on, every commit is seen)
//!  2. replay from the database, page by page    (everything committed up to the last page read)
//!  3. live: take broadcast messages, skipping any with seq ≤ the last one sent
//! ```
//!
//! Messages committed between 1 and the end of 2 arrive both ways and are deduplicated by
//! sequence; commits are strictly ordered by sequence, so nothing can fall between the two.
//!
//! Memory per subscriber is bounded: the broadcast is one shared ring of `subscriber_buffer`
//! messages and each subscription holds at most [`OUTBOX`] encoded events. A subscriber whose
//! socket does not keep up falls behind the ring and is dropped with an `event: closed` whose data
//! names the reason (`slow_subscriber`) and the cursor to resume from; so is every subscriber when
//! the node shuts down (`shutting_down`). Falling behind while still replaying is not the
//! subscriber's fault: the replay simply restarts from its cursor (a few times at most).
//!
//! Events: `message` (id = sequence, data = the JSON of `GET /messages/{id}`), `live` once the
//! replay is done (data `{"after": seq}`), `closed` (data `{"code", "message", "resume_after"}`).
//! The SSE `id` lets a browser's `EventSource` resume by itself (`Last-Event-ID`).

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use protocol::tangle::Address;

use crate::Node;
use crate::api::{MAX_SUBSCRIPTION_ADDRESSES, parse_address};
use crate::error::ApiError;
use crate::store::StoredMessage;

/// Encoded events waiting for the subscriber's socket.
const OUTBOX: usize = 64;
/// Replay page size.
const REPLAY_PAGE: usize = 500;
/// How many times a replay may be overtaken by live traffic before the subscriber is dropped.
const MAX_REPLAYS: u32 = 3;

#[derive(Debug, Deserialize)]
pub(crate) struct SubscribeQuery {
    /// Comma-separated hex addresses.
    addresses: String,
    /// Replay messages with a sequence above this; absent = live only, from now.
    after: Option<u64>,
}

/// `GET /api/v1/subscribe?addresses=a,b&after=N`.
pub(crate) async fn subscribe(
    State(node): State<Node>,
    headers: HeaderMap,
    query: Result<Query<SubscribeQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let addresses = query
        .addresses
        .split(',')
        .filter(|a| !a.is_empty())
        .map(parse_address)
        .collect::<Result<HashSet<_>, _>>()?;
    if addresses.is_empty() || addresses.len() > MAX_SUBSCRIPTION_ADDRESSES {
        return Err(ApiError::BadQuery(format!(
            "addresses must list 1 to {MAX_SUBSCRIPTION_ADDRESSES} hex addresses, got {}",
            addresses.len()
        )));
    }
    // A reconnecting EventSource sends the last id it saw; it wins over `after`.
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let after = resume.or(query.after);
    let (outbox, events) = mpsc::channel(OUTBOX);
    // The closing event has its own slot after the outbox, so a full outbox cannot swallow it.
    let (closing, closed) = oneshot::channel::<Event>();
    node.inner.metrics.subscribers.inc();
    tokio::spawn(run(node, addresses, after, outbox, closing));
    let last = futures_util::stream::once(closed).filter_map(|event| async move { event.ok() });
    let stream = ReceiverStream::new(events).chain(last).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Why a subscription ended, as sent in the closing event.
#[derive(Debug, Clone, Copy)]
enum CloseReason {
    SlowSubscriber,
    ShuttingDown,
    StoreFailed,
}

impl CloseReason {
    fn code(self) -> &'static str {
        match self {
            Self::SlowSubscriber => "slow_subscriber",
            Self::ShuttingDown => "shutting_down",
            Self::StoreFailed => "store_failed",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::SlowSubscriber => {
                "subscriber fell behind the node's buffer; reconnect with after=resume_after"
            }
            Self::ShuttingDown => "node is shutting down; reconnect later with after=resume_after",
            Self::StoreFailed => "node could not read its store; reconnect with after=resume_after",
        }
    }
}

/// What the subscription loop should do next.
enum Step {
    /// The subscriber went away: just stop.
    Gone,
    /// End with a closing event.
    Close(CloseReason),
}

/// The subscription task: runs until the subscriber leaves or is closed.
async fn run(
    node: Node,
    addresses: HashSet<Address>,
    after: Option<u64>,
    outbox: mpsc::Sender<Event>,
    closing: oneshot::Sender<Event>,
) {
    let mut cursor = after.unwrap_or_else(|| node.inner.store.last_seq());
    let step = follow(&node, &addresses, &mut cursor, &outbox).await;
    if let Step::Close(reason) = step {
        node.inner.metrics.subscription_closed(reason.code());
        let data = serde_json::json!({
            "code": reason.code(),
            "message": reason.message(),
            "resume_after": cursor,
        });
        let event = Event::default().event("closed").data(data.to_string());
        // Sent after whatever is still in the outbox; fails only if the subscriber has gone.
        let _ = closing.send(event);
    }
    drop(outbox);
    node.inner.metrics.subscribers.dec();
}

/// Replays from `cursor`, then streams live; `cursor` is always the last sequence sent.
async fn follow(
    node: &Node,
    addresses: &HashSet<Address>,
    cursor: &mut u64,
    outbox: &mpsc::Sender<Event>,
) -> Step {
    let store = &node.inner.store;
    let shutdown = &node.inner.shutdown;
    let wanted: Vec<Address> = addresses.iter().copied().collect();
    let mut replays = 0;
    'replay: loop {
        replays += 1;
        // First the broadcast, then the replay: see the module comment.
        let mut live = store.subscribe();
        loop {
            let page = tokio::select! {
                () = shutdown.cancelled() => return Step::Close(CloseReason::ShuttingDown),
                page = store.list(wanted.clone(), *cursor, REPLAY_PAGE) => page,
            };
            let Ok(page) = page else { return Step::Close(CloseReason::StoreFailed) };
            let full = page.len() == REPLAY_PAGE;
            for stored in &page {
                if !send(node, outbox, stored).await {
                    return Step::Gone;
                }
                *cursor = stored.seq;
            }
            if !full {
                break;
            }
        }
        let caught_up = Event::default().event("live").data(format!("{{\"after\":{cursor}}}"));
        if outbox.send(caught_up).await.is_err() {
            return Step::Gone;
        }
        let mut delivered_live = false;
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Step::Close(CloseReason::ShuttingDown),
                () = outbox.closed() => return Step::Gone,
                next = live.recv() => next,
            };
            match next {
                Ok(stored) => {
                    if stored.seq <= *cursor || !addresses.contains(&stored.address) {
                        continue;
                    }
                    if !send(node, outbox, &stored).await {
                        return Step::Gone;
                    }
                    *cursor = stored.seq;
                    delivered_live = true;
                }
                // Overtaken before anything live was sent: the replay was slow, not the
                // subscriber. Start over from the cursor (the database has everything).
                Err(RecvError::Lagged(_)) if !delivered_live && replays < MAX_REPLAYS => {
                    continue 'replay;
                }
                Err(RecvError::Lagged(_)) => return Step::Close(CloseReason::SlowSubscriber),
                Err(RecvError::Closed) => return Step::Close(CloseReason::ShuttingDown),
            }
        }
    }
}

/// Queues one message event; false when the subscriber has gone.
async fn send(node: &Node, outbox: &mpsc::Sender<Event>, stored: &StoredMessage) -> bool {
    let event = Event::default().event("message").id(stored.seq.to_string()).data(stored.json());
    if outbox.send(event).await.is_err() {
        return false;
    }
    node.inner.metrics.delivered.inc();
    true
}
