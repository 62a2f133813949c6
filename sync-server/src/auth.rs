//! Device tokens and invite codes. Both are random (≥ 128 bits for tokens), shown once, and stored
//! only as SHA-256 hashes, so a copy of the database reveals no usable credential.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new device token: 256 random bits, hex, with a recognisable prefix.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("mct_{}", hex::encode(bytes))
}

/// A new invite code: 80 random bits in an alphabet without look-alike characters, grouped for
/// reading aloud ("K7QM-3XHD-9TRB-W2FC").
pub fn new_invite_code() -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let chars: String = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16])
}

/// The stored form of a secret. Invite codes are normalised first (case, dashes, spaces).
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.trim().as_bytes()).to_vec()
}

pub fn hash_invite(code: &str) -> Vec<u8> {
    let normal: String = code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?.trim();
    let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
    (!token.trim().is_empty()).then(|| token.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashed() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 4 + 64);
        let code = new_invite_code();
        assert_eq!(hash_invite(&code), hash_invite(&code.to_lowercase().replace('-', " ")));
        assert_ne!(hash_secret("a"), hash_secret("b"));
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
    }
}
