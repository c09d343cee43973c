//! `vaxcred issuers add|list|add-source`: the organisations this deployment signs for (DESIGN
//! §6) and the EHR feeds mapped to each. A new issuer's `iss` defaults to
//! `{public base URL}/issuers/{slug}`, where `serve` publishes its JWKS, and is checked like at
//! start-up; its first signing key is generated at once.
//!
//! Also home of the helpers the other admin subcommands share: opening the configured store and
//! key store.

use std::sync::Arc;

use anyhow::Context as _;
use issuer::keys::ManagedKeys;
use platform::{Config, ExposeSecret};
use store::{NewAuditEntry, NewIssuer, NewSource, Store, StoreOptions};

/// `vaxcred issuers …`
#[derive(Debug, clap::Subcommand)]
pub enum IssuersCommand {
    /// Add an issuer served under `/issuers/{slug}` (its first signing key is generated).
    Add {
        /// URL path segment and key directory name: a-z, 0-9 and '-'.
        #[arg(long)]
        slug: String,
        /// Name shown to people (printed cards, pages).
        #[arg(long)]
        name: String,
        /// The `iss`; default `{public base URL}/issuers/{slug}` (anything else must be where a
        /// proxy publishes this server's `/issuers/{slug}`).
        #[arg(long)]
        iss: Option<String>,
    },
    /// List issuers.
    List,
    /// Map an EHR feed (the AMQP `source` header) to an issuer: its cards are signed by it.
    AddSource {
        /// Issuer slug.
        #[arg(long)]
        issuer: String,
        /// Source name as sent in the `source` header.
        #[arg(long)]
        name: String,
        /// FHIR base URL of the EHR (Patient fetches).
        #[arg(long)]
        fhir_base_url: Option<String>,
    },
}

/// A current-thread runtime for one admin command.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")
}

/// The configured database, migrated.
pub(crate) async fn open_store(config: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&config.data_dir).context("data dir")?;
    let url = config.database_url();
    Store::connect_with(
        Some(url.expose_secret()),
        &config.data_dir,
        StoreOptions::default(),
    )
    .await
    .context("database")
}

/// The configured key store over every issuer in the database (the default one created if
/// missing, as `serve` does).
pub(crate) async fn open_keys(config: &Config, store: &Store) -> anyhow::Result<ManagedKeys> {
    issuer::issuers::ensure_default_issuer(store, &config.iss(), &config.issuer.display_name)
        .await
        .context("default issuer")?;
    let issuers = store.list_issuers().await.context("issuers")?;
    match config.keys.store {
        platform::config::KeyStoreKind::File => {
            let keys = issuer::keystore::FileKeyStore::open(&config.keys_dir(), store, &issuers)
                .await
                .context("file key store")?;
            Ok(ManagedKeys::File(Arc::new(keys)))
        }
        platform::config::KeyStoreKind::Pkcs11 => {
            let (Some(module), Some(label), Some(pin)) = (
                &config.keys.pkcs11_module,
                &config.keys.pkcs11_token_label,
                &config.keys.pkcs11_pin,
            ) else {
                anyhow::bail!(
                    "keys.pkcs11_module, keys.pkcs11_token_label and keys.pkcs11_pin are required"
                );
            };
            let cfg = issuer::pkcs11::Pkcs11Config {
                module,
                token_label: label,
                pin: pin.expose_secret(),
            };
            let keys = issuer::pkcs11::Pkcs11KeyStore::open(&cfg, store, &issuers)
                .await
                .context("PKCS#11 key store")?;
            Ok(ManagedKeys::Pkcs11(Arc::new(keys)))
        }
    }
}

/// Appends an audit row for a CLI action (actor `cli:{user}`; ids only).
pub(crate) async fn audit(
    store: &Store,
    action: &str,
    kind: &str,
    id: &str,
    details: serde_json::Value,
) -> anyhow::Result<()> {
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".to_owned());
    store
        .append_audit(&NewAuditEntry {
            actor: format!("cli:{user}"),
            action: action.to_owned(),
            subject_kind: kind.to_owned(),
            subject_id: id.to_owned(),
            details,
        })
        .await
        .context("audit")?;
    Ok(())
}

/// Runs an `issuers` subcommand.
pub fn run(cmd: &IssuersCommand) -> anyhow::Result<i32> {
    let config = Config::load().context("configuration")?;
    runtime()?.block_on(async {
        let store = open_store(&config).await?;
        match cmd {
            IssuersCommand::Add { slug, name, iss } => {
                if !issuer::http::admin::valid_slug(slug) {
                    anyhow::bail!("slug must be 1-40 characters of a-z, 0-9 and '-'");
                }
                let expected = issuer::http::expected_iss(&config.public_base_url(), slug);
                let iss = iss.clone().unwrap_or_else(|| expected.clone());
                issuer::http::check_iss(&iss, &expected, config.issuer.allow_insecure_iss)
                    .map_err(|p| anyhow::anyhow!("iss {p}"))?;
                let keys = open_keys(&config, &store).await?;
                let created = store
                    .create_issuer(&NewIssuer {
                        iss,
                        slug: slug.clone(),
                        display_name: name.clone(),
                    })
                    .await
                    .context("creating the issuer (slug or iss taken?)")?;
                keys.ensure_issuer(&store, &created)
                    .await
                    .context("first signing key")?;
                audit(
                    &store,
                    "issuer.create",
                    "issuer",
                    &created.id,
                    serde_json::json!({ "slug": slug }),
                )
                .await?;
                println!(
                    "issuer {} ({}) iss {}",
                    created.slug, created.id, created.iss
                );
            }
            IssuersCommand::List => {
                for i in store.list_issuers().await? {
                    println!("{}\t{}\t{}\t{}", i.slug, i.id, i.iss, i.display_name);
                }
            }
            IssuersCommand::AddSource {
                issuer,
                name,
                fhir_base_url,
            } => {
                let issuer = store
                    .get_issuer_by_slug(issuer)
                    .await?
                    .context("no issuer with this slug")?;
                let source = store
                    .create_source(&NewSource {
                        issuer_id: issuer.id.clone(),
                        name: name.clone(),
                        fhir_base_url: fhir_base_url.clone(),
                    })
                    .await
                    .context("creating the source (name taken?)")?;
                audit(
                    &store,
                    "source.create",
                    "source",
                    &source.id,
                    serde_json::json!({ "issuer_id": issuer.id }),
                )
                .await?;
                println!(
                    "source {} ({}) -> issuer {}",
                    source.name, source.id, issuer.slug
                );
            }
        }
        Ok(0)
    })
}
