//! Access requests as a link / QR code: the wallet verifies against the provider's card and
//! refuses tampered requests and spoofed providers with a reason.
#![allow(clippy::unwrap_used)]
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;
#[cfg(target_arch = "wasm32")]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

mod channel_support;
mod consent_support;

use consent_support::{DAY, Device, Lab, Provider, wallet_opens};
use protocol::channel::Tier;
use protocol::consent::{Publish, PublishKind};
use protocol::crypto::SignatureContext;
use protocol::provider::{
    AccessRequest, DataItem, ProviderCard, ProviderError, PurposeCategory, RequestLink,
    card_address, request_address,
};

fn setup() -> (Lab, Provider, Provider) {
    let mut lab = Lab::new(40);
    let device = Device::new(&mut lab, 1, &[Tier::Second]);
    let honest = Provider::new(&mut lab, 1, "Wattt", &device);
    let mallory = Provider::new(&mut lab, 7, "Mallory", &device);
    (lab, honest, mallory)
}

fn publish_raw(lab: &mut Lab, address: [u8; 32], payload: Vec<u8>) {
    lab.tangle.publish([Publish { address, payload, kind: PublishKind::AccessRequest }]);
}

fn base_request(lab: &Lab, provider: &Provider) -> AccessRequest {
    AccessRequest {
        provider: provider.keys.id(),
        nonce: [1; 16],
        purpose: "Live insight into your consumption".into(),
        category: PurposeCategory::EnergyInsight,
        data_items: vec![DataItem::EnergyImport, DataItem::Power],
        max_resolution: Tier::Second,
        start: lab.now,
        end: lab.now + 30 * DAY,
        delete_by: lab.now + 60 * DAY,
        return_url: format!("{}done", provider.card.url()),
        created_at: lab.now,
    }
}

#[test]
fn a_genuine_request_link_verifies_and_round_trips() {
    let (mut lab, honest, _) = setup();
    let request = honest.request(&mut lab, "Live insight", Tier::Second, 30);
    let link = honest.publish_request(&mut lab, &request);
    assert!(link.starts_with("meterkast:request/"));
    assert_eq!(link.len(), 121, "fits a version-7 QR code");
    assert_eq!(
        RequestLink::parse(&link.to_uppercase().replace("METERKAST", "meterkast")).unwrap(),
        request.link()
    );
    let (verified, card) = wallet_opens(&lab, &link).unwrap();
    assert_eq!(verified.request(), request.request());
    assert_eq!(card.name(), "Wattt");
    assert_eq!(RequestLink::parse("https://wattt.example/"), Err(ProviderError::InvalidLink));
    assert_eq!(RequestLink::parse("meterkast:request/abc"), Err(ProviderError::InvalidLink));
}

#[test]
fn a_request_altered_in_transit_is_refused() {
    let (mut lab, honest, _) = setup();
    let request = honest.request(&mut lab, "Live insight", Tier::Second, 30);
    let link = request.link().to_uri();
    let mut altered = request.encode().to_vec();
    let at = altered.windows(12).position(|w| w == b"Live insight").unwrap();
    altered[at] = b'l';
    publish_raw(&mut lab, request.address(), altered);
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::TamperedRequest));
}

#[test]
fn spoofed_providers_are_refused() {
    let (mut lab, honest, mallory) = setup();

    // Mallory's own, validly signed request, behind a link that names Wattt.
    let own = mallory.request(&mut lab, "Totally Wattt", Tier::Second, 30);
    mallory.publish_request(&mut lab, &own);
    let link = RequestLink { provider: honest.keys.id(), digest: own.digest() }.to_uri();
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::SpoofedProvider));

    // A request naming Wattt but signed by Mallory (the link's digest matches its bytes).
    let mut forged =
        base_request(&lab, &honest).sign(&honest.keys, &mut lab.rng).unwrap().encode().to_vec();
    let body_len = forged.len() - protocol::crypto::SIGNATURE_LEN;
    let signature = mallory
        .keys
        .sign(SignatureContext::AccessRequest, &forged[..body_len], &mut lab.rng)
        .unwrap();
    forged.truncate(body_len);
    forged.extend_from_slice(&signature);
    let digest = protocol::crypto::digest(b"meterkast/v1/access-request", &[&forged]);
    publish_raw(&mut lab, request_address(&digest), forged);
    let link = RequestLink { provider: honest.keys.id(), digest }.to_uri();
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::BadRequestSignature));

    // Mallory's card published at Wattt's card address (the wallet takes the newest there).
    let genuine = honest.request(&mut lab, "Live insight", Tier::Second, 30);
    let link = honest.publish_request(&mut lab, &genuine);
    let fake_card = ProviderCard::create(
        &mallory.keys,
        "Wattt",
        "https://wattt.example/",
        "x",
        lab.now,
        &mut lab.rng,
    )
    .unwrap();
    publish_raw(&mut lab, card_address(honest.keys.id()), fake_card.encode().to_vec());
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::CardOfAnotherProvider));
}

#[test]
fn open_redirects_and_out_of_bounds_requests_are_refused() {
    let (mut lab, honest, _) = setup();
    let off_origin = AccessRequest {
        return_url: "https://evil.example/phish".into(),
        ..base_request(&lab, &honest)
    }
    .sign(&honest.keys, &mut lab.rng)
    .unwrap();
    let link = honest.publish_request(&mut lab, &off_origin);
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::ReturnAddressOffOrigin));

    let base = base_request(&lab, &honest);
    let cases = [
        (AccessRequest { end: base.start, ..base.clone() }, ProviderError::EndBeforeStart),
        (
            AccessRequest {
                end: base.start + 400 * DAY,
                delete_by: base.start + 500 * DAY,
                ..base.clone()
            },
            ProviderError::LifetimeTooLong,
        ),
        (
            AccessRequest { delete_by: base.end - 1, ..base.clone() },
            ProviderError::DeleteByBeforeEnd,
        ),
        (AccessRequest { data_items: vec![], ..base.clone() }, ProviderError::InvalidDataItems),
        (
            AccessRequest { data_items: vec![DataItem::Gas, DataItem::Gas], ..base.clone() },
            ProviderError::InvalidDataItems,
        ),
        (
            AccessRequest { purpose: " ".into(), ..base.clone() },
            ProviderError::InvalidText { field: "purpose" },
        ),
        (
            AccessRequest { return_url: "http://wattt.example/".into(), ..base.clone() },
            ProviderError::InvalidUrl { reason: "not an https URL" },
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(request.sign(&honest.keys, &mut lab.rng).map(|_| ()), Err(expected));
    }

    // A request whose period is over by the time the wallet opens it.
    let short = honest.request(&mut lab, "insight", Tier::Second, 1);
    let link = honest.publish_request(&mut lab, &short);
    lab.now += 2 * DAY;
    assert_eq!(wallet_opens(&lab, &link).map(|_| ()), Err(ProviderError::RequestExpired));
}
