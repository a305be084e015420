//! The dashboard's panels: the provider card, the request builder, the grants, and the live
//! and history view of what was received. Element ids follow the project's DOM contract
//! (`#card-name` … `#export-csv`), which the end-to-end tests drive.

use std::sync::Arc;

use getrandom::SysRng;
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::channel::Tier;
use protocol::crypto::PartyKeys;
use protocol::provider::{DataItem, ProviderCard, PurposeCategory, card_address};
use protocol::tangle::Address;
use rand_core::UnwrapErr;
use tangle_client::Client;
use wasm_bindgen::JsCast;

use super::charts::{BarChart, LiveChart};
use super::feed::{self, Connection, DashboardSignals, now_ms, now_secs};
use super::received::{DAY, HOUR, tier_words};
use super::request::{RequestForm, category_words, data_item_words, open_path};
use super::watch::GrantState;
use crate::qr::qr_svg;

/// A UTC time for people: `2026-11-26 13:05 UTC`.
pub fn utc_text(seconds: u64) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(seconds as f64 * 1000.0))
        .to_iso_string()
        .into();
    format!("{} UTC", iso.get(..16).unwrap_or(&iso).replace('T', " "))
}

fn short_hex(bytes: &[u8]) -> String {
    hex::encode(bytes.get(..4).unwrap_or(bytes))
}

/// The whole dashboard for the unlocked provider `keys`.
#[component]
pub fn Dashboard(keys: Arc<PartyKeys>, client: Client) -> impl IntoView {
    let card = RwSignal::new(None::<ProviderCard>);
    let signals = DashboardSignals::new();
    let feed = feed::start(keys.clone(), client.clone(), signals);
    on_cleanup(move || feed.stop());
    view! {
        <CardPanel keys=keys.clone() client=client.clone() card=card />
        <RequestPanel keys=keys client=client card=card />
        <GrantsPanel signals=signals />
        <LivePanel signals=signals />
    }
}

/// Where the provider card stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CardStatus {
    Looking,
    None,
    Publishing,
    Published,
    Failed(String),
}

/// The provider card: name, web address, privacy contact; signed and published on the node.
#[component]
fn CardPanel(
    keys: Arc<PartyKeys>,
    client: Client,
    card: RwSignal<Option<ProviderCard>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let contact = RwSignal::new(String::new());
    let status = RwSignal::new(CardStatus::Looking);

    // A card published earlier (in this browser or another one with the same identity).
    {
        let client = client.clone();
        let id = keys.id();
        spawn_local(async move {
            let found = latest_card(&client, id).await;
            if let Some(found) = &found {
                name.set(found.name().to_owned());
                url.set(found.url().to_owned());
                contact.set(found.contact().to_owned());
            }
            let _ = status.try_set(if found.is_some() {
                CardStatus::Published
            } else {
                CardStatus::None
            });
            let _ = card.try_set(found);
        });
    }

    let publish = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut rng = UnwrapErr(SysRng);
        let created = ProviderCard::create(
            &keys,
            name.get_untracked().trim(),
            url.get_untracked().trim(),
            contact.get_untracked().trim(),
            now_secs(),
            &mut rng,
        );
        let created = match created {
            Ok(created) => created,
            Err(error) => {
                status.set(CardStatus::Failed(format!("The card is not valid: {error}.")));
                return;
            }
        };
        status.set(CardStatus::Publishing);
        let client = client.clone();
        spawn_local(async move {
            let payload = created.encode().to_vec();
            match client.publish(Address(created.address()), now_ms(), payload).await {
                Ok(_) => {
                    let _ = card.try_set(Some(created));
                    let _ = status.try_set(CardStatus::Published);
                }
                Err(error) => {
                    let _ = status.try_set(CardStatus::Failed(format!(
                        "The node did not take the card: {error}"
                    )));
                }
            }
        });
    };

    view! {
        <section class="card dashboard" aria-labelledby="card-heading">
            <h2 id="card-heading">"Provider card"</h2>
            <p>"Households see this card when they open your request: who asks, where to find you, whom to contact. "
               "It is signed with your provider key, so nobody can alter it or publish one in your name."</p>
            <form on:submit=publish>
                <div class="field">
                    <label for="card-name">"Name shown to households"</label>
                    <input id="card-name" required autocomplete="organization"
                        prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                </div>
                <div class="field">
                    <label for="card-url">"Web address (https)"</label>
                    <input id="card-url" type="url" required placeholder="https://example.org/" aria-describedby="card-url-hint"
                        prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                    <p id="card-url-hint" class="hint">"Requests send households back only to this site."</p>
                </div>
                <div class="field">
                    <label for="card-contact">"Privacy contact"</label>
                    <input id="card-contact" required placeholder="privacy@example.org"
                        prop:value=move || contact.get() on:input=move |ev| contact.set(event_target_value(&ev)) />
                </div>
                <div class="row">
                    <button type="submit" id="publish-card"
                        disabled=move || status.get() == CardStatus::Publishing>"Publish card"</button>
                </div>
            </form>
            <p id="card-status" role="status"
                class=move || match status.get() {
                    CardStatus::Published => "published status-ok",
                    CardStatus::Failed(_) => "status-error",
                    _ => "",
                }>
                {move || match status.get() {
                    CardStatus::Looking => "Looking for a published card…".to_owned(),
                    CardStatus::None => "Not published yet.".to_owned(),
                    CardStatus::Publishing => "Publishing (signing and proof of work)…".to_owned(),
                    CardStatus::Published => "Published".to_owned(),
                    CardStatus::Failed(why) => why,
                }}
            </p>
        </section>
    }
}

/// The newest valid card at the provider's card address on any node.
async fn latest_card(client: &Client, id: protocol::crypto::PartyId) -> Option<ProviderCard> {
    for node in 0..client.nodes().len() {
        if let Ok(page) = client.list(node, Address(card_address(id)), 0, 100).await {
            return page
                .messages
                .iter()
                .filter_map(|(_, m)| ProviderCard::decode_for(id, m.payload()).ok())
                .max_by_key(ProviderCard::issued_at);
        }
    }
    None
}

/// A request published in this session.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shared {
    link: String,
    qr: String,
}

/// The request builder and the link, same-origin link and QR code it produces.
#[component]
fn RequestPanel(
    keys: Arc<PartyKeys>,
    client: Client,
    card: RwSignal<Option<ProviderCard>>,
) -> impl IntoView {
    let purpose = RwSignal::new(String::new());
    let category = RwSignal::new(PurposeCategory::EnergyInsight);
    let items =
        RwSignal::new(vec![DataItem::EnergyImport, DataItem::EnergyExport, DataItem::Power]);
    let resolution = RwSignal::new(Tier::Second);
    let duration = RwSignal::new("30".to_owned());
    let delete_after = RwSignal::new("30".to_owned());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let shared = RwSignal::new(None::<Shared>);

    let build = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let days = |text: String| text.trim().parse::<u64>().ok();
        let (Some(duration_days), Some(delete_after_days)) =
            (days(duration.get_untracked()), days(delete_after.get_untracked()))
        else {
            error.set(Some("Enter the durations as whole numbers of days.".to_owned()));
            return;
        };
        let form = RequestForm {
            purpose: purpose.get_untracked(),
            category: category.get_untracked(),
            data_items: items.get_untracked(),
            resolution: resolution.get_untracked(),
            duration_days,
            delete_after_days,
        };
        let mut rng = UnwrapErr(SysRng);
        let signed =
            match card.with_untracked(|c| form.sign(&keys, c.as_ref(), now_secs(), &mut rng)) {
                Ok(signed) => signed,
                Err(e) => {
                    error.set(Some(format!("{}.", capitalise(&e.to_string()))));
                    return;
                }
            };
        error.set(None);
        busy.set(true);
        let client = client.clone();
        spawn_local(async move {
            let published =
                client.publish(Address(signed.address()), now_ms(), signed.encode().to_vec()).await;
            let _ = busy.try_set(false);
            match published {
                Ok(_) => {
                    let link = signed.link().to_uri();
                    match qr_svg(&link, "request-qr", "QR code of the request link") {
                        Ok(qr) => {
                            let _ = shared.try_set(Some(Shared { link, qr }));
                        }
                        Err(e) => {
                            let _ = error
                                .try_set(Some(format!("The QR code could not be drawn: {e}.")));
                        }
                    }
                }
                Err(e) => {
                    let _ = error.try_set(Some(format!("The node did not take the request: {e}")));
                }
            }
        });
    };

    let toggle = move |item: DataItem, on: bool| {
        items.update(|list| {
            list.retain(|i| *i != item);
            if on {
                list.push(item);
                list.sort_unstable();
            }
        });
    };

    view! {
        <section class="card dashboard" aria-labelledby="request-heading">
            <h2 id="request-heading">"Ask a household for access"</h2>
            <form on:submit=build>
                <div class="field">
                    <label for="req-purpose">"Why you need the data"</label>
                    <input id="req-purpose" required maxlength="1000" placeholder="Show your usage per hour and advise on savings"
                        prop:value=move || purpose.get() on:input=move |ev| purpose.set(event_target_value(&ev)) />
                </div>
                <div class="field">
                    <label for="req-category">"Purpose category"</label>
                    <select id="req-category" on:change=move |ev| {
                        let code = event_target_value(&ev).parse::<u8>().ok();
                        if let Some(c) = code.and_then(PurposeCategory::from_code) { category.set(c) }
                    }>
                        {PurposeCategory::ALL.into_iter().map(|c| view! {
                            <option value=c.code().to_string() selected=move || category.get() == c>{category_words(c)}</option>
                        }).collect_view()}
                    </select>
                </div>
                <fieldset id="req-data" class="field">
                    <legend>"Data"</legend>
                    {DataItem::ALL.into_iter().map(|item| {
                        let id = format!("req-data-{}", item.code());
                        view! {
                            <div class="check">
                                <input type="checkbox" id=id.clone() value=item.code().to_string()
                                    prop:checked=move || items.with(|l| l.contains(&item))
                                    on:change=move |ev| toggle(item, event_target_checked(&ev)) />
                                <label for=id>{data_item_words(item)}</label>
                            </div>
                        }
                    }).collect_view()}
                </fieldset>
                <div class="field">
                    <label for="req-resolution">"Finest resolution"</label>
                    <select id="req-resolution" aria-describedby="req-resolution-hint" on:change=move |ev| {
                        let code = event_target_value(&ev).parse::<u8>().ok();
                        if let Some(t) = code.and_then(Tier::from_code) { resolution.set(t) }
                    }>
                        {Tier::ALL.into_iter().map(|t| view! {
                            <option value=t.code().to_string() selected=move || resolution.get() == t>{tier_words(t)}</option>
                        }).collect_view()}
                    </select>
                    <p id="req-resolution-hint" class="hint">"The household may grant this or a coarser one."</p>
                </div>
                <div class="field inline">
                    <label for="req-duration-days">"Access for (days)"</label>
                    <input id="req-duration-days" type="number" min="1" max="365" required inputmode="numeric"
                        prop:value=move || duration.get() on:input=move |ev| duration.set(event_target_value(&ev)) />
                </div>
                <div class="field inline">
                    <label for="req-delete-by-days">"Delete the data within (days after access ends)"</label>
                    <input id="req-delete-by-days" type="number" min="0" max="3650" required inputmode="numeric"
                        prop:value=move || delete_after.get() on:input=move |ev| delete_after.set(event_target_value(&ev)) />
                </div>
                <div class="row">
                    <button type="submit" id="build-request" disabled=move || busy.get()>
                        {move || if busy.get() { "Publishing…" } else { "Build request" }}
                    </button>
                </div>
                <p class="status-error" role="alert" id="request-error">{move || error.get()}</p>
            </form>
            {move || match shared.get() {
                None => view! { <p class="hint" id="request-empty">"No request built yet. The link and QR code appear here."</p> }.into_any(),
                Some(Shared { link, qr }) => view! {
                    <div class="share" id="request-share">
                        <div class="field">
                            <label for="request-link-out">"Request link (give it to the household)"</label>
                            <input id="request-link-out" readonly class="mono" prop:value=link.clone() />
                        </div>
                        <p><a id="request-open-link" href=open_path(&link)>"Open the request in My Home (this app)"</a></p>
                        <div class="qr" inner_html=qr></div>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// Every grant received, with its state as the notices tell it.
#[component]
fn GrantsPanel(signals: DashboardSignals) -> impl IntoView {
    view! {
        <section class="card dashboard" aria-labelledby="grants-heading">
            <h2 id="grants-heading">"Grants"</h2>
            <p class="hint" id="connection" role="status">{move || match signals.connection.get() {
                Connection::Connecting => "Connecting to the node…".to_owned(),
                Connection::Live => "Following your notices and keys live.".to_owned(),
                Connection::Trouble(why) => format!("Connection trouble ({why}); retrying."),
            }}</p>
            <Show when=move || signals.grants.with(|g| !g.is_empty())
                fallback=|| view! { <p id="grants-empty">"No household has granted access yet. Share a request link; grants appear here the moment the household's device confirms them."</p> }>
                <ul id="grants" class="grants">
                    <For each=move || signals.grants.get() key=|g| (g.id.clone(), g.state, g.changed_at) let:grant>
                        <li class="grant" data-grant-id=grant.id.clone() data-state=grant.state.as_str()>
                            <p><strong class=format!("state {}", grant.state.as_str())>{grant.state.as_str()}</strong>
                               " · device " <span class="mono">{short_hex(&grant.device.0)}</span>
                               " · " {grant.tiers.iter().map(|t| tier_words(*t)).collect::<Vec<_>>().join(", ")}</p>
                            <p>{grant.purpose.clone()}</p>
                            <p class="hint">{format!("From {} to {}; delete by {}.", utc_text(grant.start), utc_text(grant.end), utc_text(grant.delete_by))}
                                {grant.reason.clone().filter(|r| !r.trim().is_empty()).map(|r| format!(" Reason given: {r}"))}</p>
                        </li>
                    </For>
                </ul>
            </Show>
            <Show when=move || signals.warnings.with(|w| !w.is_empty())>
                <details class="warnings">
                    <summary>"Refused messages"</summary>
                    <ul>{move || signals.warnings.get().into_iter().map(|w| view! { <li>{w}</li> }).collect_view()}</ul>
                </details>
            </Show>
        </section>
    }
}

/// Live power and history of the newest grant's device; CSV of everything received.
#[component]
fn LivePanel(signals: DashboardSignals) -> impl IntoView {
    let period = RwSignal::new(HOUR);
    let device = move || signals.live_device.get();
    let ended = move || {
        let device = device()?;
        signals.grants.with(|grants| {
            let mine: Vec<_> = grants.iter().filter(|g| g.device == device).collect();
            (!mine.is_empty() && mine.iter().all(|g| g.state.ended()))
                .then(|| mine.iter().max_by_key(|g| g.changed_at).map(|g| (g.state, g.changed_at)))
                .flatten()
        })
    };
    let active = move || {
        device().is_some_and(|d| {
            signals
                .grants
                .with(|g| g.iter().any(|g| g.device == d && g.state == GrantState::Active))
        })
    };
    let bars = move |pick: fn(
        &super::received::ReceivedReadings,
        protocol::crypto::PartyId,
        u64,
    ) -> Vec<super::received::Bar>| {
        Signal::derive(move || match device() {
            Some(d) => signals.readings.with(|r| pick(r, d, period.get())),
            None => Vec::new(),
        })
    };
    let period_label: fn(u64) -> String = |start| utc_text(start);
    let export = move |_| {
        let csv = signals.readings.with_untracked(|r| r.csv());
        if let Err(e) = download("meterkast-readings.csv", "text/csv", &csv) {
            signals.warnings.update(|w| w.push(e));
        }
    };

    view! {
        <section class="card dashboard" aria-labelledby="live-heading">
            <h2 id="live-heading">"Live data"</h2>
            <p id="live-status" role="status" aria-live="polite"
                class=move || match ended() {
                    Some((GrantState::Revoked, _)) => "revoked status-error",
                    Some(_) => "expired status-error",
                    None if active() => "live status-ok",
                    None => "",
                }
                data-ended-at=move || ended().map(|(_, at)| at.to_string())>
                {move || match ended() {
                    Some((GrantState::Revoked, at)) => format!("Access revoked (notice received {}). The chart has stopped; no new readings can be decrypted.", utc_text(at)),
                    Some((_, at)) => format!("Access expired ({}). The chart has stopped.", utc_text(at)),
                    None if active() => "Live: readings arrive as the device publishes them.".to_owned(),
                    None if device().is_some() => "Access granted; waiting for the device's stream keys…".to_owned(),
                    None => "No live data: nothing has been granted yet.".to_owned(),
                }}
            </p>
            <dl class="facts inline">
                <dt>"Now"</dt>
                <dd id="live-power">{move || signals.live.with(|l| match &l.now {
                    None => "—".to_owned(),
                    Some(now) => {
                        let per_phase = now.phases.iter().enumerate()
                            .map(|(i, (im, ex))| format!("L{} {im}/{ex} W", i + 1))
                            .collect::<Vec<_>>().join(", ");
                        format!("import {} W, export {} W ({per_phase})", now.import, now.export)
                    }
                })}</dd>
                <dt>"Verified readings"</dt>
                <dd id="points"
                    data-count=move || signals.readings.with(|r| r.verified_count()).to_string()
                    data-last-time=move || signals.live.with(|l| l.last_time.map(|t| t.to_string()))>
                    {move || signals.readings.with(|r| format!("{} verified of {} received", r.verified_count(), r.len()))}
                </dd>
            </dl>
            <LiveChart live=signals.live />
            <div class="row" role="group" aria-label="History period">
                <button type="button" class="secondary" id="history-hour" aria-pressed=move || (period.get() == HOUR).to_string()
                    on:click=move |_| period.set(HOUR)>"Per hour"</button>
                <button type="button" class="secondary" id="history-day" aria-pressed=move || (period.get() == DAY).to_string()
                    on:click=move |_| period.set(DAY)>"Per day"</button>
            </div>
            <div class="history">
                <BarChart id="energy-import-chart" title="Energy taken" unit="kWh" bars=bars(|r, d, p| r.energy_import(d, p)) label_of=period_label />
                <BarChart id="energy-export-chart" title="Energy delivered" unit="kWh" bars=bars(|r, d, p| r.energy_export(d, p)) label_of=period_label />
                <BarChart id="gas-chart" title="Gas" unit="m³" bars=bars(|r, d, p| r.gas(d, p)) label_of=period_label />
            </div>
            <div class="row">
                <button type="button" id="export-csv" on:click=export
                    disabled=move || signals.readings.with(|r| r.is_empty())>"Export CSV"</button>
            </div>
        </section>
    }
}

/// Offers `text` as a file download (a Blob URL clicked once, then released).
fn download(name: &str, mime: &str, text: &str) -> Result<(), String> {
    let fail = |what: &str| format!("the download could not be prepared ({what})");
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| fail("blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("url"))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or_else(|| fail("document"))?;
    let anchor = document
        .create_element("a")
        .ok()
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok())
        .ok_or_else(|| fail("link"))?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
