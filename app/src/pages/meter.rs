//! The Meter page: read a smart meter's P1 port straight from this browser over Web Serial.

use leptos::prelude::*;

use crate::serial;

/// The Meter page.
#[component]
pub fn MeterPage() -> impl IntoView {
    let support = serial::support();
    view! {
        <section class="card" aria-labelledby="meter-heading">
            <h2 id="meter-heading">"Meter"</h2>
            {match support {
                serial::Support::Available => view! {
                    <p>"Plug a P1 cable into your meter and this computer, then connect."</p>
                }.into_any(),
                missing => view! {
                    <p class="status-error" role="alert" id="serial-missing">{missing.explanation()}</p>
                }.into_any(),
            }}
        </section>
    }
}
