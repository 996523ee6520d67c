//! Agent credentials: 256-bit random tokens, stored as SHA-256 hashes.
//!
//! A slow hash (argon2) protects low-entropy passwords; these tokens have 256 bits of entropy,
//! so a fast hash is as safe and lets the store look a token up by its hash directly.

use sha2::{Digest, Sha256};

/// Every token starts with this, so leaked tokens are easy to recognise and grep for.
pub const TOKEN_PREFIX: &str = "ssa_";

/// Characters of the token kept in clear to tell credentials apart.
const SHOWN_CHARS: usize = 12;

/// A freshly minted credential: the token is shown once and never stored.
#[derive(Debug, Clone)]
pub struct Minted {
    /// The secret, for the agent's `AGENT_TOKEN`.
    pub token: String,
    /// SHA-256 of the token, hex: what the store keeps.
    pub hash: String,
    /// The token's first characters.
    pub prefix: String,
}

/// Mints a new random token.
pub fn mint() -> Minted {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("OS random source");
    let token = format!("{TOKEN_PREFIX}{}", hex(&bytes));
    Minted {
        hash: hash(&token),
        prefix: token[..SHOWN_CHARS].to_owned(),
        token,
    }
}

/// SHA-256 of a presented token, hex.
pub fn hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_are_prefixed_random_and_hash_to_what_is_stored() {
        let a = mint();
        let b = mint();
        assert!(a.token.starts_with("ssa_") && a.token.len() == 4 + 64);
        assert_ne!(a.token, b.token);
        assert_eq!(hash(&a.token), a.hash);
        assert!(a.token.starts_with(&a.prefix));
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
