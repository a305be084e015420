//! Frozen vectors of the pairing and consent encodings and derivations: a change of encoding,
//! label or derivation fails here. The same values are written in `spec/pairing.md` and
//! `spec/consent.md`. `fixtures/consent/entry-v1.hex` is a complete log entry (owner secret
//! 0x99×32, log key 0x55×32, device 0x11×32) made by this crate's writer and then frozen.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

use protocol::channel::Tier;
use protocol::consent::{
    ConsentEvent, EventKind, GrantId, LogKeys, LogOutcome, LogReader, RemovalReason, SealedEntry,
    notice_address, verify_chain,
};
use protocol::crypto::{PartyId, PartyKeys, PartySecret, Role, SymmetricKey};
use protocol::pairing::{PairingCode, announcement_address};
use protocol::provider::{RequestLink, card_address, request_address};

const DEVICE: PartyId = PartyId([0x11; 32]);
const PROVIDER: PartyId = PartyId([0x33; 32]);
const TIME: u64 = 1_780_000_000;

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unhex(text: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(text.trim().as_bytes()).unwrap()
}

#[test]
fn pairing_code_text_and_uri() {
    let text = "CEIRC-EIRCE-IRCEI-RCEIR-CEIRC-EIRCE-IRCEI-RCEIR-CEIRC-EIRCE-ISEIR-CEIRC-EIRCE-\
                IRCEI-RCEIR-CFMV3";
    let code = PairingCode::parse(text).unwrap();
    assert_eq!(code.device(), DEVICE);
    assert_eq!(code.to_text().as_str(), text);
    assert_eq!(
        code.to_uri().as_str(),
        format!("meterkast:pair/{}", text.replace('-', "").to_lowercase())
    );
}

#[test]
fn public_addresses() {
    assert_eq!(
        hex(&announcement_address(DEVICE)),
        "7a67d8e5dd4e22e14cdedaa273c5408adba740a50946d2818fbfb424f8cb8578"
    );
    assert_eq!(
        hex(&card_address(PROVIDER)),
        "09bf28d77f1e9c9ce273fa850f935187580ace153d7e3315cea513670034cc7d"
    );
    assert_eq!(
        hex(&notice_address(PROVIDER)),
        "6e60643d58bf447a767fd57b2c490e14ab2e95d1060ca3762076dbe98058f7e7"
    );
    assert_eq!(
        hex(&request_address(&[0x44; 32])),
        "bd2a8b54544b42e7efc8ebf23ad43f36c98510eba9ba26db1eae6eac420c404e"
    );
    assert_eq!(
        RequestLink { provider: PROVIDER, digest: [0x44; 32] }.to_uri(),
        "meterkast:request/gmztgmztgmztgmztgmztgmztgmztgmztgmztgmztgmztgmztgmzuirceirceirceirceirceirce\
         irceirceirceirceirceirceira"
    );
}

#[test]
fn log_key_derivations() {
    let keys = LogKeys::new(&SymmetricKey::from_bytes([0x55; 32]));
    assert_eq!(
        hex(&keys.entry_address(0)),
        "49f49d0c87ac00a80d08c8e556de596abad72e8f0a803b04bcb23022f65a2e18"
    );
    assert_eq!(
        hex(&keys.entry_address(1)),
        "8c819fa391ddc55387105f00d7ae90af05bb176839ef9cdac10037dceabd48a4"
    );
    assert_eq!(
        hex(&keys.receipt_address(0)),
        "1726cd3ee776e2c5b24d3a949538426f2bebf2ea24065cfe5553bd4611c5945a"
    );
    assert_eq!(hex(&keys.pseudonym(PROVIDER)), "83079f1e943f96f46317251f9ed7c313");
}

#[test]
fn event_encodings() {
    let cases = [
        (
            EventKind::DevicePaired { owner: PartyId([0x77; 32]), pairing_id: [0x88; 32] },
            "011111111111111111111111111111111111111111111111111111111111111111000000006a18a500\
             01777777777777777777777777777777777777777777777777777777777777777788888888888888\
             88888888888888888888888888888888888888888888888888",
        ),
        (
            EventKind::Revoked { grant: GrantId([0x66; 16]), reason: "moved".into() },
            "011111111111111111111111111111111111111111111111111111111111111111000000006a18a500\
             0566666666666666666666666666666666056d6f766564",
        ),
        (
            EventKind::Amended {
                grant: GrantId([0x66; 16]),
                tiers: vec![Tier::TenSeconds, Tier::Day],
                end: 1_790_000_000,
            },
            "011111111111111111111111111111111111111111111111111111111111111111000000006a18a500\
             0466666666666666666666666666666666020205000000006ab13b80",
        ),
        (
            EventKind::DeviceRemoved { reason: RemovalReason::HandedOver },
            "011111111111111111111111111111111111111111111111111111111111111111000000006a18a500\
             0602",
        ),
    ];
    for (kind, expected) in cases {
        let event = ConsentEvent { device: DEVICE, time: TIME, kind };
        assert_eq!(hex(&event.encode()), expected);
        assert_eq!(ConsentEvent::decode(&unhex(expected)).unwrap(), event);
    }
}

#[test]
fn a_frozen_log_entry_still_decodes_verifies_and_opens() {
    let bytes = unhex(include_str!("fixtures/consent/entry-v1.hex"));
    let owner = PartyKeys::derive(&PartySecret::from_bytes([0x99; 32]), Role::Wallet);
    let log_key = SymmetricKey::from_bytes([0x55; 32]);
    let entry = SealedEntry::decode(&bytes).unwrap();
    assert_eq!(entry.index, 0);
    assert_eq!(
        hex(&entry.hash(DEVICE)),
        "564a5e097b29d9d9c6ce1e5d709f44628a1b8488f6736c1e181cdbf47ffb2ca2"
    );
    let content_key = SymmetricKey::from_bytes(
        unhex("0be007f76469e42e1eb0e1f1ef3e2a18899450436a901b68d3c57836ef5062c4")
            .try_into()
            .unwrap(),
    );
    let events = verify_chain(DEVICE, owner.public(), &[(bytes.clone(), content_key)]).unwrap();
    assert_eq!(
        events[0].kind,
        EventKind::DevicePaired { owner: owner.id(), pairing_id: [0x88; 32] }
    );
    let mut reader = LogReader::new(DEVICE, owner.public().clone(), &log_key);
    let address = LogKeys::new(&log_key).entry_address(0);
    assert!(matches!(reader.receive(&address, &bytes), LogOutcome::Accepted(_)));
}
