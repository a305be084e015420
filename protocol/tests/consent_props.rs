//! Property tests of the pairing and consent encodings (native only: proptest needs OS
//! randomness): events round-trip, and no decoder of peer bytes panics on arbitrary input.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use protocol::channel::Tier;
use protocol::consent::{
    ConsentEvent, EventKind, GrantId, RemovalReason, SealedEntry, verify_export,
};
use protocol::crypto::PartyId;
use protocol::pairing::PairingCode;
use protocol::provider::{ProviderCard, RequestLink, WebOrigin};

fn tiers() -> impl Strategy<Value = Vec<Tier>> {
    proptest::collection::btree_set(proptest::sample::select(Tier::ALL.to_vec()), 1..=5)
        .prop_map(|set| set.into_iter().collect())
}

fn event_kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (any::<[u8; 32]>(), any::<[u8; 32]>())
            .prop_map(|(o, p)| EventKind::DevicePaired { owner: PartyId(o), pairing_id: p }),
        (any::<[u8; 32]>(), any::<[u8; 32]>(), "\\PC{0,40}").prop_map(|(p, d, reason)| {
            EventKind::Denied { provider: PartyId(p), request_digest: d, reason }
        }),
        (any::<[u8; 16]>(), tiers(), any::<u64>()).prop_map(|(g, tiers, end)| EventKind::Amended {
            grant: GrantId(g),
            tiers,
            end
        }),
        (any::<[u8; 16]>(), "\\PC{0,40}")
            .prop_map(|(g, reason)| EventKind::Revoked { grant: GrantId(g), reason }),
        any::<bool>().prop_map(|handed_over| EventKind::DeviceRemoved {
            reason: if handed_over { RemovalReason::HandedOver } else { RemovalReason::Removed },
        }),
    ]
}

proptest! {
    #[test]
    fn events_round_trip(device in any::<[u8; 32]>(), time in any::<u64>(), kind in event_kind()) {
        let event = ConsentEvent { device: PartyId(device), time, kind };
        prop_assert_eq!(ConsentEvent::decode(&event.encode()), Ok(event));
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4_000)) {
        let _ = ConsentEvent::decode(&bytes);
        let _ = SealedEntry::decode(&bytes);
        // Without a valid signature nothing is ever accepted.
        prop_assert!(ProviderCard::decode(&bytes).is_err());
        let text = String::from_utf8_lossy(&bytes);
        let _ = PairingCode::parse(&text);
        let _ = RequestLink::parse(&text);
        let _ = WebOrigin::of(&text);
        prop_assert!(verify_export(&text).is_err());
    }

    #[test]
    fn text_decoders_never_panic(text in "\\PC{0,200}") {
        let _ = PairingCode::parse(&text);
        let _ = RequestLink::parse(&format!("meterkast:request/{text}"));
        let _ = WebOrigin::of(&format!("https://{text}"));
        prop_assert!(verify_export(&text).is_err());
    }
}
