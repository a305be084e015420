//! A party's derived key set ([`PartyKeys`]) and its public half ([`PublicKeys`], [`PartyId`]).

use core::fmt;

use ml_dsa::{ExpandedSigningKey, MlDsa65, VerifyingKey};
use ml_kem::{DecapsulationKey768, EncapsulationKey768, KeyExport};
use rand_core::CryptoRng;

use super::CryptoError;
use super::kdf::{digest, expand_key};
use super::kem::{self, KEM_ENCAPSULATION_KEY_LEN, KemCiphertext, SharedSecret};
use super::secret::{PartySecret, SymmetricKey, SymmetricPurpose};
use super::sign::{self, SignatureContext, VERIFYING_KEY_LEN};

/// HKDF-Extract salt for party secrets.
const PARTY_SALT: &[u8] = b"meterkast/v1/party-secret";
/// Format version of [`PublicKeys::encode`].
const PUBLIC_KEYS_VERSION: u8 = 1;
/// Length of [`PublicKeys::encode`]: version, role, verifying key, encapsulation key, inbox.
pub const PUBLIC_KEYS_LEN: usize = 1 + 1 + VERIFYING_KEY_LEN + KEM_ENCAPSULATION_KEY_LEN + 32;

/// Which kind of party a key set belongs to. Part of every derivation label and of the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A meter reader (Pi agent or browser in Web Serial mode).
    Device,
    /// A household's consent wallet.
    Wallet,
    /// A service provider.
    Provider,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Self::Device => b"device/",
            Self::Wallet => b"wallet/",
            Self::Provider => b"provider/",
        }
    }

    fn code(self) -> u8 {
        match self {
            Self::Device => 1,
            Self::Wallet => 2,
            Self::Provider => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Device),
            2 => Some(Self::Wallet),
            3 => Some(Self::Provider),
            _ => None,
        }
    }
}

/// Derives `N` bytes for `role`/`purpose` from the party secret.
fn derive<const N: usize>(
    secret: &PartySecret,
    role: Role,
    purpose: &[u8],
) -> zeroize::Zeroizing<[u8; N]> {
    expand_key(PARTY_SALT, secret.expose_secret(), &[b"meterkast/v1/", role.label(), purpose])
}

/// A party's public identity: `SHA3-256("meterkast/v1/party-id" ‖ PublicKeys::encode())`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(pub [u8; 32]);

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PartyId(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

/// The public half of a party's keys, as published in its card.
#[derive(Clone)]
pub struct PublicKeys {
    role: Role,
    verifying_key: VerifyingKey<MlDsa65>,
    verifying_key_bytes: Box<[u8; VERIFYING_KEY_LEN]>,
    encapsulation_key: EncapsulationKey768,
    encapsulation_key_bytes: Box<[u8; KEM_ENCAPSULATION_KEY_LEN]>,
    inbox: [u8; 32],
    id: PartyId,
}

impl PublicKeys {
    fn assemble(
        role: Role,
        verifying_key: VerifyingKey<MlDsa65>,
        encapsulation_key: EncapsulationKey768,
        inbox: [u8; 32],
    ) -> Self {
        let mut vk = Box::new([0u8; VERIFYING_KEY_LEN]);
        vk.copy_from_slice(verifying_key.encode().as_slice());
        let mut ek = Box::new([0u8; KEM_ENCAPSULATION_KEY_LEN]);
        ek.copy_from_slice(encapsulation_key.to_bytes().as_slice());
        let mut keys = Self {
            role,
            verifying_key,
            verifying_key_bytes: vk,
            encapsulation_key,
            encapsulation_key_bytes: ek,
            inbox,
            id: PartyId([0; 32]),
        };
        keys.id = PartyId(digest(b"meterkast/v1/party-id", &[&keys.encode()]));
        keys
    }

    /// The party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The party's identity (hash of these public keys).
    pub fn id(&self) -> PartyId {
        self.id
    }

    /// The address at which keyloads for this party are posted.
    pub fn inbox_address(&self) -> [u8; 32] {
        self.inbox
    }

    /// The encoded ML-DSA-65 verifying key.
    pub fn verifying_key_bytes(&self) -> &[u8; VERIFYING_KEY_LEN] {
        &self.verifying_key_bytes
    }

    /// The encoded ML-KEM-768 encapsulation key.
    pub fn encapsulation_key_bytes(&self) -> &[u8; KEM_ENCAPSULATION_KEY_LEN] {
        &self.encapsulation_key_bytes
    }

    /// Encodes as `version(1) ‖ role(1) ‖ ML-DSA-65 vk(1952) ‖ ML-KEM-768 ek(1184) ‖ inbox(32)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PUBLIC_KEYS_LEN);
        out.push(PUBLIC_KEYS_VERSION);
        out.push(self.role.code());
        out.extend_from_slice(&self.verifying_key_bytes[..]);
        out.extend_from_slice(&self.encapsulation_key_bytes[..]);
        out.extend_from_slice(&self.inbox);
        out
    }

    /// Parses [`PublicKeys::encode`] output, validating the encapsulation key (FIPS 203 check).
    pub fn decode(bytes: &[u8]) -> Result<Self, CryptoError> {
        let malformed = CryptoError::Malformed { what: "public keys" };
        if bytes.len() != PUBLIC_KEYS_LEN || bytes[0] != PUBLIC_KEYS_VERSION {
            return Err(malformed);
        }
        let role = Role::from_code(bytes[1]).ok_or(malformed.clone())?;
        let vk_end = 2 + VERIFYING_KEY_LEN;
        let ek_end = vk_end + KEM_ENCAPSULATION_KEY_LEN;
        let vk_bytes: [u8; VERIFYING_KEY_LEN] =
            bytes[2..vk_end].try_into().map_err(|_| malformed.clone())?;
        let verifying_key = VerifyingKey::<MlDsa65>::decode(&vk_bytes.into());
        let encapsulation_key = kem::parse_encapsulation_key(&bytes[vk_end..ek_end])?;
        let inbox: [u8; 32] = bytes[ek_end..].try_into().map_err(|_| malformed)?;
        Ok(Self::assemble(role, verifying_key, encapsulation_key, inbox))
    }

    /// Verifies a signature made by this party for `context`.
    pub fn verify(
        &self,
        context: SignatureContext,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        sign::verify(&self.verifying_key, context, message, signature)
    }

    /// Encapsulates a fresh shared secret to this party.
    pub fn encapsulate(&self, rng: &mut impl CryptoRng) -> (KemCiphertext, SharedSecret) {
        kem::encapsulate(&self.encapsulation_key, rng)
    }
}

impl PartialEq for PublicKeys {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for PublicKeys {}

impl fmt::Debug for PublicKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKeys").field("role", &self.role).field("id", &self.id).finish()
    }
}

/// Every key a party derives from its [`PartySecret`]; `Debug` shows only the public identity.
pub struct PartyKeys {
    secret: PartySecret,
    signing_key: Box<ExpandedSigningKey<MlDsa65>>,
    decapsulation_key: Box<DecapsulationKey768>,
    public: PublicKeys,
}

impl PartyKeys {
    /// Derives the whole key set for `role` from the party secret (deterministic).
    ///
    /// - ML-DSA-65 seed ξ = HKDF(secret, "meterkast/v1/<role>/ml-dsa-65/xi"), 32 bytes;
    /// - ML-KEM-768 seed d‖z = HKDF(secret, "meterkast/v1/<role>/ml-kem-768/d-z"), 64 bytes;
    /// - inbox address = HKDF(secret, "meterkast/v1/<role>/inbox-address"), 32 bytes.
    pub fn derive(secret: &PartySecret, role: Role) -> Self {
        let xi = derive::<32>(secret, role, b"ml-dsa-65/xi");
        let d_z = derive::<64>(secret, role, b"ml-kem-768/d-z");
        let inbox = derive::<32>(secret, role, b"inbox-address");
        let (signing_key, decapsulation_key) = keys_from_seeds(&xi, &d_z);
        let public = PublicKeys::assemble(
            role,
            signing_key.verifying_key(),
            decapsulation_key.encapsulation_key().clone(),
            *inbox,
        );
        Self { secret: secret.clone(), signing_key, decapsulation_key, public }
    }

    /// The public half.
    pub fn public(&self) -> &PublicKeys {
        &self.public
    }

    /// The party's identity.
    pub fn id(&self) -> PartyId {
        self.public.id
    }

    /// A symmetric key for `purpose`, derived from the party secret.
    pub fn symmetric_key(&self, purpose: SymmetricPurpose) -> SymmetricKey {
        let key = derive::<32>(&self.secret, self.public.role, purpose.label());
        SymmetricKey::from_bytes(*key)
    }

    /// Signs `message` for `context` (hedged ML-DSA-65 with 32 bytes from `rng`).
    pub fn sign(
        &self,
        context: SignatureContext,
        message: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, CryptoError> {
        sign::sign(&self.signing_key, context, message, rng)
    }

    /// Decapsulates a ciphertext sent to this party (implicit rejection: never fails).
    pub fn decapsulate(&self, ciphertext: &KemCiphertext) -> SharedSecret {
        kem::decapsulate(&self.decapsulation_key, ciphertext)
    }
}

impl fmt::Debug for PartyKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartyKeys")
            .field("public", &self.public)
            .field("secrets", &"<redacted>")
            .finish()
    }
}

/// Builds the ML-DSA-65 and ML-KEM-768 keys from their FIPS seeds. This is the exact code path
/// the known-answer tests drive with Wycheproof seeds (through [`super::fips::FipsKeyPair`]).
pub(crate) fn keys_from_seeds(
    xi: &[u8; 32],
    d_z: &[u8; 64],
) -> (Box<ExpandedSigningKey<MlDsa65>>, Box<DecapsulationKey768>) {
    let signing_key = Box::new(ExpandedSigningKey::<MlDsa65>::from_seed(&(*xi).into()));
    let decapsulation_key = Box::new(DecapsulationKey768::from_seed((*d_z).into()));
    (signing_key, decapsulation_key)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    struct CountingRng(u8);
    impl rand_core::TryRng for CountingRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            self.0 = self.0.wrapping_add(1);
            Ok(u32::from(self.0))
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            self.0 = self.0.wrapping_add(1);
            Ok(u64::from(self.0))
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for byte in dst {
                self.0 = self.0.wrapping_add(1);
                *byte = self.0;
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for CountingRng {}

    #[test]
    fn derivation_is_deterministic_and_role_separated() {
        let secret = PartySecret::from_bytes([42; 32]);
        let a = PartyKeys::derive(&secret, Role::Provider);
        let b = PartyKeys::derive(&secret, Role::Provider);
        let c = PartyKeys::derive(&secret, Role::Device);
        assert_eq!(a.id(), b.id());
        assert_eq!(a.public().encode(), b.public().encode());
        assert_ne!(a.id(), c.id());
        assert_ne!(a.public().verifying_key_bytes(), c.public().verifying_key_bytes());
        assert_ne!(a.public().encapsulation_key_bytes(), c.public().encapsulation_key_bytes());
        assert_ne!(
            a.symmetric_key(SymmetricPurpose::StateAtRest),
            a.symmetric_key(SymmetricPurpose::ConsentLog)
        );
    }

    #[test]
    fn public_keys_round_trip_and_reject_garbage() {
        let keys = PartyKeys::derive(&PartySecret::from_bytes([1; 32]), Role::Wallet);
        let encoded = keys.public().encode();
        assert_eq!(encoded.len(), PUBLIC_KEYS_LEN);
        let decoded = PublicKeys::decode(&encoded).unwrap();
        assert_eq!(decoded.id(), keys.id());
        assert!(PublicKeys::decode(&encoded[1..]).is_err());
        let mut bad_role = encoded.clone();
        bad_role[1] = 9;
        assert!(PublicKeys::decode(&bad_role).is_err());
        // An encapsulation key coefficient ≥ q fails FIPS 203's modulus check.
        let mut bad_ek = encoded;
        let ek_start = 2 + VERIFYING_KEY_LEN;
        bad_ek[ek_start] = 0xff;
        bad_ek[ek_start + 1] = 0xff;
        assert!(PublicKeys::decode(&bad_ek).is_err());
    }

    #[test]
    fn sign_verify_and_kem_round_trip() {
        let keys = PartyKeys::derive(&PartySecret::from_bytes([3; 32]), Role::Device);
        let mut rng = CountingRng(0);
        let sig = keys.sign(SignatureContext::Checkpoint, b"msg", &mut rng).unwrap();
        let public = keys.public();
        assert!(public.verify(SignatureContext::Checkpoint, b"msg", &sig).is_ok());
        assert_eq!(
            public.verify(SignatureContext::InboxKeyload, b"msg", &sig),
            Err(CryptoError::BadSignature)
        );
        assert!(public.verify(SignatureContext::Checkpoint, b"other", &sig).is_err());
        assert!(public.verify(SignatureContext::Checkpoint, b"msg", &sig[1..]).is_err());

        let (ct, sent) = public.encapsulate(&mut rng);
        let received = keys.decapsulate(&ct);
        assert_eq!(sent.expose_secret(), received.expose_secret());
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = PartySecret::from_bytes([0xAB; 32]);
        let keys = PartyKeys::derive(&secret, Role::Device);
        for text in [
            format!("{secret:?}"),
            format!("{keys:?}"),
            format!("{:?}", keys.symmetric_key(SymmetricPurpose::StateAtRest)),
        ] {
            assert!(text.contains("redacted"), "{text}");
            assert!(!text.to_lowercase().contains("abab"), "{text}");
            assert!(!text.contains("171"), "{text}");
        }
    }
}
