//! Key lifecycle on top of the key stores: rotate, retire, revoke, and first keys for issuers
//! added at run time (spec-checklist rule 26, DESIGN §6). Used by the admin endpoints and by
//! `vaxcred keys rotate|list|retire|revoke`.
//!
//! Statuses (`signing_keys.status`): `active` signs new cards; `retired` signs nothing but stays
//! in the JWKS so the cards it signed keep verifying; `revoked` is gone from the JWKS, so every
//! card it signed fails at once (compromise). Rotation makes a new active key and retires the old
//! one; `retire` destroys a non-active key's private half (the spec's "retired private keys SHALL
//! be destroyed") and keeps its public half published; `revoke` also destroys the private half.

use std::sync::Arc;

use store::{Issuer, KeyStatus, SigningKey, Store};

use crate::keystore::{FileKeyStore, KeyStore};
use crate::pkcs11::Pkcs11KeyStore;

mod file;

/// Why a key operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyAdminError {
    /// No key with this `kid` for this issuer.
    #[error("no such key for this issuer")]
    UnknownKey,
    /// The key signs new cards: rotate first.
    #[error("the key is the issuer's active key; rotate first")]
    ActiveKey,
    /// The key is revoked already.
    #[error("the key is revoked")]
    Revoked,
    /// The key store failed.
    #[error("key store failure")]
    KeyStore(#[from] crate::error::Error),
    /// The database failed.
    #[error("store failure")]
    Store(#[from] store::Error),
}

impl KeyAdminError {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            KeyAdminError::UnknownKey => "key-unknown",
            KeyAdminError::ActiveKey => "key-is-active",
            KeyAdminError::Revoked => "key-revoked",
            KeyAdminError::KeyStore(e) => e.code(),
            KeyAdminError::Store(e) => e.code(),
        }
    }

    /// True when a retry may succeed (database outage).
    pub fn is_retryable(&self) -> bool {
        match self {
            KeyAdminError::KeyStore(e) => e.is_retryable(),
            KeyAdminError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// A key store whose keys can be managed (both stores vaxcred ships). Cheap to clone.
#[derive(Clone)]
pub enum ManagedKeys {
    /// Private keys as files.
    File(Arc<FileKeyStore>),
    /// Private keys on a PKCS#11 token.
    Pkcs11(Arc<Pkcs11KeyStore>),
}

impl std::fmt::Debug for ManagedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagedKeys::File(_) => f.write_str("ManagedKeys::File"),
            ManagedKeys::Pkcs11(_) => f.write_str("ManagedKeys::Pkcs11"),
        }
    }
}

impl ManagedKeys {
    /// The store as the signing seam the worker and the HTTP surface use.
    pub fn as_key_store(&self) -> Arc<dyn KeyStore> {
        match self {
            ManagedKeys::File(s) => s.clone(),
            ManagedKeys::Pkcs11(s) => s.clone(),
        }
    }

    /// Loads (or creates the first key of) an issuer, e.g. one added at run time.
    pub async fn ensure_issuer(&self, store: &Store, issuer: &Issuer) -> Result<(), KeyAdminError> {
        match self {
            ManagedKeys::File(s) => s.reload_issuer(store, issuer).await?,
            ManagedKeys::Pkcs11(s) => s.load_issuer(store, issuer).await?,
        }
        Ok(())
    }

    /// Makes a new active key for `issuer` and retires the previous active one (it stays in the
    /// JWKS). Returns the new `kid`.
    pub async fn rotate(&self, store: &Store, issuer: &Issuer) -> Result<String, KeyAdminError> {
        let kid = match self {
            ManagedKeys::File(s) => file::rotate(s, store, issuer).await?,
            ManagedKeys::Pkcs11(s) => s.rotate(store, issuer).await?,
        };
        for key in store.list_signing_keys(&issuer.id).await? {
            if key.status == KeyStatus::Active && key.kid != kid {
                store
                    .set_signing_key_status(&issuer.id, &key.kid, KeyStatus::Retired)
                    .await?;
            }
        }
        tracing::info!(issuer_id = %issuer.id, kid = %kid, "signing key rotated");
        Ok(kid)
    }

    /// Destroys the private half of a non-active key; its public half stays in the JWKS.
    pub async fn retire(
        &self,
        store: &Store,
        issuer: &Issuer,
        kid: &str,
    ) -> Result<(), KeyAdminError> {
        let key = existing(store, issuer, kid).await?;
        if key.status == KeyStatus::Active || self.is_active(issuer, kid) {
            return Err(KeyAdminError::ActiveKey);
        }
        self.destroy(store, issuer, kid).await?;
        if key.status != KeyStatus::Revoked {
            store
                .set_signing_key_status(&issuer.id, kid, KeyStatus::Retired)
                .await?;
        }
        tracing::info!(issuer_id = %issuer.id, kid = %kid, "signing key retired");
        Ok(())
    }

    /// Withdraws a key at once (compromise): removed from the JWKS, private half destroyed. An
    /// active key is rotated away first so the issuer keeps signing. Returns the new active
    /// `kid` when a rotation happened.
    pub async fn revoke(
        &self,
        store: &Store,
        issuer: &Issuer,
        kid: &str,
    ) -> Result<Option<String>, KeyAdminError> {
        let key = existing(store, issuer, kid).await?;
        if key.status == KeyStatus::Revoked {
            return Err(KeyAdminError::Revoked);
        }
        let rotated = if key.status == KeyStatus::Active || self.is_active(issuer, kid) {
            Some(self.rotate(store, issuer).await?)
        } else {
            None
        };
        store
            .set_signing_key_status(&issuer.id, kid, KeyStatus::Revoked)
            .await?;
        self.destroy(store, issuer, kid).await?;
        tracing::warn!(issuer_id = %issuer.id, kid = %kid, "signing key revoked");
        Ok(rotated)
    }

    fn is_active(&self, issuer: &Issuer, kid: &str) -> bool {
        self.as_key_store()
            .active_signer(&issuer.id)
            .is_ok_and(|s| s.kid() == kid)
    }

    async fn destroy(
        &self,
        store: &Store,
        issuer: &Issuer,
        kid: &str,
    ) -> Result<(), KeyAdminError> {
        match self {
            ManagedKeys::File(s) => file::destroy(s, store, issuer, kid).await?,
            ManagedKeys::Pkcs11(s) => s.destroy(store, issuer, kid).await?,
        }
        Ok(())
    }
}

async fn existing(store: &Store, issuer: &Issuer, kid: &str) -> Result<SigningKey, KeyAdminError> {
    store
        .get_signing_key(&issuer.id, kid)
        .await?
        .ok_or(KeyAdminError::UnknownKey)
}
