//! The "Share as a device" panel of the Meter page, and the tasks that keep the device running
//! while the tab is open: polling the consent log (and pairing inbox) every second, and sending
//! the queue to the nodes.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::crypto::{PartyId, Role};
use zeroize::Zeroizing;

use super::outbox::DEFAULT_DATA_CAPACITY;
use super::poller::Poller;
use super::{STATE_KEY, ShareStatus, SharedSharing, Sharing, browser_settings, unix_now};
use crate::vault::{self, KdfParams, MIN_PASSPHRASE_CHARS, SealedIdentity};
use crate::{Nodes, api, storage};

/// Seconds between polls of the consent log.
const POLL_MS: u32 = 1_000;
/// First and longest wait between retries while no node accepts a message.
const FIRST_BACKOFF_MS: u32 = 250;
const MAX_BACKOFF_MS: u32 = 8_000;

/// A running share, as the page holds it.
#[derive(Debug, Clone)]
struct Running {
    sharing: SharedSharing,
    stopping: Rc<Cell<bool>>,
    status: RwSignal<ShareStatus>,
}

/// Where the Meter page's reader hands telegrams to the share (if one is running).
#[derive(Debug, Clone, Copy)]
pub struct ShareFeed(StoredValue<Option<Running>, LocalStorage>);

impl ShareFeed {
    /// Nothing running yet.
    pub fn new() -> Self {
        Self(StoredValue::new_local(None))
    }

    /// Shares a telegram (its text as the decoder shows it) when sharing is on.
    pub fn telegram(&self, text: &str) {
        let running = self.0.try_with_value(Clone::clone).flatten();
        if let Some(running) = running
            && !running.stopping.get()
        {
            running.sharing.borrow_mut().on_telegram(text, unix_now());
            show(running.status, &running.sharing);
        }
    }

    fn stop(&self) {
        if let Some(running) = self.0.try_update_value(Option::take).flatten() {
            running.stopping.set(true);
            running.sharing.borrow_mut().checkpoint_all(unix_now());
        }
    }
}

impl Default for ShareFeed {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// No device identity in this browser.
    Empty,
    /// One is stored, locked.
    Locked { party_id: String },
    /// Key derivation or start-up running.
    Working(&'static str),
    /// Sharing.
    Sharing,
}

fn short(id: &PartyId) -> String {
    hex::encode(&id.0[..4])
}

/// Publishes the status of `sharing` to the page.
fn show(status: RwSignal<ShareStatus>, sharing: &SharedSharing) {
    let now = sharing.borrow().status().clone();
    status.try_set(now);
}

async fn poll_loop(
    sharing: SharedSharing,
    client: tangle_client::Client,
    stopping: Rc<Cell<bool>>,
    status: RwSignal<ShareStatus>,
) {
    let mut poller = Poller::default();
    while !stopping.get() {
        loop {
            let addresses = sharing.borrow().poll_addresses();
            let mut progressed = false;
            for address in addresses {
                match poller.fetch(&client, address).await {
                    Ok(payloads) => {
                        for payload in payloads {
                            progressed = true;
                            sharing.borrow_mut().on_message(&address, &payload, unix_now());
                        }
                    }
                    Err(error) => sharing.borrow_mut().unreachable(error.to_string()),
                }
            }
            if !progressed || stopping.get() {
                break;
            }
        }
        sharing.borrow_mut().tick(unix_now());
        show(status, &sharing);
        TimeoutFuture::new(POLL_MS).await;
    }
}

async fn send_loop(
    sharing: SharedSharing,
    client: tangle_client::Client,
    stopping: Rc<Cell<bool>>,
    status: RwSignal<ShareStatus>,
) {
    let mut backoff = FIRST_BACKOFF_MS;
    loop {
        let front = sharing.borrow().outbox().front().cloned();
        let Some(item) = front else {
            if stopping.get() {
                break;
            }
            TimeoutFuture::new(50).await;
            continue;
        };
        let now_ms = js_sys::Date::now() as u64;
        match client.publish(protocol::tangle::Address(item.address), now_ms, item.payload).await {
            Ok(_) => {
                sharing.borrow_mut().sent();
                backoff = FIRST_BACKOFF_MS;
            }
            Err(error) => {
                sharing.borrow_mut().unreachable(error.to_string());
                show(status, &sharing);
                if stopping.get() {
                    break; // stopped and no node answers: what is left is lost with the tab
                }
                TimeoutFuture::new(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF_MS);
            }
        }
        show(status, &sharing);
    }
}

/// "Share as a device": identity, pairing code, what is shared, and that it stops with the tab.
#[component]
pub fn SharePanel(feed: ShareFeed) -> impl IntoView {
    let Nodes(nodes) = expect_context::<Nodes>();
    let stage = RwSignal::new(Stage::Empty);
    let error = RwSignal::new(None::<String>);
    let passphrase = RwSignal::new(String::new());
    let status = RwSignal::new(ShareStatus::default());

    let refresh = move || match vault::load(Role::Device) {
        Ok(Some(sealed)) => stage.set(Stage::Locked { party_id: sealed.party_id().to_owned() }),
        Ok(None) => stage.set(Stage::Empty),
        Err(e) => {
            error.set(Some(e.to_string()));
            stage.set(Stage::Empty);
        }
    };
    refresh();
    on_cleanup(move || feed.stop());

    let launch = move |sharing: Sharing| {
        let client = match api::tangle(&nodes.get_untracked()) {
            Ok(client) => client,
            Err(e) => {
                error.set(Some(e.to_string()));
                refresh();
                return;
            }
        };
        let sharing: SharedSharing = Rc::new(RefCell::new(sharing));
        let stopping = Rc::new(Cell::new(false));
        feed.0.set_value(Some(Running {
            sharing: sharing.clone(),
            stopping: stopping.clone(),
            status,
        }));
        show(status, &sharing);
        stage.set(Stage::Sharing);
        spawn_local(poll_loop(sharing.clone(), client.clone(), stopping.clone(), status));
        spawn_local(send_loop(sharing, client, stopping, status));
    };

    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = Zeroizing::new(passphrase.get_untracked());
        let stored = match vault::load(Role::Device) {
            Ok(stored) => stored,
            Err(e) => {
                error.set(Some(e.to_string()));
                return;
            }
        };
        if stored.is_none() && typed.chars().count() < MIN_PASSPHRASE_CHARS {
            error.set(Some(vault::VaultError::PassphraseTooShort.to_string()));
            return;
        }
        passphrase.set(String::new());
        error.set(None);
        stage.set(Stage::Working(
            "Deriving the key from your passphrase (Argon2id, 64 MiB), then starting the device…",
        ));
        spawn_local(async move {
            TimeoutFuture::new(50).await; // let the busy indicator paint before the derivation
            let secret = match stored {
                Some(sealed) => sealed.open(&typed),
                None => vault::generate_secret().and_then(|secret| {
                    let id = protocol::crypto::PartyKeys::derive(&secret, Role::Device).id();
                    let sealed = SealedIdentity::seal(
                        &secret,
                        Role::Device,
                        &id,
                        &typed,
                        KdfParams::POLICY,
                    )?;
                    vault::store(Role::Device, &sealed)?;
                    Ok(secret)
                }),
            };
            let started = secret.map_err(|e| e.to_string()).and_then(|secret| {
                let stored_state = storage::load(STATE_KEY).map_err(|e| e.to_string())?;
                Sharing::start(
                    secret,
                    browser_settings(),
                    stored_state.as_deref(),
                    DEFAULT_DATA_CAPACITY,
                    unix_now(),
                )
                .map_err(|e| e.to_string())
            });
            match started {
                Ok(sharing) => launch(sharing),
                Err(e) => {
                    error.set(Some(e));
                    refresh();
                }
            }
        });
    };

    let stop = move |_| {
        feed.stop();
        refresh();
    };

    view! {
        <section class="card" aria-labelledby="share-heading">
            <h2 id="share-heading">"Share as a device"</h2>
            <p id="share-notice" class="notice">
                "Sharing runs in this tab only: it stops when you close or reload the tab or leave "
                "this page, and starts again when you come back and unlock. Messages the node has "
                "not acknowledged yet wait in this tab's memory (at most "
                {DEFAULT_DATA_CAPACITY} " readings, about a quarter of an hour) and are lost if "
                "the tab closes first. For sharing around the clock, use a Meterkast reader on a "
                "small always-on computer."
            </p>
            {move || match stage.get() {
                Stage::Empty | Stage::Locked { .. } => {
                    let locked = matches!(stage.get(), Stage::Locked { .. });
                    view! {
                        <form on:submit=start>
                            <p>{if locked {
                                "This browser has a device identity, locked. Unlock it to share again."
                            } else {
                                "This browser becomes a meter reader of its own: pair it with your wallet in My Home, then grant providers access there."
                            }}</p>
                            <div class="field">
                                <label for="device-passphrase">"Device passphrase"</label>
                                <input id="device-passphrase" type="password"
                                    autocomplete=if locked { "current-password" } else { "new-password" }
                                    aria-describedby="device-passphrase-hint"
                                    prop:value=move || passphrase.get()
                                    on:input=move |ev| passphrase.set(event_target_value(&ev)) />
                                <p id="device-passphrase-hint" class="hint">{if locked {
                                    "The passphrase chosen when this browser became a device.".to_owned()
                                } else {
                                    format!("At least {MIN_PASSPHRASE_CHARS} characters. It locks the device's key in this browser; it is never sent anywhere.")
                                }}</p>
                            </div>
                            <div class="row">
                                <button type="submit" id="share-start">{if locked {
                                    "Unlock and share"
                                } else {
                                    "Share as a device"
                                }}</button>
                            </div>
                        </form>
                    }.into_any()
                }
                Stage::Working(what) => view! {
                    <p role="status">{what}</p>
                    <progress aria-label=what></progress>
                }.into_any(),
                Stage::Sharing => view! { <Sharing status=status on_stop=stop /> }.into_any(),
            }}
            <p class="status-error" role="alert" id="share-error">{move || error.get()}</p>
        </section>
    }
}

/// The running share: pairing code or owner, grants, counts, the queue.
#[component]
fn Sharing(
    status: RwSignal<ShareStatus>,
    on_stop: impl Fn(leptos::ev::MouseEvent) + 'static,
) -> impl IntoView {
    let headline = move || {
        status.with(|s| match (&s.owner, s.grants.len()) {
            (None, _) => {
                "Waiting to be paired: enter the code below under My Home → Pairing.".to_owned()
            }
            (Some(_), 0) => "Paired with your wallet. No provider has access yet.".to_owned(),
            (Some(_), 1) => "Paired. Sharing with 1 provider.".to_owned(),
            (Some(_), n) => format!("Paired. Sharing with {n} providers."),
        })
    };
    view! {
        <p id="share-status" role="status" aria-live="polite">{headline}</p>
        <Show when=move || status.with(|s| s.pairing.is_some())>
            <div class="pairing">
                <p>"Pairing code"</p>
                <p class="mono code" id="device-pairing-code">
                    {move || status.with(|s| s.pairing.as_ref().map(|(text, _)| text.clone()))}
                </p>
                <p class="hint">"Or paste this link into My Home:"</p>
                <code class="mono wrap" id="device-pairing-link">
                    {move || status.with(|s| s.pairing.as_ref().map(|(_, uri)| uri.clone()))}
                </code>
                <p class="hint">"Or scan it with the phone that holds your wallet:"</p>
                <div class="qr" inner_html=move || status.with(|s| {
                    s.pairing.as_ref().and_then(|(_, uri)| {
                        // A link too long for a QR code only loses the picture; the text stays.
                        crate::qr::qr_svg(uri, "device-pairing-qr", "QR code of the pairing link").ok()
                    })
                })></div>
            </div>
        </Show>
        <dl class="facts">
            <dt>"Device"</dt>
            <dd class="mono" id="share-device">{move || status.with(|s| s.device.as_ref().map(short))}</dd>
            <dt>"Readings shared"</dt>
            <dd id="share-readings" data-count=move || status.with(|s| s.readings)>
                {move || status.with(|s| s.readings)}
            </dd>
            <dt>"Waiting to be sent"</dt>
            <dd id="share-queue" data-count=move || status.with(|s| s.queued)>
                {move || status.with(|s| s.queued)}
            </dd>
            <dt>"Acknowledged by the node"</dt>
            <dd id="share-sent">{move || status.with(|s| s.sent)}</dd>
            <dt>"Dropped (queue full)"</dt>
            <dd id="share-dropped">{move || status.with(|s| s.dropped)}</dd>
        </dl>
        <ul id="share-grants">
            {move || status.with(|s| s.grants.iter().map(|(provider, tiers)| view! {
                <li class="grant">{format!("Provider {}: {}", short(provider),
                    tiers.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", "))}</li>
            }).collect_view())}
        </ul>
        <p class="status-error" role="alert" id="share-unreachable">
            {move || status.with(|s| s.unreachable.as_ref().map(|why| format!(
                "The node cannot be reached ({why}). Messages wait in this tab (at most {DEFAULT_DATA_CAPACITY} readings) and are sent when it answers again."
            )))}
        </p>
        <p class="hint" id="share-problem">{move || status.with(|s| s.last_problem.clone())}</p>
        <div class="row">
            <button type="button" class="secondary" id="share-stop" on:click=on_stop>"Stop sharing"</button>
        </div>
    }
}
