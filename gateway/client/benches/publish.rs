//! Publish benchmark: the cost of one `Client::publish` against real nodes on loopback, with the
//! publish cache (tips and difficulty reused for 30 s) against the same client without it (TTL
//! zero: tips, info from every node and the POST for every message, as before the cache).
//!
//! Both clients run in the same process against the same nodes, in alternating batches, so
//! they see the same machine load. Prints per scenario the median and p90 time per publish,
//! the ratio of the medians, and the HTTP requests the nodes served per message.
//!
//! `cargo bench -p tangle-client --bench publish` (environment: `MK_BENCH_PUBLISHES`, messages
//! per client and scenario, default 600).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

fn main() {
    // The nodes it measures are native; on wasm32 this only has to compile.
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use gateway::{Assets, BackgroundNode, Node, NodeOptions};
    use protocol::tangle::{Address, Difficulty};
    use tangle_client::Client;

    /// Publishes per batch before switching to the other client.
    const BATCH: usize = 50;

    struct Running {
        url: String,
        requests: Arc<AtomicUsize>,
        served: BackgroundNode,
        _dir: tempfile::TempDir,
    }

    async fn start(difficulty: u8) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let mut options = NodeOptions::new(dir.path().join("node.sqlite"));
        options.difficulty = Difficulty::new(difficulty).unwrap();
        options.rate_limit = None;
        let node = Node::open(options).unwrap();
        let listener = gateway::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let router = gateway::app(&node, &Assets::None).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                counter.fetch_add(1, Ordering::Relaxed);
                next.run(request)
            },
        ));
        let served = BackgroundNode::spawn(node, listener, router).expect("serve");
        Running { url, requests, served, _dir: dir }
    }

    impl Running {
        async fn stop(self) {
            let _ = self.served.stop(Duration::from_secs(10)).await;
        }
    }

    /// Time per publish and requests per message of one client.
    #[derive(Default)]
    struct Sample {
        times: Vec<Duration>,
        requests: usize,
    }

    impl Sample {
        fn percentile(&mut self, p: f64) -> Duration {
            self.times.sort_unstable();
            let index = ((self.times.len() - 1) as f64 * p).round() as usize;
            self.times[index]
        }

        fn requests_per_message(&self) -> f64 {
            self.requests as f64 / self.times.len() as f64
        }
    }

    async fn batch(client: &Client, nodes: &[Running], sample: &mut Sample, first: u64) {
        let served = |nodes: &[Running]| -> usize {
            nodes.iter().map(|n| n.requests.load(Ordering::Relaxed)).sum()
        };
        let before = served(nodes);
        for n in 0..BATCH as u64 {
            let started = Instant::now();
            let report =
                client.publish(Address([7; 32]), first + n, (first + n).to_be_bytes().to_vec());
            report.await.unwrap();
            sample.times.push(started.elapsed());
        }
        sample.requests += served(nodes) - before;
    }

    async fn scenario(node_count: usize, difficulty: u8, publishes: usize) {
        let mut nodes = Vec::new();
        for _ in 0..node_count {
            nodes.push(start(difficulty).await);
        }
        let urls: Vec<String> = nodes.iter().map(|n| n.url.clone()).collect();
        let cached_client = Client::new(urls.clone()).unwrap();
        let uncached_client = Client::new(urls).unwrap().with_publish_cache_ttl(Duration::ZERO);
        // Warm-up: connections, the node's first writes, the first cache fill.
        let mut warm = Sample::default();
        batch(&cached_client, &nodes, &mut warm, 0).await;
        batch(&uncached_client, &nodes, &mut warm, 0).await;

        let (mut cached, mut uncached) = (Sample::default(), Sample::default());
        let mut at = 1_000_000;
        for _ in 0..publishes.div_ceil(BATCH) {
            batch(&cached_client, &nodes, &mut cached, at).await;
            batch(&uncached_client, &nodes, &mut uncached, at + 1).await;
            at += 2 * BATCH as u64;
        }
        let (c50, u50) = (cached.percentile(0.5), uncached.percentile(0.5));
        println!(
            "{node_count} node(s), difficulty {difficulty:>2}, {} publishes each: \
             cached median {:>7.3} ms (p90 {:>7.3}), {:.2} requests/message | \
             uncached median {:>7.3} ms (p90 {:>7.3}), {:.2} requests/message | \
             uncached/cached median {:.2}x",
            cached.times.len(),
            c50.as_secs_f64() * 1e3,
            cached.percentile(0.9).as_secs_f64() * 1e3,
            cached.requests_per_message(),
            u50.as_secs_f64() * 1e3,
            uncached.percentile(0.9).as_secs_f64() * 1e3,
            uncached.requests_per_message(),
            u50.as_secs_f64() / c50.as_secs_f64(),
        );
        for node in nodes {
            node.stop().await;
        }
    }

    #[tokio::main]
    pub async fn main() {
        let publishes = std::env::var("MK_BENCH_PUBLISHES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(600usize)
            .max(BATCH);
        println!(
            "tangle-client publish, publish cache vs none (same process, alternating batches)"
        );
        for (nodes, difficulty) in
            [(1, Difficulty::DEFAULT.bits()), (2, Difficulty::DEFAULT.bits()), (1, 0)]
        {
            scenario(nodes, difficulty, publishes).await;
        }
    }
}
