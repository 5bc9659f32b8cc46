//! Panel logins: passwords kept as Argon2id PHC strings (the argon2
//! crate's defaults, OWASP's minimum: 19 MiB, 2 passes, 1 lane), and the
//! secrets of logged-in sessions, which, like API tokens, are random and
//! kept only as a SHA-256.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::OnceLock;

/// Shortest and longest passwords accepted.
pub const MIN_LENGTH: usize = 10;
pub const MAX_LENGTH: usize = 256;

/// Why a password is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    #[error("a password has at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("a password has at most {MAX_LENGTH} bytes")]
    TooLong,
    #[error("a password has no control characters")]
    ControlCharacter,
}

/// Whether croft accepts `password` for a user.
pub fn check(password: &str) -> Result<(), Refused> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Refused::TooShort);
    }
    if password.len() > MAX_LENGTH {
        return Err(Refused::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(Refused::ControlCharacter);
    }
    Ok(())
}

/// `password` as stored: an Argon2id PHC string with a fresh salt. Slow
/// on purpose (tens of milliseconds): call it off the async threads.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the kernel's random source");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes are a valid salt");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2id with its default parameters")
        .to_string()
}

/// Whether `password` is the one `stored` was made from. A stored string
/// that does not parse matches nothing. Slow on purpose, as [`hash`].
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Check `password` against a hash no user has, taking the time a real
/// check takes: a login with an unknown name answers as slowly as one
/// with a wrong password, so names cannot be told apart by timing.
pub fn verify_nobody(password: &str) {
    static NOBODY: OnceLock<String> = OnceLock::new();
    let stored = NOBODY.get_or_init(|| hash("no user has this password"));
    let _ = verify(password, stored);
}

/// A new session secret (256 random bits, hex) and its stored form.
pub fn new_session() -> (String, String) {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = super::token::hash(&secret);
    (secret, hash)
}

/// Whether `text` has a session secret's shape (as [`new_session`] makes
/// them): anything else is refused before the store is asked.
pub fn is_session_secret(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_own_hash_only() {
        let stored = hash("correct horse battery");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery", &stored));
        assert!(!verify("correct horse battery!", &stored));
        assert!(!verify("correct horse battery", "not a hash"));
        assert_ne!(stored, hash("correct horse battery"), "salted");
    }

    #[test]
    fn short_or_odd_passwords_are_refused() {
        assert_eq!(check("short"), Err(Refused::TooShort));
        assert_eq!(check(&"x".repeat(300)), Err(Refused::TooLong));
        assert_eq!(check("ten chars\n!"), Err(Refused::ControlCharacter));
        assert!(check("långt lösenord").is_ok());
    }

    #[test]
    fn session_secrets_are_random_and_kept_hashed() {
        let (a, hash_a) = new_session();
        let (b, _) = new_session();
        assert_ne!(a, b);
        assert!(is_session_secret(&a));
        assert!(!is_session_secret(&hash_a[..63]));
        assert_eq!(hash_a, super::super::token::hash(&a));
    }
}
