//! The Meterkast web app (Leptos, client-side rendering).
//!
//! Network access lives only in [`api`]; browser APIs only in this crate. Keys never leave it.

pub mod api;

use leptos::prelude::*;

/// The application shell: header, and the node this app talks to.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <header class="top">
            <h1>"Meterkast"</h1>
            <p>"Your meter, your data: share readings with the providers you choose, revoke at any moment."</p>
        </header>
        <main>
            <NodeStatus />
        </main>
    }
}

/// Shows whether the app reached its node, and which node it is.
#[component]
fn NodeStatus() -> impl IntoView {
    let info = LocalResource::new(api::node_info);
    view! {
        <section class="card" aria-labelledby="node-heading">
            <h2 id="node-heading">"Node"</h2>
            {move || match info.get() {
                None => view! { <p id="node-status">"Connecting to the node…"</p> }.into_any(),
                Some(Ok(node)) => view! {
                    <p id="node-status" class="status-ok">"Connected to " {node.name.clone()}</p>
                    <dl class="facts">
                        <dt>"Version"</dt><dd id="node-version">{node.version.clone()}</dd>
                        <dt>"Build"</dt><dd>{node.build.clone()}</dd>
                        <dt>"Protocol"</dt><dd>{node.protocol_version.clone()}</dd>
                        <dt>"App protocol"</dt><dd>{protocol::VERSION}</dd>
                    </dl>
                }.into_any(),
                Some(Err(err)) => view! {
                    <p id="node-status" class="status-error" role="alert">{err.to_string()}</p>
                }.into_any(),
            }}
        </section>
    }
}
