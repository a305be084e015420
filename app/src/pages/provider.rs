//! The provider dashboard.

use leptos::prelude::*;

/// The provider page.
#[component]
pub fn ProviderPage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="provider-heading">
            <h2 id="provider-heading">"Provider"</h2>
            <p>"A provider identity asks households for access and reads what they grant."</p>
        </section>
    }
}
