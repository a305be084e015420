//! The provider dashboard page: the provider identity (create, restore, lock, unlock), then,
//! once unlocked, the dashboard ([`crate::dashboard`]) built on its keys.

use std::sync::Arc;

use leptos::prelude::*;
use protocol::crypto::Role;

use crate::Nodes;
use crate::api;
use crate::dashboard::Dashboard;
use crate::identity::{IdentityVault, Unlocked};

/// The provider page.
#[component]
pub fn ProviderPage() -> impl IntoView {
    let unlocked = Unlocked::new();
    let Nodes(nodes) = expect_context::<Nodes>();
    view! {
        <section class="card" aria-labelledby="provider-heading">
            <h2 id="provider-heading">"Provider"</h2>
            <p>"A provider identity asks households for access and reads only what they grant. "
               "Its keys are created and kept in this browser."</p>
            <IdentityVault role=Role::Provider noun="provider identity" unlocked=unlocked />
        </section>
        {move || {
            // Re-runs on unlock and lock (the id changes); the dashboard lives while unlocked.
            unlocked.party_id.get()?;
            let keys = unlocked.keys(Role::Provider)?;
            Some(match api::tangle(&nodes.get()) {
                Ok(client) => view! { <Dashboard keys=Arc::new(keys) client=client /> }.into_any(),
                Err(error) => view! {
                    <section class="card dashboard">
                        <p class="status-error" role="alert" id="dashboard-error">{error.to_string()}</p>
                    </section>
                }.into_any(),
            })
        }}
    }
}
