//! The Meterkast gateway: a tangle node with an HTTP API that also serves the web app.
//!
//! ```text
//!  pi-agent / browser ──HTTP──► app() Router ─┬─► /api/v1/…  api.rs ──► Store (store.rs)
//!                                             │     rate limit, CORS    one writer thread,
//!                                             │     JSON errors         group commit, SQLite WAL
//!                                             │                            │ after commit
//!                                             │   /api/v1/subscribe ◄──────┘ broadcast (subscribe.rs)
//!                                             ├─► /metrics              (metrics.rs, Prometheus text)
//!                                             └─► /…                    (web app from `dist/`)
//! ```
//!
//! [`Node`] owns the store and the node-wide settings; [`app`] builds the whole `Router` from it
//! without a socket, so tests drive it with `oneshot`; [`serve`] runs it on a bound listener
//! until the shutdown future completes, and [`Node::close`] then drains the writer.

pub mod api;
mod background;
pub mod config;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod store;
pub mod subscribe;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::OriginalUri;
use axum::routing::any;
use protocol::tangle::Difficulty;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

pub use background::{BackgroundNode, StopError};
pub use config::Config;
use error::ApiError;
use limits::RateLimit;
use metrics::Metrics;
use store::{Durability, Store, StoreError, StoreOptions};

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
    #[error("{0} (point --store at a writable file)")]
    Store(StoreError),
    #[error("invalid option: {0}")]
    InvalidOption(String),
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

/// Everything a node needs to open, independent of how it was configured.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub store: StoreOptions,
    pub difficulty: Difficulty,
    /// `None` disables the per-client rate limit.
    pub rate_limit: Option<RateLimit>,
}

impl NodeOptions {
    /// Defaults for a store at `path`: full durability, the default difficulty, the default
    /// rate limit. Tests and tools adjust fields from here.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            store: StoreOptions {
                path: path.into(),
                durability: Durability::Full,
                max_bytes: None,
                subscriber_buffer: 4096,
            },
            difficulty: Difficulty::DEFAULT,
            rate_limit: Some(RateLimit { per_second: 50, burst: 100 }),
        }
    }

    /// The options the command line asked for.
    pub fn from_config(config: &Config) -> Result<Self, StartError> {
        let difficulty = Difficulty::new(config.difficulty)
            .map_err(|e| StartError::InvalidOption(e.to_string()))?;
        Ok(Self {
            store: StoreOptions {
                path: config.store.clone(),
                durability: config.durability,
                max_bytes: config.store_max_mib.map(|mib| mib.saturating_mul(1024 * 1024)),
                subscriber_buffer: config.subscriber_buffer as usize,
            },
            difficulty,
            rate_limit: RateLimit::new(config.rate_limit, config.rate_burst),
        })
    }
}

/// A running node: its store, settings and metrics. Cheap to clone (shared inside).
#[derive(Debug, Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

#[derive(Debug)]
pub(crate) struct NodeInner {
    pub(crate) store: Store,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) options: NodeOptions,
    pub(crate) limiter: Option<limits::Limiter>,
    /// Cancelled when the node begins to shut down: live subscriptions end with a reason.
    pub(crate) shutdown: CancellationToken,
}

impl Node {
    /// Opens the store (recovering everything committed before) and prepares the node.
    pub fn open(options: NodeOptions) -> Result<Self, StartError> {
        let metrics = Arc::new(Metrics::new());
        let store = Store::open(&options.store, Arc::clone(&metrics)).map_err(StartError::Store)?;
        let limiter = options.rate_limit.map(limits::Limiter::new);
        Ok(Self {
            inner: Arc::new(NodeInner {
                store,
                metrics,
                options,
                limiter,
                shutdown: CancellationToken::new(),
            }),
        })
    }

    /// The store, for tools and tests that look beneath the API.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Ends live subscriptions (each gets a closing event) so a graceful shutdown can finish.
    pub fn begin_shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// Completes once [`Node::begin_shutdown`] has been called.
    pub async fn shutdown_started(&self) {
        self.inner.shutdown.cancelled().await;
    }

    /// Ends subscriptions, commits what is queued and closes the store.
    pub fn close(&self) {
        self.begin_shutdown();
        self.inner.store.close();
    }
}

/// Unknown API paths answer a JSON 404, never the app's index page.
async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// The whole HTTP surface of the gateway.
pub fn app(node: &Node, assets: &Assets) -> Router {
    let router = api::routes()
        .into_router(node)
        .route("/api", any(api_not_found))
        .route("/api/", any(api_not_found))
        .route("/api/{*rest}", any(api_not_found));
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
/// Connections carry the peer address, which the per-client rate limit keys on.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
