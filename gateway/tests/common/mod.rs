//! Shared test helpers: a node served in-process on 127.0.0.1:0, message builders, and a small
//! server-sent-events reader.
#![allow(dead_code)] // each test file uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use gateway::{Assets, BackgroundNode, Node, NodeOptions};
use protocol::tangle::{Address, Difficulty, Message, MessageDraft, MessageId};

/// A node serving on a real loopback socket, with its store in a temporary folder.
pub struct TestNode {
    pub node: Node,
    pub addr: SocketAddr,
    pub base: String,
    served: Option<BackgroundNode>,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    /// Default options (difficulty 12, rate limit on) unless `adjust` changes them.
    pub async fn start(adjust: impl FnOnce(&mut NodeOptions)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, adjust).await
    }

    /// Starts on an existing store folder (to test restarts).
    pub async fn start_in(dir: tempfile::TempDir, adjust: impl FnOnce(&mut NodeOptions)) -> Self {
        let mut options = NodeOptions::new(dir.path().join("node.sqlite"));
        adjust(&mut options);
        let node = Node::open(options).expect("open node");
        let listener = gateway::bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let router = gateway::app(&node, &Assets::None);
        let served = BackgroundNode::spawn(node.clone(), listener, router).expect("serve");
        Self { node, base: format!("http://{addr}"), addr, served: Some(served), dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful shutdown: subscriptions get their closing event, the store is closed; returns the
    /// folder so the node can be restarted on it.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(served) = self.served.take() {
            served.stop(Duration::from_secs(10)).await.expect("graceful shutdown within 10 s");
        }
        self.dir
    }
}

pub fn address(n: u8) -> Address {
    Address([n; 32])
}

/// A valid message at `difficulty` on `address`, distinct for each `n`.
pub fn message(address: Address, n: u64, difficulty: u8) -> Message {
    MessageDraft::new(vec![MessageId::GENESIS], address, n, n.to_be_bytes().repeat(4))
        .expect("draft")
        .solve_fully(Difficulty::new(difficulty).expect("difficulty"))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// POSTs raw bytes as a message; returns status and JSON body.
pub async fn post(
    client: &reqwest::Client,
    node: &TestNode,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    post_bytes(client, node, "/api/v1/messages", body).await
}

/// POSTs raw bytes to `path` (a message or a batch); returns status and JSON body.
pub async fn post_bytes(
    client: &reqwest::Client,
    node: &TestNode,
    path: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let response = client
        .post(node.url(path))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> (u16, serde_json::Value) {
    let response = client.get(url).send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json body"))
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

/// Reads events from a `text/event-stream` response.
pub struct SseReader {
    stream: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub async fn open(client: &reqwest::Client, url: &str) -> Self {
        let response = client.get(url).send().await.expect("subscribe");
        assert_eq!(response.status(), 200, "subscribe answered {}", response.status());
        let content_type = response.headers()["content-type"].to_str().expect("ascii").to_owned();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        Self { stream: response.bytes_stream().boxed(), buffer: String::new() }
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { event: "message".into(), id: None, data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    if let Some((field, value)) = line.split_once(':') {
                        let value = value.strip_prefix(' ').unwrap_or(value);
                        match field {
                            "event" => event.event = value.to_owned(),
                            "id" => event.id = Some(value.to_owned()),
                            "data" => event.data.push_str(value),
                            _ => continue, // comments (empty field) and unknown fields
                        }
                        any = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            let chunk = self.stream.next().await?.ok()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8 events"));
        }
    }

    /// The next event, failing the test after `secs` seconds.
    pub async fn next_within(&mut self, secs: u64) -> Option<SseEvent> {
        tokio::time::timeout(Duration::from_secs(secs), self.next()).await.expect("event in time")
    }
}
