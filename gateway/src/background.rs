//! A node served on a background task, for programs that embed one: tests, benchmarks, tools.
//! The `gateway` binary serves in the foreground with [`crate::serve`]; this is the same server
//! with a handle that stops it gracefully.

use std::io;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Node, serve};

/// Why stopping a background node did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("the server did not finish its in-flight requests within {0:?}")]
    Timeout(Duration),
    #[error("the server failed: {0}")]
    Serve(#[from] io::Error),
    #[error("the server task panicked")]
    Panicked,
}

/// `router` (usually [`crate::app`], possibly with extra layers) serving on a tokio task.
#[derive(Debug)]
pub struct BackgroundNode {
    node: Node,
    url: String,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<io::Result<()>>,
}

impl BackgroundNode {
    /// Starts serving `router` on `listener`; stopping begins the node's shutdown (live
    /// subscriptions get their closing event) and closes its store.
    pub fn spawn(node: Node, listener: TcpListener, router: Router) -> io::Result<Self> {
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let stopping = node.clone();
        let server = tokio::spawn(serve(listener, router, async move {
            let _ = stopped.await;
            stopping.begin_shutdown();
        }));
        Ok(Self { node, url, stop: Some(stop), server })
    }

    /// The node being served.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Its base URL, `http://127.0.0.1:PORT` (no trailing `/`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`, then closes the store
    /// (which commits what was acknowledged).
    pub async fn stop(mut self, grace: Duration) -> Result<(), StopError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let outcome = tokio::time::timeout(grace, &mut self.server).await;
        self.node.close();
        match outcome {
            Err(_) => Err(StopError::Timeout(grace)),
            Ok(Err(_)) => Err(StopError::Panicked),
            Ok(Ok(served)) => Ok(served?),
        }
    }
}
