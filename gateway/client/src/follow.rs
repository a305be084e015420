//! Following addresses live, over a node's server-sent events, with resume and fail-over.
//!
//! A `Follow` keeps a cursor (the last sequence it delivered, on the node it reads from). When
//! the node closes the stream (`closed` event: too slow, shutting down) or the connection
//! breaks, it reconnects to the same node from that cursor, so nothing is missed and nothing
//! repeats. After [`FAILURES_BEFORE_FAILOVER`] failed attempts in a row it moves to the next
//! node. Sequences are node-local, so the cursor is translated: the new node is asked for the
//! last delivered message's sequence there; if it does not hold that message, the follow replays
//! the new node's history from the start and skips ids it delivered recently (a window of
//! `RecentIds::CAPACITY`).

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use protocol::tangle::{Address, Message, MessageId};

use crate::{Client, ClientError, MessageBody, RecentIds};

/// Failed connection attempts on one node before trying the next.
pub const FAILURES_BEFORE_FAILOVER: u32 = 3;

/// A message delivered by a follow, verified against its id.
#[derive(Debug, Clone)]
pub struct FollowedMessage {
    pub node: String,
    /// Its sequence on `node`.
    pub seq: u64,
    pub id: MessageId,
    pub message: Message,
}

/// What [`Follow::next`] yields.
#[derive(Debug, Clone)]
pub enum FollowEvent {
    Message(FollowedMessage),
    /// The replay is done; from now on messages arrive as they are stored.
    Live {
        node: String,
    },
    /// The node closed the stream (its reason code); the follow reconnects by itself.
    Reconnecting {
        node: String,
        reason: String,
    },
}

#[cfg(not(target_arch = "wasm32"))]
type Events = futures_util::stream::BoxStream<
    'static,
    Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>,
>;
#[cfg(target_arch = "wasm32")]
type Events = futures_util::stream::LocalBoxStream<
    'static,
    Result<eventsource_stream::Event, eventsource_stream::EventStreamError<reqwest::Error>>,
>;

/// A live subscription to one or more addresses. Call [`Follow::next`] in a loop; an `Err` is
/// informational (the follow retries on the next call), so a follower can log and keep going.
pub struct Follow {
    client: Client,
    addresses: Vec<Address>,
    node: usize,
    cursor: Option<u64>,
    last_id: Option<MessageId>,
    recent: RecentIds,
    events: Option<Events>,
    failures: u32,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follow")
            .field("node", &self.client.nodes().get(self.node))
            .field("cursor", &self.cursor)
            .field("connected", &self.events.is_some())
            .finish_non_exhaustive()
    }
}

impl Follow {
    pub(crate) fn new(client: Client, addresses: Vec<Address>, after: Option<u64>) -> Self {
        Self {
            client,
            addresses,
            node: 0,
            cursor: after,
            last_id: None,
            recent: RecentIds::default(),
            events: None,
            failures: 0,
        }
    }

    /// The node currently read from, and the last sequence delivered on it.
    pub fn position(&self) -> (&str, Option<u64>) {
        (self.client.nodes()[self.node].as_str(), self.cursor)
    }

    fn node_url(&self) -> String {
        self.client.nodes()[self.node].clone()
    }

    async fn connect(&mut self) -> Result<(), ClientError> {
        if self.failures > 0 {
            // 100 ms, 200 ms, 400 ms … capped at 5 s.
            let backoff = 100u64 << self.failures.min(6);
            sleep(Duration::from_millis(backoff.min(5_000))).await;
        }
        if self.failures >= FAILURES_BEFORE_FAILOVER && self.client.nodes().len() > 1 {
            self.node = (self.node + 1) % self.client.nodes().len();
            self.failures = 0;
            if let Some(last) = self.last_id {
                // Translate the cursor; replay everything (deduplicated) if the node lacks it.
                self.cursor = Some(self.client.sequence_on(self.node, last).await.unwrap_or(0));
            }
        }
        let node = self.node_url();
        let addresses: Vec<String> = self.addresses.iter().map(Address::to_hex).collect();
        let mut url = format!("{node}/api/v1/subscribe?addresses={}", addresses.join(","));
        if let Some(after) = self.cursor {
            url.push_str(&format!("&after={after}"));
        }
        let response = self
            .client
            .http()
            .get(url)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|source| ClientError::Transport { node: node.clone(), source })?;
        if !response.status().is_success() {
            return Err(crate::read_json::<serde_json::Value>(&node, response)
                .await
                .err()
                .unwrap_or(ClientError::Invalid { node, reason: "subscription refused".into() }));
        }
        self.events = Some(response.bytes_stream().eventsource().boxed_local_or_send());
        Ok(())
    }

    /// The next event. `None` never happens today (a follow retries forever); it is reserved
    /// for a future "stop" and keeps the `while let` loop idiomatic.
    pub async fn next(&mut self) -> Option<Result<FollowEvent, ClientError>> {
        loop {
            if self.events.is_none()
                && let Err(err) = self.connect().await
            {
                self.failures += 1;
                return Some(Err(err));
            }
            let node = self.node_url();
            let Some(events) = self.events.as_mut() else { continue };
            let Some(event) = events.next().await else {
                // Ended without a `closed` event: the connection dropped.
                self.events = None;
                self.failures += 1;
                return Some(Ok(FollowEvent::Reconnecting { node, reason: "disconnected".into() }));
            };
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    self.events = None;
                    self.failures += 1;
                    return Some(Err(ClientError::Invalid { node, reason: err.to_string() }));
                }
            };
            match event.event.as_str() {
                "message" => {
                    let parsed = serde_json::from_str::<MessageBody>(&event.data)
                        .map_err(|e| ClientError::Invalid {
                            node: node.clone(),
                            reason: e.to_string(),
                        })
                        .and_then(|body| {
                            body.verify(&node).map(|(id, message)| (body.seq, id, message))
                        });
                    let (seq, id, message) = match parsed {
                        Ok(parsed) => parsed,
                        Err(err) => {
                            // A node that sends forged messages is not worth staying on.
                            self.events = None;
                            self.failures = FAILURES_BEFORE_FAILOVER;
                            return Some(Err(err));
                        }
                    };
                    self.cursor = Some(seq);
                    self.failures = 0;
                    if self.recent.insert(id) {
                        self.last_id = Some(id);
                        return Some(Ok(FollowEvent::Message(FollowedMessage {
                            node,
                            seq,
                            id,
                            message,
                        })));
                    }
                }
                "live" => {
                    if self.cursor.is_none() {
                        self.cursor = serde_json::from_str::<serde_json::Value>(&event.data)
                            .ok()
                            .and_then(|v| v["after"].as_u64());
                    }
                    self.failures = 0;
                    return Some(Ok(FollowEvent::Live { node }));
                }
                "closed" => {
                    let data: serde_json::Value =
                        serde_json::from_str(&event.data).unwrap_or_default();
                    if let Some(resume) = data["resume_after"].as_u64() {
                        self.cursor = Some(self.cursor.map_or(resume, |c| c.max(resume)));
                    }
                    self.events = None;
                    let reason = data["code"].as_str().unwrap_or("closed").to_owned();
                    return Some(Ok(FollowEvent::Reconnecting { node, reason }));
                }
                _ => {}
            }
        }
    }
}

/// `boxed()` on native (the follow can move between threads), `boxed_local()` in the browser.
trait BoxEvents {
    fn boxed_local_or_send(self) -> Events;
}

#[cfg(not(target_arch = "wasm32"))]
impl<S> BoxEvents for S
where
    S: futures_util::Stream<
            Item = Result<
                eventsource_stream::Event,
                eventsource_stream::EventStreamError<reqwest::Error>,
            >,
        > + Send
        + 'static,
{
    fn boxed_local_or_send(self) -> Events {
        self.boxed()
    }
}

#[cfg(target_arch = "wasm32")]
impl<S> BoxEvents for S
where
    S: futures_util::Stream<
            Item = Result<
                eventsource_stream::Event,
                eventsource_stream::EventStreamError<reqwest::Error>,
            >,
        > + 'static,
{
    fn boxed_local_or_send(self) -> Events {
        self.boxed_local()
    }
}

#[cfg(not(target_arch = "wasm32"))]
async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[cfg(target_arch = "wasm32")]
async fn sleep(duration: Duration) {
    gloo_timers::future::sleep(duration).await;
}
