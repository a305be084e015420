//! Key material derived from party seeds (HKDF-SHA3-256), ML-KEM-768, ML-DSA-65, XChaCha20-Poly1305.
