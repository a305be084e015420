//! All network access of the app. Pages call these functions; nothing else fetches.
//!
//! Every call names the node it talks to ([`NodeUrl`], configured in [`crate::settings`]);
//! nodes other than the serving one are reached cross-origin (the gateway answers CORS).

use gloo_net::http::Request;
use serde::Deserialize;

use crate::settings::NodeUrl;

/// What a node says about itself at `GET /api/v1/info`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeInfo {
    pub name: String,
    pub version: String,
    pub build: String,
    pub protocol_version: String,
}

/// Why talking to a node failed, in words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the node could not be reached: {0}")]
    Unreachable(String),
    #[error("the node answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the node's answer was not understood: {0}")]
    Malformed(String),
    #[error("no node is configured (add one under Node settings)")]
    NoNode,
}

/// A tangle client for the configured nodes (publishes to all, reads from the first that
/// answers), for everything beyond `info`: publishing with proof of work, fetching, listing an
/// address and following addresses live over the node's server-sent events. It is the same
/// `tangle-client` the Pi agent and the provider tool use, compiled to wasm (requests go through
/// the browser's `fetch`).
pub fn tangle(nodes: &[NodeUrl]) -> Result<tangle_client::Client, ApiError> {
    if nodes.is_empty() {
        return Err(ApiError::NoNode);
    }
    tangle_client::Client::new(nodes.iter().map(|node| node.as_str().to_owned()))
        .map_err(|error| ApiError::Malformed(error.to_string()))
}

/// Asks a node who it is.
pub async fn node_info(node: &NodeUrl) -> Result<NodeInfo, ApiError> {
    let response = Request::get(&node.join("api/v1/info"))
        .send()
        .await
        .map_err(|e| ApiError::Unreachable(e.to_string()))?;
    if !response.ok() {
        let body = response.text().await.unwrap_or_default();
        return Err(ApiError::Status { status: response.status(), body });
    }
    response.json::<NodeInfo>().await.map_err(|e| ApiError::Malformed(e.to_string()))
}

/// The first node, in the configured order, that answers `GET /api/v1/info`; with none
/// answering, the last node's error (every node was tried).
pub async fn first_answering(nodes: &[NodeUrl]) -> Result<(NodeUrl, NodeInfo), ApiError> {
    let mut last_error = ApiError::NoNode;
    for node in nodes {
        match node_info(node).await {
            Ok(info) => return Ok((node.clone(), info)),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}
