//! VPS names: an RFC 1123 label, because the name becomes the hostname and
//! a path component under the state directory.

use thiserror::Error;

/// Longest accepted name (an RFC 1123 label is at most 63 octets).
pub const MAX_NAME_LEN: usize = 63;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NameError {
    #[error("name is empty")]
    Empty,
    #[error("name is {len} characters long; at most {MAX_NAME_LEN} are allowed")]
    TooLong { len: usize },
    #[error("name {name:?} must contain only lowercase letters, digits and '-'")]
    BadCharacter { name: String },
    #[error("name {name:?} must start with a letter and not end with '-'")]
    BadEdge { name: String },
}

/// Accept `[a-z][a-z0-9-]*[a-z0-9]`, at most 63 characters.
///
/// Names starting with a digit are refused (unlike RFC 1123) so that a name
/// can never be mistaken for an id or an address.
pub fn validate_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong {
            len: name.chars().count(),
        });
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(NameError::BadCharacter { name: name.into() });
    }
    let first = name.as_bytes()[0];
    if !first.is_ascii_lowercase() || name.ends_with('-') {
        return Err(NameError::BadEdge { name: name.into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_labels() {
        for ok in ["a", "web1", "my-vps-2", &"a".repeat(63)] {
            assert_eq!(validate_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_bad_labels() {
        assert_eq!(validate_name(""), Err(NameError::Empty));
        assert!(matches!(
            validate_name(&"a".repeat(64)),
            Err(NameError::TooLong { .. })
        ));
        for bad in ["../x", "a/b", ".", "..", "Web", "a_b", "a b", "a.b", "x\0"] {
            assert!(
                matches!(validate_name(bad), Err(NameError::BadCharacter { .. })),
                "{bad}"
            );
        }
        for bad in ["-a", "1abc", "abc-"] {
            assert!(
                matches!(validate_name(bad), Err(NameError::BadEdge { .. })),
                "{bad}"
            );
        }
    }
}
