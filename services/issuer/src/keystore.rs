//! Signing keys: the [`KeyStore`] seam the worker signs through, and the default
//! [`FileKeyStore`] — one P-256 key per issuer, generated on first start into
//! `{keys_dir}/{issuer slug}/{kid}.jwk.json` (mode 0600, directory 0700), its public JWK
//! recorded in the `signing_keys` table so the JWKS and CRLs know it.
//!
//! Which key is active is the `active` file beside the keys (one `kid`); rotation (`vaxcred keys
//! rotate`) writes a new key file and then the pointer, so a reader sees either the old or the
//! new key, never none. A PKCS#11 store implements the same trait with the key on the token.
//! Private keys never appear in logs, errors or `Debug` output (only `kid`s do).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use shc::{Jwk, Jwks, JwsSigner, LocalSigner};
use store::{Issuer, KeyStatus, NewSigningKey, Store};
use tracing::info;

use crate::error::{Error, Result};

/// Name written to `signing_keys.key_store` for keys of the file store.
pub const FILE_STORE: &str = "file";
pub(crate) const ACTIVE_FILE: &str = "active";
const RID_SECRET_FILE: &str = "rid-secret";

/// Where the worker gets its signer and the JWKS its keys.
pub trait KeyStore: Send + Sync {
    /// The signer of `issuer_id`'s active key.
    fn active_signer(&self, issuer_id: &str) -> Result<Arc<dyn JwsSigner>>;
    /// The public keys this store holds for `issuer_id` (active first). The served JWKS is built
    /// from the database ([`crate::jwks`]), which also knows statuses and CRL versions.
    fn public_jwks(&self, issuer_id: &str) -> Result<Jwks>;
}

/// What a key store holds for one issuer: the active key's signer and every public key it still
/// has. Generic over the signer, so the file and PKCS#11 stores share the lookups.
pub(crate) struct IssuerKeys<S> {
    pub(crate) active: Arc<S>,
    pub(crate) public: Vec<Jwk>,
}

/// Issuer id → keys, behind a lock (rotation replaces an entry while workers sign).
pub(crate) type KeyMap<S> = RwLock<HashMap<String, IssuerKeys<S>>>;

/// [`KeyStore::active_signer`] over a [`KeyMap`].
pub(crate) fn active_signer_in<S: JwsSigner + 'static>(
    map: &KeyMap<S>,
    issuer_id: &str,
) -> Result<Arc<dyn JwsSigner>> {
    with_keys(map, issuer_id, |keys| -> Arc<dyn JwsSigner> {
        keys.active.clone()
    })
}

/// [`KeyStore::public_jwks`] over a [`KeyMap`].
pub(crate) fn public_jwks_in<S>(map: &KeyMap<S>, issuer_id: &str) -> Result<Jwks> {
    with_keys(map, issuer_id, |keys| Jwks::from_public(&keys.public))
}

fn with_keys<S, T>(
    map: &KeyMap<S>,
    issuer_id: &str,
    f: impl FnOnce(&IssuerKeys<S>) -> T,
) -> Result<T> {
    let map = map
        .read()
        .map_err(|_| Error::KeyStore("key cache poisoned"))?;
    let keys = map
        .get(issuer_id)
        .ok_or(Error::KeyStore("no key for this issuer"))?;
    Ok(f(keys))
}

/// The default key store: private keys as JWK files in a local directory.
pub struct FileKeyStore {
    dir: PathBuf,
    issuers: KeyMap<LocalSigner>,
}

impl std::fmt::Debug for FileKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileKeyStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

impl FileKeyStore {
    /// Opens the store in `dir` for `issuers`: loads each issuer's active key, generating one on
    /// first start, and records every key's public JWK in `signing_keys` (status `active` for the
    /// active key) if it is not there yet.
    pub async fn open(dir: &Path, store: &Store, issuers: &[Issuer]) -> Result<FileKeyStore> {
        create_private_dir(dir)?;
        let mut map = HashMap::new();
        for issuer in issuers {
            let keys = load_or_generate(&dir.join(&issuer.slug))?;
            register_keys(
                store,
                &issuer.id,
                &keys.public,
                keys.active.kid(),
                FILE_STORE,
            )
            .await?;
            map.insert(issuer.id.clone(), keys);
        }
        Ok(FileKeyStore {
            dir: dir.to_owned(),
            issuers: RwLock::new(map),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Re-reads `issuer`'s keys from disk (generating the first one for an issuer added at run
    /// time), registers public keys not yet in `signing_keys`, and swaps the in-memory set, so
    /// rotation and retirement (`crate::keys`) take effect without a restart.
    pub async fn reload_issuer(&self, store: &Store, issuer: &Issuer) -> Result<()> {
        let keys = load_or_generate(&self.dir.join(&issuer.slug))?;
        register_keys(
            store,
            &issuer.id,
            &keys.public,
            keys.active.kid(),
            FILE_STORE,
        )
        .await?;
        self.issuers
            .write()
            .map_err(|_| Error::KeyStore("key cache poisoned"))?
            .insert(issuer.id.clone(), keys);
        Ok(())
    }

    /// The secret `rid`s are derived with (`shc::rid::derive`), generated on first use into
    /// `{dir}/rid-secret` (mode 0600). Stable across restarts, so a patient's `rid` under one key
    /// stays the same and one CRL entry revokes all their cards of that key.
    pub fn rid_secret(&self) -> Result<String> {
        rid_secret_at(&self.dir)
    }
}

/// The `rid` secret kept in `dir` (see [`FileKeyStore::rid_secret`]); also used beside a PKCS#11
/// key store, whose token holds only the signing keys.
pub fn rid_secret_at(dir: &std::path::Path) -> Result<String> {
    let path = dir.join(RID_SECRET_FILE);
    match fs::read_to_string(&path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("rid secret")(e)),
    }
    fs::create_dir_all(dir).map_err(io("key dir"))?;
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let secret = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes);
    write_private(&path, secret.as_bytes())?;
    Ok(secret)
}

impl KeyStore for FileKeyStore {
    fn active_signer(&self, issuer_id: &str) -> Result<Arc<dyn JwsSigner>> {
        active_signer_in(&self.issuers, issuer_id)
    }

    fn public_jwks(&self, issuer_id: &str) -> Result<Jwks> {
        public_jwks_in(&self.issuers, issuer_id)
    }
}

/// Records in `signing_keys` every key of `public` not there yet, as held by `key_store`
/// (`file`, `pkcs11`): `active_kid` as `active`, the others (earlier keys) as `retired`.
pub(crate) async fn register_keys(
    store: &Store,
    issuer_id: &str,
    public: &[Jwk],
    active_kid: &str,
    key_store: &str,
) -> Result<()> {
    for jwk in public {
        if store.get_signing_key(issuer_id, &jwk.kid).await?.is_some() {
            continue;
        }
        let public_jwk = serde_json::to_value(jwk)
            .map_err(|_| Error::KeyStore("public key does not serialize"))?;
        store
            .add_signing_key(&NewSigningKey {
                issuer_id: issuer_id.to_owned(),
                kid: jwk.kid.clone(),
                public_jwk,
                key_store: key_store.to_owned(),
                private_key_encrypted: None,
            })
            .await?;
        if jwk.kid != active_kid {
            store
                .set_signing_key_status(issuer_id, &jwk.kid, KeyStatus::Retired)
                .await?;
        }
        info!(issuer_id = %issuer_id, kid = %jwk.kid, key_store, "signing key registered");
    }
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io("key directory"))
}

/// Loads every `*.jwk.json` in `dir`; generates the first key when there is none.
fn load_or_generate(dir: &Path) -> Result<IssuerKeys<LocalSigner>> {
    create_private_dir(dir)?;
    let mut signers: Vec<LocalSigner> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io("key directory"))? {
        let path = entry.map_err(io("key directory"))?.path();
        let is_key = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".jwk.json"));
        if !is_key {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(io("key file"))?;
        let signer = LocalSigner::from_json(&text, None)
            .map_err(|_| Error::KeyStore("a key file is not a P-256 private JWK"))?;
        signers.push(signer);
    }
    let active_kid = match fs::read_to_string(dir.join(ACTIVE_FILE)) {
        Ok(kid) => Some(kid.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io("active key pointer")(e)),
    };
    let active = match active_kid {
        Some(kid) => signers
            .iter()
            .find(|s| s.kid() == kid)
            .cloned()
            .ok_or(Error::KeyStore("the active key file is missing"))?,
        None => match signers.first() {
            Some(s) if signers.len() == 1 => {
                write_private(&dir.join(ACTIVE_FILE), s.kid().as_bytes())?;
                s.clone()
            }
            Some(_) => return Err(Error::KeyStore("several keys and no active pointer")),
            None => {
                let signer = LocalSigner::generate();
                let jwk = serde_json::to_vec_pretty(&signer.to_private_jwk())
                    .map_err(|_| Error::KeyStore("key does not serialize"))?;
                write_private(&dir.join(format!("{}.jwk.json", signer.kid())), &jwk)?;
                write_private(&dir.join(ACTIVE_FILE), signer.kid().as_bytes())?;
                info!(kid = %signer.kid(), "generated a new signing key");
                signers.push(signer.clone());
                signer
            }
        },
    };
    let mut public: Vec<Jwk> = vec![active.public_jwk().clone()];
    public.extend(
        signers
            .iter()
            .filter(|s| s.kid() != active.kid())
            .map(|s| s.public_jwk().clone()),
    );
    Ok(IssuerKeys {
        active: Arc::new(active),
        public,
    })
}

/// Writes `bytes` to `path` with mode 0600 through a temporary file and a rename, so a crash
/// never leaves a half-written key.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io("key file"))?;
    file.write_all(bytes).map_err(io("key file"))?;
    file.sync_all().map_err(io("key file"))?;
    fs::rename(&tmp, path).map_err(io("key file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_with_private_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let again = load_or_generate(dir.path()).unwrap();
        assert_eq!(first.active.kid(), again.active.kid());
        assert_eq!(again.public.len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file = dir.path().join(format!("{}.jwk.json", first.active.kid()));
            let mode = fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
