//! SMART Health Link hosting (spec-checklist §N–Q): creating a link for a credential, answering
//! manifest requests (`POST /shl/{id}`) with the lifetime passcode budget, minting and checking
//! short-lived `location` tokens, and producing the encrypted file. The link key is stored with
//! the link (the server must re-encrypt when the card is superseded, N.77); it never appears in
//! logs, and the `shlink:/` payload is handed to the caller only.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use shl::{ContentType, EmbedPolicy, Manifest, ManifestRequest, ShlKey, ShlPayload};
use store::{Credential, CredentialStatus, NewShlLink, PasscodeFailure, ShlLink};

use crate::error::{DeliveryError, Result};
use crate::state::{DeliveryState, FILE_CACHE_MAX};

/// Path of the viewer page, relative to the public base URL.
pub const VIEWER_PATH: &str = "/shl/view";

/// Options for a new link.
#[derive(Clone, Default)]
pub struct LinkOptions {
    /// Passcode for flag `P` (hashed with Argon2id; never stored or logged in clear).
    pub passcode: Option<String>,
    /// Label shown by receivers (≤ 80 characters).
    pub label: Option<String>,
    /// Flag `U`: the link URL is the file itself (no manifest, no passcode).
    pub direct_file: bool,
}

impl std::fmt::Debug for LinkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkOptions")
            .field("passcode", &self.passcode.is_some())
            .field("direct_file", &self.direct_file)
            .finish_non_exhaustive()
    }
}

/// A created link. `Debug` hides everything but the flags (the rest are capabilities).
#[derive(Clone)]
pub struct CreatedLink {
    /// Manifest id (the capability in the manifest URL).
    pub link_id: String,
    /// `shlink:/…`.
    pub shlink: String,
    /// `{base}/shl/view#shlink:/…`.
    pub viewer_link: String,
    /// Flags on the wire (`P`, `U` or empty).
    pub flags: String,
    /// Expiry, epoch seconds.
    pub exp: Option<u64>,
}

impl std::fmt::Debug for CreatedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedLink")
            .field("flags", &self.flags)
            .field("exp", &self.exp)
            .finish_non_exhaustive()
    }
}

/// Creates and stores a link serving `credential` (and its successors).
pub async fn create_link(
    state: &DeliveryState,
    credential: &Credential,
    options: &LinkOptions,
) -> Result<CreatedLink> {
    let s = &state.inner;
    if credential.status != CredentialStatus::Active {
        return Err(DeliveryError::NotCurrent);
    }
    if options.direct_file && options.passcode.is_some() {
        // U + P is forbidden (N.72).
        return Err(shl::Error::InvalidField { field: "flag" }.into());
    }
    let key = ShlKey::generate()?;
    let id = shl::generate_manifest_id()?;
    let url = format!("{}/shl/{id}", s.settings.public_base_url);
    let exp_at = s
        .settings
        .shl_link_ttl
        .and_then(|ttl| chrono::Duration::from_std(ttl).ok())
        .map(|ttl| Utc::now() + ttl);
    let mut builder = ShlPayload::builder(url, key.clone())
        .passcode(options.passcode.is_some())
        .direct_file(options.direct_file);
    if let Some(label) = &options.label {
        builder = builder.label(label.clone());
    }
    if let Some(exp) = exp_at.and_then(|t| u64::try_from(t.timestamp()).ok()) {
        builder = builder.exp(exp);
    }
    let payload = builder.build()?;
    let passcode_hash = match &options.passcode {
        Some(p) => {
            let hasher = s.hasher.clone();
            let p = p.clone();
            Some(
                tokio::task::spawn_blocking(move || hasher.hash(&p))
                    .await
                    .map_err(|_| shl::Error::PasscodeHash)??,
            )
        }
        None => None,
    };
    let flags = payload.flags().as_wire();
    s.store
        .create_shl_link(&NewShlLink {
            id: id.clone(),
            credential_id: Some(credential.id.clone()),
            patient_id: Some(credential.patient_id.clone()),
            key: key.to_base64url(),
            flags: flags.clone(),
            label: options.label.clone(),
            passcode_hash,
            max_failures: i64::from(s.settings.shl_max_failures),
            expires_at: exp_at,
        })
        .await?;
    let viewer = format!("{}{VIEWER_PATH}", s.settings.public_base_url);
    Ok(CreatedLink {
        link_id: id,
        shlink: payload.to_shlink(),
        viewer_link: payload.to_viewer_link(&viewer)?,
        flags,
        exp: payload.exp(),
    })
}

/// The viewer link of an existing link, rebuilt from its row (for re-sending by SMS).
pub fn viewer_link_for(state: &DeliveryState, link: &ShlLink) -> Result<String> {
    let s = &state.inner;
    let key = ShlKey::from_base64url(&link.key)?;
    let mut b = ShlPayload::builder(
        format!("{}/shl/{}", s.settings.public_base_url, link.id),
        key,
    )
    .passcode(link.flags.contains('P'))
    .direct_file(link.flags.contains('U'));
    if let Some(label) = &link.label {
        b = b.label(label.clone());
    }
    if let Some(exp) = link
        .expires_at
        .and_then(|t| u64::try_from(t.timestamp()).ok())
    {
        b = b.exp(exp);
    }
    Ok(b.build()?
        .to_viewer_link(&format!("{}{VIEWER_PATH}", s.settings.public_base_url))?)
}

/// The `.smart-health-card` file body of a credential.
pub fn card_file(credential: &Credential) -> String {
    serde_json::json!({ "verifiableCredential": [credential.artefact] }).to_string()
}

/// The credential a link serves now: its own while active, else the patient's current card of
/// the same issuer, disease and format (the link follows supersession); `None` once revoked or
/// gone.
async fn current_credential(state: &DeliveryState, link: &ShlLink) -> Result<Option<Credential>> {
    let store = &state.inner.store;
    let Some(cred_id) = &link.credential_id else {
        return Ok(None);
    };
    let Some(cred) = store.get_credential(cred_id).await? else {
        return Ok(None);
    };
    match cred.status {
        CredentialStatus::Active => Ok(Some(cred)),
        CredentialStatus::Superseded => Ok(store
            .active_credential(
                &cred.patient_id,
                &cred.issuer_id,
                &cred.disease,
                cred.format,
            )
            .await?),
        _ => Ok(None),
    }
}

/// The link's encrypted file for its current credential: cached per (link, credential), so it
/// is encrypted once and re-encrypted — same key, fresh IV — when the credential changes.
async fn current_file(state: &DeliveryState, link: &ShlLink) -> Result<Option<Arc<String>>> {
    Ok(current_file_with_credential(state, link)
        .await?
        .map(|(_, jwe)| jwe))
}

/// [`current_file`] and the credential it holds.
async fn current_file_with_credential(
    state: &DeliveryState,
    link: &ShlLink,
) -> Result<Option<(Credential, Arc<String>)>> {
    let Some(cred) = current_credential(state, link).await? else {
        return Ok(None);
    };
    let s = &state.inner;
    if let Ok(cache) = s.files.lock() {
        if let Some((cred_id, jwe)) = cache.get(&link.id) {
            if *cred_id == cred.id {
                return Ok(Some((cred, jwe.clone())));
            }
        }
    }
    let key = ShlKey::from_base64url(&link.key)?;
    let options = shl::EncryptOptions::new(ContentType::SmartHealthCard.as_str()).compress(true);
    let jwe = Arc::new(shl::encrypt(&key, card_file(&cred).as_bytes(), &options)?);
    if let Ok(mut cache) = s.files.lock() {
        if cache.len() >= FILE_CACHE_MAX {
            cache.clear();
        }
        cache.insert(link.id.clone(), (cred.id.clone(), jwe.clone()));
    }
    Ok(Some((cred, jwe)))
}

/// Answer to a manifest request.
#[derive(Debug)]
pub enum ManifestAnswer {
    /// 200 with this manifest.
    Ok(Manifest),
    /// 401 `{"remainingAttempts": n}`.
    WrongPasscode {
        /// Attempts left.
        remaining: u32,
    },
    /// 404: unknown, inactive, expired, locked, `U` link, or nothing to serve.
    NotFound,
}

fn usable(link: &ShlLink) -> bool {
    link.is_usable(Utc::now())
}

/// Handles `POST /shl/{id}` (O.79–O.84).
pub async fn manifest(
    state: &DeliveryState,
    link_id: &str,
    request: &ManifestRequest,
) -> Result<ManifestAnswer> {
    let s = &state.inner;
    let Some(link) = s.store.get_shl_link(link_id).await? else {
        return Ok(ManifestAnswer::NotFound);
    };
    // A `U` link has no manifest (P.87).
    if !usable(&link) || link.flags.contains('U') {
        return Ok(ManifestAnswer::NotFound);
    }
    if let Some(hash) = &link.passcode_hash {
        let matched = match &request.passcode {
            Some(p) => {
                let hasher = s.hasher.clone();
                let (p, hash) = (p.clone(), hash.clone());
                tokio::task::spawn_blocking(move || hasher.verify(&p, &hash))
                    .await
                    .map_err(|_| shl::Error::PasscodeHash)??
            }
            None => {
                // No passcode at all is not a guess: 401 with the budget unchanged (the shl
                // crate's `PasscodePolicy` rule), so a client that forgot the field is not
                // punished.
                let left = link.max_failures.saturating_sub(link.failures).max(0);
                return Ok(ManifestAnswer::WrongPasscode {
                    remaining: u32::try_from(left).unwrap_or(0),
                });
            }
        };
        if !matched {
            // The store's conditional UPDATE keeps the lifetime count exact under parallel
            // requests; a request that arrives after the limit is refused like an inactive link.
            return Ok(match s.store.register_passcode_failure(link_id).await? {
                PasscodeFailure::Counted { remaining } => ManifestAnswer::WrongPasscode {
                    remaining: u32::try_from(remaining).unwrap_or(0),
                },
                PasscodeFailure::Refused => ManifestAnswer::NotFound,
            });
        }
        // The right passcode may have raced the last wrong one: re-read before serving.
        match s.store.get_shl_link(link_id).await? {
            Some(l) if usable(&l) => {}
            _ => return Ok(ManifestAnswer::NotFound),
        }
    }
    let Some((cred, jwe)) = current_file_with_credential(state, &link).await? else {
        return Ok(ManifestAnswer::NotFound);
    };
    let policy = EmbedPolicy {
        default_max: s.settings.embed_default_max,
    };
    let file = policy.file_entry(
        ContentType::SmartHealthCard,
        jwe.as_str().to_owned(),
        request.embedded_length_max,
        || Ok(location_url(state, link_id)),
    )?;
    // The link follows the patient's current card, so its file can change (O.82).
    let file = shl::ManifestFile {
        last_updated: Some(
            cred.updated_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
        status: Some(shl::FileStatus::CanChange),
        ..file
    };
    Ok(ManifestAnswer::Ok(Manifest::new(vec![file])))
}

/// The encrypted file behind a location token, if the token is valid, unexpired and its link
/// still usable.
pub async fn file_by_token(state: &DeliveryState, token: &str) -> Result<Option<Arc<String>>> {
    let Some(link_id) = check_location_token(state, token, Utc::now().timestamp()) else {
        return Ok(None);
    };
    let Some(link) = state.inner.store.get_shl_link(&link_id).await? else {
        return Ok(None);
    };
    if !usable(&link) {
        return Ok(None);
    }
    current_file(state, &link).await
}

/// The file of a `U` link (`GET /shl/{id}?recipient=…`, P.87).
pub async fn direct_file(state: &DeliveryState, link_id: &str) -> Result<Option<Arc<String>>> {
    let Some(link) = state.inner.store.get_shl_link(link_id).await? else {
        return Ok(None);
    };
    if !usable(&link) || !link.flags.contains('U') {
        return Ok(None);
    }
    current_file(state, &link).await
}

fn mac(state: &DeliveryState, message: &str) -> Vec<u8> {
    let secret = state
        .inner
        .settings
        .location_secret
        .expose_secret()
        .as_bytes();
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `{base}/shl/files/{link_id}.{exp}.{mac}` — stateless, so any replica sharing the secret can
/// answer it; valid at most one hour (O.84).
fn location_url(state: &DeliveryState, link_id: &str) -> String {
    let lifetime = state
        .inner
        .settings
        .location_lifetime
        .min(shl::manifest::MAX_LOCATION_LIFETIME)
        .min(Duration::from_secs(3600));
    let exp = Utc::now().timestamp() + i64::try_from(lifetime.as_secs()).unwrap_or(3600);
    let message = format!("{link_id}.{exp}");
    let sig = URL_SAFE_NO_PAD.encode(mac(state, &message));
    format!(
        "{}/shl/files/{message}.{sig}",
        state.inner.settings.public_base_url
    )
}

/// The link id of a valid, unexpired token.
fn check_location_token(state: &DeliveryState, token: &str, now: i64) -> Option<String> {
    let mut parts = token.rsplitn(3, '.');
    let sig = parts.next()?;
    let exp_text = parts.next()?;
    let link_id = parts.next()?;
    let exp: i64 = exp_text.parse().ok()?;
    if exp <= now {
        return None;
    }
    let given = URL_SAFE_NO_PAD.decode(sig).ok()?;
    let secret = state
        .inner
        .settings
        .location_secret
        .expose_secret()
        .as_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(format!("{link_id}.{exp}").as_bytes());
    mac.verify_slice(&given).ok()?;
    Some(link_id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::DeliverySettings;

    #[tokio::test]
    async fn location_tokens_expire_and_resist_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::connect(None, dir.path()).await.unwrap();
        let state = DeliveryState::new(store, DeliverySettings::new("https://h.example")).unwrap();
        let url = location_url(&state, "abc");
        let token = url.rsplit('/').next().unwrap();
        let now = Utc::now().timestamp();
        assert_eq!(
            check_location_token(&state, token, now).as_deref(),
            Some("abc")
        );
        assert_eq!(check_location_token(&state, token, now + 3601), None);
        let tampered = token.replacen("abc", "abd", 1);
        assert_eq!(check_location_token(&state, &tampered, now), None);
        assert_eq!(check_location_token(&state, "x.y", now), None);
    }
}
