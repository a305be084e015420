//! The browser device's outgoing queue: in this tab's memory only, and bounded.
//!
//! A Pi keeps its outbox on disk; a tab has nowhere durable to put ciphertext it could not send
//! yet, and it may run for hours with the node unreachable. So the queue holds at most
//! [`Outbox::data_capacity`] data messages (readings); when that many wait, newer readings are
//! refused and counted — providers see the gap in the stream's sequence numbers. Control
//! messages (keyloads, rotations, checkpoints, notices, receipts, pairing) are always queued:
//! they are rare, and dropping one would cut a provider off or break a promise the consent log
//! made. Everything still queued is lost when the tab closes; the page says so.

use std::collections::VecDeque;

use protocol::channel::OutgoingKind;
use protocol::consent::{Publish, PublishKind};

/// Readings kept while the node is unreachable: at one telegram a second, about 15 minutes.
pub const DEFAULT_DATA_CAPACITY: usize = 900;

/// The in-memory, bounded queue of messages waiting for a node's acknowledgement.
#[derive(Debug)]
pub struct Outbox {
    items: VecDeque<Publish>,
    data_capacity: usize,
    data_waiting: usize,
    refused: u64,
}

fn is_data(item: &Publish) -> bool {
    item.kind == PublishKind::Channel(OutgoingKind::Data)
}

impl Outbox {
    /// An empty queue holding at most `data_capacity` readings.
    pub fn new(data_capacity: usize) -> Self {
        Self { items: VecDeque::new(), data_capacity, data_waiting: 0, refused: 0 }
    }

    /// Queues `items` in order; returns how many data messages were refused for lack of room.
    pub fn push(&mut self, items: impl IntoIterator<Item = Publish>) -> u64 {
        let mut refused = 0;
        for item in items {
            if is_data(&item) {
                if self.data_waiting >= self.data_capacity {
                    refused += 1;
                    continue;
                }
                self.data_waiting += 1;
            }
            self.items.push_back(item);
        }
        self.refused += refused;
        refused
    }

    /// The next message to send (it stays queued until [`Self::pop_front`]).
    pub fn front(&self) -> Option<&Publish> {
        self.items.front()
    }

    /// Drops the front message once a node acknowledged it.
    pub fn pop_front(&mut self) -> Option<Publish> {
        let item = self.items.pop_front()?;
        if is_data(&item) {
            self.data_waiting -= 1;
        }
        Some(item)
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Nothing waiting.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Readings waiting.
    pub fn data_waiting(&self) -> usize {
        self.data_waiting
    }

    /// The most readings kept.
    pub fn data_capacity(&self) -> usize {
        self.data_capacity
    }

    /// Readings refused since the queue was created.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}
