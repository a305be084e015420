//! Wire formats of stream messages and keyloads (documented in `protocol/spec/channel.md`).
//!
//! ```text
//! stream payload  = u8 version(1) ‖ nonce(24) ‖ XChaCha20-Poly1305(encryption key, nonce, AAD, body)
//! AAD             = "meterkast/v1/stream-message" ‖ StreamId ‖ EpochId ‖ u64be seq ‖ u8 version
//! body            = u8 kind ‖ prev_digest(32) ‖ varint time ‖ kind-specific
//!   kind 1 data       varint n (1..=64) ‖ n × Reading
//!   kind 2 checkpoint varint first_seq ‖ varint n ‖ n × digest(32) ‖ signature(3309)
//!   kind 3 rotation   varint first_seq ‖ varint n ‖ n × digest(32) ‖ varint k ‖ k × keyload(1211)
//!                     ‖ signature(3309)
//!   kind 4 keyloads   varint k (1..=24) ‖ k × keyload(1211)   (overflow of a large rotation; covered
//!                     by the rotation that follows it)
//! digest(msg)     = SHA3-256("meterkast/v1/message-digest" ‖ address ‖ stream payload)
//! ```

use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::codec::{DecodeError, Reader, Writer};
use super::epoch::{Address, EpochId, EpochKeys, StreamId, Tier};
use super::reading::{Reading, ReadingError};
use crate::crypto::{
    self, AEAD_NONCE_LEN, AEAD_TAG_LEN, CryptoError, KEM_CIPHERTEXT_LEN, KemCiphertext, PartyId,
    PartyKeys, PublicKeys, SIGNATURE_LEN, SignatureContext, SymmetricKey,
};

/// Version byte of stream payloads and inbox messages.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Most readings one data message may carry.
pub const MAX_READINGS_PER_MESSAGE: usize = 64;
/// Largest payload the channel emits: the tangle's payload cap (32 KiB), so every item fits one
/// tangle message.
pub const MAX_STREAM_PAYLOAD: usize = 32_768;
/// Most messages one checkpoint may cover (a 1 s stream with a 60 s interval needs 60); bounded
/// so the digest list, signature and some keyloads fit [`MAX_STREAM_PAYLOAD`].
pub const MAX_CHECKPOINT_COVERAGE: usize = 800;
/// Most keyloads in one keyload-batch message (24 × 1,211 B ≈ 29 KB).
pub const MAX_KEYLOADS_PER_BATCH: usize = 24;
/// Most keyloads carried inside the rotation message itself (more go into keyload batches).
pub const MAX_KEYLOADS_PER_ROTATION: usize = 24;

const KIND_DATA: u8 = 1;
const KIND_CHECKPOINT: u8 = 2;
const KIND_ROTATION: u8 = 3;
const KIND_KEYLOADS: u8 = 4;
const INBOX_KIND_KEYLOAD: u8 = 1;

/// Length of a keyload body: version, stream, tier, epoch key, start, issued, link flag+id+end.
const KEYLOAD_BODY_LEN: usize = 1 + 32 + 1 + 32 + 8 + 8 + 1 + 16 + 8;
/// Length of a keyload inside a rotation message.
pub const KEYLOAD_LEN: usize = KEM_CIPHERTEXT_LEN + KEYLOAD_BODY_LEN + AEAD_TAG_LEN;
/// Length of an inbox keyload message (version, kind, keyload carrying a signature).
pub const INBOX_KEYLOAD_LEN: usize = 2 + KEYLOAD_LEN + SIGNATURE_LEN;

/// SHA3-256 digest identifying one published message (address and bytes).
pub(crate) fn message_digest(address: &Address, payload: &[u8]) -> [u8; 32] {
    crypto::digest(b"meterkast/v1/message-digest", &[address, payload])
}

fn stream_aad(keys: &EpochKeys, seq: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(b"meterkast/v1/stream-message")
        .bytes(&keys.stream().0)
        .bytes(&keys.id().0)
        .u64be(seq)
        .u8(FORMAT_VERSION);
    w.finish()
}

/// Encrypts a message body for position `seq` of the epoch.
pub(crate) fn seal_stream_payload(
    keys: &EpochKeys,
    seq: u64,
    body: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let sealed = crypto::seal(keys.encryption_key(), &nonce, &stream_aad(keys, seq), body)?;
    let mut out = Vec::with_capacity(1 + AEAD_NONCE_LEN + sealed.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Why a payload at a stream address was refused at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageRejection {
    /// Unknown format version or too short to hold nonce and tag.
    #[error("not a stream message")]
    NotAStreamMessage,
    /// AEAD verification failed: altered bytes, or a message replayed at another position or
    /// epoch (the associated data binds both).
    #[error("authentication failed (tampered or replayed)")]
    Unauthentic,
    /// Decrypted but the body is malformed (only a key holder can cause this).
    #[error("malformed body: {0}")]
    Malformed(DecodeError),
    /// A checkpoint or rotation whose signature does not verify under the device key.
    #[error("checkpoint signature invalid")]
    BadSignature,
    /// A checkpoint whose covered range does not end right before it.
    #[error("checkpoint covers an inconsistent range")]
    InconsistentCheckpoint,
}

/// Decrypts the payload found at position `seq` of the epoch.
pub(crate) fn open_stream_payload(
    keys: &EpochKeys,
    seq: u64,
    payload: &[u8],
) -> Result<Vec<u8>, MessageRejection> {
    if payload.len() < 1 + AEAD_NONCE_LEN + AEAD_TAG_LEN || payload[0] != FORMAT_VERSION {
        return Err(MessageRejection::NotAStreamMessage);
    }
    let mut nonce = [0u8; AEAD_NONCE_LEN];
    nonce.copy_from_slice(&payload[1..=AEAD_NONCE_LEN]);
    crypto::open(
        keys.encryption_key(),
        &nonce,
        &stream_aad(keys, seq),
        &payload[1 + AEAD_NONCE_LEN..],
    )
    .map_err(|_| MessageRejection::Unauthentic)
}

/// Whether a checkpoint is periodic or ends its epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckpointKind {
    Periodic,
    Rotation,
}

/// A decrypted data message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DataBody {
    pub(crate) prev_digest: [u8; 32],
    pub(crate) time: u64,
    pub(crate) readings: Vec<Reading>,
}

/// A decrypted checkpoint or rotation message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckpointBody {
    pub(crate) kind: CheckpointKind,
    pub(crate) prev_digest: [u8; 32],
    pub(crate) time: u64,
    /// First covered position; coverage runs to the checkpoint's own position − 1.
    pub(crate) first_seq: u64,
    /// Digest of every covered message, in position order.
    pub(crate) digests: Vec<[u8; 32]>,
    /// Keyloads for the members that stay (rotation only).
    pub(crate) keyloads: Vec<Vec<u8>>,
    pub(crate) signature: Vec<u8>,
}

/// A decrypted batch of keyloads that did not fit into the rotation message after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyloadBatch {
    pub(crate) prev_digest: [u8; 32],
    pub(crate) time: u64,
    pub(crate) keyloads: Vec<Vec<u8>>,
}

impl KeyloadBatch {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(KIND_KEYLOADS).bytes(&self.prev_digest).varint(self.time);
        w.varint(self.keyloads.len() as u64);
        for keyload in &self.keyloads {
            w.bytes(keyload);
        }
        w.finish()
    }
}

/// A decrypted stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StreamBody {
    Data(DataBody),
    Keyloads(KeyloadBatch),
    Checkpoint(CheckpointBody),
}

impl DataBody {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, ReadingError> {
        let mut w = Writer::new();
        w.u8(KIND_DATA).bytes(&self.prev_digest).varint(self.time);
        w.varint(self.readings.len() as u64);
        for reading in &self.readings {
            reading.encode_into(&mut w)?;
        }
        Ok(w.finish())
    }
}

impl CheckpointBody {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode_unsigned(&mut w);
        w.bytes(&self.signature);
        w.finish()
    }

    fn encode_unsigned(&self, w: &mut Writer) {
        let kind = match self.kind {
            CheckpointKind::Periodic => KIND_CHECKPOINT,
            CheckpointKind::Rotation => KIND_ROTATION,
        };
        w.u8(kind).bytes(&self.prev_digest).varint(self.time);
        w.varint(self.first_seq).varint(self.digests.len() as u64);
        for digest in &self.digests {
            w.bytes(digest);
        }
        if self.kind == CheckpointKind::Rotation {
            w.varint(self.keyloads.len() as u64);
            for keyload in &self.keyloads {
                w.bytes(keyload);
            }
        }
    }

    /// The bytes the device signs: the stream, epoch and own position, then the body without
    /// its signature. Binding the position makes a checkpoint valid at exactly one address.
    pub(crate) fn statement(&self, stream: StreamId, epoch: EpochId, seq: u64) -> Vec<u8> {
        let mut w = Writer::new();
        w.bytes(b"meterkast/v1/checkpoint-statement").bytes(&stream.0).bytes(&epoch.0).u64be(seq);
        self.encode_unsigned(&mut w);
        w.finish()
    }

    /// Positions covered: `first_seq .. first_seq + digests.len()`.
    pub(crate) fn covered_end(&self) -> Option<u64> {
        self.first_seq.checked_add(self.digests.len() as u64)
    }
}

impl StreamBody {
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let kind = r.u8("message kind")?;
        let prev_digest = r.array::<32>("previous digest")?;
        let time = r.varint("time")?;
        let body = match kind {
            KIND_DATA => {
                let count = r.varint_max(MAX_READINGS_PER_MESSAGE as u64, "reading count")?;
                if count == 0 {
                    return Err(DecodeError::InvalidValue { field: "reading count" });
                }
                let mut readings = Vec::new();
                for _ in 0..count {
                    readings.push(Reading::decode_from(&mut r)?);
                }
                StreamBody::Data(DataBody { prev_digest, time, readings })
            }
            KIND_KEYLOADS => {
                let count = r.varint_max(MAX_KEYLOADS_PER_BATCH as u64, "keyload count")?;
                if count == 0 {
                    return Err(DecodeError::InvalidValue { field: "keyload count" });
                }
                let mut keyloads = Vec::new();
                for _ in 0..count {
                    keyloads.push(r.take(KEYLOAD_LEN, "keyload")?.to_vec());
                }
                StreamBody::Keyloads(KeyloadBatch { prev_digest, time, keyloads })
            }
            KIND_CHECKPOINT | KIND_ROTATION => {
                let first_seq = r.varint("first covered sequence")?;
                let count = r.varint_max(MAX_CHECKPOINT_COVERAGE as u64, "covered count")?;
                let mut digests = Vec::new();
                for _ in 0..count {
                    digests.push(r.array::<32>("covered digest")?);
                }
                let mut keyloads = Vec::new();
                let kind = if kind == KIND_ROTATION {
                    let count = r.varint_max(MAX_KEYLOADS_PER_ROTATION as u64, "keyload count")?;
                    for _ in 0..count {
                        keyloads.push(r.take(KEYLOAD_LEN, "keyload")?.to_vec());
                    }
                    CheckpointKind::Rotation
                } else {
                    CheckpointKind::Periodic
                };
                let signature = r.take(SIGNATURE_LEN, "signature")?.to_vec();
                StreamBody::Checkpoint(CheckpointBody {
                    kind,
                    prev_digest,
                    time,
                    first_seq,
                    digests,
                    keyloads,
                    signature,
                })
            }
            _ => return Err(DecodeError::InvalidValue { field: "message kind" }),
        };
        r.finish()?;
        Ok(body)
    }
}

/// Where a new epoch comes from, as the device knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochLink {
    /// The epoch that ends.
    pub epoch: EpochId,
    /// The first position the device did not publish in that epoch (for a rotation: the
    /// rotation message's own position + 1; after a restart: what the restored state knew).
    pub end_seq: u64,
}

/// What a keyload hands a provider: one epoch key of one stream and where to start reading.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct KeyloadBody {
    #[zeroize(skip)]
    pub(crate) stream: StreamId,
    #[zeroize(skip)]
    pub(crate) tier: Tier,
    pub(crate) epoch_key: [u8; 32],
    pub(crate) start_seq: u64,
    pub(crate) issued_at: u64,
    #[zeroize(skip)]
    pub(crate) previous: Option<EpochLink>,
}

impl core::fmt::Debug for KeyloadBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyloadBody")
            .field("stream", &self.stream)
            .field("tier", &self.tier)
            .field("epoch_key", &"<redacted>")
            .field("start_seq", &self.start_seq)
            .finish_non_exhaustive()
    }
}

impl KeyloadBody {
    fn encode(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(FORMAT_VERSION)
            .bytes(&self.stream.0)
            .u8(self.tier.code())
            .bytes(&self.epoch_key)
            .u64be(self.start_seq)
            .u64be(self.issued_at);
        match self.previous {
            Some(link) => w.u8(1).bytes(&link.epoch.0).u64be(link.end_seq),
            None => w.u8(0).bytes(&[0; 16]).u64be(0),
        };
        zeroize::Zeroizing::new(w.finish())
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("keyload version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion { what: "keyload", version });
        }
        let stream = StreamId(r.array("stream id")?);
        let tier =
            Tier::from_code(r.u8("tier")?).ok_or(DecodeError::InvalidValue { field: "tier" })?;
        let epoch_key = r.array("epoch key")?;
        let start_seq = r.u64be("start sequence")?;
        let issued_at = r.u64be("issued at")?;
        let has_previous = r.bool("previous epoch flag")?;
        let epoch = EpochId(r.array("previous epoch")?);
        let end_seq = r.u64be("previous end")?;
        let previous = has_previous.then_some(EpochLink { epoch, end_seq });
        r.finish()?;
        Ok(Self { stream, tier, epoch_key, start_seq, issued_at, previous })
    }
}

/// The AEAD key for a keyload, bound to the recipient and the KEM ciphertext. Each
/// encapsulation yields a fresh shared secret, so each key seals exactly one message and the
/// all-zero nonce is safe.
fn keyload_key(
    shared: &crypto::SharedSecret,
    recipient: PartyId,
    ct: &KemCiphertext,
) -> SymmetricKey {
    let key = crypto::expand_key::<32>(
        b"meterkast/v1/keyload",
        shared.expose_secret(),
        &[b"keyload-key", &recipient.0, ct.as_bytes()],
    );
    SymmetricKey::from_bytes(*key)
}

fn keyload_aad(recipient: PartyId, ct: &KemCiphertext) -> Vec<u8> {
    let mut aad = b"meterkast/v1/keyload".to_vec();
    aad.extend_from_slice(&recipient.0);
    aad.extend_from_slice(ct.as_bytes());
    aad
}

/// Seals `body` (and, for inbox keyloads, a signature) to `recipient`: `kem_ct ‖ AEAD(...)`.
fn seal_keyload_with(
    recipient: &PublicKeys,
    body_and_signature: &[u8],
    ct: &KemCiphertext,
    shared: &crypto::SharedSecret,
) -> Result<Vec<u8>, CryptoError> {
    let key = keyload_key(shared, recipient.id(), ct);
    let sealed = crypto::seal(
        &key,
        &[0; AEAD_NONCE_LEN],
        &keyload_aad(recipient.id(), ct),
        body_and_signature,
    )?;
    let mut out = Vec::with_capacity(KEM_CIPHERTEXT_LEN + sealed.len());
    out.extend_from_slice(ct.as_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// A keyload for a rotation message (authenticated by the rotation's signature).
pub(crate) fn seal_rotation_keyload(
    recipient: &PublicKeys,
    body: &KeyloadBody,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let (ct, shared) = recipient.encapsulate(rng);
    seal_keyload_with(recipient, &body.encode(), &ct, &shared)
}

fn inbox_signed_message(recipient: PartyId, ct: &KemCiphertext, body: &[u8]) -> Vec<u8> {
    let mut message = recipient.0.to_vec();
    message.extend_from_slice(ct.as_bytes());
    message.extend_from_slice(body);
    message
}

/// An inbox message: `version ‖ kind ‖ kem_ct ‖ AEAD(body ‖ ML-DSA signature)`.
///
/// The signature is inside the encryption, so only the recipient can check (or even see) which
/// device sent it: an observer of the inbox learns that a keyload arrived, not from whom.
pub(crate) fn seal_inbox_keyload(
    device: &PartyKeys,
    recipient: &PublicKeys,
    body: &KeyloadBody,
    rng: &mut impl CryptoRng,
) -> Result<Vec<u8>, CryptoError> {
    let (ct, shared) = recipient.encapsulate(rng);
    let encoded = body.encode();
    let signature = device.sign(
        SignatureContext::InboxKeyload,
        &inbox_signed_message(recipient.id(), &ct, &encoded),
        rng,
    )?;
    let mut plaintext = zeroize::Zeroizing::new(encoded.to_vec());
    plaintext.extend_from_slice(&signature);
    let keyload = seal_keyload_with(recipient, &plaintext, &ct, &shared)?;
    let mut out = Vec::with_capacity(INBOX_KEYLOAD_LEN);
    out.push(FORMAT_VERSION);
    out.push(INBOX_KIND_KEYLOAD);
    out.extend_from_slice(&keyload);
    Ok(out)
}

/// Opens a rotation keyload if it is for `me`; `None` if it is someone else's (or garbage).
pub(crate) fn open_rotation_keyload(me: &PartyKeys, keyload: &[u8]) -> Option<KeyloadBody> {
    if keyload.len() != KEYLOAD_LEN {
        return None;
    }
    let ct = KemCiphertext::from_slice(&keyload[..KEM_CIPHERTEXT_LEN]).ok()?;
    let shared = me.decapsulate(&ct);
    let key = keyload_key(&shared, me.id(), &ct);
    let plain = crypto::open(
        &key,
        &[0; AEAD_NONCE_LEN],
        &keyload_aad(me.id(), &ct),
        &keyload[KEM_CIPHERTEXT_LEN..],
    )
    .ok()?;
    let plain = zeroize::Zeroizing::new(plain);
    KeyloadBody::decode(&plain).ok()
}

/// Why an inbox message was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InboxRejection {
    /// Not an inbox keyload of a known version and length.
    #[error("not an inbox keyload")]
    NotAKeyload,
    /// Not sealed to this provider (or altered).
    #[error("keyload does not open with this provider's key")]
    NotForUs,
    /// Opens, but the device's signature does not verify: not from this device.
    #[error("keyload not signed by this device")]
    NotFromDevice,
    /// Signed by the device, for a stream of another device or an unknown tier.
    #[error("keyload names a stream this follower does not follow")]
    UnknownStream,
}

/// Opens an inbox keyload for `me` and checks `device`'s signature.
pub(crate) fn open_inbox_keyload(
    me: &PartyKeys,
    device: &PublicKeys,
    payload: &[u8],
) -> Result<KeyloadBody, InboxRejection> {
    if payload.len() != INBOX_KEYLOAD_LEN
        || payload[0] != FORMAT_VERSION
        || payload[1] != INBOX_KIND_KEYLOAD
    {
        return Err(InboxRejection::NotAKeyload);
    }
    let keyload = &payload[2..];
    let ct = KemCiphertext::from_slice(&keyload[..KEM_CIPHERTEXT_LEN])
        .map_err(|_| InboxRejection::NotAKeyload)?;
    let shared = me.decapsulate(&ct);
    let key = keyload_key(&shared, me.id(), &ct);
    let plain = crypto::open(
        &key,
        &[0; AEAD_NONCE_LEN],
        &keyload_aad(me.id(), &ct),
        &keyload[KEM_CIPHERTEXT_LEN..],
    )
    .map_err(|_| InboxRejection::NotForUs)?;
    let plain = zeroize::Zeroizing::new(plain);
    let (body_bytes, signature) =
        plain.split_at_checked(KEYLOAD_BODY_LEN).ok_or(InboxRejection::NotAKeyload)?;
    device
        .verify(
            SignatureContext::InboxKeyload,
            &inbox_signed_message(me.id(), &ct, body_bytes),
            signature,
        )
        .map_err(|_| InboxRejection::NotFromDevice)?;
    KeyloadBody::decode(body_bytes).map_err(|_| InboxRejection::NotAKeyload)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    fn sample_bodies() -> Vec<Vec<u8>> {
        let data = DataBody { prev_digest: [7; 32], time: 99, readings: vec![Reading::default()] };
        let checkpoint = CheckpointBody {
            kind: CheckpointKind::Rotation,
            prev_digest: [1; 32],
            time: 5,
            first_seq: 3,
            digests: vec![[2; 32], [3; 32]],
            keyloads: vec![vec![4; KEYLOAD_LEN]],
            signature: vec![5; SIGNATURE_LEN],
        };
        let batch =
            KeyloadBatch { prev_digest: [6; 32], time: 8, keyloads: vec![vec![9; KEYLOAD_LEN]] };
        vec![data.encode().unwrap(), checkpoint.encode(), batch.encode()]
    }

    #[test]
    fn bodies_round_trip_and_every_truncation_is_an_error() {
        for bytes in sample_bodies() {
            let decoded = StreamBody::decode(&bytes).unwrap();
            let reencoded = match &decoded {
                StreamBody::Data(d) => d.encode().unwrap(),
                StreamBody::Keyloads(b) => b.encode(),
                StreamBody::Checkpoint(c) => c.encode(),
            };
            assert_eq!(reencoded, bytes);
            for cut in 0..bytes.len() {
                assert!(StreamBody::decode(&bytes[..cut]).is_err());
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    mod property {
        use proptest::prelude::*;

        use super::*;

        proptest! {
            /// Whatever a key holder encrypts, decoding it returns a typed result, never panics.
            #[test]
            fn arbitrary_bodies_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
                let _ = StreamBody::decode(&bytes);
                let _ = KeyloadBody::decode(&bytes);
                let _ = Reading::decode(&bytes);
            }

            #[test]
            fn mutated_bodies_never_panic(which in 0usize..3, position in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let mut bytes = sample_bodies().swap_remove(which);
                let at = position.index(bytes.len());
                bytes[at] = byte;
                let _ = StreamBody::decode(&bytes);
            }
        }
    }
}
