//! argon2id password hashes in PHC format.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Shortest password accepted for new users.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes with argon2id and a random salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        // Only fails for parameters out of range, which the defaults never are.
        .expect("argon2 with default parameters")
        .to_string()
}

/// Checks a password against a stored hash; a malformed hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the same time as a real verification, so an unknown user name cannot be told from
/// a wrong password by timing.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("not a real password"));
    let _ = verify(stored, password);
}

/// A random password for the first admin, 20 characters from an unambiguous alphabet.
pub fn generate() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).expect("OS random source");
    bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse");
        let b = hash("correct horse");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salts must differ");
        assert!(verify(&a, "correct horse"));
        assert!(!verify(&a, "wrong horse"));
        assert!(!verify("not a hash", "correct horse"));
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let (a, b) = (generate(), generate());
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
    }
}
