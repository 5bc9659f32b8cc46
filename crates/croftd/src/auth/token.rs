//! API tokens as users hold them: `croft_<id>_<secret>`, where the id is
//! public (it names the token in lists, logs and the audit log) and the
//! secret is 256 random bits that croftd keeps only as a SHA-256 hash. A
//! token is high-entropy, so a fast hash is enough (no password
//! stretching); the stored and presented hashes are compared in constant
//! time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "croft_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;

/// A token just made: what the user is shown once, and what is stored.
pub struct NewToken {
    pub id: String,
    /// The whole token, `croft_<id>_<secret>`: shown once, never stored.
    pub token: String,
    /// The secret's hash, stored.
    pub hash: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    bytes
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// A new random token.
pub fn generate() -> NewToken {
    let id = hex(&random(ID_BYTES));
    let secret = hex(&random(SECRET_BYTES));
    NewToken {
        token: format!("{PREFIX}{id}_{secret}"),
        hash: hash(&secret),
        id,
    }
}

/// A presented token split into its id and secret; `None` if it does not
/// have a token's shape (which is reported as an unknown token).
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, bytes: usize| s.len() == bytes * 2 && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, ID_BYTES) && hex_of(secret, SECRET_BYTES)).then_some((id, secret))
}

/// Whether `secret` is the one whose hash is `stored`, in time that does
/// not depend on where they differ.
pub fn matches(secret: &str, stored: &str) -> bool {
    hash(secret).as_bytes().ct_eq(stored.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_parses_and_matches_only_its_hash() {
        let t = generate();
        let (id, secret) = parse(&t.token).unwrap();
        assert_eq!(id, t.id);
        assert!(matches(secret, &t.hash));
        assert!(!t.token.contains(&t.hash), "the stored form is not in the token");
        let other = generate();
        assert_ne!(other.id, t.id);
        assert!(!matches(secret, &other.hash));
    }

    #[test]
    fn malformed_tokens_do_not_parse() {
        let t = generate();
        for bad in [
            "",
            "croft_",
            &t.token[..t.token.len() - 1],
            &t.token.replace("croft_", "crift_"),
            &format!("{}0", t.token),
            &t.token.to_uppercase().replace("CROFT_", "croft_x"),
        ] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
