//! The provider dashboard.
//!
//! Publishing the provider card, building access requests and the live dashboard build on the
//! unlocked provider identity ([`crate::identity::Unlocked`]) and on `protocol::provider`.

use leptos::prelude::*;
use protocol::crypto::Role;

use crate::identity::IdentityVault;

/// The provider page.
#[component]
pub fn ProviderPage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="provider-heading">
            <h2 id="provider-heading">"Provider"</h2>
            <p>"A provider identity asks households for access and reads only what they grant. "
               "Its keys are created and kept in this browser."</p>
            <IdentityVault role=Role::Provider noun="provider identity" />
        </section>
    }
}
