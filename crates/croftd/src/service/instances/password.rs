//! `croft password`: root's password of a VPS, a SHA-512 crypt hash put
//! in its /etc/shadow as `chpasswd -e` would: from inside while it runs,
//! on its disk while it is stopped (see [`super::inside`]); a generated
//! one is shown once and kept nowhere.

use super::inside::{failed, where_to_change, Where};
use super::InstanceService;
use crate::service::{Result, ServiceError, VpsName};
use croft_host::rootfs::RootfsError;
use tracing::info;

/// Puts the hash on stdin in root's /etc/shadow entry (the file itself,
/// its owner and mode, stay); fails if there is no root entry.
const SET: &str = "h=$(cat); f=/etc/shadow; \
                   awk -F: -v h=\"$h\" 'BEGIN { OFS = \":\" } $1 == \"root\" { $2 = h; found = 1 } { print } END { exit !found }' \
                   \"$f\" > \"$f.croft\" && cat \"$f.croft\" > \"$f\"; s=$?; rm -f \"$f.croft\"; exit $s";

/// Length of a generated password: 20 of 62 characters, 119 bits.
const GENERATED_LEN: usize = 20;

impl InstanceService {
    /// Set root's password of `vps` to `password`, or to a new random one
    /// (returned: the only time it is seen).
    pub async fn set_password(&self, vps: VpsName<'_>, password: Option<String>) -> Result<Option<String>> {
        if let Some(p) = &password {
            check(p)?;
        }
        let (_guard, row) = self.locked(vps).await?;
        let generated = password.is_none();
        let password = match password {
            Some(p) => p,
            None => generate().map_err(|e| ServiceError::host("read /dev/urandom", e))?,
        };
        let place = where_to_change(&row, "root's password")?;
        let secret = password.clone();
        let hash =
            crate::blocking(move || sha_crypt::sha512_simple(&secret, &sha_crypt::Sha512Params::default()))
                .await?
                .map_err(|e| {
                    ServiceError::host("hash the password", std::io::Error::other(format!("{e:?}")))
                })?;
        match place {
            Where::Inside => {
                let ran = self.run_inside(&row.key, SET, hash.as_bytes(), 30).await?;
                if ran.code != Some(0) {
                    return Err(failed(&ran, "setting the password"));
                }
            }
            Where::OnDisk => {
                let disk = self.disk(&row.key);
                let set =
                    crate::blocking(move || croft_host::rootfs::set_root_password_hash(&disk, &hash)).await?;
                set.map_err(|e| match e {
                    RootfsError::NoRootEntry => ServiceError::Invalid(e.to_string()),
                    e => ServiceError::host("set root's password", e),
                })?;
            }
        }
        info!(vps = %vps, tenant = vps.tenant, generated, "root password set");
        self.emit(&row, "vps-password-set", None);
        Ok(generated.then_some(password))
    }
}

/// A password `chpasswd` would take: one line, no `:`, 8 to 256 bytes.
fn check(password: &str) -> Result<()> {
    if !(8..=256).contains(&password.len()) {
        return Err(ServiceError::Invalid(
            "a password is 8 to 256 characters (or let croft generate one)".into(),
        ));
    }
    if password.chars().any(|c| c == ':' || c.is_control()) {
        return Err(ServiceError::Invalid(
            "a password may not hold ':' or control characters".into(),
        ));
    }
    Ok(())
}

/// A random password of letters and digits, from the kernel's random
/// source (rejection sampling keeps every character equally likely).
fn generate() -> std::io::Result<String> {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    use std::io::Read;
    let mut urandom = std::fs::File::open("/dev/urandom")?;
    let mut out = String::with_capacity(GENERATED_LEN);
    let mut byte = [0u8; 1];
    while out.len() < GENERATED_LEN {
        urandom.read_exact(&mut byte)?;
        // 248 = 4 * 62: bytes above would favour the first characters.
        if byte[0] < 248 {
            out.push(CHARS[usize::from(byte[0]) % CHARS.len()] as char);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_long_alphanumeric_and_differ() {
        let (a, b) = (generate().unwrap(), generate().unwrap());
        assert_eq!(a.len(), GENERATED_LEN);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
        assert!(check(&a).is_ok());
        for bad in ["short", "has:colon-inside", "new\nline-inside"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
