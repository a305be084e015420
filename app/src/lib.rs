//! The Meterkast web app (Leptos, client-side rendering).
//!
//! ```text
//!   pages/meter ──► reader (P1 decoding, link detection) ──► serial (Web Serial, the only one)
//!   pages/home, pages/provider ──► vault (Argon2id + XChaCha20-Poly1305) ──► storage
//!   pages/nodes, NodeStatus ──► settings (node list) ──► api (the only network access)
//! ```
//!
//! Network access lives only in [`api`], Web Serial only in [`serial`], browser storage only in
//! [`storage`]. Secrets never leave the browser: what is stored is sealed by [`vault`], and the
//! meter's decryption key is held in memory only.

pub mod api;
pub mod chart;
pub mod dashboard;
pub mod device;
pub mod identity;
pub mod live;
pub mod pages;
pub mod qr;
pub mod reader;
pub mod serial;
pub mod settings;
pub mod storage;
pub mod vault;
pub mod wallet;

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::path;

use crate::settings::NodeUrl;

/// The configured nodes, shared by every page (edited on the Node settings page).
#[derive(Debug, Clone, Copy)]
pub struct Nodes(pub RwSignal<Vec<NodeUrl>>);

/// The application shell: header with navigation, the node status, and the routed page.
#[component]
pub fn App() -> impl IntoView {
    provide_context(Nodes(RwSignal::new(settings::nodes())));
    view! {
        <Router>
            <a class="skip" href="#content">"Skip to content"</a>
            <header class="top">
                <h1>"Meterkast"</h1>
                <p>"Your meter, your data: share readings with the providers you choose, revoke at any moment."</p>
            </header>
            <nav class="tabs" aria-label="Main">
                <A href="/">"Meter"</A>
                <A href="/home">"My Home"</A>
                <A href="/provider">"Provider"</A>
                <A href="/nodes">"Node settings"</A>
            </nav>
            <main id="content" tabindex="-1">
                <Routes fallback=|| view! { <pages::NotFound /> }>
                    <Route path=path!("/") view=pages::meter::MeterPage />
                    <Route path=path!("/home") view=pages::home::HomePage />
                    <Route path=path!("/home/request") view=pages::home::HomePage />
                    <Route path=path!("/provider") view=pages::provider::ProviderPage />
                    <Route path=path!("/nodes") view=pages::nodes::NodesPage />
                </Routes>
            </main>
            <footer class="status">
                <NodeStatus />
            </footer>
        </Router>
    }
}

/// Shows which node the app reaches (the first that answers, in the configured order).
#[component]
fn NodeStatus() -> impl IntoView {
    let Nodes(nodes) = expect_context::<Nodes>();
    let info = LocalResource::new(move || {
        let nodes = nodes.get();
        async move { api::first_answering(&nodes).await }
    });
    view! {
        <section class="node-status" aria-labelledby="node-heading" aria-live="polite">
            <h2 id="node-heading" class="visually-hidden">"Node"</h2>
            {move || match info.get() {
                None => view! { <p id="node-status">"Connecting to the node…"</p> }.into_any(),
                Some(Ok((node, info))) => view! {
                    <p id="node-status" class="status-ok">"Connected to " {info.name.clone()}</p>
                    <dl class="facts inline">
                        <dt>"Node"</dt><dd>{node.to_string()}</dd>
                        <dt>"Version"</dt><dd id="node-version">{info.version.clone()}</dd>
                        <dt>"Protocol"</dt><dd>{info.protocol_version.clone()}</dd>
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

#[cfg(all(test, target_arch = "wasm32"))]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
