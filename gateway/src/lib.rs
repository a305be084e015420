//! The Meterkast gateway: a tangle node with an HTTP API that also serves the web app.
//!
//! ```text
//!  browser / pi-agent ──HTTP──► app() Router ──► /api/v1/…   (node API, JSON)
//!                                          └──► /…         (web app from `dist/`, index fallback)
//! ```
//!
//! [`app`] builds the whole `Router` without a socket, so tests drive it with `oneshot`;
//! [`serve`] runs it on a bound listener until the shutdown future completes.

pub mod config;
pub mod error;

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use axum::extract::OriginalUri;
use axum::routing::{any, get};
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use config::Config;
use error::ApiError;

/// Name reported by `/api/v1/info`.
pub const NAME: &str = "meterkast-gateway";
/// The git commit this binary was built from (`unknown` outside a checkout).
pub const BUILD: &str = env!("GATEWAY_BUILD");

/// Where the web app's files come from.
#[derive(Debug, Clone)]
pub enum Assets {
    /// Serve the built app from this folder, answering unknown paths with its `index.html`.
    Folder(PathBuf),
    /// Serve only the API.
    None,
}

/// Why the gateway cannot start. Each variant prints as one line a newcomer can act on.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "asset folder {0} has no index.html: build the web app first (scripts/run.sh does), \
         point --assets at it, or pass --api-only"
    )]
    MissingAssets(PathBuf),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: io::Error },
}

impl Assets {
    /// Checks that a folder really holds a built app before the gateway starts serving it.
    pub fn folder(path: &Path) -> Result<Self, StartError> {
        if path.join("index.html").is_file() {
            Ok(Self::Folder(path.to_path_buf()))
        } else {
            Err(StartError::MissingAssets(path.to_path_buf()))
        }
    }
}

/// Body of `GET /api/v1/info`.
#[derive(Debug, Serialize)]
pub struct NodeInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub build: &'static str,
    pub protocol_version: &'static str,
}

async fn info() -> Json<NodeInfo> {
    Json(NodeInfo {
        name: NAME,
        version: env!("CARGO_PKG_VERSION"),
        build: BUILD,
        protocol_version: protocol::VERSION,
    })
}

/// Unknown API paths answer a JSON 404, never the app's index page.
async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// The node API. Every other path under `/api` is a JSON 404, so a typo in a client never gets
/// the app's index page with a 200.
fn api() -> Router {
    Router::new()
        .route("/api/v1/info", get(info))
        .route("/api", any(api_not_found))
        .route("/api/", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found))
}

/// The whole HTTP surface of the gateway.
pub fn app(assets: &Assets) -> Router {
    let router = api();
    let router = match assets {
        Assets::Folder(dir) => {
            // `fallback` (not `not_found_service`) so client-side routes answer 200 with index.html.
            let index = ServeFile::new(dir.join("index.html"));
            router.fallback_service(ServeDir::new(dir).fallback(index))
        }
        Assets::None => router.fallback(api_not_found),
    };
    router.layer(TraceLayer::new_for_http())
}

/// Binds `addr`, turning "address in use" and friends into a [`StartError`].
pub async fn bind(addr: std::net::SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}
