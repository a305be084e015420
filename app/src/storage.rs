//! The browser's `localStorage`, the only persistent store the app uses.
//!
//! Everything kept here is either public (node URLs) or sealed first (wallet and identity
//! secrets go through [`crate::vault`]); the meter's decryption key is never stored.

use thiserror::Error;

/// Why the browser store could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    /// No `localStorage` (disabled by policy, or a private window that refuses it).
    #[error("this browser does not let the page store data (localStorage is unavailable)")]
    Unavailable,
    /// Writing failed, usually because the quota is exhausted.
    #[error("the browser refused to store the data (quota exhausted?)")]
    WriteRefused,
}

fn local_storage() -> Result<web_sys::Storage, StorageError> {
    web_sys::window()
        .and_then(|window| window.local_storage().ok().flatten())
        .ok_or(StorageError::Unavailable)
}

/// The value under `key`, if any.
pub fn load(key: &str) -> Result<Option<String>, StorageError> {
    local_storage()?.get_item(key).map_err(|_| StorageError::Unavailable)
}

/// Stores `value` under `key`, replacing what was there.
pub fn save(key: &str, value: &str) -> Result<(), StorageError> {
    local_storage()?.set_item(key, value).map_err(|_| StorageError::WriteRefused)
}

/// Removes `key` (no error if it was absent).
pub fn remove(key: &str) -> Result<(), StorageError> {
    local_storage()?.remove_item(key).map_err(|_| StorageError::WriteRefused)
}
