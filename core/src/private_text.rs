//! Private text — a practice's reflection and transfer note — sealed for the person's own
//! devices. The server stores and relays the sealed bytes and can read none of it; the key is made
//! on her first device and travels only inside a device-link payload or as the recovery key she
//! writes down.
//!
//! Sealed format, version 1 (all of it is what the server stores):
//!
//! | bytes | content |
//! |---|---|
//! | 1 | version, `1` |
//! | 8 | key id: the first 8 bytes of SHA-256("microcohort key id" ‖ key), so a device with another key knows it cannot open it |
//! | 24 | XChaCha20-Poly1305 nonce, random |
//! | rest | XChaCha20-Poly1305 ciphertext and tag of the CBOR of [`PrivateText`], with the practice log's id as associated data (a sealed text moved to another log does not open) |
//!
//! The recovery key is the 32-byte key and the first 2 bytes of its id, in RFC 4648 base32 without
//! padding, in groups of five: 55 characters that catch a mistyped character.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const VERSION: u8 = 1;
const KEY_ID_BYTES: usize = 8;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// The shortest sealed text: version, key id, nonce and tag around an empty message.
pub const MIN_SEALED_BYTES: usize = 1 + KEY_ID_BYTES + NONCE_BYTES + TAG_BYTES;
/// The longest the server stores: a 10,000-character reflection and note, 4 bytes a character.
pub const MAX_SEALED_BYTES: usize = 96 * 1024;

/// What is sealed: the parts of a practice log that never leave the person's devices in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateText {
    pub reflection: String,
    pub transfer_note: Option<String>,
    pub transfer_link: Option<String>,
}

impl PrivateText {
    pub fn is_empty(&self) -> bool {
        self.reflection.is_empty() && self.transfer_note.is_none() && self.transfer_link.is_none()
    }
}

/// The key a person's devices seal her private text with.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonKey([u8; 32]);

impl std::fmt::Debug for PersonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PersonKey({})", hex_id(&self.id()))
    }
}

fn hex_id(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed private text of version {0}; this app reads version {VERSION}")]
    UnknownVersion(u8),
    #[error("sealed private text is too short or malformed")]
    Malformed,
    #[error("this private text was sealed with another key than this device's")]
    OtherKey,
    #[error("sealed private text does not open: damaged, or not this log's")]
    DoesNotOpen,
    #[error("not a recovery key: {0}")]
    BadRecoveryKey(String),
}

impl PersonKey {
    /// A new random key (the person's first device).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        Some(Self(bytes.try_into().ok()?))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn id(&self) -> [u8; KEY_ID_BYTES] {
        let digest = Sha256::new().chain_update(b"microcohort key id").chain_update(self.0).finalize();
        let mut id = [0u8; KEY_ID_BYTES];
        id.copy_from_slice(&digest[..KEY_ID_BYTES]);
        id
    }

    /// The key as the person writes it down.
    pub fn recovery_text(&self) -> String {
        let mut bytes = self.0.to_vec();
        bytes.extend_from_slice(&self.id()[..2]);
        let text = data_encoding::BASE32_NOPAD.encode(&bytes);
        text.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }

    /// Reads a recovery key as written down (case, spaces and dashes do not matter).
    pub fn from_recovery_text(text: &str) -> Result<Self, SealError> {
        let normal: String =
            text.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(normal.as_bytes())
            .map_err(|_| SealError::BadRecoveryKey("only the letters A–Z and digits 2–7 appear in one".into()))?;
        if bytes.len() != 34 {
            return Err(SealError::BadRecoveryKey(format!("{} characters; a recovery key has 55", normal.len())));
        }
        let key = Self::from_bytes(&bytes[..32]).ok_or(SealError::Malformed)?;
        if key.id()[..2] != bytes[32..] {
            return Err(SealError::BadRecoveryKey("a character is wrong (its check does not match)".into()));
        }
        Ok(key)
    }

    /// Seals `text` for the log `log_id`, with a random nonce.
    pub fn seal(&self, log_id: &str, text: &PrivateText) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        self.seal_with_nonce(log_id, text, nonce)
    }

    fn seal_with_nonce(&self, log_id: &str, text: &PrivateText, nonce: [u8; NONCE_BYTES]) -> Vec<u8> {
        let mut plain = Vec::new();
        // Writing plain strings into a Vec cannot fail.
        let _ = ciborium::into_writer(text, &mut plain);
        let cipher = XChaCha20Poly1305::new(&Key::from(self.0));
        // Encryption fails only for messages of gigabytes; ours are bounded far below.
        let sealed =
            cipher.encrypt(&XNonce::from(nonce), Payload { msg: &plain, aad: log_id.as_bytes() }).unwrap_or_default();
        let mut out = Vec::with_capacity(MIN_SEALED_BYTES + plain.len());
        out.push(VERSION);
        out.extend_from_slice(&self.id());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`Self::seal`] sealed for `log_id`.
    pub fn open(&self, log_id: &str, sealed: &[u8]) -> Result<PrivateText, SealError> {
        check_format(sealed)?;
        if sealed[1..1 + KEY_ID_BYTES] != self.id() {
            return Err(SealError::OtherKey);
        }
        let nonce: [u8; NONCE_BYTES] =
            sealed[1 + KEY_ID_BYTES..1 + KEY_ID_BYTES + NONCE_BYTES].try_into().map_err(|_| SealError::Malformed)?;
        let cipher = XChaCha20Poly1305::new(&Key::from(self.0));
        let body = &sealed[1 + KEY_ID_BYTES + NONCE_BYTES..];
        let plain = cipher
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad: log_id.as_bytes() })
            .map_err(|_| SealError::DoesNotOpen)?;
        ciborium::from_reader(plain.as_slice()).map_err(|_| SealError::DoesNotOpen)
    }
}

/// What the server can check without the key: the version and the length.
pub fn check_format(sealed: &[u8]) -> Result<(), SealError> {
    match sealed.first() {
        None => Err(SealError::Malformed),
        Some(&VERSION) if (MIN_SEALED_BYTES..=MAX_SEALED_BYTES).contains(&sealed.len()) => Ok(()),
        Some(&VERSION) => Err(SealError::Malformed),
        Some(&other) => Err(SealError::UnknownVersion(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> PrivateText {
        PrivateText {
            reflection: "I interrupted less than last week.".into(),
            transfer_note: Some("Used it in the stand-up".into()),
            transfer_link: None,
        }
    }

    #[test]
    fn sealed_text_opens_only_with_its_key_and_its_log() {
        let key = PersonKey::generate();
        let sealed = key.seal("log-1", &text());
        assert!(!String::from_utf8_lossy(&sealed).contains("interrupted"));
        assert_eq!(key.open("log-1", &sealed).unwrap(), text());
        assert_eq!(key.open("log-2", &sealed), Err(SealError::DoesNotOpen), "moved to another log");
        assert_eq!(PersonKey::generate().open("log-1", &sealed), Err(SealError::OtherKey));
        let mut damaged = sealed.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert_eq!(key.open("log-1", &damaged), Err(SealError::DoesNotOpen));
        assert_eq!(key.open("log-1", &sealed[..20]), Err(SealError::Malformed));
        let mut future = sealed;
        future[0] = 2;
        assert_eq!(key.open("log-1", &future), Err(SealError::UnknownVersion(2)));
        // Two seals of the same text differ (random nonce).
        assert_ne!(key.seal("log-1", &text()), key.seal("log-1", &text()));
    }

    #[test]
    fn the_format_is_as_documented() {
        let key = PersonKey::from_bytes(&[7u8; 32]).unwrap();
        let sealed = key.seal_with_nonce("log-1", &PrivateText::default(), [9u8; 24]);
        assert_eq!(sealed[0], 1);
        assert_eq!(sealed[1..9], key.id());
        assert_eq!(sealed[9..33], [9u8; 24]);
        let mut plain = Vec::new();
        ciborium::into_writer(&PrivateText::default(), &mut plain).unwrap();
        assert_eq!(sealed.len(), 33 + plain.len() + 16);
    }

    #[test]
    fn a_recovery_key_round_trips_and_catches_a_typo() {
        let key = PersonKey::generate();
        let written = key.recovery_text();
        assert_eq!(written.replace('-', "").len(), 55);
        assert_eq!(PersonKey::from_recovery_text(&written.to_lowercase().replace('-', " ")).unwrap(), key);
        let mut typo: Vec<char> = written.chars().collect();
        typo[3] = if typo[3] == 'A' { 'B' } else { 'A' };
        let typo: String = typo.into_iter().collect();
        assert!(matches!(PersonKey::from_recovery_text(&typo), Err(SealError::BadRecoveryKey(_))));
        assert!(matches!(PersonKey::from_recovery_text("short"), Err(SealError::BadRecoveryKey(_))));
    }
}
