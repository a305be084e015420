//! Tangle messages: format, deterministic encoding, id (SHA3-256) and proof of work.
