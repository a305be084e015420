//! The consent log: one per (device, pairing), append-only, hash-chained, owner-signed, with
//! per-entry encryption that lets a provider read exactly the entries about its own grants.
//!
//! ```text
//! log keys   = HKDF-SHA3(salt "meterkast/v1/consent-log", log key from pairing, label)
//!              labels: "household-key", "entry-address-key", "receipt-key",
//!                      "receipt-address-key", "pseudonym-key"
//! address(i) = SHA3-256("meterkast/v1/consent-entry-address" ‖ entry-address key ‖ u64be i)
//! entry      = header ‖ household wrap(72) ‖ grant wrap(72) ‖ body nonce(24) ‖ lp body
//!              ‖ signature(3309, owner, "meterkast/v1/consent-event")
//! header     = "MKCE" ‖ u8 1 ‖ u64be index ‖ previous entry hash(32) ‖ content-key commitment(32)
//! signed     = device PartyId ‖ entry without the signature
//! hash       = SHA3-256("meterkast/v1/consent-entry" ‖ device PartyId ‖ entry)
//! content key (random per entry) encrypts the event: XChaCha20-Poly1305, aad = device ‖ header
//! commitment = SHA3-256("meterkast/v1/content-key" ‖ content key)
//! wrap       = nonce(24) ‖ XChaCha20-Poly1305(wrapping key, aad = label ‖ device ‖ u64be index,
//!              content key)   wrapping key: household key / the grant's key; for events about
//!              no grant the grant wrap is 72 random bytes (indistinguishable)
//! ```
//!
//! Who learns what:
//! - a node sees random-looking addresses and blobs (it cannot link entries to one log: addresses
//!   are keyed, and the header's index and previous hash are meaningless without the log);
//! - the device and the wallet derive every key and read everything;
//! - a provider holds only its grant keys: it can unwrap and read the entries about its grants,
//!   check their owner signatures and their place in the chain (index, previous hash), and
//!   nothing else; it cannot even compute the log's addresses;
//! - an offline verifier given the entries and each entry's content key (the export) checks the
//!   chain, the signatures and the commitments without any long-term key.

use std::collections::BTreeMap;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use super::event::{ConsentEvent, GrantId};
use super::{ConsentError, Publish, PublishKind};
use crate::channel::Address;
use crate::channel::codec::{DecodeError, Reader, Writer};
use crate::crypto::{
    self, AEAD_NONCE_LEN, AEAD_TAG_LEN, PartyId, PartyKeys, PublicKeys, SIGNATURE_LEN,
    SignatureContext, SymmetricKey, digest, expand_key,
};

const LOG_SALT: &[u8] = b"meterkast/v1/consent-log";
const ENTRY_MAGIC: &[u8; 4] = b"MKCE";
const ENTRY_VERSION: u8 = 1;
const WRAP_LEN: usize = AEAD_NONCE_LEN + 32 + AEAD_TAG_LEN;
const HEADER_LEN: usize = 4 + 1 + 8 + 32 + 32;
/// Largest encrypted event body.
pub const MAX_EVENT_BODY: usize = 8 * 1024;
/// How many accepted entries back a reader keeps watching, to notice forks and replays.
pub const FORK_WATCH: u64 = 16;

/// The keys of one consent log, derived from the log key agreed at pairing.
pub struct LogKeys {
    household: SymmetricKey,
    entry_address_key: Zeroizing<[u8; 32]>,
    receipt: SymmetricKey,
    receipt_address_key: Zeroizing<[u8; 32]>,
    pseudonym_key: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LogKeys(<redacted>)")
    }
}

impl LogKeys {
    /// Derives every key of the log.
    pub fn new(log_key: &SymmetricKey) -> Self {
        let derive = |label: &[u8]| -> Zeroizing<[u8; 32]> {
            expand_key(LOG_SALT, log_key.expose_secret(), &[label])
        };
        Self {
            household: SymmetricKey::from_bytes(*derive(b"household-key")),
            entry_address_key: derive(b"entry-address-key"),
            receipt: SymmetricKey::from_bytes(*derive(b"receipt-key")),
            receipt_address_key: derive(b"receipt-address-key"),
            pseudonym_key: derive(b"pseudonym-key"),
        }
    }

    /// Address of entry `index`.
    pub fn entry_address(&self, index: u64) -> Address {
        digest(
            b"meterkast/v1/consent-entry-address",
            &[self.entry_address_key.as_slice(), &index.to_be_bytes()],
        )
    }

    /// Address of the device's `n`-th delivery receipt.
    pub fn receipt_address(&self, n: u64) -> Address {
        digest(
            b"meterkast/v1/delivery-receipt-address",
            &[self.receipt_address_key.as_slice(), &n.to_be_bytes()],
        )
    }

    pub(crate) fn receipt_key(&self) -> &SymmetricKey {
        &self.receipt
    }

    /// The household's pseudonym towards `provider` (unlinkable across providers and logs).
    pub fn pseudonym(&self, provider: PartyId) -> [u8; 16] {
        let full = digest(b"meterkast/v1/pseudonym", &[self.pseudonym_key.as_slice(), &provider.0]);
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }
}

/// The commitment to an entry's content key, as written in the header.
fn key_commitment(content_key: &SymmetricKey) -> [u8; 32] {
    digest(b"meterkast/v1/content-key", &[content_key.expose_secret()])
}

fn wrap_aad(label: &[u8], device: PartyId, index: u64) -> Vec<u8> {
    [label, &device.0, &index.to_be_bytes()].concat()
}

/// A structurally valid entry (nothing verified yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedEntry {
    /// Position in the log.
    pub index: u64,
    /// Hash of the entry before (zeros for the first).
    pub previous: [u8; 32],
    commitment: [u8; 32],
    household_wrap: [u8; WRAP_LEN],
    grant_wrap: [u8; WRAP_LEN],
    body_nonce: [u8; AEAD_NONCE_LEN],
    body: Vec<u8>,
    signature_at: usize,
    bytes: Vec<u8>,
}

impl SealedEntry {
    /// Parses an entry's structure.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let signature_at = bytes
            .len()
            .checked_sub(SIGNATURE_LEN)
            .ok_or(DecodeError::Truncated { field: "signature" })?;
        let mut r = Reader::new(&bytes[..signature_at]);
        if r.take(4, "magic")? != ENTRY_MAGIC {
            return Err(DecodeError::InvalidValue { field: "magic" });
        }
        let version = r.u8("version")?;
        if version != ENTRY_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "consent entry", version });
        }
        let index = r.u64be("index")?;
        let previous = r.array("previous hash")?;
        let commitment = r.array("content key commitment")?;
        let household_wrap = r.array("household wrap")?;
        let grant_wrap = r.array("grant wrap")?;
        let body_nonce = r.array("body nonce")?;
        let body = r.length_prefixed(MAX_EVENT_BODY + AEAD_TAG_LEN, "body")?.to_vec();
        r.finish()?;
        Ok(Self {
            index,
            previous,
            commitment,
            household_wrap,
            grant_wrap,
            body_nonce,
            body,
            signature_at,
            bytes: bytes.to_vec(),
        })
    }

    /// The encoded entry.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The entry's hash in the chain of `device`'s log.
    pub fn hash(&self, device: PartyId) -> [u8; 32] {
        digest(b"meterkast/v1/consent-entry", &[&device.0, &self.bytes])
    }

    /// Checks the owner's signature, binding the entry to `device`.
    pub fn verify_signature(
        &self,
        device: PartyId,
        owner: &PublicKeys,
    ) -> Result<(), ConsentError> {
        let (signed, signature) = self.bytes.split_at(self.signature_at);
        let message = [&device.0[..], signed].concat();
        owner
            .verify(SignatureContext::ConsentEvent, &message, signature)
            .map_err(|_| ConsentError::NotSignedByOwner)
    }

    fn unwrap_with(
        &self,
        wrap: &[u8; WRAP_LEN],
        key: &SymmetricKey,
        label: &[u8],
        device: PartyId,
    ) -> Result<SymmetricKey, ConsentError> {
        let (nonce, sealed) = wrap.split_at(AEAD_NONCE_LEN);
        let nonce: [u8; AEAD_NONCE_LEN] =
            nonce.try_into().map_err(|_| ConsentError::Undecryptable)?;
        let plain = Zeroizing::new(
            crypto::open(key, &nonce, &wrap_aad(label, device, self.index), sealed)
                .map_err(|_| ConsentError::Undecryptable)?,
        );
        let bytes: [u8; 32] =
            plain.as_slice().try_into().map_err(|_| ConsentError::Undecryptable)?;
        let content_key = SymmetricKey::from_bytes(bytes);
        if key_commitment(&content_key) != self.commitment {
            return Err(ConsentError::Undecryptable);
        }
        Ok(content_key)
    }

    /// The content key, for the household (device or wallet).
    pub fn household_content_key(
        &self,
        keys: &LogKeys,
        device: PartyId,
    ) -> Result<SymmetricKey, ConsentError> {
        self.unwrap_with(&self.household_wrap, &keys.household, b"household", device)
    }

    /// The content key, for the holder of a grant key.
    pub fn grant_content_key(
        &self,
        grant_key: &SymmetricKey,
        device: PartyId,
    ) -> Result<SymmetricKey, ConsentError> {
        self.unwrap_with(&self.grant_wrap, grant_key, b"grant", device)
    }

    /// Decrypts the event with a content key (checked against the signed commitment first, so
    /// a key that is not the one the owner committed to is refused).
    pub fn open(
        &self,
        content_key: &SymmetricKey,
        device: PartyId,
    ) -> Result<ConsentEvent, ConsentError> {
        if key_commitment(content_key) != self.commitment {
            return Err(ConsentError::Undecryptable);
        }
        let aad = [&device.0[..], &self.bytes[..HEADER_LEN]].concat();
        let plain = Zeroizing::new(
            crypto::open(content_key, &self.body_nonce, &aad, &self.body)
                .map_err(|_| ConsentError::Undecryptable)?,
        );
        let event = ConsentEvent::decode(&plain)?;
        if event.device != device {
            return Err(ConsentError::OtherDevice);
        }
        Ok(event)
    }
}

/// Seals and signs an entry.
#[allow(clippy::too_many_arguments)] // Each argument is one field of the entry format.
fn seal_entry(
    owner: &PartyKeys,
    keys: &LogKeys,
    device: PartyId,
    index: u64,
    previous: &[u8; 32],
    event: &ConsentEvent,
    grant_key: Option<&SymmetricKey>,
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, SymmetricKey), ConsentError> {
    let body_plain = Zeroizing::new(event.encode());
    if body_plain.len() > MAX_EVENT_BODY {
        return Err(ConsentError::EventTooLarge);
    }
    let content_key = SymmetricKey::generate(rng);
    let mut header = Writer::new();
    header
        .bytes(ENTRY_MAGIC)
        .u8(ENTRY_VERSION)
        .u64be(index)
        .bytes(previous)
        .bytes(&key_commitment(&content_key));
    let header = header.finish();
    let wrap = |key: &SymmetricKey, label: &[u8], rng: &mut dyn rand_core::CryptoRng| {
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        crypto::seal(key, &nonce, &wrap_aad(label, device, index), content_key.expose_secret())
            .map(|sealed| [&nonce[..], &sealed].concat())
    };
    let household_wrap = wrap(&keys.household, b"household", rng)?;
    let grant_wrap = match grant_key {
        Some(key) => wrap(key, b"grant", rng)?,
        None => {
            let mut filler = vec![0u8; WRAP_LEN];
            rng.fill_bytes(&mut filler);
            filler
        }
    };
    let mut body_nonce = [0u8; AEAD_NONCE_LEN];
    rng.fill_bytes(&mut body_nonce);
    let aad = [&device.0[..], &header].concat();
    let body = crypto::seal(&content_key, &body_nonce, &aad, &body_plain)?;
    let mut w = Writer::new();
    w.bytes(&header)
        .bytes(&household_wrap)
        .bytes(&grant_wrap)
        .bytes(&body_nonce)
        .length_prefixed(&body);
    let mut entry = w.finish();
    let message = [&device.0[..], &entry].concat();
    entry.extend_from_slice(&owner.sign(SignatureContext::ConsentEvent, &message, rng)?);
    Ok((entry, content_key))
}

/// An entry the writer produced (the wallet keeps these for its history and export).
#[derive(Debug, Clone)]
pub struct WrittenEntry {
    /// What to publish.
    pub publish: Publish,
    /// The entry's hash.
    pub hash: [u8; 32],
    /// The entry's content key (exported so others can verify this one entry).
    pub content_key: SymmetricKey,
}

/// The wallet's side of a log: appends owner-signed entries.
#[derive(Debug)]
pub struct ConsentLogWriter {
    device: PartyId,
    keys: LogKeys,
    next_index: u64,
    last_hash: [u8; 32],
    grant_keys: BTreeMap<GrantId, SymmetricKey>,
}

impl ConsentLogWriter {
    /// A writer for a new log of `device` (the first entry should be `DevicePaired`).
    pub fn new(device: PartyId, log_key: &SymmetricKey) -> Self {
        Self {
            device,
            keys: LogKeys::new(log_key),
            next_index: 0,
            last_hash: [0; 32],
            grant_keys: BTreeMap::new(),
        }
    }

    /// Continues a log written earlier (the wallet after a reload, or restored from its
    /// recovery phrase in another browser) from its entries as a [`LogReader`] accepted them,
    /// in order from the first: the next index and previous hash follow the last entry, and
    /// the grant keys come from the grants among them, so later revocations can be written.
    /// Entries that do not form the chain from position 0 are refused.
    pub fn resume(
        device: PartyId,
        log_key: &SymmetricKey,
        accepted: &[VerifiedEntry],
    ) -> Result<Self, ConsentError> {
        let mut writer = Self::new(device, log_key);
        for verified in accepted {
            if verified.event.device != device {
                return Err(ConsentError::OtherDevice);
            }
            if verified.entry.index != writer.next_index {
                return Err(ConsentError::Anomaly(LogAnomaly::Misplaced {
                    at: writer.next_index,
                    claims: verified.entry.index,
                }));
            }
            if verified.entry.previous != writer.last_hash {
                return Err(ConsentError::Anomaly(LogAnomaly::ChainBroken {
                    index: writer.next_index,
                }));
            }
            if let super::event::EventKind::Granted(grant) = &verified.event.kind {
                writer.grant_keys.insert(grant.id, grant.grant_key.clone());
            }
            writer.next_index += 1;
            writer.last_hash = verified.entry.hash(device);
        }
        Ok(writer)
    }

    /// The log's keys.
    pub fn keys(&self) -> &LogKeys {
        &self.keys
    }

    /// The device.
    pub fn device(&self) -> PartyId {
        self.device
    }

    /// Index the next entry will get.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The key of a grant written by this writer.
    pub fn grant_key(&self, grant: GrantId) -> Option<&SymmetricKey> {
        self.grant_keys.get(&grant)
    }

    /// Appends `event` (which must name this writer's device). Events about a grant are also
    /// wrapped for that grant's provider.
    pub fn append(
        &mut self,
        owner: &PartyKeys,
        event: &ConsentEvent,
        rng: &mut impl CryptoRng,
    ) -> Result<WrittenEntry, ConsentError> {
        if event.device != self.device {
            return Err(ConsentError::OtherDevice);
        }
        let grant_key = match &event.kind {
            super::event::EventKind::Granted(grant) => {
                if self.grant_keys.contains_key(&grant.id) {
                    return Err(ConsentError::DuplicateGrant);
                }
                Some(grant.grant_key.clone())
            }
            kind => match kind.grant_id() {
                Some(id) => {
                    Some(self.grant_keys.get(&id).cloned().ok_or(ConsentError::UnknownGrant)?)
                }
                None => None,
            },
        };
        let (bytes, content_key) = seal_entry(
            owner,
            &self.keys,
            self.device,
            self.next_index,
            &self.last_hash,
            event,
            grant_key.as_ref(),
            rng,
        )?;
        let hash = digest(b"meterkast/v1/consent-entry", &[&self.device.0, &bytes]);
        let publish = Publish {
            address: self.keys.entry_address(self.next_index),
            payload: bytes,
            kind: PublishKind::LogEntry,
        };
        if let super::event::EventKind::Granted(grant) = &event.kind {
            self.grant_keys.insert(grant.id, grant.grant_key.clone());
        }
        self.next_index += 1;
        self.last_hash = hash;
        Ok(WrittenEntry { publish, hash, content_key })
    }
}

/// An entry a reader accepted: in place, signed by the owner, decrypted.
#[derive(Debug, Clone)]
pub struct VerifiedEntry {
    /// The sealed entry.
    pub entry: SealedEntry,
    /// Its hash.
    pub hash: [u8; 32],
    /// Its content key.
    pub content_key: SymmetricKey,
    /// The event.
    pub event: ConsentEvent,
}

/// Payloads a reader ignores (they do not count, and are not evidence of anything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredEntry {
    /// Not at an address the reader watches.
    NotWatched,
    /// Not a consent entry.
    Malformed,
    /// Not signed by this device's owner for this device (an outsider's, or another device's
    /// entry).
    NotSignedByOwner,
    /// The same entry again.
    Duplicate,
}

/// Evidence that the log was tampered with, reordered, replayed or forked. Only owner-signed
/// entries can cause these (anything else is ignored), so each one means the owner's key
/// misbehaved or was stolen, and the wallet must show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAnomaly {
    /// An owner-signed entry for position `claims` found at the address of position `at`: a
    /// replayed or reordered entry.
    Misplaced {
        /// The position whose address held it.
        at: u64,
        /// The position the entry names.
        claims: u64,
    },
    /// A second, different owner-signed entry for an already accepted position.
    Forked {
        /// The position.
        index: u64,
    },
    /// The entry's previous hash is not the hash of the accepted entry before it.
    ChainBroken {
        /// The position.
        index: u64,
    },
    /// The entry's time is earlier than its predecessor's.
    TimeWentBackwards {
        /// The position.
        index: u64,
    },
    /// Owner-signed, but its content does not decrypt for the household or names another
    /// device.
    Unreadable {
        /// The position.
        index: u64,
    },
}

/// What a reader made of one payload.
#[derive(Debug, Clone)]
pub enum LogOutcome {
    /// The next entry of the log.
    Accepted(Box<VerifiedEntry>),
    /// Ignored.
    Ignored(IgnoredEntry),
    /// Detected and reported; the entry is not accepted.
    Anomaly(LogAnomaly),
}

/// The household's reader of a log (device and wallet): accepts entries strictly in order and
/// reports every inconsistency.
#[derive(Debug)]
pub struct LogReader {
    device: PartyId,
    owner: PublicKeys,
    keys: LogKeys,
    next_index: u64,
    last_hash: [u8; 32],
    last_time: u64,
    /// Hashes of the last [`FORK_WATCH`] accepted entries, by index.
    recent: BTreeMap<u64, [u8; 32]>,
}

impl LogReader {
    /// A reader of `device`'s log owned by `owner`.
    pub fn new(device: PartyId, owner: PublicKeys, log_key: &SymmetricKey) -> Self {
        Self {
            device,
            owner,
            keys: LogKeys::new(log_key),
            next_index: 0,
            last_hash: [0; 32],
            last_time: 0,
            recent: BTreeMap::new(),
        }
    }

    /// The log's keys.
    pub fn keys(&self) -> &LogKeys {
        &self.keys
    }

    /// Writes the reading position (no secret: the log key is not included).
    pub(crate) fn save(&self, w: &mut Writer) {
        w.bytes(&self.device.0).u64be(self.next_index).bytes(&self.last_hash).u64be(self.last_time);
        w.varint(self.recent.len() as u64);
        for (index, hash) in &self.recent {
            w.u64be(*index).bytes(hash);
        }
    }

    /// Reads what [`LogReader::save`] wrote, for `device`'s log.
    pub(crate) fn restore(
        r: &mut Reader<'_>,
        device: PartyId,
        owner: PublicKeys,
        log_key: &SymmetricKey,
    ) -> Result<Self, ConsentError> {
        if PartyId(r.array("device")?) != device {
            return Err(ConsentError::OtherDevice);
        }
        let mut reader = Self::new(device, owner, log_key);
        reader.next_index = r.u64be("next index")?;
        reader.last_hash = r.array("last hash")?;
        reader.last_time = r.u64be("last time")?;
        for _ in 0..r.varint_max(FORK_WATCH, "recent count")? {
            let index = r.u64be("recent index")?;
            if index >= reader.next_index {
                return Err(DecodeError::InvalidValue { field: "recent index" }.into());
            }
            reader.recent.insert(index, r.array("recent hash")?);
        }
        Ok(reader)
    }

    /// The owner's keys.
    pub fn owner(&self) -> &PublicKeys {
        &self.owner
    }

    /// The device.
    pub fn device(&self) -> PartyId {
        self.device
    }

    /// Index of the next entry expected.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Addresses to fetch: the next entry's, and the recent accepted ones (forks, replays).
    pub fn watch_addresses(&self) -> Vec<Address> {
        let mut out: Vec<Address> =
            self.recent.keys().map(|index| self.keys.entry_address(*index)).collect();
        out.push(self.keys.entry_address(self.next_index));
        out
    }

    fn position_of(&self, address: &Address) -> Option<u64> {
        if *address == self.keys.entry_address(self.next_index) {
            return Some(self.next_index);
        }
        self.recent.keys().copied().find(|index| self.keys.entry_address(*index) == *address)
    }

    /// Processes one payload found at `address`.
    pub fn receive(&mut self, address: &Address, payload: &[u8]) -> LogOutcome {
        let Some(at) = self.position_of(address) else {
            return LogOutcome::Ignored(IgnoredEntry::NotWatched);
        };
        let Ok(entry) = SealedEntry::decode(payload) else {
            return LogOutcome::Ignored(IgnoredEntry::Malformed);
        };
        if entry.verify_signature(self.device, &self.owner).is_err() {
            return LogOutcome::Ignored(IgnoredEntry::NotSignedByOwner);
        }
        let hash = entry.hash(self.device);
        if entry.index != at {
            return LogOutcome::Anomaly(LogAnomaly::Misplaced { at, claims: entry.index });
        }
        if let Some(accepted) = self.recent.get(&at) {
            return if *accepted == hash {
                LogOutcome::Ignored(IgnoredEntry::Duplicate)
            } else {
                LogOutcome::Anomaly(LogAnomaly::Forked { index: at })
            };
        }
        if entry.previous != self.last_hash {
            return LogOutcome::Anomaly(LogAnomaly::ChainBroken { index: at });
        }
        let opened = entry
            .household_content_key(&self.keys, self.device)
            .and_then(|key| entry.open(&key, self.device).map(|event| (key, event)));
        let Ok((content_key, event)) = opened else {
            return LogOutcome::Anomaly(LogAnomaly::Unreadable { index: at });
        };
        if event.time < self.last_time {
            return LogOutcome::Anomaly(LogAnomaly::TimeWentBackwards { index: at });
        }
        self.recent.insert(at, hash);
        while self.recent.len() as u64 > FORK_WATCH {
            self.recent.pop_first();
        }
        self.next_index += 1;
        self.last_hash = hash;
        self.last_time = event.time;
        LogOutcome::Accepted(Box::new(VerifiedEntry { entry, hash, content_key, event }))
    }
}

/// Verifies a whole log offline from its entries in order and each entry's content key: chain,
/// positions, owner signatures, key commitments and device binding. Returns the events.
pub fn verify_chain(
    device: PartyId,
    owner: &PublicKeys,
    entries: &[(Vec<u8>, SymmetricKey)],
) -> Result<Vec<ConsentEvent>, ConsentError> {
    let mut previous = [0u8; 32];
    let mut last_time = 0;
    let mut events = Vec::with_capacity(entries.len());
    for (position, (bytes, content_key)) in entries.iter().enumerate() {
        let position = position as u64;
        let entry = SealedEntry::decode(bytes)?;
        entry.verify_signature(device, owner)?;
        if entry.index != position {
            return Err(ConsentError::Anomaly(LogAnomaly::Misplaced {
                at: position,
                claims: entry.index,
            }));
        }
        if entry.previous != previous {
            return Err(ConsentError::Anomaly(LogAnomaly::ChainBroken { index: position }));
        }
        let event = entry.open(content_key, device)?;
        if event.time < last_time {
            return Err(ConsentError::Anomaly(LogAnomaly::TimeWentBackwards { index: position }));
        }
        last_time = event.time;
        previous = entry.hash(device);
        events.push(event);
    }
    Ok(events)
}
