//! Node settings: which tangle nodes the app talks to, and whether each answers.

use leptos::prelude::*;

use crate::Nodes;
use crate::api;
use crate::settings::{self, NodeUrl};

/// Lists the configured nodes with their status; add, remove and reorder them.
#[component]
pub fn NodesPage() -> impl IntoView {
    let Nodes(nodes) = expect_context::<Nodes>();
    let (draft, set_draft) = signal(String::new());
    let (error, set_error) = signal(None::<String>);

    let store = move |list: Vec<NodeUrl>| match settings::save_nodes(&list) {
        Ok(()) => {
            // An empty list falls back to the serving node, as on the next start.
            nodes.set(if list.is_empty() { settings::nodes() } else { list });
            set_error.set(None);
        }
        Err(err) => set_error.set(Some(err.to_string())),
    };
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match NodeUrl::parse(&draft.get_untracked()) {
            Ok(url) if nodes.get_untracked().contains(&url) => {
                set_error.set(Some(format!("{url} is already in the list")));
            }
            Ok(url) => {
                let mut list = nodes.get_untracked();
                list.push(url);
                store(list);
                set_draft.set(String::new());
            }
            Err(err) => set_error.set(Some(err.to_string())),
        }
    };

    view! {
        <section class="card" aria-labelledby="nodes-heading">
            <h2 id="nodes-heading">"Node settings"</h2>
            <p>
                "Nodes relay encrypted messages; none of them can read your data. "
                "The app uses them in this order and falls back to the next when one fails."
            </p>
            <ol class="node-list">
                <For each=move || nodes.get().into_iter().enumerate() key=|(i, url)| (*i, url.clone()) let:entry>
                    <NodeRow index=entry.0 url=entry.1 store=store />
                </For>
            </ol>
            <form class="row" novalidate on:submit=add>
                <label for="node-url">"Add a node"</label>
                <input id="node-url" type="url" inputmode="url" placeholder="https://node.example.org/"
                    aria-describedby="node-url-error"
                    prop:value=move || draft.get()
                    on:input=move |ev| set_draft.set(event_target_value(&ev)) />
                <button type="submit">"Add"</button>
            </form>
            <p id="node-url-error" class="status-error" role="alert">{move || error.get()}</p>
        </section>
    }
}

/// One node: its address, whether it answers, and buttons to move or remove it.
#[component]
fn NodeRow(
    index: usize,
    url: NodeUrl,
    store: impl Fn(Vec<NodeUrl>) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let Nodes(nodes) = expect_context::<Nodes>();
    let probe = url.clone();
    let info = LocalResource::new(move || {
        let node = probe.clone();
        async move { api::node_info(&node).await }
    });
    let label = url.to_string();
    let remove = move |_| {
        let mut list = nodes.get_untracked();
        if index < list.len() {
            list.remove(index);
            store(list);
        }
    };
    let move_up = move |_| {
        let mut list = nodes.get_untracked();
        if index > 0 && index < list.len() {
            list.swap(index - 1, index);
            store(list);
        }
    };
    view! {
        <li>
            <span class="mono">{label.clone()}</span>
            {move || match info.get() {
                None => view! { <span class="muted">" checking…"</span> }.into_any(),
                Some(Ok(node)) => view! {
                    <span class="status-ok">{format!(" answers: {} {}", node.name, node.version)}</span>
                }.into_any(),
                Some(Err(err)) => view! { <span class="status-error">{format!(" {err}")}</span> }.into_any(),
            }}
            <span class="buttons">
                <button type="button" disabled=index == 0 on:click=move_up
                    aria-label=format!("Move {label} up")>"Up"</button>
                <button type="button" on:click=remove aria-label=format!("Remove {}", url)>"Remove"</button>
            </span>
        </li>
    }
}
