//! The dashboard's request builder: what it signs verifies in the wallet's check against the
//! provider card, the link and the same-origin link carry it intact, the QR code is an SVG
//! element with the contract's id, and a form that cannot become a request says why.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::dashboard::request::{RequestForm, RequestFormError, open_path};
use app::qr::qr_svg;
use getrandom::SysRng;
use protocol::channel::Tier;
use protocol::crypto::{PartyKeys, PartySecret, Role};
use protocol::provider::{DataItem, ProviderCard, PurposeCategory, RequestLink, SignedRequest};
use rand_core::UnwrapErr;
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const NOW: u64 = 1_764_158_400;

fn provider() -> (PartyKeys, ProviderCard) {
    let mut rng = UnwrapErr(SysRng);
    let keys = PartyKeys::derive(&PartySecret::generate(&mut rng), Role::Provider);
    let card = ProviderCard::create(
        &keys,
        "Wattt",
        "https://wattt.example/",
        "privacy@wattt.example",
        NOW,
        &mut rng,
    )
    .unwrap();
    (keys, card)
}

fn form() -> RequestForm {
    RequestForm {
        purpose: "  Show your usage per hour  ".to_owned(),
        category: PurposeCategory::EnergyInsight,
        data_items: vec![DataItem::EnergyImport, DataItem::Power, DataItem::Gas],
        resolution: Tier::TenSeconds,
        duration_days: 30,
        delete_after_days: 7,
    }
}

#[test]
fn a_built_request_verifies_against_the_card_through_its_link() {
    let (keys, card) = provider();
    let signed = form().sign(&keys, Some(&card), NOW, &mut UnwrapErr(SysRng)).unwrap();
    let link = RequestLink::parse(&signed.link().to_uri()).unwrap();
    let verified = SignedRequest::verify(&link, signed.encode(), &card, NOW + 60).unwrap();
    let request = verified.request();
    assert_eq!(request.purpose, "Show your usage per hour", "the purpose is trimmed");
    assert_eq!(request.provider, keys.id());
    assert_eq!(request.max_resolution, Tier::TenSeconds);
    assert_eq!(request.data_items, vec![DataItem::EnergyImport, DataItem::Power, DataItem::Gas]);
    assert_eq!((request.start, request.end), (NOW, NOW + 30 * 86_400));
    assert_eq!(request.delete_by, NOW + 37 * 86_400);
    assert_eq!(request.return_url, card.url(), "households are sent back to the card's site");
}

#[test]
fn the_same_origin_link_carries_the_request_link_percent_encoded() {
    let (keys, card) = provider();
    let signed = form().sign(&keys, Some(&card), NOW, &mut UnwrapErr(SysRng)).unwrap();
    let uri = signed.link().to_uri();
    let path = open_path(&uri);
    let encoded = path.strip_prefix("/home/request?link=").unwrap();
    assert!(encoded.starts_with("meterkast%3Arequest%2F"), "{encoded}");
    let decoded = js_sys::decode_uri_component(encoded).unwrap().as_string().unwrap();
    assert_eq!(decoded, uri);
}

#[test]
fn the_qr_code_is_an_svg_element_with_the_contract_id() {
    let svg = qr_svg("meterkast:request/abc", "request-qr", "QR code of the request link").unwrap();
    assert!(svg.starts_with(r#"<svg id="request-qr" role="img""#), "{}", &svg[..80]);
    assert!(!svg.contains("<?xml"), "no XML declaration inside HTML");
    assert!(svg.ends_with("</svg>"));
    // A real request link (121 characters) still fits a QR code.
    let (keys, card) = provider();
    let signed = form().sign(&keys, Some(&card), NOW, &mut UnwrapErr(SysRng)).unwrap();
    assert!(qr_svg(&signed.link().to_uri(), "request-qr", "QR code of the request link").is_ok());
}

#[test]
fn forms_that_cannot_become_requests_say_why() {
    let (keys, card) = provider();
    let mut rng = UnwrapErr(SysRng);
    assert_eq!(form().sign(&keys, None, NOW, &mut rng).unwrap_err(), RequestFormError::NoCard);
    let blank = RequestForm { purpose: "   ".into(), ..form() };
    assert_eq!(
        blank.sign(&keys, Some(&card), NOW, &mut rng).unwrap_err(),
        RequestFormError::NoPurpose
    );
    let nothing = RequestForm { data_items: vec![], ..form() };
    assert_eq!(
        nothing.sign(&keys, Some(&card), NOW, &mut rng).unwrap_err(),
        RequestFormError::NoData
    );
    for days in [0, 366, u64::MAX] {
        let long = RequestForm { duration_days: days, ..form() };
        assert_eq!(
            long.sign(&keys, Some(&card), NOW, &mut rng).unwrap_err(),
            RequestFormError::Duration
        );
    }
    // A card of another provider cannot carry this provider's request.
    let (_, other_card) = provider();
    let signed = form().sign(&keys, Some(&other_card), NOW, &mut rng).unwrap();
    let link = signed.link();
    assert!(SignedRequest::verify(&link, signed.encode(), &other_card, NOW).is_err());
}
