//! Tokens and their salted hashes.
//!
//! A tenant token reads `strata_<id>_<secret>`: `id` is 12 hex digits (6
//! random bytes) naming the token in the tenants file, `secret` 64 hex digits
//! (32 random bytes). The id lets a verifier find the one stored hash to
//! check (one SHA-256 per verification, whatever the number of tokens)
//! without revealing anything about the secret. An admin token reads
//! `strata-admin-<secret>`.
//!
//! Only `SHA-256(salt ‖ token)` is stored, with a random 16-byte salt per
//! token. A fast hash is enough here: the tokens carry 256 random bits, so
//! there is no dictionary to try, unlike passwords chosen by people.

use rand::RngCore;
use sha2::{Digest, Sha256};

pub const TOKEN_PREFIX: &str = "strata_";
pub const ADMIN_TOKEN_PREFIX: &str = "strata-admin-";
/// Hex digits of a generated token id.
const ID_HEX_LEN: usize = 12;
/// Hex digits of a token's secret part.
const SECRET_HEX_LEN: usize = 64;
pub const SALT_LEN: usize = 16;
/// Stored salts may be longer than the generated ones, never shorter.
const MAX_SALT_LEN: usize = 64;
const ALGORITHM: &str = "sha256";

/// SHA-256 of `parts` in order.
pub fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Compares two byte strings in time that depends on their lengths only
/// (the lengths are public: every stored hash is 32 bytes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the compiler from turning the loop into an early exit.
    std::hint::black_box(diff) == 0
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    rand::rng().fill_bytes(&mut b);
    b
}

/// A fresh token id (12 hex digits).
pub fn new_token_id() -> String {
    hex::encode(random_bytes::<{ ID_HEX_LEN / 2 }>())
}

/// A fresh tenant token with the given id: `strata_<id>_<64 hex digits>`.
pub fn new_tenant_token(id: &str) -> String {
    format!(
        "{TOKEN_PREFIX}{id}_{}",
        hex::encode(random_bytes::<{ SECRET_HEX_LEN / 2 }>())
    )
}

/// A fresh admin token: `strata-admin-<64 hex digits>` (not of the
/// shape of a tenant token).
pub fn new_admin_token() -> String {
    format!(
        "{ADMIN_TOKEN_PREFIX}{}",
        hex::encode(random_bytes::<{ SECRET_HEX_LEN / 2 }>())
    )
}

/// The id inside a tenant token, when it has the shape of one.
pub fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = valid_token_id(id)
        && secret.len() == SECRET_HEX_LEN
        && secret.bytes().all(|b| b.is_ascii_hexdigit());
    well_formed.then_some(id)
}

/// Token ids in the tenants file: 1 to 64 ASCII letters, digits or dashes
/// (no `_`, which ends the id inside a token).
pub fn valid_token_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A salt and `SHA-256(salt ‖ token)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaltedHash {
    pub salt: Vec<u8>,
    pub hash: [u8; 32],
}

impl SaltedHash {
    /// Hashes `token` with a fresh random salt.
    pub fn new(token: &str) -> Self {
        Self::with_salt(random_bytes::<SALT_LEN>().to_vec(), token)
    }

    pub fn with_salt(salt: Vec<u8>, token: &str) -> Self {
        let hash = sha256(&[&salt, token.as_bytes()]);
        Self { salt, hash }
    }

    /// Whether `token` is the one hashed, comparing in constant time.
    pub fn verify(&self, token: &str) -> bool {
        let candidate = sha256(&[&self.salt, token.as_bytes()]);
        constant_time_eq(&candidate, &self.hash)
    }

    /// From the hex salt and hash of a tenants file entry.
    pub fn from_hex(salt: &str, hash: &str) -> Result<Self, String> {
        let salt = hex::decode(salt).map_err(|e| format!("salt is not hex: {e}"))?;
        if salt.len() < SALT_LEN || salt.len() > MAX_SALT_LEN {
            return Err(format!(
                "salt has {} bytes; it needs {SALT_LEN} to {MAX_SALT_LEN}",
                salt.len()
            ));
        }
        let hash: [u8; 32] = hex::decode(hash)
            .map_err(|e| format!("hash is not hex: {e}"))?
            .try_into()
            .map_err(|h: Vec<u8>| format!("hash has {} bytes; SHA-256 has 32", h.len()))?;
        Ok(Self { salt, hash })
    }

    pub fn salt_hex(&self) -> String {
        hex::encode(&self.salt)
    }

    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// The one-string form of `auth.admin_token_hash`:
    /// `sha256:<salt hex>:<hash hex>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.trim().split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(ALGORITHM), Some(salt), Some(hash), None) => Self::from_hex(salt, hash),
            _ => Err(format!(
                "expected {ALGORITHM}:<salt hex>:<hash hex> (from `strata-admin hash-admin-token`)"
            )),
        }
    }
}

impl std::fmt::Display for SaltedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{ALGORITHM}:{}:{}", self.salt_hex(), self.hash_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_salted_and_verify() {
        let token = new_tenant_token(&new_token_id());
        let a = SaltedHash::new(&token);
        let b = SaltedHash::new(&token);
        assert_ne!(a.salt, b.salt, "every hash has its own salt");
        assert_ne!(a.hash, b.hash, "the same token hashes differently");
        assert!(a.verify(&token) && b.verify(&token));
        assert!(!a.verify(&format!("{token}x")));
        assert!(!a.verify(""));
        // SHA-256 over salt then token.
        let fixed = SaltedHash::with_salt(b"0123456789abcdef".to_vec(), "tok");
        let mut h = Sha256::new();
        h.update(b"0123456789abcdeftok");
        let want: [u8; 32] = h.finalize().into();
        assert_eq!(fixed.hash, want);
    }

    #[test]
    fn tokens_have_a_prefix_an_id_and_32_random_bytes() {
        let id = new_token_id();
        assert_eq!(id.len(), 12);
        let token = new_tenant_token(&id);
        assert!(token.starts_with("strata_"));
        assert_eq!(token.len(), "strata_".len() + 12 + 1 + 64);
        assert_eq!(token_id(&token), Some(id.as_str()));
        assert_ne!(new_tenant_token(&id), token);
        for bad in [
            "",
            "strata_",
            "strata_abc",
            "bearer_abc_0000",
            &token[..token.len() - 1],
            &format!("{token}0"),
            &token.replace("strata_", "strata_x_"),
        ] {
            assert_eq!(token_id(bad), None, "{bad}");
        }
        let admin = new_admin_token();
        assert!(admin.starts_with("strata-admin-"));
        assert_eq!(token_id(&admin), None, "an admin token is no tenant token");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"bbc"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let x = [7u8; 32];
        for i in 0..32 {
            let mut y = x;
            y[i] ^= 1;
            assert!(!constant_time_eq(&x, &y), "differs at {i}");
        }
    }

    #[test]
    fn admin_hash_string_round_trips() {
        let token = new_admin_token();
        let h = SaltedHash::new(&token);
        let text = h.to_string();
        assert!(text.starts_with("sha256:"));
        let back = SaltedHash::parse(&text).unwrap();
        assert_eq!(back, h);
        assert!(back.verify(&token));
        for bad in [
            "",
            "sha256:00",
            "md5:00112233445566778899aabbccddeeff:00",
            &format!("sha256:0011:{}", h.hash_hex()),
            &format!("sha256:{}:00", h.salt_hex()),
            &format!("{text}:extra"),
            &format!("sha256:zz{}:{}", &h.salt_hex()[2..], h.hash_hex()),
        ] {
            assert!(SaltedHash::parse(bad).is_err(), "{bad}");
        }
    }
}
