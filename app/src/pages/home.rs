//! "My Home": the household wallet.
//!
//! Pairing devices, answering requests and the consent history build on the unlocked wallet
//! ([`crate::identity::Unlocked`]) and on `protocol::{pairing, consent}`.

use leptos::prelude::*;
use protocol::crypto::Role;

use crate::identity::IdentityVault;

/// The household wallet page.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="home-heading">
            <h2 id="home-heading">"My Home"</h2>
            <p>"Your wallet holds the keys to your meters and the consents you gave. "
               "It is created and kept in this browser; nothing secret is ever sent to a node."</p>
            <IdentityVault role=Role::Wallet noun="wallet" />
        </section>
    }
}
