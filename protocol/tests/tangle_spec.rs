//! The tangle message spec (`protocol/spec/tangle-message.md`) against the code: its frozen
//! vectors, and one refusal per kind of bad input the spec lists.
//!
//! Vector format: fenced blocks tagged `vector` in the spec, one `key: value` per line; `parent`
//! and `encoding` repeat (parents in order; encoding lines concatenate), every other key appears
//! once. Values are hex except `name`, `timestamp_ms`, `difficulty` and `nonce` (decimal).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use protocol::tangle::pow::{leading_zero_bits, work_hash};
use protocol::tangle::{
    Address, DecodeError, Difficulty, MAX_ENCODED_LEN, MAX_PAYLOAD_LEN, MIN_ENCODED_LEN, Message,
    MessageDraft, MessageId,
};

const SPEC: &str = include_str!("../spec/tangle-message.md");

#[derive(Debug, Default)]
struct Vector {
    name: String,
    parents: Vec<MessageId>,
    address: Option<Address>,
    timestamp_ms: u64,
    payload: Vec<u8>,
    difficulty: u8,
    nonce: u64,
    content_hash: Vec<u8>,
    work_hash: Vec<u8>,
    encoding: Vec<u8>,
    id: Option<MessageId>,
}

fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let mut current: Option<Vector> = None;
    for line in SPEC.lines() {
        match (line.trim(), current.as_mut()) {
            ("```vector", None) => current = Some(Vector::default()),
            ("```", Some(_)) => out.extend(current.take()),
            (line, Some(v)) => {
                let (key, value) = line.split_once(':').expect("key: value");
                let value = value.trim();
                match key {
                    "name" => v.name = value.to_owned(),
                    "parent" => v.parents.push(MessageId::from_hex(value).expect("parent hex")),
                    "address" => v.address = Address::from_hex(value),
                    "timestamp_ms" => v.timestamp_ms = value.parse().expect("timestamp"),
                    "payload" => v.payload = hex::decode(value).expect("payload hex"),
                    "difficulty" => v.difficulty = value.parse().expect("difficulty"),
                    "nonce" => v.nonce = value.parse().expect("nonce"),
                    "content_hash" => v.content_hash = hex::decode(value).expect("hex"),
                    "work_hash" => v.work_hash = hex::decode(value).expect("hex"),
                    "encoding" => v.encoding.extend(hex::decode(value).expect("hex")),
                    "id" => v.id = MessageId::from_hex(value),
                    other => panic!("unknown vector key {other:?}"),
                }
            }
            (_, None) => {}
        }
    }
    assert!(current.is_none(), "unterminated vector block");
    out
}

#[test]
fn the_spec_holds_the_three_frozen_vectors() {
    let names: Vec<String> = vectors().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["minimal", "typical", "eight-parents"]);
}

#[test]
fn every_vector_encodes_decodes_and_hashes_as_frozen() {
    for v in vectors() {
        let draft = MessageDraft::new(
            v.parents.clone(),
            v.address.expect("address"),
            v.timestamp_ms,
            v.payload.clone(),
        )
        .expect("valid draft");
        let message = draft.clone().with_nonce(v.nonce);
        assert_eq!(message.encode(), v.encoding, "{}: encoding", v.name);
        assert_eq!(Some(message.id()), v.id, "{}: id", v.name);
        assert_eq!(Some(MessageId::of_encoding(&v.encoding)), v.id, "{}: id of bytes", v.name);
        assert_eq!(draft.content_hash().to_vec(), v.content_hash, "{}: content hash", v.name);
        let work = work_hash(&draft.content_hash(), v.nonce);
        assert_eq!(work.to_vec(), v.work_hash, "{}: work hash", v.name);

        let decoded = Message::decode(&v.encoding).expect("vector decodes");
        assert_eq!(decoded, message, "{}: decode", v.name);
        assert_eq!(decoded.encode(), v.encoding, "{}: re-encode", v.name);

        let difficulty = Difficulty::new(v.difficulty).expect("difficulty");
        assert_eq!(decoded.check_work(difficulty), Ok(()), "{}: work", v.name);
        // The stored nonce is the first that meets the difficulty, so solving reproduces it.
        assert_eq!(draft.solve_fully(difficulty).nonce(), v.nonce, "{}: solve", v.name);
    }
}

#[test]
fn a_vector_is_refused_at_a_difficulty_above_its_work() {
    let typical = vectors().into_iter().find(|v| v.name == "typical").expect("typical");
    let message = Message::decode(&typical.encoding).expect("decodes");
    let achieved = leading_zero_bits(&work_hash(&message.draft().content_hash(), message.nonce()));
    let above = Difficulty::new(u8::try_from(achieved + 1).expect("small")).expect("difficulty");
    let err = message.check_work(above).expect_err("must be refused");
    assert_eq!((err.achieved, err.required), (achieved, above.bits()));
}

fn typical_encoding() -> Vec<u8> {
    vectors().into_iter().find(|v| v.name == "typical").expect("typical").encoding
}

#[test]
fn every_proper_prefix_is_reported_as_truncated() {
    let bytes = typical_encoding();
    for len in 0..bytes.len() {
        match Message::decode(&bytes[..len]) {
            Err(DecodeError::Truncated { needed, got }) => {
                assert_eq!(got, len);
                assert!(needed > len && needed <= bytes.len(), "len {len}: needed {needed}");
            }
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

#[test]
fn each_malformation_gets_its_own_error() {
    let good = typical_encoding();

    let mut bad = good.clone();
    bad[0] = 2;
    assert_eq!(Message::decode(&bad), Err(DecodeError::UnsupportedVersion(2)));

    for count in [0u8, 9, 255] {
        let mut bad = good.clone();
        bad[1] = count;
        assert_eq!(Message::decode(&bad), Err(DecodeError::ParentCount(count)));
    }

    // Swap the two parents: same set, wrong order.
    let mut bad = good.clone();
    let (first, second) = bad[2..66].split_at_mut(32);
    first.swap_with_slice(second);
    assert_eq!(Message::decode(&bad), Err(DecodeError::ParentsNotCanonical));

    // Make the two parents equal.
    let mut bad = good.clone();
    let parent = bad[2..34].to_vec();
    bad[34..66].copy_from_slice(&parent);
    assert_eq!(Message::decode(&bad), Err(DecodeError::ParentsNotCanonical));

    // Claim a payload one byte over the cap: refused before any payload byte is read.
    let len_at = 2 + 2 * 32 + 32 + 8;
    let mut bad = good.clone();
    let over = u32::try_from(MAX_PAYLOAD_LEN + 1).expect("fits");
    bad[len_at..len_at + 4].copy_from_slice(&over.to_be_bytes());
    assert_eq!(Message::decode(&bad), Err(DecodeError::PayloadTooLarge { len: u64::from(over) }));

    let mut bad = good;
    bad.extend_from_slice(&[0, 0, 0]);
    assert_eq!(Message::decode(&bad), Err(DecodeError::TrailingBytes(3)));
}

#[test]
fn size_bounds_match_the_spec_table() {
    assert_eq!((MIN_ENCODED_LEN, MAX_ENCODED_LEN), (86, 33_078));
    let smallest = MessageDraft::new(vec![MessageId::GENESIS], Address([1; 32]), 0, vec![])
        .expect("draft")
        .with_nonce(0);
    assert_eq!(smallest.encode().len(), MIN_ENCODED_LEN);
    let parents = (1..=8u8).map(|i| MessageId([i; 32])).collect();
    let largest = MessageDraft::new(parents, Address([1; 32]), 0, vec![0; MAX_PAYLOAD_LEN])
        .expect("draft")
        .with_nonce(0);
    assert_eq!(largest.encode().len(), MAX_ENCODED_LEN);
    assert!(
        MessageDraft::new(
            vec![MessageId::GENESIS],
            Address([1; 32]),
            0,
            vec![0; MAX_PAYLOAD_LEN + 1]
        )
        .is_err()
    );
}
