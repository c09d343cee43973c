//! The default issuer (DESIGN §6): one row per deployment, created on first start from the
//! configured `iss`. Further issuers (served under `/issuers/{slug}`) are created by admins.

use store::{Issuer, NewIssuer, Store};

use crate::error::Result;

/// Slug of the issuer served at the root.
pub const DEFAULT_SLUG: &str = "default";

/// The issuer whose `iss` is `iss`, created (slug [`DEFAULT_SLUG`]) if missing. Safe to call from
/// several processes at once: a lost creation race is resolved by reading the winner's row.
pub async fn ensure_default_issuer(store: &Store, iss: &str, display_name: &str) -> Result<Issuer> {
    if let Some(issuer) = store.get_issuer_by_iss(iss).await? {
        return Ok(issuer);
    }
    let created = store
        .create_issuer(&NewIssuer {
            iss: iss.to_owned(),
            slug: DEFAULT_SLUG.to_owned(),
            display_name: display_name.to_owned(),
        })
        .await;
    match created {
        Ok(issuer) => Ok(issuer),
        Err(e) => match store.get_issuer_by_iss(iss).await? {
            Some(issuer) => Ok(issuer),
            None => Err(e.into()),
        },
    }
}
