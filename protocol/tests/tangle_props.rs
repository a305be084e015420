//! Property tests of the tangle encoding (native only: proptest needs OS randomness).
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use protocol::tangle::{Address, DecodeError, Difficulty, Message, MessageDraft, MessageId};

fn draft() -> impl Strategy<Value = MessageDraft> {
    (
        proptest::collection::btree_set(any::<[u8; 32]>(), 1..=8),
        any::<[u8; 32]>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(parents, address, timestamp, payload)| {
            let parents = parents.into_iter().map(MessageId).collect();
            MessageDraft::new(parents, Address(address), timestamp, payload).expect("in bounds")
        })
}

proptest! {
    #[test]
    fn decode_inverts_encode(draft in draft(), nonce in any::<u64>()) {
        let message = draft.with_nonce(nonce);
        let bytes = message.encode();
        prop_assert_eq!(bytes.len(), message.encoded_len());
        let decoded = Message::decode(&bytes).expect("round trip");
        prop_assert_eq!(decoded.id(), message.id());
        prop_assert_eq!(decoded, message);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_accepted_ones_are_canonical(
        bytes in proptest::collection::vec(any::<u8>(), 0..400)
    ) {
        if let Ok(message) = Message::decode(&bytes) {
            prop_assert_eq!(message.encode(), bytes);
        }
    }

    #[test]
    fn any_single_bit_flip_changes_the_id_or_is_refused(
        draft in draft(), nonce in any::<u64>(), bit in any::<prop::sample::Index>()
    ) {
        let message = draft.with_nonce(nonce);
        let mut bytes = message.encode();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        match Message::decode(&bytes) {
            Ok(other) => prop_assert_ne!(other.id(), message.id()),
            Err(DecodeError::Truncated { .. } | DecodeError::TrailingBytes(_)
                | DecodeError::UnsupportedVersion(_) | DecodeError::ParentCount(_)
                | DecodeError::ParentsNotCanonical | DecodeError::PayloadTooLarge { .. }) => {}
        }
    }

    #[test]
    fn solved_messages_pass_their_difficulty(draft in draft(), bits in 0u8..=10) {
        let difficulty = Difficulty::new(bits).expect("small");
        prop_assert_eq!(draft.solve_fully(difficulty).check_work(difficulty), Ok(()));
    }
}
