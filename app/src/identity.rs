//! Create, restore, lock, unlock and forget a passphrase-sealed identity (the household wallet
//! on "My Home", the provider identity on "Provider"); the same steps for every role.
//!
//! The secret exists in clear only in this tab's memory between unlock and lock; what is stored
//! is the [`SealedIdentity`]. Key derivation (Argon2id, 64 MiB) blocks the thread for a moment,
//! so the page shows a busy indicator and yields once to let it paint before deriving.

use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;
use protocol::crypto::{PartyKeys, PartySecret, Role};
use protocol::recovery::{RECOVERY_WORDS, RecoveryPhrase};
use zeroize::Zeroizing;

use crate::vault::{self, KdfParams, MIN_PASSPHRASE_CHARS, SealedIdentity};

/// Where the identity stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    Loading,
    /// Nothing stored in this browser.
    Empty,
    /// A new secret: its words are shown, then three of them asked back.
    ShowPhrase {
        words: Vec<String>,
        check: [usize; 3],
    },
    /// Typing a recovery phrase.
    Restoring,
    /// A secret is pending (new or restored); choose the passphrase that locks it.
    ChoosePassphrase,
    /// Stored and locked.
    Locked {
        party_id: String,
    },
    /// Key derivation running.
    Working(&'static str),
    /// Unlocked in this tab.
    Unlocked {
        party_id: String,
    },
}

/// An unlocked identity, for the features built on it (pairing, requests). A page creates one
/// and hands it to [`IdentityVault`] and to its own panels.
#[derive(Debug, Clone, Copy)]
pub struct Unlocked {
    /// The public id (hex) of the unlocked identity; `None` while locked.
    pub party_id: RwSignal<Option<String>>,
    /// The secret in clear: set between create/restore/unlock and lock; never stored as is.
    secret: StoredValue<Option<PartySecret>>,
}

impl Unlocked {
    /// A locked identity (nothing held yet).
    pub fn new() -> Self {
        Self { party_id: RwSignal::new(None), secret: StoredValue::new(None) }
    }

    /// The unlocked identity's keys as `role`; `None` while locked. Derivation costs a few
    /// milliseconds (ML-DSA key generation), so callers keep the result while they need it.
    pub fn keys(&self, role: Role) -> Option<PartyKeys> {
        self.party_id.get_untracked()?;
        self.secret.with_value(|secret| secret.as_ref().map(|s| PartyKeys::derive(s, role)))
    }
}

impl Default for Unlocked {
    fn default() -> Self {
        Self::new()
    }
}

/// The first 16 hex digits of an id, in groups of 4: enough for a person to tell ids apart.
pub(crate) fn short_id(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .take(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn random_positions() -> [usize; 3] {
    let mut picked = [0usize; 3];
    let mut count = 0;
    while count < 3 {
        let mut byte = [0u8; 1];
        // Without randomness the first three words are asked: still a check, just predictable.
        let position = if getrandom::fill(&mut byte).is_ok() {
            usize::from(byte[0]) % RECOVERY_WORDS
        } else {
            count
        };
        if !picked[..count].contains(&position) {
            picked[count] = position;
            count += 1;
        }
    }
    picked.sort_unstable();
    picked
}

/// The identity panel for `role`. `noun` names it on screen ("wallet", "provider identity").
/// `unlocked` is the page's handle on the identity (a fresh one if none is given).
#[component]
pub fn IdentityVault(
    role: Role,
    noun: &'static str,
    #[prop(optional)] unlocked: Option<Unlocked>,
    /// Hears the public id (hex) of an identity just forgotten, so the page can remove what
    /// it stored for it.
    #[prop(optional)]
    on_forget: Option<Callback<String>>,
) -> impl IntoView {
    let stage = RwSignal::new(Stage::Loading);
    let error = RwSignal::new(None::<String>);
    let unlocked = unlocked.unwrap_or_default();
    let pending = unlocked.secret;
    provide_context(unlocked);

    let refresh = move || match vault::load(role) {
        Ok(Some(sealed)) => stage.set(Stage::Locked { party_id: sealed.party_id().to_owned() }),
        Ok(None) => stage.set(Stage::Empty),
        Err(e) => {
            error.set(Some(e.to_string()));
            stage.set(Stage::Empty);
        }
    };
    refresh();

    let create = move |_| match vault::generate_secret() {
        Ok(secret) => {
            let words = RecoveryPhrase::from_secret(&secret)
                .expose_words()
                .split(' ')
                .map(str::to_owned)
                .collect();
            pending.set_value(Some(secret));
            error.set(None);
            stage.set(Stage::ShowPhrase { words, check: random_positions() });
        }
        Err(e) => error.set(Some(e.to_string())),
    };

    let lock_with = move |passphrase: Zeroizing<String>| {
        stage.set(Stage::Working(
            "Locking: deriving the key from your passphrase (Argon2id, 64 MiB)…",
        ));
        spawn_local(async move {
            TimeoutFuture::new(50).await; // let the busy indicator paint before the derivation
            let result = pending.with_value(|secret| {
                let secret = secret.as_ref().ok_or(vault::VaultError::WrongPassphrase)?;
                let id = PartyKeys::derive(secret, role).id();
                let sealed =
                    SealedIdentity::seal(secret, role, &id, &passphrase, KdfParams::POLICY)?;
                vault::store(role, &sealed)?;
                Ok::<_, vault::VaultError>(sealed.party_id().to_owned())
            });
            match result {
                Ok(party_id) => {
                    unlocked.party_id.set(Some(party_id.clone()));
                    stage.set(Stage::Unlocked { party_id });
                    error.set(None);
                }
                Err(e) => {
                    error.set(Some(e.to_string()));
                    stage.set(Stage::ChoosePassphrase);
                }
            }
        });
    };

    let unlock_with = move |passphrase: Zeroizing<String>| {
        let Ok(Some(sealed)) = vault::load(role) else {
            refresh();
            return;
        };
        let party_id = sealed.party_id().to_owned();
        stage.set(Stage::Working(
            "Unlocking: deriving the key from your passphrase (Argon2id, 64 MiB)…",
        ));
        spawn_local(async move {
            TimeoutFuture::new(50).await;
            match sealed.open(&passphrase) {
                Ok(secret) => {
                    pending.set_value(Some(secret));
                    unlocked.party_id.set(Some(party_id.clone()));
                    error.set(None);
                    stage.set(Stage::Unlocked { party_id });
                }
                Err(e) => {
                    error.set(Some(e.to_string()));
                    stage.set(Stage::Locked { party_id });
                }
            }
        });
    };

    let lock = move |_| {
        pending.set_value(None);
        unlocked.party_id.set(None);
        refresh();
    };
    let forget = move || {
        let forgotten = vault::load(role).ok().flatten().map(|s| s.party_id().to_owned());
        pending.set_value(None);
        unlocked.party_id.set(None);
        match vault::forget(role) {
            Ok(()) => {
                if let (Some(callback), Some(id)) = (on_forget, forgotten) {
                    callback.run(id);
                }
            }
            Err(e) => error.set(Some(e.to_string())),
        }
        refresh();
    };

    view! {
        <div class="identity" aria-live="polite">
            {move || match stage.get() {
                Stage::Loading => view! { <p>"Looking for a stored " {noun} "…"</p> }.into_any(),
                Stage::Empty => view! {
                    <p>"No " {noun} " is stored in this browser."</p>
                    <div class="row">
                        <button type="button" id="identity-create" on:click=create>"Create a new " {noun}</button>
                        <button type="button" class="secondary" id="identity-restore"
                            on:click=move |_| { error.set(None); stage.set(Stage::Restoring) }>
                            "Restore from a recovery phrase"
                        </button>
                    </div>
                }.into_any(),
                Stage::ShowPhrase { words, check } => view! {
                    <PhraseCheck words=words check=check
                        on_confirmed=move || stage.set(Stage::ChoosePassphrase)
                        on_cancel=move || { pending.set_value(None); refresh() } />
                }.into_any(),
                Stage::Restoring => view! {
                    <RestoreForm
                        on_secret=move |secret| { pending.set_value(Some(secret)); error.set(None); stage.set(Stage::ChoosePassphrase) }
                        on_error=move |e| error.set(Some(e))
                        on_cancel=move || refresh() />
                }.into_any(),
                Stage::ChoosePassphrase => view! {
                    <PassphraseForm confirm=true submit_label="Lock and store" on_submit=lock_with
                        on_error=move |e| error.set(Some(e)) />
                }.into_any(),
                Stage::Locked { party_id } => view! {
                    <p>"A " {noun} " is stored here, locked. Id: " <span class="mono" id="identity-id">{short_id(&party_id)}</span></p>
                    <PassphraseForm confirm=false submit_label="Unlock" on_submit=unlock_with
                        on_error=move |e| error.set(Some(e)) />
                    <ForgetButton noun=noun on_forget=forget />
                }.into_any(),
                Stage::Working(what) => view! {
                    <p role="status">{what}</p>
                    <progress id="identity-progress" aria-label=what></progress>
                }.into_any(),
                Stage::Unlocked { party_id } => view! {
                    <p class="status-ok" id="identity-unlocked">"Unlocked. Id: "
                        <span class="mono" id="identity-id">{short_id(&party_id)}</span></p>
                    <p class="hint">"The secret stays in this tab's memory until you lock or close it."</p>
                    <div class="row">
                        <button type="button" id="identity-lock" on:click=lock>"Lock"</button>
                    </div>
                    <ForgetButton noun=noun on_forget=forget />
                }.into_any(),
            }}
            <p class="status-error" role="alert" id="identity-error">{move || error.get()}</p>
        </div>
    }
}

/// Shows the recovery words, then asks three of them back before going on.
#[component]
fn PhraseCheck(
    words: Vec<String>,
    check: [usize; 3],
    on_confirmed: impl Fn() + Copy + Send + Sync + 'static,
    on_cancel: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let answers = RwSignal::new([String::new(), String::new(), String::new()]);
    let shown = RwSignal::new(true);
    let expected: Vec<String> = check.iter().map(|&i| words[i].clone()).collect();
    let mismatch = RwSignal::new(false);
    let confirm = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ok = answers.with(|a| {
            a.iter().zip(&expected).all(|(given, want)| given.trim().eq_ignore_ascii_case(want))
        });
        mismatch.set(!ok);
        if ok {
            on_confirmed();
        }
    };
    view! {
        <Show when=move || shown.get() fallback=move || view! {
            <form on:submit=confirm.clone()>
                <p>"To check you have them, type these words of your recovery phrase:"</p>
                {check.iter().enumerate().map(|(slot, &position)| view! {
                    <div class="field">
                        <label for=format!("check-{slot}")>{format!("Word {}", position + 1)}</label>
                        <input id=format!("check-{slot}") autocomplete="off" spellcheck="false" autocapitalize="none"
                            on:input=move |ev| answers.update(|a| a[slot] = event_target_value(&ev)) />
                    </div>
                }).collect_view()}
                <p class="status-error" role="alert">{move || mismatch.get().then_some("One of the words does not match. Look at your written copy again.")}</p>
                <div class="row">
                    <button type="submit" id="phrase-confirm">"Confirm"</button>
                    <button type="button" class="secondary" on:click=move |_| shown.set(true)>"Show the words again"</button>
                </div>
            </form>
        }>
            <p>"Your recovery phrase. Write these " {RECOVERY_WORDS} " words down, in order, and keep them offline: "
               "they restore everything if this browser loses its data. Nobody, including Meterkast, can recover them for you."</p>
            <ol class="phrase" id="recovery-phrase">
                {words.iter().map(|w| view! { <li>{w.clone()}</li> }).collect_view()}
            </ol>
            <div class="row">
                <button type="button" id="phrase-written" on:click=move |_| shown.set(false)>"I have written them down"</button>
                <button type="button" class="secondary" on:click=move |_| on_cancel()>"Cancel"</button>
            </div>
        </Show>
    }
}

/// A recovery phrase typed in; checked by `protocol::recovery` before anything is stored.
#[component]
fn RestoreForm(
    on_secret: impl Fn(PartySecret) + Copy + Send + Sync + 'static,
    on_error: impl Fn(String) + Copy + Send + Sync + 'static,
    on_cancel: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let typed = Zeroizing::new(text.get_untracked());
        match RecoveryPhrase::parse_secret(&typed) {
            Ok(secret) => {
                text.set(String::new());
                on_secret(secret);
            }
            Err(e) => on_error(e.to_string()),
        }
    };
    view! {
        <form on:submit=submit>
            <div class="field">
                <label for="restore-phrase">"Recovery phrase (" {RECOVERY_WORDS} " words)"</label>
                <textarea id="restore-phrase" rows="4" autocomplete="off" spellcheck="false" autocapitalize="none"
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev))></textarea>
            </div>
            <div class="row">
                <button type="submit" id="restore-submit">"Restore"</button>
                <button type="button" class="secondary" on:click=move |_| on_cancel()>"Cancel"</button>
            </div>
        </form>
    }
}

/// A passphrase field (twice when choosing one).
#[component]
fn PassphraseForm(
    confirm: bool,
    submit_label: &'static str,
    on_submit: impl Fn(Zeroizing<String>) + Copy + Send + Sync + 'static,
    on_error: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let first = RwSignal::new(String::new());
    let second = RwSignal::new(String::new());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let passphrase = Zeroizing::new(first.get_untracked());
        if confirm && passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            on_error(vault::VaultError::PassphraseTooShort.to_string());
        } else if confirm && *passphrase != second.get_untracked() {
            on_error("the two passphrases differ".to_owned());
        } else {
            first.set(String::new());
            second.set(String::new());
            on_submit(passphrase);
        }
    };
    view! {
        <form on:submit=submit>
            <div class="field">
                <label for="passphrase">"Passphrase"</label>
                <input id="passphrase" type="password"
                    autocomplete=if confirm { "new-password" } else { "current-password" }
                    aria-describedby="passphrase-hint"
                    prop:value=move || first.get() on:input=move |ev| first.set(event_target_value(&ev)) />
                <p id="passphrase-hint" class="hint">
                    {if confirm {
                        format!("At least {MIN_PASSPHRASE_CHARS} characters. It locks the secret in this browser; it is never sent anywhere.")
                    } else {
                        "The passphrase you chose when you stored it here.".to_owned()
                    }}
                </p>
            </div>
            <Show when=move || confirm>
                <div class="field">
                    <label for="passphrase-again">"Passphrase again"</label>
                    <input id="passphrase-again" type="password" autocomplete="new-password"
                        prop:value=move || second.get() on:input=move |ev| second.set(event_target_value(&ev)) />
                </div>
            </Show>
            <div class="row"><button type="submit" id="passphrase-submit">{submit_label}</button></div>
        </form>
    }
}

/// "Forget" with a second step, the two choices of equal weight.
#[component]
fn ForgetButton(
    noun: &'static str,
    on_forget: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let asking = RwSignal::new(false);
    view! {
        <Show when=move || asking.get() fallback=move || view! {
            <div class="row"><button type="button" class="danger" id="identity-forget"
                on:click=move |_| asking.set(true)>"Forget this " {noun} "…"</button></div>
        }>
            <div class="confirm" role="group" aria-labelledby="forget-question">
                <p id="forget-question">"Remove the " {noun} " from this browser? Without its recovery phrase it cannot be brought back."</p>
                <div class="row">
                    <button type="button" class="danger" id="identity-forget-yes" on:click=move |_| { asking.set(false); on_forget() }>"Forget it"</button>
                    <button type="button" class="secondary" on:click=move |_| asking.set(false)>"Keep it"</button>
                </div>
            </div>
        </Show>
    }
}
