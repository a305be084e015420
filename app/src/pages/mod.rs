//! One module per page.

pub mod home;
pub mod meter;
pub mod nodes;
pub mod provider;

use leptos::prelude::*;

/// Shown for a path no page answers.
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="nf-heading">
            <h2 id="nf-heading">"Page not found"</h2>
            <p>"There is no page at this address. Use the navigation above."</p>
        </section>
    }
}
