//! Revocation ids (rule 28): `base64url(HMAC-SHA-256(secret ‖ kid, user_id)[..8])`, 11 characters.
//!
//! The secret and the kid are concatenated as UTF-8 text to form the HMAC key, exactly as the
//! spec's example generator does, so the examples' `rid`s recompute. Keying by `kid` means a
//! patient's `rid` changes with key rotation, so a CRL entry only revokes cards of that key.

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::b64;

/// Derives the `rid` for `user_id` under `secret` and `kid`.
pub fn derive(secret: &str, kid: &str, user_id: &str) -> String {
    let key = format!("{secret}{kid}");
    // HMAC accepts keys of any length, so construction cannot fail; fall back to an empty mac
    // input rather than panic if that ever changed.
    let tag = match Hmac::<Sha256>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(user_id.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    };
    b64::encode(tag.get(..8).unwrap_or(&tag))
}

/// Whether `rid` is well-formed: 1–24 base64url characters (rule 28).
pub fn is_valid(rid: &str) -> bool {
    !rid.is_empty() && rid.len() <= 24 && b64::is_base64url(rid)
}
