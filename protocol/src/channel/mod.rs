//! Encrypted, authenticated meter streams: epochs, keyloads, rotation, checkpoints.
