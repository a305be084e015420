//! The node API over a real loopback socket: submit, get, list, tips, subscribe, every class of
//! bad input, limits, a full store, restart and shutdown.

mod common;

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::{SseReader, TestNode, address, client, get_json, message, post, post_bytes};
use gateway::api::MAX_BODY_BYTES;
use gateway::limits::RateLimit;
use protocol::tangle::{Address, Difficulty, MAX_PAYLOAD_LEN, MessageDraft, MessageId};

#[tokio::test]
async fn a_message_is_submitted_fetched_listed_and_offered_as_a_tip() {
    let node = TestNode::start(|_| {}).await;
    let http = client();
    let msg = message(address(1), 1, 12);

    let response = http
        .post(node.url("/api/v1/messages"))
        .header("content-type", "application/octet-stream")
        .body(msg.encode())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let receipt: serde_json::Value = response.json().await.unwrap();
    assert_eq!(receipt["id"], msg.id().to_hex());
    assert_eq!(receipt["seq"], 1);
    assert_eq!(receipt["duplicate"], false);
    assert_eq!(location, format!("/api/v1/messages/{}", msg.id()));

    let (status, stored) = get_json(&http, &node.url(&location)).await;
    assert_eq!(status, 200);
    assert_eq!(stored["seq"], 1);
    assert_eq!(stored["address"], address(1).to_hex());
    let bytes = BASE64.decode(stored["message"].as_str().unwrap()).unwrap();
    assert_eq!(bytes, msg.encode());

    let (status, page) =
        get_json(&http, &node.url(&format!("/api/v1/addresses/{}/messages", address(1)))).await;
    assert_eq!(status, 200);
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["messages"][0]["id"], msg.id().to_hex());
    assert_eq!((page["next_after"].as_u64(), page["more"].as_bool()), (Some(1), Some(false)));

    let (_, other) =
        get_json(&http, &node.url(&format!("/api/v1/addresses/{}/messages", address(2)))).await;
    assert_eq!(other["messages"].as_array().unwrap().len(), 0);

    let (_, tips) = get_json(&http, &node.url("/api/v1/tips")).await;
    assert_eq!(tips["tips"], serde_json::json!([msg.id().to_hex()]));
    node.stop().await;
}

#[tokio::test]
async fn an_empty_node_offers_the_genesis_and_tips_follow_approval() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    let (_, tips) = get_json(&http, &node.url("/api/v1/tips")).await;
    assert_eq!(tips["tips"], serde_json::json!([MessageId::GENESIS.to_hex()]));

    let a = message(address(1), 1, 0);
    let b = message(address(1), 2, 0);
    post(&http, &node, a.encode()).await;
    post(&http, &node, b.encode()).await;
    let (_, tips) = get_json(&http, &node.url("/api/v1/tips")).await;
    assert_eq!(tips["tips"], serde_json::json!([b.id().to_hex(), a.id().to_hex()]), "newest first");

    // Approving both, plus a parent this node has never seen: accepted, and the only tip left.
    let unknown = MessageId([0x5a; 32]);
    let c = MessageDraft::new(vec![a.id(), b.id(), unknown], address(2), 3, vec![1, 2, 3])
        .unwrap()
        .with_nonce(0);
    let (status, _) = post(&http, &node, c.encode()).await;
    assert_eq!(status, 201, "unknown parents are accepted (see the spec)");
    let (_, tips) = get_json(&http, &node.url("/api/v1/tips")).await;
    assert_eq!(tips["tips"], serde_json::json!([c.id().to_hex()]));
    node.stop().await;
}

#[tokio::test]
async fn duplicates_are_answered_idempotently_even_when_concurrent() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    let first = message(address(1), 1, 0);
    let (status, receipt) = post(&http, &node, first.encode()).await;
    assert_eq!((status, receipt["seq"].as_u64()), (201, Some(1)));
    let (status, again) = post(&http, &node, first.encode()).await;
    assert_eq!(status, 200);
    assert_eq!((again["seq"].as_u64(), again["duplicate"].as_bool()), (Some(1), Some(true)));

    // Twenty racing copies of a new message: exactly one stores it, all agree on its sequence.
    let second = message(address(1), 2, 0);
    let racers = (0..20).map(|_| {
        let (http, body) = (http.clone(), second.encode());
        let url = node.url("/api/v1/messages");
        tokio::spawn(async move {
            let r = http.post(url).header("content-type", "application/octet-stream").body(body);
            let response = r.send().await.unwrap();
            let status = response.status().as_u16();
            let receipt: serde_json::Value = response.json().await.unwrap();
            (status, receipt["seq"].as_u64().unwrap())
        })
    });
    let mut results = Vec::new();
    for racer in racers {
        results.push(racer.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 1, "{results:?}");
    assert!(results.iter().all(|(s, seq)| (*s == 201 || *s == 200) && *seq == 2), "{results:?}");

    let (_, page) =
        get_json(&http, &node.url(&format!("/api/v1/addresses/{}/messages", address(1)))).await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    node.stop().await;
}

#[tokio::test]
async fn listing_pages_through_an_address_in_arrival_order() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    let mut expected = Vec::new();
    for n in 0..25 {
        let mine = message(address(7), n, 0);
        post(&http, &node, mine.encode()).await;
        expected.push(mine.id().to_hex());
        // Interleave another address so sequences on address 7 have gaps.
        post(&http, &node, message(address(8), n, 0).encode()).await;
    }
    let mut after = 0;
    let mut seen = Vec::new();
    let mut pages = Vec::new();
    loop {
        let url = format!("/api/v1/addresses/{}/messages?after={after}&limit=10", address(7));
        let (status, page) = get_json(&http, &node.url(&url)).await;
        assert_eq!(status, 200);
        let messages = page["messages"].as_array().unwrap();
        pages.push(messages.len());
        let mut last = after;
        for m in messages {
            let seq = m["seq"].as_u64().unwrap();
            assert!(seq > last, "strictly increasing sequences");
            last = seq;
            seen.push(m["id"].as_str().unwrap().to_owned());
        }
        assert_eq!(page["next_after"].as_u64(), Some(last));
        after = last;
        if !page["more"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(seen, expected);
    let url = format!("/api/v1/addresses/{}/messages?after={after}", address(7));
    let (_, end) = get_json(&http, &node.url(&url)).await;
    assert_eq!(end["messages"].as_array().unwrap().len(), 0);
    assert_eq!((end["next_after"].as_u64(), end["more"].as_bool()), (Some(after), Some(false)));
    node.stop().await;
}

/// Asserts a JSON error with this status and code whose message mentions `words`.
fn assert_error(result: (u16, serde_json::Value), status: u16, code: &str, words: &str) {
    let (got, body) = result;
    assert_eq!(got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().expect("error message");
    assert!(message.contains(words), "{message:?} should mention {words:?}");
}

#[tokio::test]
async fn every_class_of_bad_input_gets_a_4xx_json_error_naming_it_and_stores_nothing() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::new(12).unwrap()).await;
    let http = client();
    let good = message(address(1), 1, 12).encode();

    let mut malformed = good.clone();
    malformed[0] = 9;
    assert_error(post(&http, &node, malformed).await, 400, "malformed", "version 9");

    let mut unsorted = message(address(1), 2, 0).encode();
    unsorted[1] = 0;
    assert_error(post(&http, &node, unsorted).await, 400, "malformed", "parents");

    assert_error(
        post(&http, &node, good[..good.len() - 5].to_vec()).await,
        400,
        "truncated",
        "truncated",
    );
    assert_error(post(&http, &node, Vec::new()).await, 400, "truncated", "truncated");

    let mut trailing = good.clone();
    trailing.push(0);
    assert_error(post(&http, &node, trailing).await, 400, "malformed", "after the end");

    // A body longer than any message can be, declared up front...
    let oversized = vec![1u8; MAX_BODY_BYTES + 1];
    assert_error(post(&http, &node, oversized.clone()).await, 413, "body_too_large", "cap");
    // ...and streamed without a length (chunked), so the cap is enforced while reading.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        oversized.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let response = http
        .post(node.url("/api/v1/messages"))
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_error((status, response.json().await.unwrap()), 413, "body_too_large", "cap");

    // A header claiming a payload over the cap.
    let mut claims_too_much = good.clone();
    let len_at = 2 + 32 + 32 + 8;
    claims_too_much[len_at..len_at + 4]
        .copy_from_slice(&((MAX_PAYLOAD_LEN + 1) as u32).to_be_bytes());
    assert_error(post(&http, &node, claims_too_much).await, 413, "payload_too_large", "exceeds");

    // Under-worked: the first nonce that fails difficulty 12.
    let draft = MessageDraft::new(vec![MessageId::GENESIS], address(1), 9, vec![1]).unwrap();
    let lazy = (0..)
        .map(|nonce| draft.clone().with_nonce(nonce))
        .find(|m| m.check_work(Difficulty::new(12).unwrap()).is_err())
        .unwrap();
    assert_error(post(&http, &node, lazy.encode()).await, 422, "insufficient_work", "requires 12");

    let response = http
        .post(node.url("/api/v1/messages"))
        .header("content-type", "application/json")
        .body(good.clone())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_error(
        (status, response.json().await.unwrap()),
        415,
        "unsupported_media_type",
        "octet-stream",
    );

    assert_error(
        get_json(&http, &node.url("/api/v1/messages/xyz")).await,
        400,
        "bad_hex",
        "64 hex",
    );
    let unknown = format!("/api/v1/messages/{}", MessageId([3; 32]));
    assert_error(
        get_json(&http, &node.url(&unknown)).await,
        404,
        "message_not_found",
        "no message",
    );
    let list = format!("/api/v1/addresses/{}/messages", address(1));
    assert_error(
        get_json(&http, &node.url(&format!("{list}?limit=0"))).await,
        400,
        "bad_query",
        "limit",
    );
    assert_error(
        get_json(&http, &node.url(&format!("{list}?limit=1001"))).await,
        400,
        "bad_query",
        "limit",
    );
    assert_error(
        get_json(&http, &node.url(&format!("{list}?after=soon"))).await,
        400,
        "bad_query",
        "after",
    );
    assert_error(
        get_json(&http, &node.url("/api/v1/addresses/00/messages")).await,
        400,
        "bad_hex",
        "address",
    );
    assert_error(
        get_json(&http, &node.url("/api/v1/subscribe")).await,
        400,
        "bad_query",
        "addresses",
    );
    assert_error(
        get_json(&http, &node.url("/api/v1/subscribe?addresses=")).await,
        400,
        "bad_query",
        "1 to 64",
    );
    let too_many: Vec<String> = (0..65).map(|n| Address([n; 32]).to_hex()).collect();
    let url = format!("/api/v1/subscribe?addresses={}", too_many.join(","));
    assert_error(get_json(&http, &node.url(&url)).await, 400, "bad_query", "1 to 64");

    // Nothing of the above was stored; the node is healthy and takes the good message.
    let (_, info) = get_json(&http, &node.url("/api/v1/info")).await;
    assert_eq!(info["last_seq"], 0);
    assert_eq!(post(&http, &node, good).await.0, 201);
    let metrics = http.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"meterkast_node_submissions_total{outcome="malformed"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"meterkast_node_submissions_total{outcome="stored"} 1"#),
        "{metrics}"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_full_store_answers_507_and_keeps_what_it_acknowledged() {
    // SQLite's max_page_count makes the store hit SQLITE_FULL exactly as a full disk would.
    let node = TestNode::start(|o| {
        o.difficulty = Difficulty::NONE;
        o.store.max_bytes = Some(96 * 1024);
    })
    .await;
    let http = client();
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..100u64 {
        let big =
            MessageDraft::new(vec![MessageId::GENESIS], address(1), n, vec![n as u8; 8 * 1024])
                .unwrap()
                .with_nonce(0);
        let (status, body) = post(&http, &node, big.encode()).await;
        match status {
            201 => acknowledged.push(big.id()),
            507 => {
                assert_eq!(body["error"]["code"], "store_full", "{body}");
                refused = Some(big.id());
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let refused = refused.expect("the store filled up");
    assert!(!acknowledged.is_empty(), "some messages fit before the cap");
    // The refused message is nowhere; every acknowledged one is intact; reads still work.
    let (status, _) = get_json(&http, &node.url(&format!("/api/v1/messages/{refused}"))).await;
    assert_eq!(status, 404);
    let url = format!("/api/v1/addresses/{}/messages?limit=1000", address(1));
    let (_, page) = get_json(&http, &node.url(&url)).await;
    let listed: Vec<String> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, acknowledged.iter().map(MessageId::to_hex).collect::<Vec<_>>());
    // A duplicate of a stored message needs no space and is still answered.
    let again = MessageDraft::new(vec![MessageId::GENESIS], address(1), 0, vec![0; 8 * 1024])
        .unwrap()
        .with_nonce(0);
    assert_eq!(post(&http, &node, again.encode()).await.0, 200);
    node.stop().await;
}

#[tokio::test]
async fn a_client_over_its_rate_gets_429_with_retry_after() {
    let node = TestNode::start(|o| o.rate_limit = RateLimit::new(1, 3)).await;
    let http = client();
    for _ in 0..3 {
        assert_eq!(http.get(node.url("/api/v1/info")).send().await.unwrap().status(), 200);
    }
    let response = http.get(node.url("/api/v1/tips")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Metrics are for the operator and never limited.
    let metrics = http.get(node.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().await.unwrap().contains("meterkast_node_rate_limited_total 1"));
    node.stop().await;
}

#[tokio::test]
async fn cors_lets_the_browser_app_call_any_node() {
    let node = TestNode::start(|_| {}).await;
    let response = client()
        .request(reqwest::Method::OPTIONS, node.url("/api/v1/messages"))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let methods = response.headers()["access-control-allow-methods"].to_str().unwrap().to_owned();
    assert!(methods.contains("POST"), "{methods}");
    node.stop().await;
}

#[tokio::test]
async fn a_restarted_node_has_everything_it_acknowledged_and_continues_the_sequence() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    let mut ids = Vec::new();
    for n in 0..50 {
        let m = message(address(4), n, 0);
        assert_eq!(post(&http, &node, m.encode()).await.0, 201);
        ids.push(m.id().to_hex());
    }
    let (_, tips_before) = get_json(&http, &node.url("/api/v1/tips")).await;
    let dir = node.stop().await;

    let node = TestNode::start_in(dir, |o| o.difficulty = Difficulty::NONE).await;
    let url = format!("/api/v1/addresses/{}/messages?limit=1000", address(4));
    let (_, page) = get_json(&http, &node.url(&url)).await;
    let listed: Vec<String> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ids);
    let (_, tips_after) = get_json(&http, &node.url("/api/v1/tips")).await;
    assert_eq!(tips_after, tips_before, "tips are rebuilt from the store");
    let (status, receipt) = post(&http, &node, message(address(4), 99, 0).encode()).await;
    assert_eq!((status, receipt["seq"].as_u64()), (201, Some(51)));
    node.stop().await;
}

#[tokio::test]
async fn subscribers_get_replay_then_live_with_no_gap_or_duplicate_under_concurrent_publishing() {
    let node = TestNode::start(|o| {
        o.difficulty = Difficulty::NONE;
        o.rate_limit = None;
    })
    .await;
    let http = client();
    let followed = address(1);
    let mut acked: HashSet<String> = HashSet::new();
    for n in 0..300 {
        let m = message(followed, n, 0);
        post(&http, &node, m.encode()).await;
        acked.insert(m.id().to_hex());
    }
    // Four publishers keep writing to the followed address (and another one) while three
    // subscribers join at different moments, from different cursors.
    let publishers: Vec<_> = (0..4u64)
        .map(|p| {
            let (http, url) = (http.clone(), node.url("/api/v1/messages"));
            tokio::spawn(async move {
                let mut mine = Vec::new();
                for n in 0..250u64 {
                    let target = if n % 5 == 0 { address(2) } else { followed };
                    let m = message(target, 1_000 + p * 1_000 + n, 0);
                    let r = http.post(&url).header("content-type", "application/octet-stream");
                    let response = r.body(m.encode()).send().await.unwrap();
                    assert_eq!(response.status(), 201);
                    if target == followed {
                        mine.push(m.id().to_hex());
                    }
                }
                mine
            })
        })
        .collect();
    let mut subscribers = Vec::new();
    for (delay_ms, after) in [(0u64, 0u64), (30, 0), (60, 150)] {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        let url = node.url(&format!("/api/v1/subscribe?addresses={followed}&after={after}"));
        subscribers.push((after, SseReader::open(&http, &url).await));
    }
    for publisher in publishers {
        acked.extend(publisher.await.unwrap());
    }
    let total = acked.len();
    assert_eq!(total, 300 + 4 * 200);

    let url = format!("/api/v1/addresses/{followed}/messages?limit=1000");
    let (_, first_page) = get_json(&http, &node.url(&url)).await;
    let seq_150_and_below: usize = first_page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["seq"].as_u64().unwrap() <= 150)
        .count();
    for (after, mut reader) in subscribers {
        let expected = if after == 0 { total } else { total - seq_150_and_below };
        let mut seen = HashSet::new();
        let mut last_seq = after;
        let mut live_events = 0;
        while seen.len() < expected {
            let event = reader.next_within(20).await.expect("stream open");
            match event.event.as_str() {
                "message" => {
                    let view: serde_json::Value = serde_json::from_str(&event.data).unwrap();
                    let seq = view["seq"].as_u64().unwrap();
                    assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()));
                    assert!(seq > last_seq, "out of order or duplicate: {seq} after {last_seq}");
                    last_seq = seq;
                    let id = view["id"].as_str().unwrap().to_owned();
                    assert!(acked.contains(&id), "unexpected message {id}");
                    assert!(seen.insert(id), "duplicate");
                }
                "live" => live_events += 1,
                other => panic!("unexpected event {other}: {}", event.data),
            }
        }
        assert!(live_events <= 1, "switched to live at most once");
    }
    node.stop().await;
}

#[tokio::test]
async fn a_slow_subscriber_is_dropped_with_a_reason_and_a_cursor_to_resume_from() {
    let node = TestNode::start(|o| {
        o.difficulty = Difficulty::NONE;
        o.rate_limit = None;
        o.store.subscriber_buffer = 16;
    })
    .await;
    let http = client();
    let url = node.url(&format!("/api/v1/subscribe?addresses={}", address(1)));
    let mut reader = SseReader::open(&http, &url).await;
    assert_eq!(reader.next_within(5).await.unwrap().event, "live");
    // Publish far more than socket buffers, the outbox and the 16-message ring hold, while the
    // subscriber reads nothing.
    for n in 0..400u64 {
        let big = MessageDraft::new(vec![MessageId::GENESIS], address(1), n, vec![7; 30_000])
            .unwrap()
            .with_nonce(0);
        assert_eq!(post(&http, &node, big.encode()).await.0, 201);
    }
    let mut delivered = 0;
    let closed = loop {
        let event = reader.next_within(20).await.expect("a closing event before the end");
        match event.event.as_str() {
            "message" => delivered += 1,
            "closed" => break event,
            other => panic!("unexpected {other}"),
        }
    };
    assert!(delivered < 400, "dropped before receiving everything ({delivered})");
    let reason: serde_json::Value = serde_json::from_str(&closed.data).unwrap();
    assert_eq!(reason["code"], "slow_subscriber");
    assert!(reason["resume_after"].as_u64().unwrap() as usize >= delivered);
    assert_eq!(reader.next_within(5).await, None, "the stream ends after the reason");
    let metrics = http.get(node.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .contains(r#"meterkast_node_subscriptions_closed_total{reason="slow_subscriber"} 1"#)
    );
    node.stop().await;
}

#[tokio::test]
async fn shutting_down_closes_live_subscriptions_with_a_reason() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    post(&http, &node, message(address(3), 1, 0).encode()).await;
    let url = node.url(&format!("/api/v1/subscribe?addresses={}&after=0", address(3)));
    let mut reader = SseReader::open(&http, &url).await;
    assert_eq!(reader.next_within(5).await.unwrap().event, "message");
    assert_eq!(reader.next_within(5).await.unwrap().event, "live");
    let stopping = tokio::spawn(node.stop());
    let closed = reader.next_within(10).await.expect("closing event");
    assert_eq!(closed.event, "closed");
    let reason: serde_json::Value = serde_json::from_str(&closed.data).unwrap();
    assert_eq!(
        (reason["code"].as_str(), reason["resume_after"].as_u64()),
        (Some("shutting_down"), Some(1))
    );
    stopping.await.unwrap();
}

/// Frames messages for `POST /api/v1/messages/batch`: a 4-byte big-endian length before each.
fn frame(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for m in messages {
        body.extend_from_slice(&u32::try_from(m.len()).expect("small").to_be_bytes());
        body.extend_from_slice(m);
    }
    body
}

async fn post_batch(
    http: &reqwest::Client,
    node: &TestNode,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    post_bytes(http, node, "/api/v1/messages/batch", body).await
}

#[tokio::test]
async fn a_batch_answers_each_message_on_its_own_in_order() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::new(8).unwrap()).await;
    let http = client();
    let first = message(address(5), 1, 8);
    let second = message(address(5), 2, 8);
    let draft = MessageDraft::new(vec![MessageId::GENESIS], address(5), 3, vec![3]).unwrap();
    let lazy = (0..)
        .map(|nonce| draft.clone().with_nonce(nonce))
        .find(|m| m.check_work(Difficulty::new(8).unwrap()).is_err())
        .unwrap();
    let mut truncated = message(address(5), 4, 8).encode();
    truncated.truncate(40);
    let body = frame(&[first.encode(), lazy.encode(), second.encode(), first.encode(), truncated]);

    let (status, receipt) = post_batch(&http, &node, body).await;
    assert_eq!(status, 200, "{receipt}");
    let results = receipt["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert_eq!(results[0]["id"], first.id().to_hex());
    assert_eq!(
        (results[0]["seq"].as_u64(), results[0]["duplicate"].as_bool()),
        (Some(1), Some(false))
    );
    assert_eq!(results[1]["error"]["code"], "insufficient_work");
    assert_eq!(results[2]["id"], second.id().to_hex());
    assert_eq!(results[2]["seq"], 2);
    assert_eq!(
        (results[3]["seq"].as_u64(), results[3]["duplicate"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(results[4]["error"]["code"], "truncated");

    let url = format!("/api/v1/addresses/{}/messages", address(5));
    let (_, page) = get_json(&http, &node.url(&url)).await;
    let ids: Vec<&str> =
        page["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [first.id().to_hex(), second.id().to_hex()]);
    node.stop().await;
}

#[tokio::test]
async fn a_badly_framed_batch_is_refused_whole_and_stores_nothing() {
    let node = TestNode::start(|o| o.difficulty = Difficulty::NONE).await;
    let http = client();
    let good = message(address(6), 1, 0).encode();

    let mut cut = frame(&[good.clone(), good.clone()]);
    cut.truncate(cut.len() - 10);
    assert_error(
        post_batch(&http, &node, cut).await,
        400,
        "malformed_batch",
        "frame 1 is truncated",
    );

    let mut short_prefix = frame(std::slice::from_ref(&good));
    short_prefix.extend_from_slice(&[0, 0]);
    assert_error(
        post_batch(&http, &node, short_prefix).await,
        400,
        "malformed_batch",
        "length prefix",
    );

    let mut huge = frame(std::slice::from_ref(&good));
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert_error(post_batch(&http, &node, huge).await, 400, "malformed_batch", "claims");

    assert_error(post_batch(&http, &node, Vec::new()).await, 400, "malformed_batch", "no message");

    let too_many = frame(&vec![good.clone(); gateway::api::MAX_BATCH_MESSAGES + 1]);
    assert_error(post_batch(&http, &node, too_many).await, 400, "malformed_batch", "more than");

    let (_, info) = get_json(&http, &node.url("/api/v1/info")).await;
    assert_eq!(info["last_seq"], 0, "nothing from a refused batch was stored");
    node.stop().await;
}
