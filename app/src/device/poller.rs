//! Fetching what arrived at the addresses the device watches (its inbox while unpaired, its
//! consent log once paired), from the first configured node that answers.
//!
//! Cursors are node-local (each node numbers what it stores), so they are kept per node and
//! address; a payload seen through one node is not handed over again when another node is
//! asked later (ids of recently delivered messages are remembered).

use std::collections::{HashMap, HashSet, VecDeque};

use protocol::channel::Address;
use protocol::tangle::MessageId;

/// Ids remembered to suppress repeats across nodes.
const SEEN_WINDOW: usize = 4096;
/// Messages asked for per request.
const PAGE: usize = 100;

/// Per-node cursors and recently delivered message ids.
#[derive(Debug, Default)]
pub struct Poller {
    cursors: HashMap<(usize, Address), u64>,
    seen: HashSet<MessageId>,
    seen_order: VecDeque<MessageId>,
}

impl Poller {
    /// Whether `id` is new (and remembers it).
    fn first_sight(&mut self, id: MessageId) -> bool {
        if !self.seen.insert(id) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN_WINDOW
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    /// New payloads at `address`, in the node's order, from the first node that answers; the
    /// error of the last node when none does.
    pub async fn fetch(
        &mut self,
        client: &tangle_client::Client,
        address: Address,
    ) -> Result<Vec<Vec<u8>>, tangle_client::ClientError> {
        let mut last_error = tangle_client::ClientError::NoNodes;
        for node in 0..client.nodes().len() {
            let mut out = Vec::new();
            let answered = loop {
                let after = self.cursors.get(&(node, address)).copied().unwrap_or(0);
                match client.list(node, protocol::tangle::Address(address), after, PAGE).await {
                    Ok(page) => {
                        for (_, message) in &page.messages {
                            if self.first_sight(message.id()) {
                                out.push(message.payload().to_vec());
                            }
                        }
                        self.cursors.insert((node, address), page.next_after);
                        if !page.more {
                            break true;
                        }
                    }
                    Err(error) => {
                        last_error = error;
                        break false;
                    }
                }
            };
            if answered || !out.is_empty() {
                return Ok(out);
            }
        }
        Err(last_error)
    }
}
