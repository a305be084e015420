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
//!
//! Events already waiting in the outbox are written to the socket together (one write for many
//! events), which is what keeps many subscribers cheap under a high message rate.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use protocol::tangle::Address;
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

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
/// How long an event may wait for room in a full outbox before the subscriber counts as stalled.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// A comment line this often keeps idle connections (and proxies) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One server-sent event in wire form. `data` must not contain a newline (compact JSON never
/// does).
fn sse(event: &str, id: Option<u64>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 48);
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(&id.to_string());
        out.push('\n');
    }
    out.push_str("event: ");
    out.push_str(event);
    out.push_str("\ndata: ");
    out.push_str(data);
    out.push_str("\n\n");
    Bytes::from(out)
}

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
) -> Result<Response, ApiError> {
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
    let (closing, closed) = oneshot::channel::<Bytes>();
    node.inner.metrics.subscribers.inc();
    tokio::spawn(run(node, addresses, after, outbox, closing));
    let last = futures_util::stream::once(closed).filter_map(|event| async move { event.ok() });
    // Everything already queued goes out in one chunk (one write) instead of one per event.
    let body = ReceiverStream::new(events)
        .chain(last)
        .ready_chunks(OUTBOX)
        .map(|chunk| Ok::<_, Infallible>(Bytes::from(chunk.concat())));
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
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
    outbox: mpsc::Sender<Bytes>,
    closing: oneshot::Sender<Bytes>,
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
        let event = sse("closed", None, &data.to_string());
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
    outbox: &mpsc::Sender<Bytes>,
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
                if let Err(step) = send(node, outbox, stored).await {
                    return step;
                }
                *cursor = stored.seq;
            }
            if !full {
                break;
            }
        }
        let caught_up = sse("live", None, &format!("{{\"after\":{cursor}}}"));
        if outbox.send(caught_up).await.is_err() {
            return Step::Gone;
        }
        let mut delivered_live = false;
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await; // the first tick is immediate
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return Step::Close(CloseReason::ShuttingDown),
                () = outbox.closed() => return Step::Gone,
                _ = keep_alive.tick() => {
                    // Fails only when the outbox is full (the connection is busy, so alive) or
                    // the subscriber has gone (noticed on the next round).
                    let _ = outbox.try_send(Bytes::from_static(b": keep-alive\n\n"));
                    continue;
                }
                next = live.recv() => next,
            };
            match next {
                Ok(stored) => {
                    if stored.seq <= *cursor || !addresses.contains(&stored.address) {
                        continue;
                    }
                    if let Err(step) = send(node, outbox, &stored).await {
                        return step;
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
/// Queues one message event. A subscriber that takes nothing for [`STALL_LIMIT`] is treated as
/// too slow, and a shutdown does not wait for it: either way the task ends instead of hanging on
/// a connection that does not read.
async fn send(
    node: &Node,
    outbox: &mpsc::Sender<Bytes>,
    stored: &StoredMessage,
) -> Result<(), Step> {
    let event = sse("message", Some(stored.seq), stored.json());
    tokio::select! {
        () = node.inner.shutdown.cancelled() => return Err(Step::Close(CloseReason::ShuttingDown)),
        queued = tokio::time::timeout(STALL_LIMIT, outbox.send(event)) => match queued {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(Step::Gone),
            Err(_) => return Err(Step::Close(CloseReason::SlowSubscriber)),
        },
    }
    node.inner.metrics.delivered.inc();
    Ok(())
}
