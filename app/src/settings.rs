//! User settings kept in the browser: the tangle nodes the app talks to.
//!
//! Meterkast nodes are untrusted relays, so a household may list several; [`crate::api`] asks
//! them in the order given. With nothing configured the app uses the node that served it.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::storage::{self, StorageError};

/// `localStorage` key of the node list (JSON array of base URLs).
const NODES_KEY: &str = "meterkast.nodes";

/// The base URL of a node, normalised to `scheme://host[:port]/path/` (always a trailing `/`),
/// so API paths can be appended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeUrl(String);

/// Why a typed node address was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NodeUrlError {
    /// Empty input.
    #[error("enter a node address, e.g. https://node.example.org/")]
    Empty,
    /// Not `http://` or `https://`.
    #[error("a node address starts with https:// (or http:// for a node on this computer)")]
    Scheme,
    /// Nothing after the scheme, or characters a URL cannot hold.
    #[error("that is not a web address")]
    Malformed,
}

impl NodeUrl {
    /// Parses and normalises a typed address.
    pub fn parse(text: &str) -> Result<Self, NodeUrlError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(NodeUrlError::Empty);
        }
        let rest = text
            .strip_prefix("https://")
            .or_else(|| text.strip_prefix("http://"))
            .ok_or(NodeUrlError::Scheme)?;
        let host = rest.split('/').next().unwrap_or_default();
        let acceptable = |c: char| c.is_ascii_alphanumeric() || "-._~:/[]%".contains(c);
        if host.is_empty() || !rest.chars().all(acceptable) || rest.contains("//") {
            return Err(NodeUrlError::Malformed);
        }
        let mut url = text.to_owned();
        if !url.ends_with('/') {
            url.push('/');
        }
        Ok(NodeUrl(url))
    }

    /// The node that served this page (its origin).
    pub fn same_origin() -> Option<Self> {
        let origin = web_sys::window()?.location().origin().ok()?;
        NodeUrl::parse(&origin).ok()
    }

    /// The URL of an API path below this node, e.g. `api/v1/info`.
    pub fn join(&self, path: &str) -> String {
        format!("{}{}", self.0, path.trim_start_matches('/'))
    }

    /// The base URL as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NodeUrl {
    type Error = NodeUrlError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        NodeUrl::parse(&text)
    }
}

impl From<NodeUrl> for String {
    fn from(url: NodeUrl) -> Self {
        url.0
    }
}

impl std::fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The configured nodes; the serving node when none are stored (or the stored list is
/// unreadable, which is then not fatal: the user can save a new one).
pub fn nodes() -> Vec<NodeUrl> {
    let stored = storage::load(NODES_KEY)
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str::<Vec<NodeUrl>>(&json).ok())
        .filter(|list| !list.is_empty());
    stored.unwrap_or_else(|| NodeUrl::same_origin().into_iter().collect())
}

/// Stores the node list; an empty list means "the serving node".
pub fn save_nodes(nodes: &[NodeUrl]) -> Result<(), StorageError> {
    if nodes.is_empty() {
        return storage::remove(NODES_KEY);
    }
    let json = serde_json::to_string(nodes).map_err(|_| StorageError::WriteRefused)?;
    storage::save(NODES_KEY, &json)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{NodeUrl, NodeUrlError};

    #[test]
    fn node_urls_are_normalised_with_a_trailing_slash() {
        let url = NodeUrl::parse(" https://node.example.org ").unwrap();
        assert_eq!(url.as_str(), "https://node.example.org/");
        assert_eq!(url.join("/api/v1/info"), "https://node.example.org/api/v1/info");
        let local = NodeUrl::parse("http://127.0.0.1:8080/tangle").unwrap();
        assert_eq!(local.join("api/v1/info"), "http://127.0.0.1:8080/tangle/api/v1/info");
    }

    #[test]
    fn bad_node_urls_say_why() {
        assert_eq!(NodeUrl::parse("  "), Err(NodeUrlError::Empty));
        assert_eq!(NodeUrl::parse("ftp://x"), Err(NodeUrlError::Scheme));
        assert_eq!(NodeUrl::parse("node.example.org"), Err(NodeUrlError::Scheme));
        assert_eq!(NodeUrl::parse("https://"), Err(NodeUrlError::Malformed));
        assert_eq!(NodeUrl::parse("https://a b"), Err(NodeUrlError::Malformed));
        assert_eq!(NodeUrl::parse("https://x/<script>"), Err(NodeUrlError::Malformed));
    }
}
