//! Rotation and destruction for the file key store: the new key file is written (0600, atomic
//! rename) before the `active` pointer moves, so a concurrent reader sees the old or the new key,
//! never none; the in-memory set is then reloaded so the running worker signs with the new key.

use shc::{JwsSigner as _, LocalSigner};
use store::{Issuer, Store};

use crate::error::{Error, Result};
use crate::keystore::{write_private, FileKeyStore, ACTIVE_FILE};

pub(super) async fn rotate(keys: &FileKeyStore, store: &Store, issuer: &Issuer) -> Result<String> {
    let dir = keys.dir().join(&issuer.slug);
    let signer = LocalSigner::generate();
    let jwk = serde_json::to_vec_pretty(&signer.to_private_jwk())
        .map_err(|_| Error::KeyStore("key does not serialize"))?;
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "key directory",
        source,
    })?;
    write_private(&dir.join(format!("{}.jwk.json", signer.kid())), &jwk)?;
    write_private(&dir.join(ACTIVE_FILE), signer.kid().as_bytes())?;
    keys.reload_issuer(store, issuer).await?;
    Ok(signer.kid().to_owned())
}

pub(super) async fn destroy(
    keys: &FileKeyStore,
    store: &Store,
    issuer: &Issuer,
    kid: &str,
) -> Result<()> {
    // `kid`s are base64url thumbprints; anything else must not become a path.
    if kid.is_empty()
        || !kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::KeyStore("not a key id"));
    }
    let path = keys
        .dir()
        .join(&issuer.slug)
        .join(format!("{kid}.jwk.json"));
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                what: "key file",
                source,
            })
        }
    }
    keys.reload_issuer(store, issuer).await
}
