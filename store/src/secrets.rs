//! Secrets at rest: one 32-byte master key seals every stored secret (SigV4
//! secret access keys) with ChaCha20-Poly1305, a random nonce per secret and
//! the owner's id as associated data, so a sealed value cannot be moved to
//! another row. The master key comes from `SIGNPOST_MASTER_KEY` (64 hex
//! digits or base64 of 32 bytes) or from `<state-dir>/master.key`, made on
//! first use with mode 0600 (created atomically: concurrent first uses agree
//! on one key). Each sealed value records the id of the key that sealed it
//! (`kek_id`, the first 16 hex digits of the key's SHA-256) for rotation.
//!
//! Nothing here prints a secret: [`MasterKey`] and [`SecretString`] have
//! redacting `Debug` impls and no `Display`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

/// The environment variable that holds the master key.
pub const MASTER_KEY_ENV: &str = "SIGNPOST_MASTER_KEY";
/// The master key's file name in the state directory.
pub const MASTER_KEY_FILE: &str = "master.key";
/// Length of a ChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 12;

/// Why secrets cannot be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// The environment variable or the file does not hold a 32-byte key.
    #[error("{source_name} does not hold a master key: expected 64 hex digits or base64 of 32 bytes")]
    BadKey {
        /// Where the key came from.
        source_name: String,
    },
    /// Reading or creating the key file failed.
    #[error("master key file {path}: {error}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// No master key is configured for this store.
    #[error("no master key is configured (set {MASTER_KEY_ENV} or give a state directory)")]
    NotConfigured,
    /// A sealed value was made with another master key.
    #[error("the secret was sealed with master key {found}, not with the current key {current}")]
    OtherKey {
        /// The key id recorded with the value.
        found: String,
        /// The current key's id.
        current: String,
    },
    /// The sealed value or its associated data was altered.
    #[error("a sealed secret failed authentication (altered, or moved to another row)")]
    Tampered,
}

/// A secret held in memory: wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: String) -> Self {
        SecretString(secret)
    }

    /// The secret itself; do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A sealed secret as stored: nonce, ciphertext with tag, and the id of the
/// master key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The random nonce.
    pub nonce: Vec<u8>,
    /// Ciphertext followed by the Poly1305 tag.
    pub ciphertext: Vec<u8>,
    /// [`MasterKey::kek_id`] of the sealing key.
    pub kek_id: String,
}

/// The 32-byte master key.
pub struct MasterKey {
    key: [u8; 32],
    kek_id: String,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey").field("kek_id", &self.kek_id).finish_non_exhaustive()
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl MasterKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        let kek_id = hex::encode(&Sha256::digest(key)[..8]);
        MasterKey { key, kek_id }
    }

    /// A key from text: 64 hex digits or base64 of 32 bytes (surrounding
    /// whitespace ignored). `source_name` names the source in the error.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, SecretsError> {
        let text = text.trim();
        let mut bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            BASE64.decode(text).ok()
        }
        .unwrap_or_default();
        let key: Result<[u8; 32], _> = bytes.as_slice().try_into();
        bytes.zeroize();
        key.map(MasterKey::from_bytes)
            .map_err(|_| SecretsError::BadKey { source_name: source_name.to_owned() })
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        MasterKey::from_bytes(key)
    }

    /// The key's id: the first 16 hex digits of its SHA-256 (not secret).
    pub fn kek_id(&self) -> &str {
        &self.kek_id
    }

    /// The key from `SIGNPOST_MASTER_KEY` if set, else from
    /// `<state_dir>/master.key`, which is made (mode 0600) when missing.
    pub fn load(state_dir: &Path) -> Result<Self, SecretsError> {
        match std::env::var(MASTER_KEY_ENV) {
            Ok(text) => MasterKey::parse(&text, MASTER_KEY_ENV),
            Err(_) => MasterKey::load_file(&state_dir.join(MASTER_KEY_FILE)),
        }
    }

    /// The key in `path`, made with a new random key when missing. The file
    /// is written whole under a temporary name and linked into place, so a
    /// reader never sees half a key and two first uses agree on one key.
    pub fn load_file(path: &Path) -> Result<Self, SecretsError> {
        let file_error = |error| SecretsError::File { path: path.to_path_buf(), error };
        match std::fs::read_to_string(path) {
            Ok(text) => return MasterKey::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(file_error(e)),
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        let key = MasterKey::generate();
        let temp = path.with_extension(format!("tmp.{}", rand::random::<u64>()));
        let written = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            let mut text = hex::encode(key.key);
            text.push('\n');
            let result = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
            text.zeroize();
            result?;
            std::fs::hard_link(&temp, path)
        })();
        let _ = std::fs::remove_file(&temp);
        match written {
            Ok(()) => Ok(key),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(file_error)?;
                MasterKey::parse(&text, &path.display().to_string())
            }
            Err(e) => Err(file_error(e)),
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(&Key::from(self.key))
    }

    /// Seals `secret` for the owner `owner_id` (associated data).
    pub fn seal(&self, owner_id: &str, secret: &str) -> Sealed {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(owner_id);
        let ciphertext = self
            .cipher()
            .encrypt(&Nonce::from(nonce), Payload { msg: secret.as_bytes(), aad: &aad })
            .unwrap_or_else(|_| unreachable!("ChaCha20-Poly1305 encrypts any message below 256 GiB"));
        Sealed { nonce: nonce.to_vec(), ciphertext, kek_id: self.kek_id.clone() }
    }

    /// Opens a value sealed for `owner_id`.
    pub fn open(&self, owner_id: &str, sealed: &Sealed) -> Result<SecretString, SecretsError> {
        if sealed.kek_id != self.kek_id {
            return Err(SecretsError::OtherKey {
                found: sealed.kek_id.clone(),
                current: self.kek_id.clone(),
            });
        }
        let nonce: [u8; NONCE_LEN] =
            sealed.nonce.as_slice().try_into().map_err(|_| SecretsError::Tampered)?;
        let aad = associated_data(owner_id);
        let mut plain = self
            .cipher()
            .decrypt(&Nonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: &aad })
            .map_err(|_| SecretsError::Tampered)?;
        let text = String::from_utf8(plain.clone()).map_err(|_| SecretsError::Tampered);
        plain.zeroize();
        text.map(SecretString::new)
    }
}

fn associated_data(owner_id: &str) -> Vec<u8> {
    format!("signpost/secret/v1/{owner_id}").into_bytes()
}

/// Where a store gets its master key: loaded on first use (so processes
/// that never touch a secret never make the file), then kept.
#[derive(Debug)]
pub struct MasterKeySource {
    state_dir: PathBuf,
    loaded: Mutex<Option<Arc<MasterKey>>>,
}

impl MasterKeySource {
    /// The key from the environment, else from `<state_dir>/master.key`.
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        MasterKeySource { state_dir: state_dir.into(), loaded: Mutex::new(None) }
    }

    /// A source that always gives `key`.
    pub fn fixed(key: MasterKey) -> Self {
        MasterKeySource { state_dir: PathBuf::new(), loaded: Mutex::new(Some(Arc::new(key))) }
    }

    /// The key, loading (or making) it on the first call.
    pub fn get(&self) -> Result<Arc<MasterKey>, SecretsError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(key) = &*loaded {
            return Ok(key.clone());
        }
        let key = Arc::new(MasterKey::load(&self.state_dir)?);
        *loaded = Some(key.clone());
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_owner_and_key() {
        let key = MasterKey::generate();
        let sealed = key.seal("AKIAAAAAAAAAAAAAAAAA", "secret/value+1");
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"secret"));
        assert_eq!(key.open("AKIAAAAAAAAAAAAAAAAA", &sealed).expect("opens").expose(), "secret/value+1");
        assert!(matches!(key.open("AKIABBBBBBBBBBBBBBBB", &sealed), Err(SecretsError::Tampered)));
        let mut altered = sealed.clone();
        altered.ciphertext[0] ^= 1;
        assert!(matches!(key.open("AKIAAAAAAAAAAAAAAAAA", &altered), Err(SecretsError::Tampered)));
        let other = MasterKey::generate();
        assert!(matches!(other.open("AKIAAAAAAAAAAAAAAAAA", &sealed), Err(SecretsError::OtherKey { .. })));
        // Two seals of one secret differ (random nonce).
        assert_ne!(key.seal("x", "s").ciphertext, key.seal("x", "s").ciphertext);
    }

    #[test]
    fn keys_parse_from_hex_or_base64_only_at_32_bytes() {
        let hex_text = "00".repeat(31) + "01";
        let b64 = BASE64.encode([0u8; 31].iter().chain([1u8].iter()).copied().collect::<Vec<_>>());
        let a = MasterKey::parse(&hex_text, "t").expect("hex");
        let b = MasterKey::parse(&format!(" {b64}\n"), "t").expect("base64");
        assert_eq!(a.kek_id(), b.kek_id());
        assert!(MasterKey::parse("abcd", "t").is_err());
        assert!(MasterKey::parse(&BASE64.encode([0u8; 16]), "t").is_err());
        assert!(!format!("{a:?}").contains(&hex_text));
        assert_eq!(format!("{:?}", SecretString::new("hunter2".into())), "SecretString(<redacted>)");
    }

    #[test]
    fn the_key_file_is_made_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("signpost-master-{}", rand::random::<u64>()));
        let path = dir.join(MASTER_KEY_FILE);
        let first = MasterKey::load_file(&path).expect("made");
        let again = MasterKey::load_file(&path).expect("read");
        assert_eq!(first.kek_id(), again.kek_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let shared = dir.join("race.key");
                std::thread::spawn(move || MasterKey::load_file(&shared).map(|k| k.kek_id().to_owned()))
            })
            .collect();
        let ids: Vec<String> = threads.into_iter().map(|t| t.join().expect("thread").expect("key")).collect();
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
        std::fs::write(dir.join("bad.key"), "not a key").expect("write");
        assert!(matches!(MasterKey::load_file(&dir.join("bad.key")), Err(SecretsError::BadKey { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
