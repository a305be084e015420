//! The end-to-end story over an in-memory tangle: pair, two requests, two grants, data flows to
//! both, one revocation, the revoked provider gets its notice and nothing new, the other
//! continues, and the household's exported history verifies offline.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use consent_support::{Device, Lab, Provider, pair, wallet_opens};
use protocol::channel::{FollowerEvent, Tier};
use protocol::consent::{
    ConsentReceipt, ConsentReport, DeliveryReceipt, EventKind, ExportError, NoticeOutcome,
    export_history, verify_export,
};

#[test]
fn pair_request_grant_flow_revoke_continue_export() {
    let mut lab = Lab::new(2026);
    let mut device = Device::new(&mut lab, 1, &[Tier::Second, Tier::FifteenMinutes]);

    // Pair: the wallet scans the device's code; the device's follower sees the first entry.
    let mut household = pair(&mut lab, 1, &mut device);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Paired { owner: household.paired.owner.id() }));

    // Two providers publish cards and requests; the wallet opens both links and verifies them.
    let mut wattt = Provider::new(&mut lab, 1, "Wattt", &device);
    let mut gridflex = Provider::new(&mut lab, 2, "GridFlex", &device);
    let wattt_request =
        wattt.request(&mut lab, "Live insight into your consumption", Tier::Second, 180);
    let grid_request =
        gridflex.request(&mut lab, "Settlement-interval flexibility", Tier::FifteenMinutes, 365);
    let wattt_link = wattt.publish_request(&mut lab, &wattt_request);
    let grid_link = gridflex.publish_request(&mut lab, &grid_request);
    let (wattt_verified, wattt_card) = wallet_opens(&lab, &wattt_link).unwrap();
    let (grid_verified, grid_card) = wallet_opens(&lab, &grid_link).unwrap();
    assert_eq!(wattt_verified.request().purpose, "Live insight into your consumption");

    // Two grants, each for exactly one tier.
    lab.now += 10;
    let wattt_grant = household.grant(&mut lab, &wattt_verified, &wattt_card, &[Tier::Second]);
    let grid_grant = household.grant(&mut lab, &grid_verified, &grid_card, &[Tier::FifteenMinutes]);
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::GrantStarted {
        grant: wattt_grant,
        provider: wattt.keys.id(),
        tiers: vec![Tier::Second],
    }));
    assert!(reports.contains(&ConsentReport::GrantStarted {
        grant: grid_grant,
        provider: gridflex.keys.id(),
        tiers: vec![Tier::FifteenMinutes],
    }));
    assert_eq!(device.channel.members(Tier::Second).unwrap(), vec![wattt.keys.id()]);
    assert_eq!(device.channel.members(Tier::FifteenMinutes).unwrap(), vec![gridflex.keys.id()]);

    // Both providers receive their grant, hold a verified receipt and acknowledge it; the
    // household reads each acknowledgement back.
    wattt.sync(&mut lab);
    gridflex.sync(&mut lab);
    for (provider, grant_id) in [(&wattt, wattt_grant), (&gridflex, grid_grant)] {
        let Some(NoticeOutcome::Granted(receipt)) = provider.outcomes.first() else {
            panic!("no grant notice for {}", provider.card.name());
        };
        assert_eq!(receipt.grant().id, grant_id);
        // The household builds the same receipt from its own copy of the entry.
        let household_copy = household
            .written
            .iter()
            .find_map(|w| {
                ConsentReceipt::from_entry(
                    household.paired.device.clone(),
                    household.paired.owner.public().clone(),
                    household.writer.grant_key(grant_id).unwrap().clone(),
                    &w.publish.payload,
                    provider.keys.id(),
                )
                .ok()
            })
            .unwrap();
        assert_eq!(household_copy.entry_hash(), receipt.entry_hash());
        let ack = lab.tangle.at(&household_copy.acknowledgement_address()).last().unwrap();
        household_copy.read_acknowledgement(ack).unwrap();
        // The provider's copy survives an encode/decode round trip, verified again.
        assert_eq!(ConsentReceipt::decode(&receipt.encode()).unwrap().grant().id, grant_id);
    }

    // Data flows: 1 s readings to Wattt, a 15-minute reading to GridFlex.
    for _ in 0..5 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    device.publish(&mut lab, Tier::FifteenMinutes);
    device.checkpoint(&mut lab, Tier::Second);
    device.checkpoint(&mut lab, Tier::FifteenMinutes);
    wattt.sync(&mut lab);
    gridflex.sync(&mut lab);
    assert_eq!(wattt.verified().len(), 5);
    assert_eq!(gridflex.verified().len(), 1);
    assert_eq!(wattt.data.follower.tiers(), vec![Tier::Second]);
    assert_eq!(gridflex.data.follower.tiers(), vec![Tier::FifteenMinutes]);

    // The device's delivery receipts tell the household what went to whom.
    lab.now += 60;
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::ReceiptIssued {
        grant: wattt_grant,
        tier: Tier::Second,
        count: 5
    }));
    let receipts: Vec<DeliveryReceipt> = (0..2)
        .map(|n| {
            let payload = lab.tangle.at(&household.writer.keys().receipt_address(n))[0].clone();
            DeliveryReceipt::open(household.writer.keys(), &household.paired.device, n, &payload)
                .unwrap()
        })
        .collect();
    assert!(receipts.iter().any(|r| r.grant == wattt_grant && r.count == 5 && r.first == 0));
    assert!(receipts.iter().any(|r| r.grant == grid_grant && r.count == 1));

    // One revocation: Wattt's access ends by rotation and it gets a signed notice.
    household.append(
        &mut lab,
        EventKind::Revoked { grant: wattt_grant, reason: "moved to another supplier".into() },
    );
    let reports = device.sync(&mut lab);
    assert!(reports.contains(&ConsentReport::Revoked { grant: wattt_grant }));
    assert!(device.channel.members(Tier::Second).unwrap().is_empty());
    wattt.sync(&mut lab);
    assert!(wattt.outcomes.iter().any(|o| matches!(
        o,
        NoticeOutcome::Revoked { grant, reason } if *grant == wattt_grant && reason == "moved to another supplier"
    )));
    assert_eq!(
        wattt.data.count(|e| matches!(e, FollowerEvent::Revoked { tier: Tier::Second, .. })),
        1
    );

    // Publishing continues: GridFlex keeps reading, Wattt gets nothing new and cannot even
    // locate the new messages.
    let published_before = lab.tangle.published.len();
    for _ in 0..5 {
        lab.now += 1;
        device.publish(&mut lab, Tier::Second);
    }
    lab.now += 900;
    device.publish(&mut lab, Tier::FifteenMinutes);
    device.checkpoint(&mut lab, Tier::Second);
    device.checkpoint(&mut lab, Tier::FifteenMinutes);
    wattt.sync(&mut lab);
    gridflex.sync(&mut lab);
    assert_eq!(wattt.verified().len(), 5, "nothing after the revocation");
    assert_eq!(gridflex.verified().len(), 2, "the other provider continues");
    let watched = wattt.data.follower.watch_addresses();
    for item in &lab.tangle.published[published_before..] {
        assert!(!watched.contains(&item.address), "revoked provider watches a new address");
    }

    // The household exports its history; it verifies offline; an edited record is refused.
    let json = export_history(
        household.paired.device.id(),
        household.paired.owner.public(),
        &household.entries(),
        lab.now,
    )
    .unwrap();
    let verified = verify_export(&json).unwrap();
    assert_eq!(verified.events.len(), 4);
    let records = verified.records.as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["state"], "revoked");
    assert_eq!(records[0]["pii_controllers"][0]["name"], "Wattt");
    assert_eq!(records[0]["events"][1]["reason"], "moved to another supplier");
    assert_eq!(records[1]["state"], "granted");
    assert_eq!(records[1]["purposes"][0]["purpose"], "Settlement-interval flexibility");
    let edited = json.replace("Settlement-interval flexibility", "Anything we like");
    assert_eq!(verify_export(&edited), Err(ExportError::RecordsDoNotMatch));
}
