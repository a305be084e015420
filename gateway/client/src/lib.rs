//! Client for Meterkast tangle nodes, used by the Pi agent and the web app (native and wasm32).
//!
//! ```text
//!  publish(address, time, payload)
//!     ├─ tips  ◄── first node that answers          (parents for the new message)  ┐ cached for a
//!     ├─ difficulty = highest any node announces    (one proof of work satisfies   │ short TTL:
//!     │                                              every node)                   ┘ publish_cache
//!     ├─ solve (protocol::tangle)                   (milliseconds at the default difficulty)
//!     └─ POST to every node at once ──► PublishReport (who acknowledged, who failed)
//!
//!  fetch(id) / list(...)      read from any node; every message is re-decoded and its id
//!                             recomputed, because nodes are untrusted
//!  follow(addresses, after)   live subscription (server-sent events) with resume and fail-over
//! ```
//!
//! Quick start (native):
//!
//! ```no_run
//! # async fn demo() -> Result<(), tangle_client::ClientError> {
//! use protocol::tangle::Address;
//! let client = tangle_client::Client::new(["http://127.0.0.1:8080", "http://127.0.0.1:8081"])?;
//! let report = client.publish(Address([7; 32]), 1_764_151_200_000, b"ciphertext".to_vec()).await?;
//! println!("{} stored by {} node(s)", report.id, report.acknowledged.len());
//! let mut follow = client.follow(vec![Address([7; 32])], Some(0));
//! while let Some(event) = follow.next().await {
//!     if let tangle_client::FollowEvent::Message(m) = event? {
//!         println!("{} from {}", m.id, m.node);
//!     }
//! }
//! # Ok(()) }
//! ```

mod follow;
mod publish_cache;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use protocol::tangle::{Address, Difficulty, DraftError, Message, MessageDraft, MessageId};
use serde::Deserialize;

pub use follow::{Follow, FollowEvent, FollowedMessage};
use publish_cache::{PublishCache, PublishContext};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no node URLs given")]
    NoNodes,
    #[error("node URL {0:?} must start with http:// or https://")]
    InvalidUrl(String),
    #[error("{node}: {source}")]
    Transport { node: String, source: reqwest::Error },
    /// The node answered with its JSON error.
    #[error("{node} answered {status} {code}: {message}")]
    Api { node: String, status: u16, code: String, message: String },
    /// The node answered something that is not what it claims (undecodable, wrong id).
    #[error("{node} sent an invalid answer: {reason}")]
    Invalid { node: String, reason: String },
    #[error(transparent)]
    Draft(#[from] DraftError),
    #[error("no node acknowledged the message: {}", join(.0))]
    AllFailed(Vec<ClientError>),
    #[error("message {0} is on none of the nodes")]
    NotFound(MessageId),
}

fn join(errors: &[ClientError]) -> String {
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

impl ClientError {
    /// The node's error code, when a node answered with one (`insufficient_work`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A node's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub node: String,
    /// The node-local sequence (a cursor on that node only).
    pub seq: u64,
    /// The node already had the message.
    pub duplicate: bool,
}

/// The outcome of publishing to every node.
#[derive(Debug)]
pub struct PublishReport {
    pub id: MessageId,
    pub message: Message,
    pub acknowledged: Vec<Receipt>,
    /// Nodes that did not acknowledge, and why.
    pub failed: Vec<ClientError>,
}

/// A node's `GET /api/v1/info` (the fields a client needs).
#[derive(Debug, Clone, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub version: String,
    pub protocol_version: String,
    pub difficulty: u8,
    pub last_seq: u64,
}

/// One page of an address on one node.
#[derive(Debug, Clone)]
pub struct Page {
    /// `(sequence on that node, message)`, in arrival order, each verified.
    pub messages: Vec<(u64, Message)>,
    pub next_after: u64,
    pub more: bool,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct ReceiptBody {
    id: String,
    seq: u64,
    duplicate: bool,
}

/// A message as nodes send it in JSON.
#[derive(Debug, Deserialize)]
pub(crate) struct MessageBody {
    pub(crate) seq: u64,
    pub(crate) id: String,
    pub(crate) message: String,
}

impl MessageBody {
    /// Decodes and checks that the bytes really are the message the node says they are.
    pub(crate) fn verify(&self, node: &str) -> Result<(MessageId, Message), ClientError> {
        let invalid = |reason: String| ClientError::Invalid { node: node.to_owned(), reason };
        let bytes = BASE64.decode(&self.message).map_err(|e| invalid(format!("base64: {e}")))?;
        let message = Message::decode(&bytes).map_err(|e| invalid(e.to_string()))?;
        let id = message.id();
        if MessageId::from_hex(&self.id) != Some(id) {
            return Err(invalid(format!("claims id {} for a message whose id is {id}", self.id)));
        }
        Ok((id, message))
    }
}

#[derive(Debug, Deserialize)]
struct PageBody {
    messages: Vec<MessageBody>,
    next_after: u64,
    more: bool,
}

#[derive(Debug, Deserialize)]
struct TipsBody {
    tips: Vec<String>,
}

/// A client for one or more nodes: publishes to all, reads from any. Clones share the
/// connection pool and the publish cache.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    nodes: Vec<String>,
    publish_cache: Arc<PublishCache>,
}

impl Client {
    /// `nodes` are base URLs such as `http://127.0.0.1:8080` (a trailing `/` is fine).
    pub fn new<I, S>(nodes: I) -> Result<Self, ClientError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let nodes: Vec<String> = nodes
            .into_iter()
            .map(|n| {
                let n: String = n.into();
                let n = n.trim_end_matches('/').to_owned();
                if n.starts_with("http://") || n.starts_with("https://") {
                    Ok(n)
                } else {
                    Err(ClientError::InvalidUrl(n))
                }
            })
            .collect::<Result<_, _>>()?;
        if nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        Ok(Self {
            http: reqwest::Client::new(),
            nodes,
            publish_cache: Arc::new(PublishCache::new(PublishCache::DEFAULT_TTL)),
        })
    }

    /// How long [`publish`](Self::publish) reuses the tips and difficulty it fetched (default
    /// 30 s; zero asks the nodes before every message). See `publish_cache.rs`.
    pub fn with_publish_cache_ttl(mut self, ttl: Duration) -> Self {
        self.publish_cache = Arc::new(PublishCache::new(ttl));
        self
    }

    /// The node base URLs, in the order reads try them.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        node: &str,
        path: &str,
    ) -> Result<T, ClientError> {
        let response = self
            .http
            .get(format!("{node}{path}"))
            .send()
            .await
            .map_err(|source| ClientError::Transport { node: node.to_owned(), source })?;
        read_json(node, response).await
    }

    /// Runs `read` against each node in turn until one succeeds; all errors if none does.
    async fn read_from_any<T, F, Fut>(&self, read: F) -> Result<T, ClientError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, ClientError>>,
    {
        let mut errors = Vec::new();
        for node in &self.nodes {
            match read(node.clone()).await {
                Ok(value) => return Ok(value),
                Err(err) => errors.push(err),
            }
        }
        Err(ClientError::AllFailed(errors))
    }

    /// Info from the first node that answers.
    pub async fn info(&self) -> Result<NodeInfo, ClientError> {
        self.read_from_any(|node| async move { self.get_json(&node, "/api/v1/info").await }).await
    }

    /// The highest difficulty any reachable node announces (a message solved at it is accepted
    /// by all of them).
    pub async fn difficulty(&self) -> Result<Difficulty, ClientError> {
        let answers = futures_util::future::join_all(
            self.nodes.iter().map(|node| self.get_json::<NodeInfo>(node, "/api/v1/info")),
        )
        .await;
        let mut errors = Vec::new();
        let mut highest = None;
        for answer in answers {
            match answer {
                Ok(info) => highest = highest.max(Some(info.difficulty)),
                Err(err) => errors.push(err),
            }
        }
        let bits = highest.ok_or(ClientError::AllFailed(errors))?;
        Difficulty::new(bits)
            .map_err(|e| ClientError::Invalid { node: "a node".into(), reason: e.to_string() })
    }

    /// Tips from the first node that answers (at least the genesis).
    pub async fn tips(&self) -> Result<Vec<MessageId>, ClientError> {
        self.read_from_any(|node| async move {
            let body: TipsBody = self.get_json(&node, "/api/v1/tips").await?;
            let tips: Option<Vec<MessageId>> =
                body.tips.iter().map(|t| MessageId::from_hex(t)).collect();
            match tips {
                Some(tips) if !tips.is_empty() && tips.len() <= protocol::tangle::MAX_PARENTS => {
                    Ok(tips)
                }
                _ => {
                    Err(ClientError::Invalid { node, reason: "tips are not 1 to 8 hex ids".into() })
                }
            }
        })
        .await
    }

    /// Builds a message approving current tips, solves the highest announced difficulty, and
    /// submits it to every node. Succeeds when at least one node acknowledged.
    ///
    /// Tips and difficulty come from the publish cache while it is fresh, so in steady state
    /// this is one POST per node; a refusal for insufficient work refreshes them and retries
    /// once. `timestamp_ms` is the message's time, from the caller's clock (the cache's TTL
    /// uses a monotonic clock that also works in the browser).
    pub async fn publish(
        &self,
        address: Address,
        timestamp_ms: u64,
        payload: Vec<u8>,
    ) -> Result<PublishReport, ClientError> {
        let context = self.publish_context().await?;
        match self.solve_and_submit(context, address, timestamp_ms, payload.clone()).await {
            Err(ClientError::AllFailed(errors)) if errors.iter().any(is_insufficient_work) => {
                tracing::info!("the nodes ask for more work than cached; fetching the difficulty");
                self.publish_cache.invalidate();
                let context = self.publish_context().await?;
                self.solve_and_submit(context, address, timestamp_ms, payload).await
            }
            other => other,
        }
    }

    /// Cached tips and difficulty, or fetched now (both requests at once).
    async fn publish_context(&self) -> Result<PublishContext, ClientError> {
        if let Some(context) = self.publish_cache.fresh(web_time::Instant::now()) {
            return Ok(context);
        }
        let (tips, difficulty) = futures_util::future::join(self.tips(), self.difficulty()).await;
        let (tips, difficulty) = (tips?, difficulty?);
        self.publish_cache.store(tips.clone(), difficulty, web_time::Instant::now());
        Ok(PublishContext::new(tips, difficulty))
    }

    async fn solve_and_submit(
        &self,
        context: PublishContext,
        address: Address,
        timestamp_ms: u64,
        payload: Vec<u8>,
    ) -> Result<PublishReport, ClientError> {
        let draft = MessageDraft::new(context.tips, address, timestamp_ms, payload)?;
        let report = self.submit(draft.solve_fully(context.difficulty)).await?;
        if report.failed.iter().any(is_insufficient_work) {
            // Stored elsewhere; the next publish asks for the raised difficulty.
            self.publish_cache.invalidate();
        } else {
            self.publish_cache.published(&report.message);
        }
        Ok(report)
    }

    /// Submits a finished message to every node at once.
    pub async fn submit(&self, message: Message) -> Result<PublishReport, ClientError> {
        let bytes = message.encode();
        let id = message.id();
        let answers = futures_util::future::join_all(self.nodes.iter().map(|node| {
            let bytes = bytes.clone();
            async move {
                let response = self
                    .http
                    .post(format!("{node}/api/v1/messages"))
                    .header("content-type", "application/octet-stream")
                    .body(bytes)
                    .send()
                    .await
                    .map_err(|source| ClientError::Transport { node: node.clone(), source })?;
                let receipt: ReceiptBody = read_json(node, response).await?;
                if MessageId::from_hex(&receipt.id) != Some(id) {
                    return Err(ClientError::Invalid {
                        node: node.clone(),
                        reason: format!("acknowledged id {} for message {id}", receipt.id),
                    });
                }
                Ok(Receipt { node: node.clone(), seq: receipt.seq, duplicate: receipt.duplicate })
            }
        }))
        .await;
        let (mut acknowledged, mut failed) = (Vec::new(), Vec::new());
        for answer in answers {
            match answer {
                Ok(receipt) => acknowledged.push(receipt),
                Err(err) => failed.push(err),
            }
        }
        if acknowledged.is_empty() {
            return Err(ClientError::AllFailed(failed));
        }
        for err in &failed {
            tracing::warn!(%id, error = %err, "a node did not acknowledge");
        }
        Ok(PublishReport { id, message, acknowledged, failed })
    }

    /// A message by id from the first node that has a genuine copy.
    pub async fn fetch(&self, id: MessageId) -> Result<Message, ClientError> {
        let mut errors = Vec::new();
        for node in &self.nodes {
            let answer: Result<MessageBody, _> =
                self.get_json(node, &format!("/api/v1/messages/{id}")).await;
            match answer.and_then(|body| body.verify(node)) {
                Ok((got, message)) if got == id => return Ok(message),
                Ok((got, _)) => errors.push(ClientError::Invalid {
                    node: node.clone(),
                    reason: format!("asked for {id}, got {got}"),
                }),
                Err(err) => errors.push(err),
            }
        }
        if errors.iter().all(|e| e.code() == Some("message_not_found")) {
            return Err(ClientError::NotFound(id));
        }
        Err(ClientError::AllFailed(errors))
    }

    /// One page of `address` on node number `node` (cursors are node-local).
    pub async fn list(
        &self,
        node: usize,
        address: Address,
        after: u64,
        limit: usize,
    ) -> Result<Page, ClientError> {
        let node = self.nodes.get(node).ok_or(ClientError::NoNodes)?;
        let path = format!("/api/v1/addresses/{address}/messages?after={after}&limit={limit}");
        let body: PageBody = self.get_json(node, &path).await?;
        let messages = body
            .messages
            .iter()
            .map(|m| m.verify(node).map(|(_, message)| (m.seq, message)))
            .collect::<Result<_, _>>()?;
        Ok(Page { messages, next_after: body.next_after, more: body.more })
    }

    /// Follows `addresses` live: replays from `after` (a cursor on the first node; `None` = only
    /// new messages), then streams. See [`Follow`].
    pub fn follow(&self, addresses: Vec<Address>, after: Option<u64>) -> Follow {
        Follow::new(self.clone(), addresses, after)
    }

    /// The sequence `id` has on node number `node`, if that node holds it.
    pub(crate) async fn sequence_on(&self, node: usize, id: MessageId) -> Option<u64> {
        let node = self.nodes.get(node)?;
        let body: MessageBody =
            self.get_json(node, &format!("/api/v1/messages/{id}")).await.ok()?;
        Some(body.seq)
    }
}

fn is_insufficient_work(err: &ClientError) -> bool {
    err.code() == Some("insufficient_work")
}

/// Parses a node's answer: the expected JSON on success, its JSON error otherwise.
pub(crate) async fn read_json<T: serde::de::DeserializeOwned>(
    node: &str,
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    let bytes = response
        .bytes()
        .await
        .map_err(|source| ClientError::Transport { node: node.to_owned(), source })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Invalid { node: node.to_owned(), reason: e.to_string() });
    }
    let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => ("http".to_owned(), String::from_utf8_lossy(&bytes).chars().take(200).collect()),
    };
    Err(ClientError::Api { node: node.to_owned(), status: status.as_u16(), code, message })
}

/// Ids already delivered, remembered in a bounded window so a fail-over can skip them.
#[derive(Debug, Default)]
pub(crate) struct RecentIds {
    order: std::collections::VecDeque<MessageId>,
    set: HashMap<MessageId, ()>,
}

impl RecentIds {
    /// How many recent ids a follow remembers (~320 KiB).
    pub(crate) const CAPACITY: usize = 10_000;

    /// False if `id` was already seen.
    pub(crate) fn insert(&mut self, id: MessageId) -> bool {
        if self.set.insert(id, ()).is_some() {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_are_checked_and_normalised() {
        let client = Client::new(["http://a:1/", "https://b"]).unwrap();
        assert_eq!(client.nodes(), ["http://a:1", "https://b"]);
        assert!(matches!(Client::new(Vec::<String>::new()), Err(ClientError::NoNodes)));
        assert!(matches!(Client::new(["ftp://x"]), Err(ClientError::InvalidUrl(_))));
    }

    #[test]
    fn a_body_whose_bytes_do_not_match_its_id_is_refused() {
        let message = MessageDraft::new(vec![MessageId::GENESIS], Address([1; 32]), 0, vec![])
            .unwrap()
            .with_nonce(0);
        let honest = MessageBody {
            seq: 1,
            id: message.id().to_hex(),
            message: BASE64.encode(message.encode()),
        };
        assert_eq!(honest.verify("n").unwrap().0, message.id());
        let lying = MessageBody {
            seq: 1,
            id: MessageId([9; 32]).to_hex(),
            message: honest.message.clone(),
        };
        assert!(matches!(lying.verify("n"), Err(ClientError::Invalid { .. })));
        let garbage =
            MessageBody { seq: 1, id: honest.id.clone(), message: BASE64.encode([1, 2, 3]) };
        assert!(matches!(garbage.verify("n"), Err(ClientError::Invalid { .. })));
    }

    #[test]
    fn recent_ids_forget_the_oldest_beyond_capacity() {
        let mut recent = RecentIds::default();
        let id = |n: usize| {
            MessageId({
                let mut b = [0; 32];
                b[..8].copy_from_slice(&(n as u64).to_be_bytes());
                b
            })
        };
        assert!(recent.insert(id(0)));
        assert!(!recent.insert(id(0)));
        for n in 1..=RecentIds::CAPACITY {
            recent.insert(id(n));
        }
        assert!(recent.insert(id(0)), "the oldest was forgotten");
        assert_eq!(recent.order.len(), RecentIds::CAPACITY);
    }
}
