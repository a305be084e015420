//! Request verification as the wallet uses it (`app::wallet::request::judge`): the payloads the
//! node holds at a link's card and request addresses in, the verdict the page shows out. A
//! genuine request is verified (whatever garbage lies beside it); altered bytes, a card or
//! request of another provider, a forged signature, an off-site return address, an expired or
//! ill-formed request are each shown invalid with their own reason, never as valid.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::unwrap_used)]

use app::wallet::request::{InvalidRequest, Verdict, judge, parse_link};
use app::wallet::rng;
use protocol::channel::Tier;
use protocol::crypto::{PartyKeys, PartySecret, Role, SIGNATURE_LEN, SignatureContext, digest};
use protocol::provider::{
    AccessRequest, DataItem, ProviderCard, ProviderError, PurposeCategory, RequestLink,
    SignedRequest, card_address, request_address,
};
use wasm_bindgen_test::{wasm_bindgen_test as test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// 2026-11-26 12:00 UTC.
const NOW: u64 = 1_795_694_400;
const DAY: u64 = 86_400;

struct Provider {
    keys: PartyKeys,
    card: ProviderCard,
}

fn provider(n: u8, name: &str) -> Provider {
    let keys = PartyKeys::derive(&PartySecret::from_bytes([n; 32]), Role::Provider);
    let url = format!("https://{}.example/", name.to_lowercase());
    let card =
        ProviderCard::create(&keys, name, &url, "privacy@example.org", NOW - DAY, &mut rng())
            .unwrap();
    Provider { keys, card }
}

fn asking(provider: &Provider, start: u64, days: u64, return_url: &str) -> AccessRequest {
    AccessRequest {
        provider: provider.keys.id(),
        nonce: [7; 16],
        purpose: "Advice on when to run the heat pump".to_owned(),
        category: PurposeCategory::EnergyInsight,
        data_items: vec![DataItem::Power, DataItem::EnergyImport],
        max_resolution: Tier::TenSeconds,
        start,
        end: start + days * DAY,
        delete_by: start + (days + 30) * DAY,
        return_url: return_url.to_owned(),
        created_at: start,
    }
}

fn signed(provider: &Provider) -> SignedRequest {
    asking(provider, NOW, 30, "https://wattt.example/done")
        .sign(&provider.keys, &mut rng())
        .unwrap()
}

/// The digest a link carries for `bytes` (what an attacker publishing its own bytes would
/// put in its own link).
fn digest_of(bytes: &[u8]) -> [u8; 32] {
    digest(b"meterkast/v1/access-request", &[bytes])
}

fn reason_of(verdict: Verdict) -> InvalidRequest {
    match verdict {
        Verdict::Invalid(reason) => reason,
        Verdict::Verified(details) => {
            panic!("shown as valid: {} asking {:?}", details.provider_name(), details.purpose())
        }
    }
}

#[test]
fn a_genuine_request_is_verified_and_shown_with_every_detail() {
    let wattt = provider(1, "Wattt");
    let request = signed(&wattt);
    let link = request.link().to_uri();
    // The link names where the wallet looks: the provider's card and the request.
    let addresses = parse_link(&link).unwrap();
    assert_eq!(addresses.card, card_address(wattt.keys.id()));
    assert_eq!(addresses.request, request_address(&request.digest()));

    // Garbage and an altered copy published beside the genuine request do not hide it.
    let mut altered = request.encode().to_vec();
    altered[40] ^= 1;
    let found = vec![vec![1, 2, 3], altered, request.encode().to_vec()];
    let Verdict::Verified(details) = judge(&link, &[wattt.card.encode().to_vec()], &found, NOW)
    else {
        panic!("the genuine request was not verified");
    };
    assert_eq!(details.provider_name(), "Wattt");
    assert_eq!(details.provider_url(), "https://wattt.example/");
    assert_eq!(details.provider_contact(), "privacy@example.org");
    assert_eq!(details.purpose(), "Advice on when to run the heat pump");
    assert_eq!(details.category(), "Energy insight and advice for your home");
    assert_eq!(
        details.data(),
        vec!["Power right now (import and export)", "Electricity used (meter totals per tariff)"]
    );
    assert_eq!(details.resolution(), "every 10 seconds");
    assert_eq!(details.period(), "from 2026-11-26 12:00 UTC until 2026-12-26 12:00 UTC");
    assert_eq!(details.delete_by(), "2027-01-25 12:00 UTC");
    // The household may grant the resolution asked for or coarser, never finer.
    let tiers = details.grantable_tiers();
    assert_eq!(tiers.first(), Some(&Tier::TenSeconds));
    assert!(!tiers.contains(&Tier::Second));
    assert!(tiers.contains(&Tier::Day));
}

#[test]
fn altered_request_bytes_are_shown_as_tampered() {
    let wattt = provider(1, "Wattt");
    let request = signed(&wattt);
    let link = request.link().to_uri();
    // One bit of the purpose changed in transit (or by the node).
    let mut altered = request.encode().to_vec();
    let at = altered.windows(6).position(|w| w == b"Advice").unwrap();
    altered[at] = b'a';
    let verdict = judge(&link, &[wattt.card.encode().to_vec()], &[altered], NOW);
    let reason = reason_of(verdict);
    assert_eq!(reason, InvalidRequest::Refused(ProviderError::TamperedRequest));
    assert_eq!(reason.code(), "tampered");
    assert!(reason.to_string().contains("altered"), "{reason}");
    assert!(reason.to_string().contains("Do not grant it"), "{reason}");
}

#[test]
fn a_card_or_request_of_another_provider_is_refused() {
    let wattt = provider(1, "Wattt");
    let mallory = provider(2, "Wattt");
    let request = signed(&wattt);
    let link = request.link().to_uri();

    // A card with the same name but other keys at Wattt's card address: a spoofed card.
    let verdict =
        judge(&link, &[mallory.card.encode().to_vec()], &[request.encode().to_vec()], NOW);
    let reason = reason_of(verdict);
    assert_eq!(reason, InvalidRequest::BadCard(ProviderError::CardOfAnotherProvider));
    assert_eq!(reason.code(), "bad-card");
    // The genuine card beside the spoof wins.
    let both = [mallory.card.encode().to_vec(), wattt.card.encode().to_vec()];
    assert!(matches!(judge(&link, &both, &[request.encode().to_vec()], NOW), Verdict::Verified(_)));

    // Mallory's own valid request presented under Wattt's name (link: Wattt's id, Mallory's
    // request digest): the request names another provider than the card.
    let theirs = asking(&mallory, NOW, 30, "https://wattt.example/")
        .sign(&mallory.keys, &mut rng())
        .unwrap();
    let spoofing = RequestLink { provider: wattt.keys.id(), digest: theirs.digest() }.to_uri();
    let reason = reason_of(judge(
        &spoofing,
        &[wattt.card.encode().to_vec()],
        &[theirs.encode().to_vec()],
        NOW,
    ));
    assert_eq!(reason, InvalidRequest::Refused(ProviderError::SpoofedProvider));
    assert_eq!(reason.code(), "spoofed-provider");
}

#[test]
fn a_request_signed_by_someone_else_is_refused() {
    let wattt = provider(1, "Wattt");
    let mallory = provider(2, "Mallory");
    let request = signed(&wattt);
    // Mallory keeps Wattt's request body, signs it herself and makes a link for the result.
    let body = &request.encode()[..request.encode().len() - SIGNATURE_LEN];
    let signature = mallory.keys.sign(SignatureContext::AccessRequest, body, &mut rng()).unwrap();
    let forged = [body, &signature].concat();
    let link = RequestLink { provider: wattt.keys.id(), digest: digest_of(&forged) }.to_uri();
    let reason = reason_of(judge(&link, &[wattt.card.encode().to_vec()], &[forged], NOW));
    assert_eq!(reason, InvalidRequest::Refused(ProviderError::BadRequestSignature));
    assert_eq!(reason.code(), "bad-signature");
}

#[test]
fn an_expired_request_is_refused() {
    let wattt = provider(1, "Wattt");
    // Asked for a week that ended yesterday.
    let old = asking(&wattt, NOW - 8 * DAY, 7, "https://wattt.example/")
        .sign(&wattt.keys, &mut rng())
        .unwrap();
    let link = old.link().to_uri();
    let card = [wattt.card.encode().to_vec()];
    let reason = reason_of(judge(&link, &card, &[old.encode().to_vec()], NOW));
    assert_eq!(reason, InvalidRequest::Refused(ProviderError::RequestExpired));
    assert_eq!(reason.code(), "expired");
    // The same request was fine while it lasted.
    assert!(matches!(
        judge(&link, &card, &[old.encode().to_vec()], NOW - 2 * DAY),
        Verdict::Verified(_)
    ));
}

#[test]
fn ill_formed_links_and_requests_are_refused() {
    let wattt = provider(1, "Wattt");
    let card = [wattt.card.encode().to_vec()];
    let request = signed(&wattt);

    for text in [
        "",
        "https://wattt.example/",
        "meterkast:request/",
        "meterkast:request/abc!",
        "meterkast:pair/aaaa",
    ] {
        assert_eq!(reason_of(judge(text, &card, &[], NOW)), InvalidRequest::NotALink, "{text:?}");
    }

    // Cut short, under a link made for exactly those bytes: not a request at all.
    let truncated = request.encode()[..200].to_vec();
    let link = RequestLink { provider: wattt.keys.id(), digest: digest_of(&truncated) }.to_uri();
    let reason_truncated = reason_of(judge(&link, &card, &[truncated], NOW));
    assert!(
        matches!(reason_truncated, InvalidRequest::Refused(ProviderError::Decode(_))),
        "{reason_truncated:?}"
    );
    assert_eq!(reason_truncated.code(), "ill-formed");

    // A return address on another web site than the provider's card.
    let off_site = asking(&wattt, NOW, 30, "https://wattt.example.evil.example/")
        .sign(&wattt.keys, &mut rng())
        .unwrap();
    let reason_off_site =
        reason_of(judge(&off_site.link().to_uri(), &card, &[off_site.encode().to_vec()], NOW));
    assert_eq!(reason_off_site, InvalidRequest::Refused(ProviderError::ReturnAddressOffOrigin));
    assert_eq!(reason_off_site.code(), "return-off-origin");

    // Nothing on the node: no card, or no request.
    let link = request.link().to_uri();
    assert_eq!(
        reason_of(judge(&link, &[], &[request.encode().to_vec()], NOW)),
        InvalidRequest::CardMissing
    );
    assert_eq!(reason_of(judge(&link, &card, &[], NOW)), InvalidRequest::RequestMissing);
    // Garbage where the card should be.
    assert!(matches!(
        reason_of(judge(&link, &[vec![0; 10]], &[request.encode().to_vec()], NOW)),
        InvalidRequest::BadCard(_)
    ));
}
