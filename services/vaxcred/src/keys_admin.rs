//! `vaxcred keys rotate|list|retire|revoke`: the signing-key lifecycle of an issuer on the
//! configured key store (file or PKCS#11), the same operations as the admin endpoints
//! (`issuer::keys`). Every change is audited.
//!
//! A running `serve` picks up a rotation done here at its next start; the admin endpoint
//! `POST /admin/issuers/{slug}/keys/rotate` rotates the running process at once.

use anyhow::Context as _;
use platform::Config;

use crate::issuers::{audit, open_keys, open_store, runtime};

/// Which issuer (default: the one at the root).
#[derive(Debug, Clone, clap::Args)]
pub struct IssuerArg {
    /// Issuer slug.
    #[arg(long, default_value = issuer::issuers::DEFAULT_SLUG)]
    issuer: String,
}

/// The lifecycle operations, wired into `keys::KeysCommand`.
#[derive(Debug, Clone)]
pub enum KeyAction {
    /// New active key; the previous one is retired (still published).
    Rotate,
    /// Keys with status.
    List,
    /// Destroy a non-active private key (public key stays published).
    Retire(String),
    /// Remove a key from the JWKS now (compromise).
    Revoke(String),
}

/// Runs one lifecycle operation.
pub fn run(action: &KeyAction, which: &IssuerArg) -> anyhow::Result<i32> {
    let config = Config::load().context("configuration")?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        let keys = open_keys(&config, &store).await?;
        let issuer = store
            .get_issuer_by_slug(&which.issuer)
            .await?
            .context("no issuer with this slug")?;
        let details = serde_json::json!({ "issuer_id": issuer.id });
        match action {
            KeyAction::Rotate => {
                let kid = keys
                    .rotate(&store, &issuer)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
                audit(&store, "key.rotate", "signing_key", &kid, details).await?;
                println!("new active key: {kid}");
                println!("(a running `vaxcred serve` signs with it after a restart)");
            }
            KeyAction::List => {
                for k in store.list_signing_keys(&issuer.id).await? {
                    println!(
                        "{}\t{}\t{}\t{}",
                        k.kid,
                        k.status.as_str(),
                        k.key_store,
                        k.created_at.to_rfc3339()
                    );
                }
            }
            KeyAction::Retire(kid) => {
                keys.retire(&store, &issuer, kid)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
                audit(&store, "key.retire", "signing_key", kid, details).await?;
                println!("retired {kid}: private key destroyed, public key still published");
            }
            KeyAction::Revoke(kid) => {
                let rotated = keys
                    .revoke(&store, &issuer, kid)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
                audit(&store, "key.revoke", "signing_key", kid, details).await?;
                println!("revoked {kid}: removed from the JWKS; its cards no longer verify");
                if let Some(new) = rotated {
                    println!("new active key: {new}");
                }
            }
        }
        Ok(0)
    })
}
