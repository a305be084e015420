//! "My Home": the household wallet.
//!
//! ```text
//!  IdentityVault (create / restore / lock / unlock) ── Unlocked ──► Wallet (mounted while unlocked)
//!     Session (this tab only): wallet keys, state-at-rest key, HouseholdDevice per device
//!       load: Book ─► devices ─► read each log and its receipts from the node
//!       poll (3 s): next log entries + next delivery receipts ─► Overview signal ─► lists
//!     Devices  (#pair-code ─► household::pair ─► DevicePaired entry; remove / hand over)
//!     Request  (#request-link or ?link= ─► request::judge ─► grant / deny entry)
//!     Access   (#access: grants with state; revoke entry; rotation confirmed by receipts)
//!     History  (#history: log events + receipts; #export-consent: JSON records)
//! ```
//!
//! The logic lives in [`crate::wallet`]; this module only wires it to the page. The element ids
//! are fixed by the DOM contract the end-to-end tests use.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;
use protocol::channel::Tier;
use protocol::consent::{EventKind, RemovalReason};
use protocol::crypto::{PartyKeys, Role, SymmetricKey, SymmetricPurpose};
use protocol::pairing::PairingCode;

use crate::Nodes;
use crate::identity::{IdentityVault, Unlocked, short_id};
use crate::wallet::book::Book;
use crate::wallet::household::{self, HouseholdDevice, WalletError};
use crate::wallet::overview::{GrantRow, GrantState, Overview, group_thousands, overview};
use crate::wallet::request::{self, Verdict, tier_label};
use crate::wallet::time::{format_utc, unix_now};
use crate::{api, wallet};

/// Seconds between two looks at the node for new log entries and receipts.
const POLL_MS: u32 = 3_000;

/// The household wallet page (also at `/home/request?link=…`).
#[component]
pub fn HomePage() -> impl IntoView {
    let unlocked = Unlocked::new();
    let query = use_query_map();
    let link = move || query.read().get("link");
    // Forgetting the wallet also removes its device book (sealed log keys, device ids).
    let forget_devices = Callback::new(|wallet_id: String| {
        if let Err(error) = Book::forget(&wallet_id) {
            leptos::logging::warn!("the device list was not removed: {error}");
        }
    });
    view! {
        <section class="card" aria-labelledby="home-heading">
            <h2 id="home-heading">"My Home"</h2>
            <p>"Your wallet holds the keys to your meters and the consents you gave. "
               "It is created and kept in this browser; nothing secret is ever sent to a node."</p>
            <Show when=move || link().is_some() && unlocked.party_id.get().is_none()>
                <p class="hint" id="request-waiting">"A provider's request is waiting: unlock (or create) your wallet to see it."</p>
            </Show>
            <IdentityVault role=Role::Wallet noun="wallet" unlocked=unlocked on_forget=forget_devices />
        </section>
        {move || unlocked.party_id.get().map(|wallet_id| match unlocked.keys(Role::Wallet) {
            Some(keys) => view! { <Wallet wallet_id=wallet_id keys=keys initial_link=link() /> }.into_any(),
            None => view! { <p class="status-error">"The wallet's keys are not available."</p> }.into_any(),
        })}
    }
}

/// What this tab holds while the wallet is unlocked (never stored as is).
struct Session {
    wallet_id: String,
    wallet: Rc<PartyKeys>,
    state_key: SymmetricKey,
    devices: Vec<HouseholdDevice>,
}

type SharedSession = Rc<RefCell<Session>>;

impl Session {
    /// Stores the device book (log keys sealed, heads as seen now).
    fn save(&self) -> Result<(), WalletError> {
        let devices = self
            .devices
            .iter()
            .map(|d| d.to_stored(&self.state_key))
            .collect::<Result<Vec<_>, _>>()?;
        let book = Book::with_devices(devices);
        Ok(book.save(&self.wallet_id)?)
    }
}

/// The page's reactive state (plain data; the keys stay in the [`Session`]).
#[derive(Clone, Copy)]
struct Ui {
    overview: RwSignal<Overview>,
    loading: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    /// Why the last look at the node failed (cleared by the next that works).
    sync_error: RwSignal<Option<String>>,
    pair_status: RwSignal<Option<(String, &'static str)>>,
    pairing: RwSignal<bool>,
    verdict: RwSignal<Option<Verdict>>,
    request_status: RwSignal<Option<(String, &'static str)>>,
    answering: RwSignal<bool>,
    /// Grants being written (shown as pending) and grants whose revocation is being written.
    pending: RwSignal<Vec<GrantRow>>,
    revoking: RwSignal<Vec<String>>,
}

fn refresh(session: &SharedSession, ui: Ui) {
    let session = session.borrow();
    ui.overview.set(overview(&session.devices, unix_now()));
    if let Err(error) = session.save() {
        ui.error.set(Some(error.to_string()));
    }
}

fn client(nodes: &Nodes) -> Result<tangle_client::Client, WalletError> {
    Ok(api::tangle(&nodes.0.get_untracked())?)
}

/// Reads device `index`'s log and receipts up to the newest.
async fn catch_up(
    client: &tangle_client::Client,
    session: &SharedSession,
    index: usize,
) -> Result<bool, WalletError> {
    household::catch_up(
        client,
        || session.borrow().devices.get(index).map(HouseholdDevice::next_entry_address),
        |address, payloads| {
            session
                .borrow_mut()
                .devices
                .get_mut(index)
                .is_some_and(|d| d.accept_entries(address, payloads))
        },
        || session.borrow().devices.get(index).map(HouseholdDevice::next_receipt_address),
        |payloads| {
            session.borrow_mut().devices.get_mut(index).is_some_and(|d| d.accept_receipts(payloads))
        },
    )
    .await
}

/// Writes `kind` to device `index`'s log and publishes it; the entry counts once a node
/// acknowledged it.
async fn write_entry(
    nodes: &Nodes,
    session: &SharedSession,
    index: usize,
    kind: EventKind,
) -> Result<(), WalletError> {
    let client = client(nodes)?;
    // Someone else (another browser of this wallet) may have written since the last poll.
    catch_up(&client, session, index).await?;
    let written = {
        let mut session = session.borrow_mut();
        let device = session.devices.get_mut(index).ok_or(WalletError::Locked)?;
        device.write(kind, &mut wallet::rng())?
    };
    let published = household::publish(&client, written.publish.clone()).await;
    let mut session = session.borrow_mut();
    let device = session.devices.get_mut(index).ok_or(WalletError::Locked)?;
    match published {
        Ok(()) => {
            device.confirm_written(&written);
            Ok(())
        }
        Err(error) => {
            device.abandon_written();
            Err(error)
        }
    }
}

/// Opens the book, reads every device's log from the node, and keeps polling while mounted.
fn start(session: SharedSession, ui: Ui, nodes: Nodes, alive: Arc<AtomicBool>) {
    spawn_local(async move {
        let heads = {
            let mut guard = session.borrow_mut();
            let Session { wallet_id, wallet, state_key, devices } = &mut *guard;
            match Book::load(wallet_id) {
                Ok(book) => {
                    let mut heads = Vec::new();
                    for stored in &book.devices {
                        match HouseholdDevice::from_stored(stored, wallet, state_key) {
                            Ok(device) => {
                                devices.push(device);
                                heads.push(stored.log_head.clone());
                            }
                            Err(error) => ui.error.set(Some(error.to_string())),
                        }
                    }
                    heads
                }
                Err(error) => {
                    ui.error.set(Some(error.to_string()));
                    Vec::new()
                }
            }
        };
        let client = match client(&nodes) {
            Ok(client) => client,
            Err(error) => {
                ui.error.set(Some(error.to_string()));
                ui.loading.set(false);
                return;
            }
        };
        for (index, head) in heads.iter().enumerate() {
            match catch_up(&client, &session, index).await {
                Ok(_) => {
                    if let (Some(head), Some(device)) =
                        (head, session.borrow_mut().devices.get_mut(index))
                    {
                        device.check_head(head);
                    }
                }
                Err(error) => ui.error.set(Some(error.to_string())),
            }
        }
        ui.loading.set(false);
        refresh(&session, ui);
        while alive.load(Ordering::Relaxed) {
            TimeoutFuture::new(POLL_MS).await;
            if !alive.load(Ordering::Relaxed) {
                break;
            }
            let Ok(client) = client_or_report(&nodes, ui) else { continue };
            let count = session.borrow().devices.len();
            let mut trouble = None;
            for index in 0..count {
                if let Err(error) = catch_up(&client, &session, index).await {
                    trouble = Some(error.to_string());
                }
            }
            // Shown while the node cannot be read; gone once it can again.
            ui.sync_error.set(trouble);
            // States depend on the clock (grants start and expire), so refresh every round.
            refresh(&session, ui);
        }
    });
}

fn client_or_report(nodes: &Nodes, ui: Ui) -> Result<tangle_client::Client, ()> {
    client(nodes).map_err(|error| ui.sync_error.set(Some(error.to_string())))
}

/// Everything below the identity panel, while the wallet is unlocked.
#[component]
fn Wallet(wallet_id: String, keys: PartyKeys, initial_link: Option<String>) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    let state_key = keys.symmetric_key(SymmetricPurpose::StateAtRest);
    let session: SharedSession = Rc::new(RefCell::new(Session {
        wallet_id,
        wallet: Rc::new(keys),
        state_key,
        devices: Vec::new(),
    }));
    let ui = Ui {
        overview: RwSignal::new(Overview::default()),
        loading: RwSignal::new(true),
        error: RwSignal::new(None),
        sync_error: RwSignal::new(None),
        pair_status: RwSignal::new(None),
        pairing: RwSignal::new(false),
        verdict: RwSignal::new(None),
        request_status: RwSignal::new(None),
        answering: RwSignal::new(false),
        pending: RwSignal::new(Vec::new()),
        revoking: RwSignal::new(Vec::new()),
    };
    let alive = Arc::new(AtomicBool::new(true));
    {
        let alive = alive.clone();
        on_cleanup(move || alive.store(false, Ordering::Relaxed));
    }
    start(session.clone(), ui, nodes, alive);
    let session = StoredValue::new_local(session);
    if let Some(link) = initial_link {
        open_request(link, ui, nodes);
    }
    view! {
        <p class="status-error" role="alert" id="wallet-error">{move || ui.error.get()}</p>
        <p class="status-error" role="status" id="wallet-sync">{move || ui.sync_error.get().map(|e| format!("Cannot read from the node right now: {e}"))}</p>
        <Devices session=session ui=ui />
        <RequestPanel session=session ui=ui />
        <Access session=session ui=ui />
        <History session=session ui=ui />
    }
}

/// The devices section: pairing and the list.
#[component]
fn Devices(session: StoredValue<SharedSession, LocalStorage>, ui: Ui) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    let code = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = code.get_untracked();
        let session = session.get_value();
        let device_id = match PairingCode::parse(&text) {
            Ok(parsed) => parsed.device(),
            Err(error) => {
                ui.pair_status.set(Some((error.to_string(), "status-error")));
                return;
            }
        };
        if session.borrow().devices.iter().any(|d| d.device.id() == device_id && !d.is_removed()) {
            ui.pair_status.set(Some((WalletError::AlreadyPaired.to_string(), "status-error")));
            return;
        }
        ui.pairing.set(true);
        spawn_local(async move {
            let outcome = pair_device(&nodes, &session, &text, ui).await;
            ui.pairing.set(false);
            match outcome {
                Ok(short) => {
                    code.set(String::new());
                    ui.pair_status.set(Some((format!("Paired with device {short}."), "status-ok")));
                    refresh(&session, ui);
                }
                Err(error) => ui.pair_status.set(Some((error.to_string(), "status-error"))),
            }
        });
    };
    view! {
        <section class="card wallet-devices" aria-labelledby="devices-heading">
            <h2 id="devices-heading">"Devices"</h2>
            <form on:submit=submit>
                <div class="field">
                    <label for="pair-code">"Pairing code or link"</label>
                    <input id="pair-code" autocomplete="off" spellcheck="false" autocapitalize="none"
                        aria-describedby="pair-hint"
                        prop:value=move || code.get() on:input=move |ev| code.set(event_target_value(&ev)) />
                    <p id="pair-hint" class="hint">"The code your meter reader shows (16 groups of 5 characters), or its meterkast:pair/ link."</p>
                </div>
                <div class="row">
                    <button type="submit" id="pair-submit" disabled=move || ui.pairing.get()>"Pair this device"</button>
                </div>
            </form>
            <p id="pair-status" role="status" class=move || ui.pair_status.get().map_or("", |s| s.1)>
                {move || ui.pair_status.get().map(|s| s.0)}
            </p>
            <Show when=move || ui.pairing.get()>
                <progress aria-label="Pairing"></progress>
            </Show>
            <ul id="devices" class="wallet-list">
                {move || ui.overview.get().devices.into_iter().map(|device| {
                    let id = device.id.clone();
                    let removed = device.state != "paired";
                    view! {
                        <li class="device" data-device-id=device.id.clone() data-state=device.state>
                            <p><strong>"Meter reader " <span class="mono">{short_id(&device.id)}</span></strong>
                               " — " <span class="device-state">{device.state}</span></p>
                            <dl class="facts inline">
                                <dt>"Paired"</dt><dd>{format_utc(device.paired_at)}</dd>
                                <dt>"Last readings"</dt>
                                <dd class="last-reading">{device.last_readings.map_or_else(
                                    || "no delivery receipt yet".to_owned(), format_utc)}</dd>
                                <dt>"Active grants"</dt><dd>{device.active_grants}</dd>
                            </dl>
                            {device.warnings.into_iter().map(|w| view! { <p class="status-error" role="alert">{w}</p> }).collect_view()}
                            <Show when=move || !removed>
                                <RemoveDevice session=session ui=ui device_id=id.clone() />
                            </Show>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=move || ui.overview.with(|o| !o.devices.is_empty())>
                <p class="hint">"Reading times come from each device's signed delivery receipts (about hourly, and whenever a provider's access ends)."</p>
            </Show>
            <Show when=move || !ui.loading.get() && ui.overview.with(|o| o.devices.is_empty())>
                <p class="hint" id="devices-empty">"No device is paired yet. Pair your meter reader with the code it shows."</p>
            </Show>
            <Show when=move || ui.loading.get()>
                <p class="hint" role="status">"Reading your devices' consent logs from the node…"</p>
            </Show>
        </section>
    }
}

async fn pair_device(
    nodes: &Nodes,
    session: &SharedSession,
    code: &str,
    ui: Ui,
) -> Result<String, WalletError> {
    let client = client(nodes)?;
    let wallet = session.borrow().wallet.clone();
    let progress = move |step: &'static str| ui.pair_status.set(Some((step.to_owned(), "")));
    let paired = household::pair(&client, &wallet, code, progress).await?;
    let device = HouseholdDevice::from_pairing(paired, unix_now());
    let short_id = crate::identity::short_id(&device.id_hex());
    let owner = device.owner.id();
    let pairing_id = device.pairing_id;
    let index = {
        let mut session = session.borrow_mut();
        // A re-paired device (new log) replaces its removed entry.
        let id = device.device.id();
        session.devices.retain(|d| d.device.id() != id);
        session.devices.push(device);
        session.devices.len() - 1
    };
    ui.pair_status
        .set(Some(("Paired; writing the first entry of its consent log…".to_owned(), "")));
    write_entry(nodes, session, index, EventKind::DevicePaired { owner, pairing_id }).await?;
    Ok(short_id)
}

/// Remove or hand over, with a second step (the two choices of equal weight).
#[component]
fn RemoveDevice(
    session: StoredValue<SharedSession, LocalStorage>,
    ui: Ui,
    device_id: String,
) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    let asking = RwSignal::new(None::<RemovalReason>);
    let busy = RwSignal::new(false);
    let device_id = StoredValue::new(device_id);
    let confirm = move |_| {
        let Some(reason) = asking.get_untracked() else { return };
        let session = session.get_value();
        let Some(index) =
            session.borrow().devices.iter().position(|d| d.id_hex() == device_id.get_value())
        else {
            return;
        };
        busy.set(true);
        spawn_local(async move {
            let outcome =
                write_entry(&nodes, &session, index, EventKind::DeviceRemoved { reason }).await;
            busy.set(false);
            asking.set(None);
            match outcome {
                Ok(()) => refresh(&session, ui),
                Err(error) => ui.error.set(Some(error.to_string())),
            }
        });
    };
    view! {
        {move || match asking.get() {
            None => view! {
                <div class="row">
                    <button type="button" class="secondary remove-device" on:click=move |_| asking.set(Some(RemovalReason::Removed))>"Remove…"</button>
                    <button type="button" class="secondary handover-device" on:click=move |_| asking.set(Some(RemovalReason::HandedOver))>"Hand over…"</button>
                </div>
            }.into_any(),
            Some(reason) => view! {
                <div class="confirm" role="group">
                    <p>{match reason {
                        RemovalReason::Removed => "Remove this device? Every grant on it ends and the device rotates its keys; to use it again, pair it anew.",
                        RemovalReason::HandedOver => "Hand this device over (you are moving out)? Every grant ends; the next occupant pairs it with their own wallet.",
                    }}</p>
                    <div class="row">
                        <button type="button" class="danger confirm-remove" disabled=move || busy.get() on:click=confirm>"Yes, end every grant"</button>
                        <button type="button" class="danger" disabled=move || busy.get() on:click=move |_| asking.set(None)>"No, keep it"</button>
                    </div>
                </div>
            }.into_any(),
        }}
    }
}

/// Opens a request link: fetches card and request, judges them.
fn open_request(link: String, ui: Ui, nodes: Nodes) {
    ui.verdict.set(None);
    ui.request_status.set(Some(("Checking the request…".to_owned(), "")));
    spawn_local(async move {
        let verdict = match fetch_and_judge(&nodes, &link).await {
            Ok(verdict) => verdict,
            Err(error) => {
                ui.request_status.set(Some((error.to_string(), "status-error")));
                return;
            }
        };
        ui.request_status.set(None);
        ui.verdict.set(Some(verdict));
    });
}

async fn fetch_and_judge(nodes: &Nodes, link: &str) -> Result<Verdict, WalletError> {
    let addresses = match request::parse_link(link) {
        Ok(addresses) => addresses,
        Err(reason) => return Ok(Verdict::Invalid(reason)),
    };
    let client = client(nodes)?;
    let cards = household::fetch_all(&client, addresses.card).await?;
    let requests = household::fetch_all(&client, addresses.request).await?;
    Ok(request::judge(link, &cards, &requests, unix_now()))
}

/// The request section: paste box and the verdict with grant / deny.
#[component]
fn RequestPanel(session: StoredValue<SharedSession, LocalStorage>, ui: Ui) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    let link = RwSignal::new(String::new());
    let open = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        open_request(link.get_untracked(), ui, nodes);
    };
    view! {
        <section class="card wallet-request" aria-labelledby="request-heading">
            <h2 id="request-heading">"Requests"</h2>
            <form on:submit=open>
                <div class="field">
                    <label for="request-link">"A provider's request link"</label>
                    <input id="request-link" autocomplete="off" spellcheck="false" autocapitalize="none"
                        aria-describedby="request-hint"
                        prop:value=move || link.get() on:input=move |ev| link.set(event_target_value(&ev)) />
                    <p id="request-hint" class="hint">"Starts with meterkast:request/. The wallet checks it against the provider's signed card before showing it."</p>
                </div>
                <div class="row"><button type="submit" id="request-open">"Open the request"</button></div>
            </form>
            <p id="request-status" role="status" class=move || ui.request_status.get().map_or("", |s| s.1)>
                {move || ui.request_status.get().map(|s| s.0)}
            </p>
            {move || ui.verdict.get().map(|verdict| view! { <RequestView verdict=verdict session=session ui=ui /> })}
        </section>
    }
}

/// A judged request: why it is invalid, or what it asks with grant and deny.
#[component]
fn RequestView(
    verdict: Verdict,
    session: StoredValue<SharedSession, LocalStorage>,
    ui: Ui,
) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    // Keyboard and screen-reader users land on the verdict, the grant buttons a Tab away.
    let verdict_ref = NodeRef::<leptos::html::P>::new();
    Effect::new(move |_| {
        if let Some(element) = verdict_ref.get() {
            let _ = element.focus();
        }
    });
    let details = match verdict {
        Verdict::Invalid(reason) => {
            return view! {
                <div id="request-view" class="request-view">
                    <p id="request-verdict" class="invalid" role="alert" tabindex="-1" node_ref=verdict_ref data-reason=reason.code()>
                        <strong>"Invalid request: "</strong>{reason.to_string()}
                    </p>
                    <p class="hint">"Nothing was granted. The request is not shown because it cannot be trusted."</p>
                </div>
            }
            .into_any();
        }
        Verdict::Verified(details) => details,
    };
    let devices = move || {
        ui.overview.with(|o| {
            o.devices
                .iter()
                .filter(|d| d.state == "paired")
                .map(|d| d.id.clone())
                .collect::<Vec<_>>()
        })
    };
    let chosen_device = RwSignal::new(None::<String>);
    let tiers = details.grantable_tiers();
    let chosen_tier = RwSignal::new(tiers.first().map_or(0, |t| t.code()));
    let details = StoredValue::new(*details);
    let answer = move |grant: bool| {
        let device_id = chosen_device.get_untracked().or_else(|| devices().first().cloned());
        let Some(device_id) = device_id else {
            ui.request_status.set(Some((
                "Pair a device first: a grant is written to a device's consent log.".to_owned(),
                "status-error",
            )));
            return;
        };
        let session = session.get_value();
        let Some(index) = session.borrow().devices.iter().position(|d| d.id_hex() == device_id)
        else {
            return;
        };
        let tier = Tier::from_code(chosen_tier.get_untracked()).unwrap_or(Tier::Second);
        let details = details.get_value();
        let kind = if grant {
            let answered = session.borrow().devices[index].answer(
                &details.request,
                &details.card,
                &[tier],
                &mut wallet::rng(),
            );
            match answered {
                Ok(grant) => {
                    ui.pending.update(|p| {
                        p.push(GrantRow {
                            id: hex::encode(grant.id.0),
                            device: device_id.clone(),
                            provider: grant.provider_name.clone(),
                            purpose: grant.purpose.clone(),
                            what: "being written to the device's consent log".to_owned(),
                            start: grant.start,
                            end: grant.end,
                            delete_by: grant.delete_by,
                            state: GrantState::Pending,
                            ended_at: None,
                            rotation_confirmed: false,
                        })
                    });
                    EventKind::Granted(Box::new(grant))
                }
                Err(error) => {
                    ui.request_status.set(Some((error.to_string(), "status-error")));
                    return;
                }
            }
        } else {
            EventKind::Denied {
                provider: details.card.id(),
                request_digest: details.request.digest(),
                reason: String::new(),
            }
        };
        ui.answering.set(true);
        ui.request_status.set(Some((
            "Writing your answer to the device's consent log (proof of work)…".to_owned(),
            "",
        )));
        spawn_local(async move {
            let outcome = write_entry(&nodes, &session, index, kind).await;
            ui.answering.set(false);
            ui.pending.set(Vec::new());
            match outcome {
                Ok(()) => {
                    let done = if grant {
                        format!(
                            "Granted. {} can read your data once the device hands over the keys.",
                            details.provider_name()
                        )
                    } else {
                        format!("Denied. {} gets nothing.", details.provider_name())
                    };
                    ui.verdict.set(None);
                    ui.request_status.set(Some((done, "status-ok")));
                    refresh(&session, ui);
                }
                Err(error) => ui.request_status.set(Some((error.to_string(), "status-error"))),
            }
        });
    };
    let d = details.get_value();
    let digest = d.request.digest();
    let answered = session.with_value(|session| {
        session.borrow().devices.iter().flat_map(|device| device.entries.iter()).find_map(|e| {
            match &e.event.kind {
                EventKind::Granted(g) if g.request_digest == digest => {
                    Some(format!("You granted this request on {}.", format_utc(e.event.time)))
                }
                EventKind::Denied { request_digest, .. } if *request_digest == digest => {
                    Some(format!("You denied this request on {}.", format_utc(e.event.time)))
                }
                _ => None,
            }
        })
    });
    view! {
        <div id="request-view" class="request-view">
            <p id="request-verdict" class="verified" role="status" tabindex="-1" node_ref=verdict_ref>
                <strong>"Verified: "</strong>"signed by " {d.provider_name().to_owned()}
                ", whose card is on the node, and unaltered since."
            </p>
            {answered.map(|text| view! { <p class="hint" id="request-answered">{text} " Answering again adds a second answer."</p> })}
            <dl class="facts request-facts">
                <dt>"Who"</dt>
                <dd id="request-provider">{d.provider_name().to_owned()} " — " {d.provider_url().to_owned()}
                    " (contact: " {d.provider_contact().to_owned()} ")"</dd>
                <dt>"Why"</dt>
                <dd id="request-purpose">{d.purpose().to_owned()} " (" {d.category()} ")"</dd>
                <dt>"Which data"</dt>
                <dd id="request-data">{d.data().join(", ")}</dd>
                <dt>"Resolution"</dt>
                <dd id="request-resolution">"at most " {d.resolution()}</dd>
                <dt>"Period"</dt>
                <dd id="request-period">{d.period()}</dd>
                <dt>"Delete by"</dt>
                <dd id="request-delete-by">{d.delete_by()}</dd>
            </dl>
            <Show when=move || { devices().len() > 1 }>
                <div class="field">
                    <label for="request-device">"Which device"</label>
                    <select id="request-device" on:change=move |ev| chosen_device.set(Some(event_target_value(&ev)))>
                        {devices().into_iter().map(|id| view! { <option value=id.clone()>"Meter reader " {short_id(&id)}</option> }).collect_view()}
                    </select>
                </div>
            </Show>
            <div class="field">
                <label for="request-tier">"Resolution to grant"</label>
                <select id="request-tier" on:change=move |ev| {
                    if let Ok(code) = event_target_value(&ev).parse::<u8>() { chosen_tier.set(code) }
                }>
                    {tiers.iter().map(|t| view! { <option value=t.code().to_string()>{tier_label(*t)}</option> }).collect_view()}
                </select>
            </div>
            <Show when=move || devices().is_empty()>
                <p class="hint">"Pair a device first: a grant is written to a device's consent log."</p>
            </Show>
            <div class="row answer">
                <button type="button" id="grant" class="answer" disabled=move || ui.answering.get() || devices().is_empty()
                    on:click=move |_| answer(true)>"Grant"</button>
                <button type="button" id="deny" class="answer" disabled=move || ui.answering.get() || devices().is_empty()
                    on:click=move |_| answer(false)>"Deny"</button>
            </div>
        </div>
    }
    .into_any()
}

/// Access now: every grant with its state; revoke.
#[component]
fn Access(session: StoredValue<SharedSession, LocalStorage>, ui: Ui) -> impl IntoView {
    let nodes = expect_context::<Nodes>();
    let revoke = move |grant_id: String| {
        let session = session.get_value();
        let found = session.borrow().devices.iter().enumerate().find_map(|(index, device)| {
            device.entries.iter().find_map(|e| match &e.event.kind {
                EventKind::Granted(g) if hex::encode(g.id.0) == grant_id => Some((index, g.id)),
                _ => None,
            })
        });
        let Some((index, grant)) = found else { return };
        ui.revoking.update(|r| r.push(grant_id.clone()));
        spawn_local(async move {
            let kind = EventKind::Revoked { grant, reason: String::new() };
            let outcome = write_entry(&nodes, &session, index, kind).await;
            ui.revoking.update(|r| r.retain(|id| *id != grant_id));
            match outcome {
                Ok(()) => refresh(&session, ui),
                Err(error) => ui.error.set(Some(error.to_string())),
            }
        });
    };
    let rows = move || {
        let revoking = ui.revoking.get();
        let mut rows = ui.pending.get();
        rows.extend(ui.overview.get().grants.into_iter().map(|mut row| {
            if revoking.contains(&row.id) {
                row.state = GrantState::Revoking;
            }
            row
        }));
        rows
    };
    view! {
        <section class="card wallet-access" aria-labelledby="access-heading">
            <h2 id="access-heading">"Access now"</h2>
            <ul id="access" class="wallet-list">
                {move || rows().into_iter().map(|row| {
                    let id = row.id.clone();
                    let being_written = ui.pending.with_untracked(|p| p.iter().any(|g| g.id == row.id));
                    let can_revoke = matches!(row.state, GrantState::Active | GrantState::Pending) && !being_written;
                    view! {
                        <li class="grant" data-grant-id=row.id.clone() data-state=row.state.name()
                            data-rotation=row.rotation_confirmed.then_some("confirmed")>
                            <p><strong>{row.provider.clone()}</strong> " — " <span class="grant-state">{state_words(&row)}</span></p>
                            <p>{row.purpose.clone()}</p>
                            <dl class="facts inline">
                                <dt>"What"</dt><dd>{row.what.clone()}</dd>
                                <dt>"Until"</dt><dd class="grant-end">{format_utc(row.end)}</dd>
                                <dt>"Delete by"</dt><dd>{format_utc(row.delete_by)}</dd>
                                <dt>"Device"</dt><dd class="mono">{short_id(&row.device)}</dd>
                            </dl>
                            <Show when=move || can_revoke>
                                <div class="row">
                                    <button type="button" class="danger revoke" on:click={
                                        let id = id.clone();
                                        move |_| revoke(id.clone())
                                    }>"Revoke"</button>
                                </div>
                            </Show>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <Show when=move || !ui.loading.get() && rows().is_empty()>
                <p class="hint" id="access-empty">"No provider has access. Open a provider's request link to grant some."</p>
            </Show>
        </section>
    }
}

fn state_words(row: &GrantRow) -> String {
    match row.state {
        GrantState::Pending => format!("starts {}", format_utc(row.start)),
        GrantState::Active => format!("active until {}", format_utc(row.end)),
        GrantState::Revoking => "revoking…".to_owned(),
        GrantState::Revoked if row.rotation_confirmed => {
            "revoked; the device confirmed it rotated the keys".to_owned()
        }
        GrantState::Revoked => {
            "revoked; waiting for the device to confirm the key rotation".to_owned()
        }
        GrantState::Expired if row.rotation_confirmed => {
            "expired; the device confirmed it rotated the keys".to_owned()
        }
        GrantState::Expired => "expired".to_owned(),
    }
}

/// History: the timeline, and the export of the consent records.
#[component]
fn History(session: StoredValue<SharedSession, LocalStorage>, ui: Ui) -> impl IntoView {
    let chosen = RwSignal::new(None::<String>);
    let export_status = RwSignal::new(None::<(String, &'static str)>);
    let device_ids =
        move || ui.overview.with(|o| o.devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>());
    let export = move |_| {
        let session = session.get_value();
        let session = session.borrow();
        let wanted = chosen.get_untracked();
        let device =
            session.devices.iter().find(|d| wanted.as_ref().is_none_or(|w| *w == d.id_hex()));
        let Some(device) = device else {
            export_status.set(Some((
                "No device is paired: there is nothing to export.".to_owned(),
                "status-error",
            )));
            return;
        };
        let outcome = device.export(unix_now()).map_err(|e| e.to_string()).and_then(|json| {
            let name = format!("meterkast-consent-{}.json", &device.id_hex()[..8]);
            download(&name, &json).map(|()| name)
        });
        match outcome {
            Ok(name) => export_status.set(Some((
                format!(
                    "Saved {name}: {} log entries with their signatures, verifiable offline.",
                    group_thousands(device.entries.len() as u64)
                ),
                "status-ok",
            ))),
            Err(error) => export_status.set(Some((error, "status-error"))),
        }
    };
    view! {
        <section class="card wallet-history" aria-labelledby="history-heading">
            <h2 id="history-heading">"History"</h2>
            <Show when=move || { device_ids().len() > 1 }>
                <div class="field">
                    <label for="history-device">"Device"</label>
                    <select id="history-device" on:change=move |ev| chosen.set(Some(event_target_value(&ev)))>
                        {move || device_ids().into_iter().map(|id| view! { <option value=id.clone()>"Meter reader " {short_id(&id)}</option> }).collect_view()}
                    </select>
                </div>
            </Show>
            <ol id="history" class="wallet-list">
                {move || {
                    let wanted = chosen.get();
                    ui.overview.get().history.into_iter()
                        .filter(|row| wanted.as_ref().is_none_or(|w| *w == row.device))
                        .map(|row| view! {
                            <li class="event" data-kind=row.kind>
                                <time>{format_utc(row.time)}</time> " " {row.text}
                            </li>
                        }).collect_view()
                }}
            </ol>
            <div class="row">
                <button type="button" id="export-consent" on:click=export>"Export consent records (JSON)"</button>
            </div>
            <p id="export-status" role="status" class=move || export_status.get().map_or("", |s| s.1)>
                {move || export_status.get().map(|s| s.0)}
            </p>
        </section>
    }
}

/// Offers `text` as a file download (a Blob URL clicked through a temporary link).
fn download(name: &str, text: &str) -> Result<(), String> {
    let fail = |what: &str| format!("the browser refused the download ({what})");
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| fail("blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("url"))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or_else(|| fail("document"))?;
    let anchor: web_sys::HtmlAnchorElement =
        wasm_bindgen::JsCast::dyn_into(document.create_element("a").map_err(|_| fail("link"))?)
            .map_err(|_| fail("link"))?;
    anchor.set_href(&url);
    anchor.set_download(name);
    anchor.click();
    // The download reads the URL after this returns; release it a while later.
    spawn_local(async move {
        TimeoutFuture::new(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}
