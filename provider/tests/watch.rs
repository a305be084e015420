//! The provider's subscriptions against a real node on loopback: messages stored before and
//! after a subscription starts arrive once; a device's subscription replaced as its window moves
//! loses nothing; a node that refuses subscriptions is reported, so the follow loop can poll.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use gateway::{Assets, BackgroundNode, Node, NodeOptions};
use protocol::tangle::{Address, Difficulty};
use provider::watch::{Report, SeenIds, Subscriptions, Target};

struct Running {
    url: String,
    served: BackgroundNode,
    _dir: tempfile::TempDir,
}

/// A node; `refuse_subscriptions` answers `/api/v1/subscribe` with a JSON 404 like a node
/// without the endpoint.
async fn start(refuse_subscriptions: bool) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut options = NodeOptions::new(dir.path().join("node.sqlite"));
    options.difficulty = Difficulty::new(0).unwrap();
    options.rate_limit = None;
    let node = Node::open(options).unwrap();
    let listener = gateway::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut router = gateway::app(&node, &Assets::None);
    if refuse_subscriptions {
        router = router.layer(axum::middleware::from_fn(
            |request: axum::extract::Request, next: axum::middleware::Next| async move {
                if request.uri().path() == "/api/v1/subscribe" {
                    let body = r#"{"error":{"code":"not_found","message":"no such path"}}"#;
                    return axum::response::Response::builder()
                        .status(404)
                        .header("content-type", "application/json")
                        .body(axum::body::Body::from(body))
                        .unwrap();
                }
                next.run(request).await
            },
        ));
    }
    let served = BackgroundNode::spawn(node, listener, router).expect("serve");
    Running { url, served, _dir: dir }
}

impl Running {
    async fn stop(self) {
        let _ = self.served.stop(Duration::from_secs(10)).await;
    }
}

/// Reports until `count` new (deduplicated) deliveries came; returns their payloads' first byte.
async fn collect(
    subscriptions: &mut Subscriptions,
    seen: &mut SeenIds,
    count: usize,
) -> Vec<(Target, u8)> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while out.len() < count {
            match subscriptions.recv().await.unwrap() {
                Report::Delivered(delivery, id) => {
                    if seen.insert(id) {
                        out.push((delivery.target, delivery.payload[0]));
                    }
                }
                Report::Refused(err) => panic!("refused: {err}"),
            }
        }
    })
    .await
    .expect("deliveries in time");
    out
}

fn position(n: u8) -> [u8; 32] {
    [n; 32]
}

#[tokio::test]
async fn fixed_and_moving_subscriptions_deliver_everything_once() {
    let node = start(false).await;
    let client = tangle_client::Client::new([node.url.clone()]).unwrap();
    let inbox = [0xEE; 32];
    // Stored before anyone subscribed.
    client.publish(Address(inbox), 1, vec![100]).await.unwrap();
    let mut subscriptions = Subscriptions::start(&client, &[inbox]);
    let mut seen = SeenIds::default();
    assert_eq!(collect(&mut subscriptions, &mut seen, 1).await, [(Target::Fixed, 100)]);
    client.publish(Address(inbox), 2, vec![101]).await.unwrap();
    assert_eq!(collect(&mut subscriptions, &mut seen, 1).await, [(Target::Fixed, 101)]);

    // A device's positions 0..8 are awaited; 0..6 are published, some before it subscribes.
    let device = Target::Device("d".into());
    for n in 0..3 {
        client.publish(Address(position(n)), 10, vec![n]).await.unwrap();
    }
    let window: Vec<[u8; 32]> = (0..8).map(position).collect();
    subscriptions.watch("d", &window);
    for n in 3..6 {
        client.publish(Address(position(n)), 10, vec![n]).await.unwrap();
    }
    let mut got = collect(&mut subscriptions, &mut seen, 6).await;
    got.sort_unstable_by_key(|(_, n)| *n);
    assert_eq!(got, (0..6).map(|n| (device.clone(), n)).collect::<Vec<_>>());
    assert_eq!(subscriptions.opened(), 2);

    // The window moves by 2 of 8: the subscription is kept.
    subscriptions.watch("d", &(2..10).map(position).collect::<Vec<_>>());
    assert_eq!(subscriptions.opened(), 2);
    // It moves past half: replaced. Position 9 was stored while only the old subscription
    // (0..8) existed, 6 and 7 arrive after the switch; each arrives once.
    client.publish(Address(position(9)), 10, vec![9]).await.unwrap();
    subscriptions.watch("d", &(6..14).map(position).collect::<Vec<_>>());
    assert_eq!(subscriptions.opened(), 3);
    for n in [6, 7] {
        client.publish(Address(position(n)), 10, vec![n]).await.unwrap();
    }
    let got: BTreeSet<u8> =
        collect(&mut subscriptions, &mut seen, 3).await.into_iter().map(|(_, n)| n).collect();
    assert_eq!(got, BTreeSet::from([6, 7, 9]));
    // Nothing else is waiting (a duplicate would be dropped by `seen`, not counted here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Some(report) = subscriptions.try_recv() {
        if let Report::Delivered(_, id) = report {
            assert!(!seen.insert(id), "only duplicates of what was delivered");
        }
    }
    node.stop().await;
}

#[tokio::test]
async fn a_node_without_subscriptions_is_reported_as_refusing_them() {
    let node = start(true).await;
    let client = tangle_client::Client::new([node.url.clone()]).unwrap();
    let mut subscriptions = Subscriptions::start(&client, &[[1; 32]]);
    let report = tokio::time::timeout(Duration::from_secs(20), subscriptions.recv())
        .await
        .expect("a report in time")
        .unwrap();
    match report {
        Report::Refused(err) => assert_eq!(err.code(), Some("not_found")),
        Report::Delivered(..) => panic!("nothing was published"),
    }
    node.stop().await;
}
