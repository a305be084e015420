//! The household's devices as the unlocked wallet holds them, and the steps that talk to the
//! node: pairing, reading and writing each device's consent log, reading delivery receipts.
//!
//! ```text
//!  pairing code ─► ExpectAnnouncement ─ announcement (node) ─► claim ─► publish (PoW)
//!                  ExpectConfirmation ◄─ confirmation (node) ─► PairedDevice ─► DevicePaired entry
//!  unlock ─► Book (storage) ─► per device: log key (sealed) ─► LogReader over the node's entries
//!            └─► ConsentLogWriter::resume(accepted entries)   (grant keys come back from the log)
//!  grant / deny / revoke / remove ─► writer.append ─► publish ─► reader.receive (same bytes)
//!  poll ─► next log entry (another browser of this wallet) + next delivery receipts
//! ```
//!
//! Every payload from the node is verified before it counts: log entries by the [`LogReader`]
//! (owner signature, chain, position), receipts by [`DeliveryReceipt::open`] (household key,
//! device signature). Nothing here holds a borrow across an `await`: the caller keeps the
//! [`Household`] in a cell and each step takes what it needs, awaits, then applies the result.

use gloo_timers::future::TimeoutFuture;
use protocol::channel::Tier;
use protocol::consent::{
    ConsentEvent, ConsentLogWriter, DeliveryReceipt, EventKind, Grant, LogOutcome, LogReader,
    Publish, VerifiedEntry, WrittenEntry,
};
use protocol::crypto::{PartyKeys, PublicKeys, SymmetricKey};
use protocol::pairing::{
    Confirmation, ExpectAnnouncement, PairedDevice, PairingCode, PairingError, owner_keys,
};
use protocol::provider::{ProviderCard, SignedRequest};
use protocol::tangle::Address;

use super::Rng;
use super::book::{LogHead, StoredDevice};
use super::time::unix_now;
use crate::api::ApiError;
use crate::vault::VaultError;

/// How long pairing waits for the device's announcement, then for its confirmation.
const PAIRING_WAIT_SECS: u32 = 60;
/// Pause between two looks at the node while pairing.
const PAIRING_POLL_MS: u32 = 1_000;
/// Messages per page when listing an address.
const PAGE: usize = 100;

/// Why a wallet step failed, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The node setting is unusable.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// No node answered, or none accepted the message.
    #[error("the node could not be used: {0}")]
    Node(String),
    /// The pairing code is wrong, or a pairing message is invalid.
    #[error("{0}")]
    Pairing(#[from] PairingError),
    /// The device did not answer in time.
    #[error("{0}")]
    Timeout(&'static str),
    /// A consent-log operation failed.
    #[error("the consent log: {0}")]
    Consent(#[from] protocol::consent::ConsentError),
    /// Stored wallet state could not be sealed or opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The device is paired with this wallet already.
    #[error("this device is already paired with your wallet")]
    AlreadyPaired,
    /// The wallet was locked in the meantime.
    #[error("the wallet is locked")]
    Locked,
    /// The device has left this wallet (removed or handed over).
    #[error("this device was removed from your wallet")]
    DeviceRemoved,
}

fn node_error(error: tangle_client::ClientError) -> WalletError {
    WalletError::Node(error.to_string())
}

/// Every payload at `address`, from the first node that answers (all pages).
pub async fn fetch_all(
    client: &tangle_client::Client,
    address: [u8; 32],
) -> Result<Vec<Vec<u8>>, WalletError> {
    let mut last_error = None;
    for node in 0..client.nodes().len() {
        let mut payloads = Vec::new();
        let mut after = 0;
        let outcome = loop {
            match client.list(node, Address(address), after, PAGE).await {
                Ok(page) => {
                    payloads.extend(page.messages.iter().map(|(_, m)| m.payload().to_vec()));
                    if !page.more {
                        break Ok(());
                    }
                    after = page.next_after;
                }
                Err(error) => break Err(error),
            }
        };
        match outcome {
            Ok(()) => return Ok(payloads),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.map_or(WalletError::Api(ApiError::NoNode), node_error))
}

/// Publishes one item with proof of work to every configured node.
pub async fn publish(client: &tangle_client::Client, item: Publish) -> Result<(), WalletError> {
    let now_ms = unix_now().saturating_mul(1_000);
    client.publish(Address(item.address), now_ms, item.payload).await.map_err(node_error)?;
    Ok(())
}

/// Pairs with the device showing `code` (text or `meterkast:pair/` link). `progress` hears
/// each step in words.
pub async fn pair(
    client: &tangle_client::Client,
    wallet: &PartyKeys,
    code: &str,
    progress: impl Fn(&'static str),
) -> Result<PairedDevice, WalletError> {
    let mut rng = super::rng();
    let start = ExpectAnnouncement::new(PairingCode::parse(code)?);
    progress("Looking for the device on the node…");
    let mut waited = 0;
    let (expect, claim) = loop {
        let announcements = fetch_all(client, start.announcement_address()).await?;
        let refs: Vec<&[u8]> = announcements.iter().map(Vec::as_slice).collect();
        match start.claim(wallet, &refs, &mut rng) {
            Ok(found) => break found,
            Err(PairingError::NoAnnouncement) if waited < PAIRING_WAIT_SECS => {
                TimeoutFuture::new(PAIRING_POLL_MS).await;
                waited += 1;
            }
            Err(PairingError::NoAnnouncement) => {
                return Err(WalletError::Timeout(
                    "the device was not found on the node: is it running, connected to the \
                     same node, and showing this code?",
                ));
            }
            Err(error) => return Err(error.into()),
        }
    };
    progress("Found the device; sending your claim (proof of work)…");
    let confirmation_address = expect.confirmation_address();
    publish(client, claim).await?;
    progress("Waiting for the device to confirm…");
    let mut expect = expect;
    let mut waited = 0;
    loop {
        for payload in fetch_all(client, confirmation_address).await? {
            match expect.confirm(&payload) {
                Confirmation::Paired(paired) => return Ok(*paired),
                Confirmation::Rejected { state, .. } => expect = *state,
            }
        }
        if waited >= PAIRING_WAIT_SECS {
            return Err(WalletError::Timeout(
                "the device did not confirm: check the code (a wrong code is refused silently) \
                 and try again",
            ));
        }
        TimeoutFuture::new(PAIRING_POLL_MS).await;
        waited += 1;
    }
}

/// Something the log reader refused that the household must see (a forked, replayed or
/// altered log means the owner key misbehaved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogWarning(pub String);

/// One paired device with its consent log and delivery receipts, as verified so far.
#[derive(Debug)]
pub struct HouseholdDevice {
    /// The device's public keys.
    pub device: PublicKeys,
    /// The wallet's owner keys for this device.
    pub owner: PartyKeys,
    log_key: SymmetricKey,
    /// The pairing transcript hash.
    pub pairing_id: [u8; 32],
    /// When this wallet paired it (wallet clock).
    pub paired_at: u64,
    reader: LogReader,
    writer: ConsentLogWriter,
    /// Accepted log entries, in order.
    pub entries: Vec<VerifiedEntry>,
    /// Opened delivery receipts, in order of their number.
    pub receipts: Vec<DeliveryReceipt>,
    /// What the reader refused and the household must know.
    pub warnings: Vec<LogWarning>,
}

impl HouseholdDevice {
    fn new(
        device: PublicKeys,
        owner: PartyKeys,
        log_key: SymmetricKey,
        pairing_id: [u8; 32],
        paired_at: u64,
    ) -> Self {
        let reader = LogReader::new(device.id(), owner.public().clone(), &log_key);
        let writer = ConsentLogWriter::new(device.id(), &log_key);
        Self {
            device,
            owner,
            log_key,
            pairing_id,
            paired_at,
            reader,
            writer,
            entries: Vec::new(),
            receipts: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A device just paired (its log is still empty).
    pub fn from_pairing(paired: PairedDevice, paired_at: u64) -> Self {
        Self::new(paired.device, paired.owner, paired.log_key, paired.pairing_id, paired_at)
    }

    /// A device from the wallet's book; its log is read from the node by [`Self::sync_log`].
    pub fn from_stored(
        stored: &StoredDevice,
        wallet: &PartyKeys,
        state_key: &SymmetricKey,
    ) -> Result<Self, WalletError> {
        let device = stored.device_keys()?;
        let owner = owner_keys(wallet, device.id())?;
        let log_key = stored.log_key(state_key)?;
        Ok(Self::new(device, owner, log_key, stored.pairing_id()?, stored.paired_at))
    }

    /// The book entry for this device (the log key sealed under `state_key`).
    pub fn to_stored(&self, state_key: &SymmetricKey) -> Result<StoredDevice, WalletError> {
        Ok(StoredDevice::new(
            &self.device,
            &self.pairing_id,
            self.paired_at,
            &self.log_key,
            state_key,
            self.entries.last().map(|e| (e.entry.index + 1, e.hash)),
        )?)
    }

    /// The device's id as hex.
    pub fn id_hex(&self) -> String {
        hex::encode(self.device.id().0)
    }

    /// Whether the owner removed or handed over the device (nothing more can be written).
    pub fn is_removed(&self) -> bool {
        self.entries.iter().any(|e| matches!(e.event.kind, EventKind::DeviceRemoved { .. }))
    }

    /// Address of the next log entry to look for.
    pub fn next_entry_address(&self) -> [u8; 32] {
        self.reader.keys().entry_address(self.reader.next_index())
    }

    /// Address of the next delivery receipt to look for.
    pub fn next_receipt_address(&self) -> [u8; 32] {
        self.reader.keys().receipt_address(self.receipts.len() as u64)
    }

    /// Feeds payloads found at the next entry address; true if an entry was accepted.
    pub fn accept_entries(&mut self, address: [u8; 32], payloads: &[Vec<u8>]) -> bool {
        let mut accepted = false;
        for payload in payloads {
            match self.reader.receive(&address, payload) {
                LogOutcome::Accepted(entry) => {
                    self.entries.push(*entry);
                    accepted = true;
                    break;
                }
                LogOutcome::Anomaly(anomaly) => {
                    let warning = LogWarning(format!(
                        "the consent log on the node is inconsistent ({anomaly:?}): someone \
                         holding this wallet's keys wrote a different history"
                    ));
                    if !self.warnings.contains(&warning) {
                        self.warnings.push(warning);
                    }
                }
                LogOutcome::Ignored(_) => {}
            }
        }
        if accepted {
            self.rebuild_writer();
        }
        accepted
    }

    /// Compares what the node gave with the head this wallet saw before: fewer entries means a
    /// node withholds part of the history, another hash at that position a forked log.
    pub fn check_head(&mut self, head: &LogHead) {
        let seen = usize::try_from(head.entries).unwrap_or(usize::MAX);
        let warning = match seen.checked_sub(1).map(|last| self.entries.get(last)) {
            None => return,
            Some(None) => LogWarning(format!(
                "the node shows {} entries of this device's consent log, but this wallet wrote                  or saw {seen}: the node is withholding part of your history (try another node)",
                self.entries.len()
            )),
            Some(Some(entry)) if hex::encode(entry.hash) != head.hash => LogWarning(
                "the consent log on the node differs from the one this wallet saw: someone                  holding this wallet's keys wrote a different history"
                    .to_owned(),
            ),
            Some(Some(_)) => return,
        };
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// Feeds payloads found at the next receipt address; true if a receipt was opened.
    pub fn accept_receipts(&mut self, payloads: &[Vec<u8>]) -> bool {
        let n = self.receipts.len() as u64;
        let opened = payloads
            .iter()
            .find_map(|p| DeliveryReceipt::open(self.reader.keys(), &self.device, n, p).ok());
        match opened {
            Some(receipt) => {
                self.receipts.push(receipt);
                true
            }
            None => false,
        }
    }

    fn rebuild_writer(&mut self) {
        // The entries came from this device's reader, so they chain from position 0.
        if let Ok(writer) = ConsentLogWriter::resume(self.device.id(), &self.log_key, &self.entries)
        {
            self.writer = writer;
        }
    }

    /// The grant answering a verified request for `tiers` (fresh id and grant key, the
    /// household's pseudonym towards this provider from this log).
    pub fn answer(
        &self,
        request: &SignedRequest,
        card: &ProviderCard,
        tiers: &[Tier],
        rng: &mut Rng,
    ) -> Result<Grant, WalletError> {
        Ok(Grant::answering(request, card, tiers, self.writer.keys(), rng)?)
    }

    /// Writes `kind` as the next entry; returns what to publish. Call [`Self::confirm_written`]
    /// once a node acknowledged it, or [`Self::abandon_written`] if none did.
    pub fn write(&mut self, kind: EventKind, rng: &mut Rng) -> Result<WrittenEntry, WalletError> {
        if self.is_removed() {
            return Err(WalletError::DeviceRemoved);
        }
        // The log's time never goes backwards, even if this browser's clock does.
        let time = unix_now().max(self.entries.last().map_or(0, |e| e.event.time));
        let event = ConsentEvent { device: self.device.id(), time, kind };
        Ok(self.writer.append(&self.owner, &event, rng)?)
    }

    /// The node stored the entry: read it back like any other.
    pub fn confirm_written(&mut self, written: &WrittenEntry) {
        self.accept_entries(
            written.publish.address,
            std::slice::from_ref(&written.publish.payload),
        );
    }

    /// No node stored the entry: the writer forgets it (rebuilt from the accepted entries).
    pub fn abandon_written(&mut self) {
        self.rebuild_writer();
    }

    /// The export of this device's consent records (JSON, verifiable offline).
    pub fn export(&self, now: u64) -> Result<String, WalletError> {
        let entries: Vec<(Vec<u8>, SymmetricKey)> = self
            .entries
            .iter()
            .map(|e| (e.entry.bytes().to_vec(), e.content_key.clone()))
            .collect();
        Ok(protocol::consent::export_history(self.device.id(), self.owner.public(), &entries, now)?)
    }
}

/// Reads `device`'s log and receipts from the node up to the newest, step by step (the
/// closures borrow the device only between awaits).
pub async fn catch_up(
    client: &tangle_client::Client,
    next_entry: impl Fn() -> Option<[u8; 32]>,
    accept_entries: impl Fn([u8; 32], &[Vec<u8>]) -> bool,
    next_receipt: impl Fn() -> Option<[u8; 32]>,
    accept_receipts: impl Fn(&[Vec<u8>]) -> bool,
) -> Result<bool, WalletError> {
    let mut changed = false;
    while let Some(address) = next_entry() {
        let payloads = fetch_all(client, address).await?;
        if payloads.is_empty() || !accept_entries(address, &payloads) {
            break;
        }
        changed = true;
    }
    while let Some(address) = next_receipt() {
        let payloads = fetch_all(client, address).await?;
        if payloads.is_empty() || !accept_receipts(&payloads) {
            break;
        }
        changed = true;
    }
    Ok(changed)
}
