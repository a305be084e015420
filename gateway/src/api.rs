//! The node API under `/api/v1`, plus `/metrics`. Described for machines in
//! `gateway/openapi.json` (served at `/api/v1/openapi.json`); a test checks that every route
//! registered here is described there and the other way round.
//!
//! | method | path | answer |
//! |---|---|---|
//! | POST | `/api/v1/messages` | body: one encoded message → 201 (stored) or 200 (duplicate), `{id, seq, duplicate}` |
//! | POST | `/api/v1/messages/batch` | body: length-prefixed messages → 200, one result per message, in order |
//! | GET | `/api/v1/messages/{id}` | `{seq, id, address, message}` (message = base64 of the encoding) |
//! | GET | `/api/v1/addresses/{address}/messages?after=&limit=` | a page in arrival order and the next cursor |
//! | GET | `/api/v1/tips` | up to 8 parents for a new message |
//! | GET | `/api/v1/info` | name, versions, difficulty, limits |
//! | GET | `/api/v1/subscribe?addresses=&after=` | server-sent events: replay, then live (`subscribe.rs`) |
//! | GET | `/api/v1/openapi.json` | this API's OpenAPI 3.1 description |
//! | GET | `/metrics` | Prometheus text |

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use protocol::tangle::{
    Address, MAX_ENCODED_LEN, MAX_PARENTS, MAX_PAYLOAD_LEN, Message, MessageId,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::store::{Durability, StoredMessage, SubmitOutcome};
use crate::{BUILD, NAME, Node, limits};

/// The largest request body the node reads: the largest valid message. Anything longer cannot
/// be a message, so it is refused before it is buffered.
pub const MAX_BODY_BYTES: usize = MAX_ENCODED_LEN;
/// Most messages one batch may carry, and the largest batch body: room for a backlog of small
/// readings (a Pi that was offline) without letting one request hold megabytes.
pub const MAX_BATCH_MESSAGES: usize = 1024;
pub const MAX_BATCH_BODY_BYTES: usize = 1024 * 1024;
/// Page size when `limit` is absent, and the most a page may hold.
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;
/// Most addresses one subscription may follow.
pub const MAX_SUBSCRIPTION_ADDRESSES: usize = 64;

/// The OpenAPI description, kept in the repository and served as is.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// The API's routes, recorded as they are registered so the OpenAPI test sees exactly what the
/// router serves.
#[derive(Debug)]
pub struct Routes {
    /// `/api/v1/…`: behind the per-client rate limit.
    limited: Router<Node>,
    /// `/metrics`: scraped by the operator's Prometheus, never rate limited.
    open: Router<Node>,
    described: Vec<(&'static str, &'static str)>,
}

impl Routes {
    fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter<Node>) -> Self {
        self.described.push((method, path));
        if path.starts_with("/api/") {
            self.limited = self.limited.route(path, route);
        } else {
            self.open = self.open.route(path, route);
        }
        self
    }

    fn get<H: Handler<T, Node>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("get", path, get(handler))
    }

    fn post<H: Handler<T, Node>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add("post", path, post(handler))
    }

    /// `(method, path)` pairs in OpenAPI's spelling (lower-case method, `{param}` paths).
    pub fn described(&self) -> &[(&'static str, &'static str)] {
        &self.described
    }

    /// The routes with the node as state, the API behind the rate limit, all behind CORS.
    pub fn into_router(self, node: &Node) -> Router {
        let limited = self
            .limited
            .layer(axum::middleware::from_fn_with_state(node.clone(), limits::rate_limit));
        limited.merge(self.open).layer(limits::cors()).with_state(node.clone())
    }
}

/// Every route of the node.
pub fn routes() -> Routes {
    Routes { limited: Router::new(), open: Router::new(), described: Vec::new() }
        .post("/api/v1/messages", submit)
        .post("/api/v1/messages/batch", submit_batch)
        .get("/api/v1/messages/{id}", get_message)
        .get("/api/v1/addresses/{address}/messages", list_messages)
        .get("/api/v1/tips", tips)
        .get("/api/v1/info", info)
        .get("/api/v1/subscribe", crate::subscribe::subscribe)
        .get("/api/v1/openapi.json", openapi)
        .get("/metrics", metrics)
}

/// Answer to a submission.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubmitReceipt {
    pub id: String,
    pub seq: u64,
    /// True when the node already held this message (nothing was written).
    pub duplicate: bool,
}

/// `POST /api/v1/messages`: validate (size, encoding, work), then store and answer only after
/// the commit.
async fn submit(
    State(node): State<Node>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let result = accept(&node, &headers, body).await;
    node.inner.metrics.submission(match &result {
        Ok((_, receipt)) if receipt.duplicate => "duplicate",
        Ok(_) => "stored",
        Err(err) => err.status_and_code().1,
    });
    let (status, receipt) = result?;
    let location = format!("/api/v1/messages/{}", receipt.id);
    let mut response = (status, Json(receipt)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

/// Checks the content type and reads at most `limit` bytes of body.
async fn read_binary_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or("(not text)");
        if !kind.trim().eq_ignore_ascii_case("application/octet-stream") {
            return Err(ApiError::UnsupportedMediaType(kind.to_owned()));
        }
    }
    // A declared length over the cap is refused before reading a byte.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::BodyTooLarge { limit });
    }
    Ok(Limited::new(body, limit)
        .collect()
        .await
        .map_err(|err| {
            if err.downcast_ref::<LengthLimitError>().is_some() {
                ApiError::BodyTooLarge { limit }
            } else {
                ApiError::BodyUnreadable(err.to_string())
            }
        })?
        .to_bytes())
}

/// Decodes one message and checks its work: everything but storing it.
fn validate(node: &Node, bytes: &[u8]) -> Result<(Message, MessageId), ApiError> {
    let message = Message::decode(bytes)?;
    message.check_work(node.inner.options.difficulty).map_err(ApiError::InsufficientWork)?;
    Ok((message, MessageId::of_encoding(bytes)))
}

async fn accept(
    node: &Node,
    headers: &HeaderMap,
    body: Body,
) -> Result<(StatusCode, SubmitReceipt), ApiError> {
    let bytes = read_binary_body(headers, body, MAX_BODY_BYTES).await?;
    let (message, id) = validate(node, &bytes)?;
    let outcome = node.inner.store.submit(&message, bytes.to_vec(), id).await?;
    Ok(match outcome {
        SubmitOutcome::Stored { seq } => {
            (StatusCode::CREATED, SubmitReceipt { id: id.to_hex(), seq, duplicate: false })
        }
        SubmitOutcome::Duplicate { seq } => {
            (StatusCode::OK, SubmitReceipt { id: id.to_hex(), seq, duplicate: true })
        }
    })
}

/// One entry of a batch answer: the receipt, or the error that message got.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BatchResult {
    Stored(SubmitReceipt),
    Refused { error: BatchError },
}

/// The error of one message in a batch (same codes as single submissions).
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchError {
    pub code: String,
    pub message: String,
}

/// Body of a batch answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct BatchReceipt {
    pub results: Vec<BatchResult>,
}

/// Splits a batch body into its messages: each is a 4-byte big-endian length and that many
/// bytes. A framing problem refuses the whole batch (nothing is stored); a bad message inside a
/// well-framed batch only fails that entry.
fn split_batch(body: &[u8]) -> Result<Vec<&[u8]>, ApiError> {
    let mut frames = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(ApiError::BadBatch(format!(
                "frame {} has a truncated length prefix",
                frames.len()
            )));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > MAX_BODY_BYTES {
            return Err(ApiError::BadBatch(format!(
                "frame {} claims {len} bytes, more than a message can have ({MAX_BODY_BYTES})",
                frames.len()
            )));
        }
        let Some(frame) = tail.get(..len) else {
            return Err(ApiError::BadBatch(format!(
                "frame {} is truncated: {len} bytes announced, {} present",
                frames.len(),
                tail.len()
            )));
        };
        frames.push(frame);
        if frames.len() > MAX_BATCH_MESSAGES {
            return Err(ApiError::BadBatch(format!("more than {MAX_BATCH_MESSAGES} messages")));
        }
        rest = &tail[len..];
    }
    if frames.is_empty() {
        return Err(ApiError::BadBatch("the batch holds no message".into()));
    }
    Ok(frames)
}

/// `POST /api/v1/messages/batch`: many messages in one request (a backlog after an outage, or a
/// busy publisher), each validated and answered on its own, all answered after their commits.
async fn submit_batch(
    State(node): State<Node>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<BatchReceipt>, ApiError> {
    let body = read_binary_body(&headers, body, MAX_BATCH_BODY_BYTES).await?;
    let frames = split_batch(&body)?;
    let mut results: Vec<Option<BatchResult>> = Vec::with_capacity(frames.len());
    let mut valid = Vec::new();
    for frame in &frames {
        match validate(&node, frame) {
            Ok((message, id)) => {
                valid.push((message, frame.to_vec(), id));
                results.push(None);
            }
            Err(err) => results.push(Some(refused(&node, &err))),
        }
    }
    let ids: Vec<MessageId> = valid.iter().map(|(_, _, id)| *id).collect();
    let outcomes = node.inner.store.submit_many(valid).await;
    let mut answered = ids.into_iter().zip(outcomes);
    for slot in results.iter_mut().filter(|slot| slot.is_none()) {
        let Some((id, outcome)) = answered.next() else { break };
        *slot = Some(match outcome {
            Ok(outcome) => {
                let (seq, duplicate) = match outcome {
                    SubmitOutcome::Stored { seq } => (seq, false),
                    SubmitOutcome::Duplicate { seq } => (seq, true),
                };
                node.inner.metrics.submission(if duplicate { "duplicate" } else { "stored" });
                BatchResult::Stored(SubmitReceipt { id: id.to_hex(), seq, duplicate })
            }
            Err(err) => refused(&node, &ApiError::from(err)),
        });
    }
    Ok(Json(BatchReceipt { results: results.into_iter().flatten().collect() }))
}

/// The batch entry for a message that was refused, counted like a single submission.
fn refused(node: &Node, err: &ApiError) -> BatchResult {
    let code = err.status_and_code().1;
    node.inner.metrics.submission(code);
    BatchResult::Refused { error: BatchError { code: code.to_owned(), message: err.to_string() } }
}

/// A stored message as JSON: its node-local sequence, id, address and encoding (base64).
#[derive(Debug, Serialize, Deserialize)]
pub struct MessageView {
    pub seq: u64,
    pub id: String,
    pub address: String,
    pub message: String,
}

impl From<&StoredMessage> for MessageView {
    fn from(stored: &StoredMessage) -> Self {
        Self {
            seq: stored.seq,
            id: stored.id.to_hex(),
            address: stored.address.to_hex(),
            message: BASE64.encode(&stored.bytes),
        }
    }
}

fn parse_id(raw: Result<Path<String>, PathRejection>) -> Result<MessageId, ApiError> {
    let Path(text) = raw.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    MessageId::from_hex(&text).ok_or(ApiError::BadHex { what: "message id", got: text })
}

pub(crate) fn parse_address(text: &str) -> Result<Address, ApiError> {
    Address::from_hex(text)
        .ok_or_else(|| ApiError::BadHex { what: "address", got: text.to_owned() })
}

/// `GET /api/v1/messages/{id}`.
async fn get_message(
    State(node): State<Node>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<MessageView>, ApiError> {
    let id = parse_id(id)?;
    match node.inner.store.get(id).await? {
        Some(stored) => Ok(Json(MessageView::from(&stored))),
        None => Err(ApiError::MessageNotFound(id.to_hex())),
    }
}

#[derive(Debug, Deserialize)]
struct PageQuery {
    after: Option<u64>,
    limit: Option<usize>,
}

/// One page of an address's messages.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page {
    pub messages: Vec<MessageView>,
    /// Pass as `after` to get the next page (the last sequence here, or the request's `after`).
    pub next_after: u64,
    /// True when more messages follow this page right now.
    pub more: bool,
}

/// `GET /api/v1/addresses/{address}/messages?after=&limit=`.
async fn list_messages(
    State(node): State<Node>,
    address: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Path(address) = address.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let address = parse_address(&address)?;
    let Query(query) = query.map_err(|e| ApiError::BadQuery(e.body_text()))?;
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::BadQuery(format!("limit must be 1 to {MAX_PAGE}, got {limit}")));
    }
    // One extra row tells whether another page follows.
    let mut rows = node.inner.store.list(vec![address], after, limit + 1).await?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next_after = rows.last().map_or(after, |m| m.seq);
    Ok(Json(Page { messages: rows.iter().map(MessageView::from).collect(), next_after, more }))
}

/// Body of `GET /api/v1/tips`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Tips {
    pub tips: Vec<String>,
}

/// `GET /api/v1/tips`.
async fn tips(State(node): State<Node>) -> Json<Tips> {
    Json(Tips { tips: node.inner.store.tips().iter().map(MessageId::to_hex).collect() })
}

/// Body of `GET /api/v1/info`.
#[derive(Debug, Serialize)]
pub struct NodeInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub build: &'static str,
    pub protocol_version: &'static str,
    /// Proof-of-work difficulty (leading zero bits) this node requires.
    pub difficulty: u8,
    pub durability: Durability,
    /// Highest sequence stored (0 when empty).
    pub last_seq: u64,
    pub limits: Limits,
}

/// The limits a client must respect.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub max_payload_bytes: usize,
    pub max_parents: usize,
    pub max_page: usize,
    pub max_subscription_addresses: usize,
    /// Live subscribers further behind than this are dropped.
    pub subscriber_buffer: usize,
    /// `null` when the node does not rate-limit.
    pub rate_limit: Option<limits::RateLimit>,
}

/// `GET /api/v1/info`.
async fn info(State(node): State<Node>) -> Json<NodeInfo> {
    let options = &node.inner.options;
    Json(NodeInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        build: BUILD,
        protocol_version: protocol::VERSION,
        difficulty: options.difficulty.bits(),
        durability: options.store.durability,
        last_seq: node.inner.store.last_seq(),
        limits: Limits {
            max_body_bytes: MAX_BODY_BYTES,
            max_payload_bytes: MAX_PAYLOAD_LEN,
            max_parents: MAX_PARENTS,
            max_page: MAX_PAGE,
            max_subscription_addresses: MAX_SUBSCRIPTION_ADDRESSES,
            subscriber_buffer: options.store.subscriber_buffer,
            rate_limit: options.rate_limit,
        },
    })
}

/// `GET /api/v1/openapi.json`.
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON)
}

/// `GET /metrics`.
async fn metrics(State(node): State<Node>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        node.inner.metrics.render(),
    )
}
