//! Secrets at rest: AES-256-GCM with one deployment key.
//!
//! The key comes from `SNAPEX_SECRET_KEY` (standard base64 of 32 bytes) or, by default, from
//! `<data_dir>/secret.key`, created with mode 0600 the first time it is needed and refused when
//! group or others may read or write it. Every node of a multi-node deployment must use the
//! same key (set `SNAPEX_SECRET_KEY` on each, or copy the key file): the key decrypts the stored access-role credentials and API-key digests, and signs
//! the HTTP Digest nonces that any node may be asked to check.
//!
//! A sealed value is text so that it fits a `TEXT` column of either database:
//! `v1:` followed by unpadded base64url of `nonce (12 bytes) || ciphertext || tag (16 bytes)`.
//! The version prefix leaves room for key rotation without guessing formats.
//!
//! Other keys are derived from the master key with HMAC-SHA-256 and a purpose label
//! ([`SecretBox::derive_key`]), so that one secret never serves two algorithms.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Environment variable holding the base64 of the 32-byte master key.
pub const SECRET_KEY_ENV: &str = "SNAPEX_SECRET_KEY";
/// Name of the key file inside the data directory.
pub const SECRET_KEY_FILE: &str = "secret.key";

const VERSION_PREFIX: &str = "v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("secret key is not base64 of 32 bytes ({0})")]
    BadKey(String),
    #[error("cannot read or create the secret key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `secret.key` may be read or written by group or others: refused, since the key
    /// decrypts every stored credential.
    #[error(
        "the secret key file {path} is readable or writable by group or others (mode {mode:04o}); \
         it must be owner-only: chmod 600 {path}"
    )]
    KeyFileMode { path: PathBuf, mode: u32 },
    #[error("sealed secret has an unknown format")]
    Malformed,
    #[error("sealed secret cannot be decrypted: wrong key or tampered value")]
    Decrypt,
}

/// The deployment's encryption key. Cheap to clone (32 bytes plus the cipher state).
#[derive(Clone)]
pub struct SecretBox {
    key: [u8; 32],
    cipher: Aes256Gcm,
}

impl fmt::Debug for SecretBox {
    // Never print key material, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretBox").finish_non_exhaustive()
    }
}

impl SecretBox {
    /// A box over an explicit key (tests, or keys from another source).
    pub fn from_key(key: [u8; 32]) -> Self {
        let cipher = Aes256Gcm::new(&key.into());
        SecretBox { key, cipher }
    }

    /// Decodes a key given as standard (or URL-safe) base64 of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|e| SecretError::BadKey(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SecretError::BadKey(format!("{} bytes", b.len())))?;
        Ok(Self::from_key(key))
    }

    /// Reads `<data_dir>/secret.key`, creating it (and the directory, 0700) with a fresh
    /// random key and mode 0600 when it does not exist. Two processes racing to create it
    /// agree on one key: the file is created exclusively and the loser reads the winner's key.
    /// An existing file that group or others may read or write is refused
    /// ([`SecretError::KeyFileMode`]).
    pub fn load_or_create(data_dir: &Path) -> Result<Self, SecretError> {
        let path = data_dir.join(SECRET_KEY_FILE);
        let io_err = |source| SecretError::KeyFile {
            path: path.clone(),
            source,
        };
        let check_mode = || {
            crate::owner_only::check_private_file(&path).map_err(|mode| SecretError::KeyFileMode {
                path: path.clone(),
                mode,
            })
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                check_mode()?;
                return Self::from_base64(&text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        crate::owner_only::create_private_dir(data_dir).map_err(io_err)?;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(&path) {
            Ok(mut file) => {
                // The mode asked for at creation is narrowed by the umask; set it exactly.
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    file.set_permissions(std::fs::Permissions::from_mode(
                        crate::owner_only::FILE_MODE,
                    ))
                    .map_err(io_err)?;
                }
                file.write_all(format!("{}\n", STANDARD.encode(key)).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io_err)?;
                tracing::info!(path = %path.display(), "created a new secret key");
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // Another process won the race; it may still be writing, so retry briefly.
                for _ in 0..50 {
                    let text = std::fs::read_to_string(&path).map_err(io_err)?;
                    if !text.trim().is_empty() {
                        check_mode()?;
                        return Self::from_base64(&text);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(SecretError::BadKey("key file stays empty".into()))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// `SNAPEX_SECRET_KEY` when set (and non-empty), else [`SecretBox::load_or_create`].
    pub fn from_env_or_data_dir(data_dir: &Path) -> Result<Self, SecretError> {
        match std::env::var(SECRET_KEY_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::from_base64(&text),
            _ => Self::load_or_create(data_dir),
        }
    }

    /// Encrypts with a fresh random nonce; the same plaintext seals differently every time.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        // AES-GCM encryption of an in-memory buffer cannot fail for inputs below 64 GiB.
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        format!("{VERSION_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts a value made by [`SecretBox::seal`] with the same key.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let body = sealed
            .strip_prefix(VERSION_PREFIX)
            .ok_or(SecretError::Malformed)?;
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SecretError::Malformed)?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(SecretError::Malformed);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Decrypt)
    }

    /// A 32-byte key for another purpose (nonce signing, …), HMAC-SHA-256(master, label).
    pub fn derive_key(&self, label: &str) -> [u8; 32] {
        hmac_sha256(&self.key, label.as_bytes())
    }
}

/// HMAC-SHA-256 of `message` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` never fails.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0u8; 32],
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_nonce_freshness() {
        let sb = SecretBox::from_key([7u8; 32]);
        let a = sb.seal(b"aws-secret");
        let b = sb.seal(b"aws-secret");
        assert!(a.starts_with("v1:"));
        assert_ne!(a, b, "a fresh nonce per seal");
        assert!(!a.contains("aws-secret"));
        assert_eq!(sb.open(&a).unwrap(), b"aws-secret");
        assert_eq!(sb.open(&b).unwrap(), b"aws-secret");
        assert_eq!(sb.open(&sb.seal(b"")).unwrap(), b"");
    }

    #[test]
    fn wrong_key_tamper_and_garbage_are_refused() {
        let sb = SecretBox::from_key([1u8; 32]);
        let other = SecretBox::from_key([2u8; 32]);
        let sealed = sb.seal(b"hello");
        assert!(matches!(other.open(&sealed), Err(SecretError::Decrypt)));
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed[3..]).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:{}", URL_SAFE_NO_PAD.encode(raw));
        assert!(matches!(sb.open(&tampered), Err(SecretError::Decrypt)));
        assert!(matches!(sb.open("hello"), Err(SecretError::Malformed)));
        assert!(matches!(sb.open("v1:AAAA"), Err(SecretError::Malformed)));
        assert!(matches!(sb.open("v1:!!"), Err(SecretError::Malformed)));
    }

    #[test]
    fn key_file_is_created_once_with_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested");
        let first = SecretBox::load_or_create(&data).unwrap();
        let sealed = first.seal(b"x");
        let second = SecretBox::load_or_create(&data).unwrap();
        assert_eq!(second.open(&sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(data.join(SECRET_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn base64_keys_must_be_32_bytes() {
        assert!(SecretBox::from_base64(&STANDARD.encode([9u8; 32])).is_ok());
        assert!(SecretBox::from_base64(&STANDARD.encode([9u8; 16])).is_err());
        assert!(SecretBox::from_base64("not base64!").is_err());
    }

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
