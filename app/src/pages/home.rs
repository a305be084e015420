//! "My Home": the household wallet.

use leptos::prelude::*;

/// The household wallet page.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="home-heading">
            <h2 id="home-heading">"My Home"</h2>
            <p>"Your wallet holds the keys to your meters and the consents you gave. It never leaves this browser."</p>
        </section>
    }
}
