//! The installation's sealing key: AES-256-GCM over secrets stored in the database
//! (kubeconfig credentials, users' credentials), from `<home>/secret.key` or
//! `--secret-key-file`. Each blob is bound to the row it belongs to (the AAD), so a
//! sealed value copied to another row does not open.

use std::path::Path;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::fault::Internal;

/// Seals and opens credentials with the installation's key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Why the key that seals credentials could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    #[error("no randomness for the secret key")]
    NoRandomness,
    #[error("writing {}: {source}", path.display())]
    Write {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("reading {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a 32-byte key (raw, or 64 hex digits, or base64)", path.display())]
    BadKey { path: std::path::PathBuf },
    #[error(
        "the database's kubeconfig credentials are sealed with another key (id {stored}, this \
         server's is {ours}); start every replica with the same --secret-key-file"
    )]
    Mismatch { stored: String, ours: String },
    #[error("recording the key id: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The 32 key bytes of a key file: raw, or its text as hex or base64 (what `openssl rand
/// -hex 32` or `-base64 32` print, and what a Kubernetes Secret mounts).
fn key_bytes(file: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    if file.len() == 32 {
        return Some(file.to_vec());
    }
    let text = std::str::from_utf8(file).ok()?.trim();
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .ok()?
    };
    (decoded.len() == 32).then_some(decoded)
}

/// A key's public id: a hash that names it without revealing it.
fn key_id(key: &[u8]) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        &[b"meshery kubeconfig sealing key\0".as_slice(), key].concat(),
    );
    digest.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Sealer {
    /// Reads `file` when given (it must exist), else `<home>/secret.key`, making that
    /// (mode 0600) at first start. Also returns the key's id.
    pub fn open(home: &Path, file: Option<&Path>) -> Result<(Sealer, String), SecretKeyError> {
        let path = file.map_or_else(|| home.join("secret.key"), Path::to_path_buf);
        let rng = SystemRandom::new();
        let bytes = match std::fs::read(&path) {
            Ok(b) => key_bytes(&b).ok_or_else(|| SecretKeyError::BadKey { path: path.clone() })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {
                std::fs::create_dir_all(home).map_err(|source| SecretKeyError::Write {
                    path: path.clone(),
                    source,
                })?;
                let mut key = [0u8; 32];
                rng.fill(&mut key)
                    .map_err(|_| SecretKeyError::NoRandomness)?;
                write_private(&path, &key).map_err(|source| SecretKeyError::Write {
                    path: path.clone(),
                    source,
                })?;
                key.to_vec()
            }
            Err(source) => return Err(SecretKeyError::Read { path, source }),
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| SecretKeyError::BadKey { path: path.clone() })?;
        let sealer = Sealer {
            key: LessSafeKey::new(key),
            rng,
        };
        Ok((sealer, key_id(&bytes)))
    }

    /// nonce || ciphertext+tag, bound to `id` (moving a blob to another row fails).
    pub fn seal(&self, id: &str, plain: &[u8]) -> Result<Vec<u8>, Internal> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| Internal::new("sealing credentials", "no randomness"))?;
        let mut buffer = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut buffer,
            )
            .map_err(|_| Internal::new("sealing credentials", "encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend(buffer);
        Ok(out)
    }

    pub fn open_blob(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>, Internal> {
        if sealed.len() < NONCE_LEN {
            return Err(Internal::new("opening credentials", "too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Internal::new("opening credentials", "bad nonce"))?;
        let mut buffer = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(id.as_bytes()), &mut buffer)
            .map_err(|_| Internal::new("opening credentials", "the key does not open them"))?;
        Ok(plain.to_vec())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}
