//! The provider's state directory.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use protocol::consent::{ConsentReceipt, GrantId};
use protocol::crypto::{PartyKeys, PartySecret, Role};
use protocol::provider::ProviderCard;
use rand_core::CryptoRng;

/// State-directory failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what this program writes.
    #[error("{0} is corrupt")]
    Corrupt(PathBuf),
    /// No identity yet.
    #[error("no provider identity in {0}: run `meterkast-provider init` first")]
    NoIdentity(PathBuf),
}

/// Replaces `path` with `bytes` atomically and durably (owner-only permissions).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_owned();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// A provider's state directory.
#[derive(Debug, Clone)]
pub struct ProviderStore {
    root: PathBuf,
}

impl ProviderStore {
    /// Opens `root` (created if missing).
    pub fn open(root: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(root)
            .map_err(|source| StoreError::Io { path: root.to_owned(), source })?;
        Ok(Self { root: root.to_owned() })
    }

    fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.root.join(rel);
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    fn write(&self, rel: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.root.join(rel);
        write_atomically(&path, bytes).map_err(|source| StoreError::Io { path, source })
    }

    /// Deletes a file (missing is fine).
    pub fn remove(&self, rel: &str) -> Result<(), StoreError> {
        let path = self.root.join(rel);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path, source }),
        }
    }

    /// Creates the identity if there is none; returns the keys and whether they are new.
    pub fn init(&self, rng: &mut impl CryptoRng) -> Result<(PartyKeys, bool), StoreError> {
        if let Some(keys) = self.keys_if_any()? {
            return Ok((keys, false));
        }
        let secret = PartySecret::generate(rng);
        self.write("identity.key", secret.expose_secret())?;
        Ok((PartyKeys::derive(&secret, Role::Provider), true))
    }

    fn keys_if_any(&self) -> Result<Option<PartyKeys>, StoreError> {
        let Some(bytes) = self.read("identity.key")? else { return Ok(None) };
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| StoreError::Corrupt(self.root.join("identity.key")))?;
        Ok(Some(PartyKeys::derive(&PartySecret::from_bytes(bytes), Role::Provider)))
    }

    /// The provider's keys.
    pub fn keys(&self) -> Result<PartyKeys, StoreError> {
        self.keys_if_any()?.ok_or_else(|| StoreError::NoIdentity(self.root.clone()))
    }

    /// Saves the card.
    pub fn save_card(&self, card: &ProviderCard) -> Result<(), StoreError> {
        self.write("card.bin", card.encode())
    }

    /// The card, if created.
    pub fn card(&self) -> Result<Option<ProviderCard>, StoreError> {
        let Some(bytes) = self.read("card.bin")? else { return Ok(None) };
        ProviderCard::decode(&bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt(self.root.join("card.bin")))
    }

    /// Keeps a receipt.
    pub fn save_receipt(&self, receipt: &ConsentReceipt) -> Result<(), StoreError> {
        self.write(
            &format!("receipts/{}.bin", hex::encode(receipt.grant().id.0)),
            &receipt.encode(),
        )
    }

    /// Every kept receipt.
    pub fn receipts(&self) -> Result<Vec<ConsentReceipt>, StoreError> {
        let dir = self.root.join("receipts");
        let Ok(entries) = fs::read_dir(&dir) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "bin") {
                continue;
            }
            let bytes =
                fs::read(&path).map_err(|source| StoreError::Io { path: path.clone(), source })?;
            out.push(ConsentReceipt::decode(&bytes).map_err(|_| StoreError::Corrupt(path))?);
        }
        out.sort_by_key(ConsentReceipt::granted_at);
        Ok(out)
    }

    /// The receipt of `grant`.
    pub fn receipt(&self, grant: GrantId) -> Result<Option<ConsentReceipt>, StoreError> {
        Ok(self.receipts()?.into_iter().find(|r| r.grant().id == grant))
    }

    /// Saved follower state of a device (opaque, encrypted to the provider).
    pub fn follower(&self, device: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(&format!("followers/{device}.bin"))
    }

    /// Saves follower state.
    pub fn save_follower(&self, device: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.write(&format!("followers/{device}.bin"), bytes)
    }

    /// Records a deletion statement.
    pub fn save_deletion(&self, grant: GrantId, statement: &[u8]) -> Result<(), StoreError> {
        self.write(&format!("deletions/{}.json", hex::encode(grant.0)), statement)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
