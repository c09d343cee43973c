//! `vaxcred tokens create`: an API token for the issuer's HTTP API. 32 random bytes, shown once;
//! the database keeps only its SHA-256 (`store::Store::create_api_token`). Scopes: `admin` (admin
//! endpoints), `system/Immunization.read` or `health-cards` (`$health-cards-issue` and card
//! downloads for every patient).

use anyhow::Context as _;
use base64::Engine as _;
use platform::Config;
use store::NewApiToken;

use crate::issuers::{audit, open_store, runtime};

/// `vaxcred tokens …`
#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a token and print it (once).
    Create {
        /// A scope; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_days: Option<u32>,
        /// The EHR source (by name) the token belongs to.
        #[arg(long)]
        source: Option<String>,
    },
    /// Revoke a token by id (`tok_…`).
    Revoke {
        /// Token id.
        id: String,
    },
}

/// Runs a `tokens` subcommand.
pub fn run(cmd: &TokensCommand) -> anyhow::Result<i32> {
    let config = Config::load().context("configuration")?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        match cmd {
            TokensCommand::Create {
                scopes,
                expires_days,
                source,
            } => {
                if scopes
                    .iter()
                    .any(|s| s.is_empty() || s.contains(char::is_whitespace))
                {
                    anyhow::bail!("a scope is one word, e.g. admin or system/Immunization.read");
                }
                let source_id = match source {
                    Some(name) => Some(
                        store
                            .get_source_by_name(name)
                            .await?
                            .context("no source with this name")?
                            .id,
                    ),
                    None => None,
                };
                let mut bytes = [0u8; 32];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
                // `vx_` marks our tokens in secret scanners; no '.', so never mistaken for a JWT.
                let token = format!(
                    "vx_{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
                );
                let expires_at =
                    expires_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
                let created = store
                    .create_api_token(
                        &NewApiToken {
                            source_id,
                            staff_id: None,
                            scopes: scopes.join(" "),
                            expires_at,
                        },
                        &token,
                    )
                    .await
                    .context("storing the token")?;
                audit(
                    &store,
                    "token.create",
                    "api_token",
                    &created.id,
                    serde_json::json!({ "scopes": scopes }),
                )
                .await?;
                eprintln!(
                    "token id: {} (shown once below; store it as a secret)",
                    created.id
                );
                println!("{token}");
            }
            TokensCommand::Revoke { id } => {
                let live = store.revoke_api_token(id).await?;
                audit(
                    &store,
                    "token.revoke",
                    "api_token",
                    id,
                    serde_json::json!({}),
                )
                .await?;
                println!(
                    "{}",
                    if live {
                        "revoked"
                    } else {
                        "not live (unknown or revoked already)"
                    }
                );
            }
        }
        Ok(0)
    })
}
