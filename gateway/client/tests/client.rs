//! The client against real nodes on loopback sockets: publish to all, read from any, follow
//! with fail-over.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gateway::{Assets, BackgroundNode, Node, NodeOptions};
use protocol::tangle::{Address, Difficulty, MessageId};
use tangle_client::{Client, ClientError, FollowEvent};

/// Requests a node served, by `"METHOD /path"`.
type RequestCounts = Arc<Mutex<BTreeMap<String, usize>>>;

struct Running {
    url: String,
    addr: SocketAddr,
    requests: RequestCounts,
    served: BackgroundNode,
    dir: tempfile::TempDir,
}

async fn start(difficulty: u8) -> Running {
    let dir = tempfile::tempdir().expect("temp dir");
    start_in(dir, difficulty, "127.0.0.1:0".parse().expect("addr")).await
}

/// A node on `addr` storing in `dir` (a restart passes both back in).
async fn start_in(dir: tempfile::TempDir, difficulty: u8, addr: SocketAddr) -> Running {
    let mut options = NodeOptions::new(dir.path().join("node.sqlite"));
    options.difficulty = Difficulty::new(difficulty).expect("difficulty");
    options.rate_limit = None;
    let node = Node::open(options).expect("node");
    let listener = gateway::bind(addr).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let url = format!("http://{addr}");
    let requests = RequestCounts::default();
    let counts = requests.clone();
    let router = gateway::app(&node, &Assets::None).layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            let key = format!("{} {}", request.method(), request.uri().path());
            *counts.lock().expect("counts").entry(key).or_default() += 1;
            next.run(request)
        },
    ));
    let served = BackgroundNode::spawn(node, listener, router).expect("serve");
    Running { url, addr, requests, served, dir }
}

impl Running {
    /// Stops the node; its store stays in the returned directory.
    async fn stop(self) -> tempfile::TempDir {
        self.served.stop(Duration::from_secs(10)).await.expect("stops in time");
        self.dir
    }

    /// How many `"METHOD /path"` requests the node served.
    fn served(&self, request: &str) -> usize {
        self.requests.lock().expect("counts").get(request).copied().unwrap_or(0)
    }
}

const TIPS: &str = "GET /api/v1/tips";
const INFO: &str = "GET /api/v1/info";
const POST: &str = "POST /api/v1/messages";

#[tokio::test]
async fn publish_reaches_every_node_at_the_highest_difficulty_and_reads_come_from_any() {
    let (easy, hard) = (start(4).await, start(10).await);
    let client = Client::new([easy.url.clone(), hard.url.clone()]).unwrap();
    assert_eq!(client.difficulty().await.unwrap().bits(), 10);

    let address = Address([3; 32]);
    let report = client.publish(address, 1_000, b"reading".to_vec()).await.unwrap();
    assert_eq!(report.acknowledged.len(), 2, "{:?}", report.failed);
    assert!(report.message.check_work(Difficulty::new(10).unwrap()).is_ok());
    assert_eq!(report.message.parents(), [protocol::tangle::MessageId::GENESIS]);

    // The next message approves the first (the tips of the first node).
    let second = client.publish(address, 2_000, b"next".to_vec()).await.unwrap();
    assert_eq!(second.message.parents(), [report.id]);

    let page = client.list(1, address, 0, 10).await.unwrap();
    let ids: Vec<_> = page.messages.iter().map(|(_, m)| m.id()).collect();
    assert_eq!(ids, [report.id, second.id]);

    // One node down: reads fall through to the other, publishing still succeeds and says who
    // failed.
    easy.stop().await;
    assert_eq!(client.fetch(report.id).await.unwrap(), report.message);
    let partial = client.publish(address, 3_000, b"degraded".to_vec()).await.unwrap();
    assert_eq!(partial.acknowledged.len(), 1);
    assert_eq!(partial.failed.len(), 1);
    assert!(matches!(partial.failed[0], ClientError::Transport { .. }));

    let missing = protocol::tangle::MessageId([0x42; 32]);
    assert!(matches!(client.fetch(missing).await, Err(ClientError::AllFailed(_))));
    hard.stop().await;
}

#[tokio::test]
async fn a_node_error_is_reported_with_its_code() {
    let node = start(0).await;
    let client = Client::new([node.url.clone()]).unwrap();
    let missing = protocol::tangle::MessageId([0x42; 32]);
    assert!(matches!(client.fetch(missing).await, Err(ClientError::NotFound(id)) if id == missing));
    node.stop().await;
}

async fn next_event(follow: &mut tangle_client::Follow) -> Result<FollowEvent, ClientError> {
    let event = tokio::time::timeout(Duration::from_secs(20), follow.next()).await;
    event.expect("an event within 20 s").expect("a follow never ends")
}

#[tokio::test]
async fn follow_replays_goes_live_and_fails_over_without_gaps_or_duplicates() {
    let (first, second) = (start(0).await, start(0).await);
    let client = Client::new([first.url.clone(), second.url.clone()]).unwrap();
    let address = Address([9; 32]);
    let mut published = Vec::new();
    for n in 0..10 {
        published.push(client.publish(address, n, vec![n as u8]).await.unwrap().id);
    }
    let mut follow = client.follow(vec![address], Some(0));
    let mut received = Vec::new();
    loop {
        match next_event(&mut follow).await.unwrap() {
            FollowEvent::Message(m) => received.push(m.id),
            FollowEvent::Live { node } => {
                assert_eq!(node, first.url);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(received, published);

    // A live message arrives as it is stored.
    let live = client.publish(address, 10, vec![10]).await.unwrap().id;
    match next_event(&mut follow).await.unwrap() {
        FollowEvent::Message(m) => assert_eq!(m.id, live),
        other => panic!("{other:?}"),
    }
    published.push(live);

    // The first node shuts down: the follow is told why, fails over to the second node, and
    // continues after the last message it delivered there.
    first.stop().await;
    let mut later = Vec::new();
    for n in 11..16 {
        later.push(client.publish(address, n, vec![n as u8]).await.unwrap().id);
    }
    let mut after_failover = Vec::new();
    let mut saw_shutdown = false;
    while after_failover.len() < later.len() {
        match next_event(&mut follow).await {
            Ok(FollowEvent::Message(m)) => {
                assert_eq!(m.node, second.url);
                after_failover.push(m.id);
            }
            Ok(FollowEvent::Reconnecting { reason, .. }) => {
                saw_shutdown |= reason == "shutting_down"
            }
            Ok(FollowEvent::Live { .. }) | Err(ClientError::Transport { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert!(saw_shutdown);
    assert_eq!(after_failover, later, "no gap, no duplicate across the fail-over");
    second.stop().await;
}

#[tokio::test]
async fn steady_state_publishing_is_one_post_per_message_and_chains_the_messages() {
    let node = start(4).await;
    let client = Client::new([node.url.clone()]).unwrap();
    let address = Address([5; 32]);
    let mut previous: Option<MessageId> = None;
    for n in 0..20u64 {
        let report = client.publish(address, n, vec![n as u8]).await.unwrap();
        assert_eq!(report.acknowledged.len(), 1);
        if let Some(previous) = previous {
            // Each message approves the one before: the tangle stays one connected graph.
            assert_eq!(report.message.parents(), [previous]);
        }
        previous = Some(report.id);
    }
    assert_eq!((node.served(TIPS), node.served(INFO), node.served(POST)), (1, 1, 20));
    assert_eq!(client.tips().await.unwrap(), [previous.unwrap()]);

    // Without the cache (the behaviour before it): three requests per message.
    let uncached = Client::new([node.url.clone()]).unwrap().with_publish_cache_ttl(Duration::ZERO);
    for n in 0..5u64 {
        uncached.publish(address, 100 + n, vec![n as u8]).await.unwrap();
    }
    assert_eq!((node.served(TIPS), node.served(INFO), node.served(POST)), (2 + 5, 1 + 5, 25));
    node.stop().await;
}

#[tokio::test]
async fn an_expired_cache_is_fetched_again_and_picks_up_other_clients_tips() {
    let node = start(0).await;
    let ours =
        Client::new([node.url.clone()]).unwrap().with_publish_cache_ttl(Duration::from_secs(3));
    let theirs = Client::new([node.url.clone()]).unwrap();
    let first = ours.publish(Address([1; 32]), 1, vec![1]).await.unwrap();
    let other = theirs.publish(Address([2; 32]), 2, vec![2]).await.unwrap();
    assert_eq!(other.message.parents(), [first.id]);
    // Within the TTL our next message approves our own last one only …
    let second = ours.publish(Address([1; 32]), 3, vec![3]).await.unwrap();
    assert_eq!(second.message.parents(), [first.id]);
    // … after it, the node's tips again: the other client's message is approved too.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let third = ours.publish(Address([1; 32]), 4, vec![4]).await.unwrap();
    let mut expected = vec![second.id, other.id];
    expected.sort_unstable();
    assert_eq!(third.message.parents(), expected.as_slice());
    assert_eq!(node.served(TIPS), 2 + 1, "two fetches by us, one by the other client");
    node.stop().await;
}

#[tokio::test]
async fn a_raised_difficulty_is_fetched_again_and_the_message_retried_once() {
    let node = start(2).await;
    let client = Client::new([node.url.clone()]).unwrap();
    let address = Address([6; 32]);
    client.publish(address, 1, vec![1]).await.unwrap();

    // The operator restarts the node with a higher difficulty; the cached one is now too low.
    let addr = node.addr;
    let dir = node.stop().await;
    let node = start_in(dir, 10, addr).await;
    let report = client.publish(address, 2, vec![2]).await.unwrap();
    assert!(report.message.check_work(Difficulty::new(10).unwrap()).is_ok());
    assert_eq!(report.acknowledged.len(), 1);
    // Refused once, then fetched (tips and info) and accepted.
    assert_eq!((node.served(TIPS), node.served(INFO), node.served(POST)), (1, 1, 2));
    node.stop().await;
}
