//! What a publish needs from the nodes besides the POST — parents and the difficulty — kept
//! between publishes.
//!
//! Asking for both before every message made each publish three round trips (tips, `info` from
//! every node, POST). Both change slowly: the difficulty is node configuration, and after a
//! publish the best parent for the next message is the message just published (it approves
//! every tip it was built on). So the client fetches them once, reuses them for a short TTL,
//! and in steady state a publish is one POST per node:
//!
//! ```text
//!  publish ─► fresh context? ──no──► GET tips + GET info (every node) ─► store (now)
//!                │yes
//!                ▼
//!             solve, POST ─► acknowledged: tips = (tips − its parents) + its id
//!                        └─► refused `insufficient_work`: drop the context (the difficulty
//!                            went up), fetch again and retry once
//! ```
//!
//! The TTL bounds how long tips other clients added wait before one of our messages approves
//! them, and how long a lowered difficulty goes unnoticed (a raised one is noticed at once,
//! through the refusal). Nodes accept any parents (unknown ones are ignored), so cached tips
//! can never get a message refused.

use std::sync::Mutex;
use std::time::Duration;

use protocol::tangle::{Difficulty, MAX_PARENTS, Message, MessageId};
use web_time::Instant;

/// Parents and difficulty for the next message.
#[derive(Debug, Clone)]
pub(crate) struct PublishContext {
    pub(crate) tips: Vec<MessageId>,
    pub(crate) difficulty: Difficulty,
}

impl PublishContext {
    pub(crate) fn new(tips: Vec<MessageId>, difficulty: Difficulty) -> Self {
        Self { tips, difficulty }
    }
}

/// A context and when it was fetched.
#[derive(Debug)]
struct Cached {
    context: PublishContext,
    fetched_at: Instant,
}

/// The shared cache of one client (and its clones).
#[derive(Debug)]
pub(crate) struct PublishCache {
    ttl: Duration,
    cached: Mutex<Option<Cached>>,
}

impl PublishCache {
    /// How long fetched tips and difficulty are reused by default.
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(30);

    /// A cache whose entries live `ttl` (zero: never reused, every publish asks the nodes).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, cached: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Cached>> {
        // The data is a plain value, valid whatever a panicking holder was doing.
        self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The context if it was fetched less than the TTL before `now`.
    pub(crate) fn fresh(&self, now: Instant) -> Option<PublishContext> {
        self.lock()
            .as_ref()
            .filter(|c| now.checked_duration_since(c.fetched_at).is_some_and(|age| age < self.ttl))
            .map(|c| c.context.clone())
    }

    /// Remembers what the nodes just answered.
    pub(crate) fn store(&self, tips: Vec<MessageId>, difficulty: Difficulty, now: Instant) {
        *self.lock() =
            Some(Cached { context: PublishContext { tips, difficulty }, fetched_at: now });
    }

    /// A node acknowledged `message`: it replaces the tips it approved. Tips another publish
    /// added meanwhile (clones share the cache) stay, so concurrent messages get approved too.
    pub(crate) fn published(&self, message: &Message) {
        if let Some(Cached { context, .. }) = self.lock().as_mut() {
            context.tips.retain(|tip| !message.parents().contains(tip));
            if context.tips.len() >= MAX_PARENTS {
                context.tips.drain(..=context.tips.len() - MAX_PARENTS);
            }
            context.tips.push(message.id());
        }
    }

    /// Forgets the context (a node refused our proof of work).
    pub(crate) fn invalidate(&self) {
        *self.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use protocol::tangle::{Address, MessageDraft};

    use super::*;

    fn message(parents: Vec<MessageId>, n: u8) -> Message {
        MessageDraft::new(parents, Address([n; 32]), u64::from(n), vec![n]).unwrap().with_nonce(0)
    }

    fn id(n: u8) -> MessageId {
        MessageId([n; 32])
    }

    #[test]
    fn a_context_is_reused_within_the_ttl_only() {
        let cache = PublishCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        assert!(cache.fresh(t0).is_none());
        cache.store(vec![id(1)], Difficulty::DEFAULT, t0);
        assert_eq!(cache.fresh(t0 + Duration::from_secs(29)).unwrap().tips, [id(1)]);
        assert!(cache.fresh(t0 + Duration::from_secs(30)).is_none());
        cache.invalidate();
        assert!(cache.fresh(t0).is_none());
    }

    #[test]
    fn a_zero_ttl_never_reuses() {
        let cache = PublishCache::new(Duration::ZERO);
        let t0 = Instant::now();
        cache.store(vec![id(1)], Difficulty::DEFAULT, t0);
        assert!(cache.fresh(t0).is_none());
    }

    #[test]
    fn a_published_message_replaces_the_tips_it_approved() {
        let cache = PublishCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        cache.store(vec![id(1), id(2)], Difficulty::DEFAULT, t0);
        let first = message(vec![id(1), id(2)], 10);
        cache.published(&first);
        assert_eq!(cache.fresh(t0).unwrap().tips, [first.id()]);

        // Two publishes built on the same context: the second keeps the first as a tip.
        let a = message(vec![first.id()], 11);
        let b = message(vec![first.id()], 12);
        cache.published(&a);
        cache.published(&b);
        assert_eq!(cache.fresh(t0).unwrap().tips, [a.id(), b.id()]);
    }

    #[test]
    fn tips_never_exceed_what_a_message_may_name() {
        let cache = PublishCache::new(Duration::from_secs(30));
        let t0 = Instant::now();
        let full: Vec<MessageId> = (1..=8).map(id).collect();
        cache.store(full, Difficulty::DEFAULT, t0);
        let unrelated = message(vec![id(99)], 20);
        cache.published(&unrelated);
        let tips = cache.fresh(t0).unwrap().tips;
        assert_eq!(tips.len(), MAX_PARENTS);
        assert_eq!(tips.last(), Some(&unrelated.id()), "the newest is kept");
        assert!(!tips.contains(&id(1)), "the oldest made room");
    }

    #[test]
    fn nothing_is_remembered_without_a_fetched_context() {
        let cache = PublishCache::new(Duration::from_secs(30));
        cache.published(&message(vec![id(1)], 1));
        assert!(cache.fresh(Instant::now()).is_none());
    }
}
