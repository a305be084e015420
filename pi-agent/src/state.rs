//! The agent's state directory: everything that must survive a restart, written crash-safely.
//!
//! ```text
//!  <state>/
//!    identity.key     the device's 32-byte party secret (0600); all its keys derive from it
//!    pairing.bin      owner's public keys, consent-log key, pairing id (0600) — absent if unpaired
//!    pairing-code     the code currently shown for pairing (0600) — absent once paired
//!    pairing-seed     the 32 bytes that code was drawn from (0600), so a restart before pairing
//!                     shows (and accepts) the same code — absent once paired
//!    channel.bin      stream membership (`SavedDevice`), no secret keys
//!    progress.json    consent-log entries applied, last reading published
//!    status.json      what `pi-agent status` shows (written by `run`)
//!    outbox/          the durable queue (see `queue`)
//! ```
//!
//! Every file is replaced with [`write_atomically`]: write a temporary file, `fsync` it, rename
//! it over the old one, `fsync` the directory. After a crash each file is either the old or the
//! new version, never a mix — the 2018 client kept all of this in RAM, so a restart unpaired
//! the device and re-used its addresses.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use protocol::crypto::{PUBLIC_KEYS_LEN, PartyKeys, PartySecret, PublicKeys, Role, SymmetricKey};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

/// Replaces `path` with `bytes` atomically and durably (owner-only permissions).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
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

/// State-directory failures.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file exists but is not what this program writes.
    #[error("{path} is corrupt ({why}); restore it from a backup or run `pi-agent reset`")]
    Corrupt {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// What the device learnt when it was paired (the owner's keys and the consent-log key).
#[derive(Debug)]
pub struct Pairing {
    /// The owner's (per-device) public keys: they sign the consent log.
    pub owner: PublicKeys,
    /// The key the consent log is sealed under.
    pub log_key: SymmetricKey,
    /// Names this pairing.
    pub pairing_id: [u8; 32],
    /// When (UTC seconds).
    pub paired_at: u64,
}

const PAIRING_MAGIC: &[u8; 4] = b"MKPA";

impl Pairing {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + PUBLIC_KEYS_LEN + 72);
        out.extend_from_slice(PAIRING_MAGIC);
        out.extend_from_slice(&self.owner.encode());
        out.extend_from_slice(self.log_key.expose_secret());
        out.extend_from_slice(&self.pairing_id);
        out.extend_from_slice(&self.paired_at.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let rest = bytes.strip_prefix(PAIRING_MAGIC)?;
        if rest.len() != PUBLIC_KEYS_LEN + 72 {
            return None;
        }
        let (owner, rest) = rest.split_at(PUBLIC_KEYS_LEN);
        let owner = PublicKeys::decode(owner).ok()?;
        let log_key = SymmetricKey::from_bytes(rest[..32].try_into().ok()?);
        let pairing_id = rest[32..64].try_into().ok()?;
        let paired_at = u64::from_le_bytes(rest[64..72].try_into().ok()?);
        Some(Self { owner, log_key, pairing_id, paired_at })
    }
}

/// Where the agent stands (small, rewritten often).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Consent-log entries whose effects were queued (replayed silently after a restart).
    pub consent_entries_applied: u64,
    /// Meter time (UTC seconds) of the last reading queued for publication.
    pub last_reading_at: Option<u64>,
}

/// A snapshot for `pi-agent status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// When this was written (UTC seconds).
    pub written_at: u64,
    /// The source being read.
    pub source: String,
    /// The device id (hex).
    pub device: String,
    /// The owner's id (hex), if paired.
    pub owner: Option<String>,
    /// Live grants: (grant id hex, provider id hex, tiers).
    pub grants: Vec<(String, String, Vec<String>)>,
    /// The last reading: meter time, import W, export W.
    pub last_reading: Option<(u64, u32, u32)>,
    /// Telegrams read, refused (CRC, timestamp), readings published.
    pub telegrams: u64,
    /// Telegrams refused.
    pub refused: u64,
    /// Messages waiting in the outbox.
    pub queue_depth: usize,
    /// Data messages dropped because the outbox was full.
    pub queue_refused: u64,
    /// Per node: URL, last success (UTC s), last error.
    pub nodes: Vec<(String, Option<u64>, Option<String>)>,
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// Opens (creating, owner-only) `root`.
    pub fn open(root: &Path) -> Result<Self, StateError> {
        fs::create_dir_all(root)
            .map_err(|source| StateError::Io { path: root.to_owned(), source })?;
        Ok(Self { root: root.to_owned() })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The outbox directory.
    pub fn outbox_dir(&self) -> PathBuf {
        self.root.join("outbox")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn read_optional(&self, name: &str) -> Result<Option<Vec<u8>>, StateError> {
        let path = self.path(name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let path = self.path(name);
        write_atomically(&path, bytes).map_err(|source| StateError::Io { path, source })
    }

    fn remove(&self, name: &str) -> Result<(), StateError> {
        let path = self.path(name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    fn corrupt(&self, name: &str, why: impl Into<String>) -> StateError {
        StateError::Corrupt { path: self.path(name), why: why.into() }
    }

    /// The device secret, if one was created.
    pub fn identity(&self) -> Result<Option<PartySecret>, StateError> {
        let Some(bytes) = self.read_optional("identity.key")? else { return Ok(None) };
        let bytes: [u8; 32] =
            bytes.try_into().map_err(|_| self.corrupt("identity.key", "not 32 bytes"))?;
        Ok(Some(PartySecret::from_bytes(bytes)))
    }

    /// Loads the identity or creates it (first start). Returns the keys and whether it is new.
    pub fn identity_or_create(
        &self,
        rng: &mut impl CryptoRng,
    ) -> Result<(PartySecret, bool), StateError> {
        if let Some(secret) = self.identity()? {
            return Ok((secret, false));
        }
        let secret = PartySecret::generate(rng);
        self.write("identity.key", secret.expose_secret())?;
        Ok((secret, true))
    }

    /// Derives the device keys from a secret.
    pub fn device_keys(secret: &PartySecret) -> PartyKeys {
        PartyKeys::derive(secret, Role::Device)
    }

    /// The pairing, if paired.
    pub fn pairing(&self) -> Result<Option<Pairing>, StateError> {
        let Some(bytes) = self.read_optional("pairing.bin")? else { return Ok(None) };
        Pairing::decode(&bytes).map(Some).ok_or_else(|| self.corrupt("pairing.bin", "undecodable"))
    }

    /// Records the pairing (and forgets the code that was shown and its seed).
    pub fn save_pairing(&self, pairing: &Pairing) -> Result<(), StateError> {
        self.write("pairing.bin", &pairing.encode())?;
        self.forget_pairing_code()
    }

    /// Forgets the owner (reset), and any code waiting to be used: the next start draws a new one.
    pub fn forget_pairing(&self) -> Result<(), StateError> {
        self.remove("pairing.bin")?;
        self.forget_pairing_code()?;
        self.save_progress(&Progress::default())
    }

    fn forget_pairing_code(&self) -> Result<(), StateError> {
        self.remove("pairing-seed")?;
        self.remove("pairing-code")
    }

    /// The seed of the pairing code being shown, if one was kept.
    pub fn pairing_seed(&self) -> Result<Option<[u8; 32]>, StateError> {
        let Some(bytes) = self.read_optional("pairing-seed")? else { return Ok(None) };
        let seed: [u8; 32] =
            bytes.try_into().map_err(|_| self.corrupt("pairing-seed", "not 32 bytes"))?;
        Ok(Some(seed))
    }

    /// Keeps the seed of the pairing code being shown (saved before the code itself).
    pub fn save_pairing_seed(&self, seed: &[u8; 32]) -> Result<(), StateError> {
        self.write("pairing-seed", seed)
    }

    /// The pairing code shown now, if unpaired.
    pub fn pairing_code(&self) -> Result<Option<String>, StateError> {
        Ok(self
            .read_optional("pairing-code")?
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned()))
    }

    /// Stores the code being shown.
    pub fn save_pairing_code(&self, code: &str) -> Result<(), StateError> {
        self.write("pairing-code", code.as_bytes())
    }

    /// The saved channel state.
    pub fn channel(&self) -> Result<Option<Vec<u8>>, StateError> {
        self.read_optional("channel.bin")
    }

    /// Saves the channel state.
    pub fn save_channel(&self, bytes: &[u8]) -> Result<(), StateError> {
        self.write("channel.bin", bytes)
    }

    /// Progress (default when absent).
    pub fn progress(&self) -> Result<Progress, StateError> {
        match self.read_optional("progress.json")? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| self.corrupt("progress.json", e.to_string())),
            None => Ok(Progress::default()),
        }
    }

    /// Saves progress.
    pub fn save_progress(&self, progress: &Progress) -> Result<(), StateError> {
        let bytes = serde_json::to_vec(progress).unwrap_or_default();
        self.write("progress.json", &bytes)
    }

    /// The last status snapshot.
    pub fn status(&self) -> Result<Option<Status>, StateError> {
        match self.read_optional("status.json")? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.corrupt("status.json", e.to_string())),
            None => Ok(None),
        }
    }

    /// Saves a status snapshot.
    pub fn save_status(&self, status: &Status) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(status).unwrap_or_default();
        self.write("status.json", &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two, longer").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two, longer");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn progress_round_trips_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.progress().unwrap(), Progress::default());
        let progress = Progress { consent_entries_applied: 3, last_reading_at: Some(9) };
        state.save_progress(&progress).unwrap();
        assert_eq!(state.progress().unwrap(), progress);
        fs::write(dir.path().join("identity.key"), b"short").unwrap();
        assert!(matches!(state.identity(), Err(StateError::Corrupt { .. })));
    }

    #[test]
    fn pairing_seed_is_kept_owner_only_and_forgotten_at_pairing_and_reset() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(state.pairing_seed().unwrap(), None);
        state.save_pairing_seed(&[7; 32]).unwrap();
        state.save_pairing_code("CODE").unwrap();
        assert_eq!(state.pairing_seed().unwrap(), Some([7; 32]));
        let mode = fs::metadata(dir.path().join("pairing-seed")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        state.forget_pairing().unwrap();
        assert_eq!(state.pairing_seed().unwrap(), None);
        assert_eq!(state.pairing_code().unwrap(), None);

        state.save_pairing_seed(&[8; 32]).unwrap();
        let owner = PartyKeys::derive(&PartySecret::from_bytes([1; 32]), Role::Wallet);
        let pairing = Pairing {
            owner: owner.public().clone(),
            log_key: SymmetricKey::from_bytes([2; 32]),
            pairing_id: [3; 32],
            paired_at: 4,
        };
        state.save_pairing(&pairing).unwrap();
        assert_eq!(state.pairing_seed().unwrap(), None);

        fs::write(dir.path().join("pairing-seed"), b"short").unwrap();
        assert!(matches!(state.pairing_seed(), Err(StateError::Corrupt { .. })));
    }
}
