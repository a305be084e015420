//! The message itself and its one canonical byte encoding.

use sha3::{Digest, Sha3_256};

use super::pow::{self, Difficulty, InsufficientWork};

/// The encoding version this code writes and reads.
pub const VERSION: u8 = 1;
/// A message approves at most this many parents (and at least one).
pub const MAX_PARENTS: usize = 8;
/// Largest payload a message may carry: room for a checkpoint with an ML-DSA-65 signature or a
/// keyload for a dozen providers, small enough that a node can cap request bodies tightly.
pub const MAX_PAYLOAD_LEN: usize = 32 * 1024;
/// Fixed part of every encoding: version, parent count, address, timestamp, payload length, nonce.
const FIXED_LEN: usize = 1 + 1 + 32 + 8 + 4 + 8;
/// The shortest possible encoding: one parent, empty payload.
pub const MIN_ENCODED_LEN: usize = FIXED_LEN + 32;
/// The longest possible encoding: eight parents, a full payload.
pub const MAX_ENCODED_LEN: usize = FIXED_LEN + MAX_PARENTS * 32 + MAX_PAYLOAD_LEN;

/// The SHA3-256 hash of a message's encoding.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// The root of the DAG: every node knows it, so the first message on a node approves it.
    pub const GENESIS: Self = Self([0; 32]);

    /// The id as 64 lower-case hex digits (the form used in URLs and JSON).
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        from_hex32(text).map(Self)
    }

    /// The id of bytes that [`Message::decode`] accepted: since every message has exactly one
    /// encoding, hashing the received bytes equals hashing a re-encoding, without the copy.
    pub fn of_encoding(bytes: &[u8]) -> Self {
        Self(Sha3_256::digest(bytes).into())
    }
}

impl core::fmt::Debug for MessageId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

impl core::fmt::Display for MessageId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Where a message is filed: readers follow an address. Opaque to the node.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// The address as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &str) -> Option<Self> {
        from_hex32(text).map(Self)
    }
}

impl core::fmt::Debug for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Address({})", self.to_hex())
    }
}

impl core::fmt::Display for Address {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Why a draft cannot become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    #[error("a message needs 1 to {MAX_PARENTS} parents, got {0}")]
    ParentCount(usize),
    #[error("parent {0} is listed twice")]
    DuplicateParent(MessageId),
    #[error("payload of {len} bytes exceeds the cap of {MAX_PAYLOAD_LEN}")]
    PayloadTooLarge { len: usize },
}

/// Why bytes are not a message. [`DecodeError::Truncated`] (the bytes stop early) is kept apart
/// from the other variants (the bytes are wrong), so a node can tell a cut-off upload from garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message truncated: {needed} bytes needed, only {got} present")]
    Truncated { needed: usize, got: usize },
    #[error("unsupported message version {0} (this node reads version {VERSION})")]
    UnsupportedVersion(u8),
    #[error("a message needs 1 to {MAX_PARENTS} parents, the encoding says {0}")]
    ParentCount(u8),
    #[error("parent ids must be strictly ascending (sorted, no duplicates)")]
    ParentsNotCanonical,
    #[error("payload length {len} exceeds the cap of {MAX_PAYLOAD_LEN} bytes")]
    PayloadTooLarge { len: u64 },
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
}

/// A message before its proof of work: everything but the nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageDraft {
    parents: Vec<MessageId>,
    address: Address,
    timestamp_ms: u64,
    payload: Vec<u8>,
}

impl MessageDraft {
    /// Checks the limits and puts the parents in canonical (ascending) order.
    ///
    /// `timestamp_ms` is the publisher's clock in milliseconds since the Unix epoch; nodes store
    /// it untouched and nobody should trust it for ordering (the node's sequence orders).
    pub fn new(
        mut parents: Vec<MessageId>,
        address: Address,
        timestamp_ms: u64,
        payload: Vec<u8>,
    ) -> Result<Self, DraftError> {
        if parents.is_empty() || parents.len() > MAX_PARENTS {
            return Err(DraftError::ParentCount(parents.len()));
        }
        parents.sort_unstable();
        if let Some(pair) = parents.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(DraftError::DuplicateParent(pair[0]));
        }
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(DraftError::PayloadTooLarge { len: payload.len() });
        }
        Ok(Self { parents, address, timestamp_ms, payload })
    }

    /// Attaches a nonce without checking any work (difficulty 0, or a nonce found elsewhere).
    pub fn with_nonce(self, nonce: u64) -> Message {
        Message { draft: self, nonce }
    }

    /// The SHA3-256 of the encoding without its nonce: what the proof of work commits to.
    pub fn content_hash(&self) -> [u8; 32] {
        let mut hasher = Sha3_256::new();
        self.encode_content_into(&mut HashSink(&mut hasher));
        hasher.finalize().into()
    }

    /// Searches nonces `first_nonce .. first_nonce + attempts` for one meeting `difficulty`.
    ///
    /// Bounded so a caller on a single-threaded target (the browser) can search in slices and
    /// yield between them; `None` means "keep going from `first_nonce + attempts`".
    pub fn solve(
        &self,
        difficulty: Difficulty,
        first_nonce: u64,
        attempts: u64,
    ) -> Option<Message> {
        let content_hash = self.content_hash();
        pow::search(&content_hash, difficulty, first_nonce, attempts)
            .map(|nonce| self.clone().with_nonce(nonce))
    }

    /// Searches nonces from 0 until one meets `difficulty`. At difficulty d this takes 2^d
    /// hashes on average, each over 40 bytes; see the load benchmark for measured times.
    pub fn solve_fully(&self, difficulty: Difficulty) -> Message {
        let content_hash = self.content_hash();
        let mut first = 0u64;
        // 2^MAX_DIFFICULTY is far below 2^64, so this terminates long before nonces wrap.
        loop {
            if let Some(nonce) = pow::search(&content_hash, difficulty, first, 1 << 16) {
                return self.clone().with_nonce(nonce);
            }
            first = first.wrapping_add(1 << 16);
        }
    }

    fn encode_content_into(&self, out: &mut impl Sink) {
        out.put(&[VERSION]);
        // The count fits: `new` and `decode` both cap it at MAX_PARENTS.
        out.put(&[self.parents.len() as u8]);
        for parent in &self.parents {
            out.put(&parent.0);
        }
        out.put(&self.address.0);
        out.put(&self.timestamp_ms.to_be_bytes());
        // Fits: the payload is capped at MAX_PAYLOAD_LEN.
        out.put(&(self.payload.len() as u32).to_be_bytes());
        out.put(&self.payload);
    }
}

/// A complete tangle message: a draft plus its nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    draft: MessageDraft,
    nonce: u64,
}

impl Message {
    /// The parents, in ascending order.
    pub fn parents(&self) -> &[MessageId] {
        &self.draft.parents
    }
    pub fn address(&self) -> Address {
        self.draft.address
    }
    /// The publisher's claimed time, milliseconds since the Unix epoch. Untrusted.
    pub fn timestamp_ms(&self) -> u64 {
        self.draft.timestamp_ms
    }
    pub fn payload(&self) -> &[u8] {
        &self.draft.payload
    }
    pub fn nonce(&self) -> u64 {
        self.nonce
    }
    /// Everything but the nonce.
    pub fn draft(&self) -> &MessageDraft {
        &self.draft
    }

    /// Length of [`Message::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        FIXED_LEN + 32 * self.draft.parents.len() + self.draft.payload.len()
    }

    /// The canonical encoding (see `protocol/spec/tangle-message.md`).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.draft.encode_content_into(&mut out);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out
    }

    /// SHA3-256 of the encoding.
    pub fn id(&self) -> MessageId {
        MessageId::of_encoding(&self.encode())
    }

    /// Checks the proof of work against a node's difficulty.
    pub fn check_work(&self, difficulty: Difficulty) -> Result<(), InsufficientWork> {
        if difficulty == Difficulty::NONE {
            return Ok(()); // every nonce qualifies; skip hashing the content
        }
        pow::check(&self.draft.content_hash(), self.nonce, difficulty)
    }

    /// Decodes exactly one message, refusing every non-canonical or oversized form.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let count = reader.u8()?;
        if count == 0 || usize::from(count) > MAX_PARENTS {
            return Err(DecodeError::ParentCount(count));
        }
        let mut parents = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            parents.push(MessageId(reader.array32()?));
        }
        if parents.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(DecodeError::ParentsNotCanonical);
        }
        let address = Address(reader.array32()?);
        let timestamp_ms = reader.u64()?;
        let len = reader.u32()?;
        if len as usize > MAX_PAYLOAD_LEN {
            return Err(DecodeError::PayloadTooLarge { len: u64::from(len) });
        }
        let payload = reader.take(len as usize)?.to_vec();
        let nonce = reader.u64()?;
        let rest = bytes.len() - reader.at;
        if rest != 0 {
            return Err(DecodeError::TrailingBytes(rest));
        }
        Ok(Self { draft: MessageDraft { parents, address, timestamp_ms, payload }, nonce })
    }
}

/// A cursor over untrusted bytes that reports how much was missing instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.at.saturating_add(n);
        let slice = self
            .bytes
            .get(self.at..end)
            .ok_or(DecodeError::Truncated { needed: end, got: self.bytes.len() })?;
        self.at = end;
        Ok(slice)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn array32(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array()
    }
}

/// Lets the content be written once, either into a buffer or straight into a hasher.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct HashSink<'a>(&'a mut Sha3_256);

impl Sink for HashSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

fn to_hex(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

fn from_hex32(text: &str) -> Option<[u8; 32]> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn draft() -> MessageDraft {
        MessageDraft::new(
            vec![MessageId([2; 32]), MessageId([1; 32])],
            Address([7; 32]),
            5,
            vec![9; 3],
        )
        .unwrap()
    }

    #[test]
    fn parents_are_sorted_and_duplicates_refused() {
        assert_eq!(draft().parents, vec![MessageId([1; 32]), MessageId([2; 32])]);
        let dup = MessageDraft::new(vec![MessageId([1; 32]); 2], Address([0; 32]), 0, vec![]);
        assert_eq!(dup, Err(DraftError::DuplicateParent(MessageId([1; 32]))));
        assert_eq!(
            MessageDraft::new(vec![], Address([0; 32]), 0, vec![]),
            Err(DraftError::ParentCount(0))
        );
    }

    #[test]
    fn content_hash_streams_the_same_bytes_as_the_encoding() {
        let message = draft().with_nonce(42);
        let bytes = message.encode();
        let expected: [u8; 32] = Sha3_256::digest(&bytes[..bytes.len() - 8]).into();
        assert_eq!(message.draft().content_hash(), expected);
        assert_eq!(bytes.len(), message.encoded_len());
    }

    #[test]
    fn hex_round_trips_and_rejects_wrong_lengths_and_digits() {
        let id = MessageId([0xab; 32]);
        assert_eq!(MessageId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(MessageId::from_hex(&id.to_hex().to_uppercase()), Some(id));
        assert_eq!(MessageId::from_hex("abcd"), None);
        assert_eq!(MessageId::from_hex(&"zz".repeat(32)), None);
    }
}
