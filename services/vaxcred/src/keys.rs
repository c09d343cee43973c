//! `vaxcred keys generate`: a new P-256 signing key as a private JWK (file mode 0600), its public
//! JWKS beside it. `keys rotate|list|retire|revoke` manage the configured key store of a running
//! deployment (see [`crate::keys_admin`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use shc::{Jwks, JwsSigner as _, LocalSigner};

/// `vaxcred keys …`
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key: writes `<out>/<kid>.private.jwk.json` (mode 0600) and
    /// `<out>/jwks.json` (the public key set to publish at `<iss>/.well-known/jwks.json`).
    Generate {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Make a new active signing key for an issuer; the previous one is retired (still published
    /// so its cards keep verifying).
    Rotate {
        #[command(flatten)]
        issuer: crate::keys_admin::IssuerArg,
    },
    /// List an issuer's signing keys with their status.
    List {
        #[command(flatten)]
        issuer: crate::keys_admin::IssuerArg,
    },
    /// Destroy the private key of a non-active key; its public key stays in the JWKS.
    Retire {
        /// The key's kid.
        kid: String,
        #[command(flatten)]
        issuer: crate::keys_admin::IssuerArg,
    },
    /// Remove a key from the JWKS now (compromise): every card it signed stops verifying.
    Revoke {
        /// The key's kid.
        kid: String,
        #[command(flatten)]
        issuer: crate::keys_admin::IssuerArg,
    },
}

/// Runs a `keys` subcommand.
pub fn run(cmd: &KeysCommand) -> anyhow::Result<i32> {
    match cmd {
        KeysCommand::Generate { out } => {
            let signer = LocalSigner::generate();
            let private = write_private_key(out, &signer)?;
            let jwks = Jwks::from_public(&[signer.public_jwk().clone()]);
            let public = out.join("jwks.json");
            std::fs::write(&public, serde_json::to_string_pretty(&jwks)?)
                .with_context(|| format!("writing {}", public.display()))?;
            println!("kid: {}", signer.kid());
            println!("private key: {}", private.display());
            println!("public JWKS: {}", public.display());
            Ok(0)
        }
        KeysCommand::Rotate { issuer } => {
            crate::keys_admin::run(&crate::keys_admin::KeyAction::Rotate, issuer)
        }
        KeysCommand::List { issuer } => {
            crate::keys_admin::run(&crate::keys_admin::KeyAction::List, issuer)
        }
        KeysCommand::Retire { kid, issuer } => {
            crate::keys_admin::run(&crate::keys_admin::KeyAction::Retire(kid.clone()), issuer)
        }
        KeysCommand::Revoke { kid, issuer } => {
            crate::keys_admin::run(&crate::keys_admin::KeyAction::Revoke(kid.clone()), issuer)
        }
    }
}

/// Writes the private JWK, readable by the owner only. The key never goes to stdout or a log.
pub fn write_private_key(dir: &Path, signer: &LocalSigner) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{}.private.jwk.json", signer.kid()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(serde_json::to_string_pretty(&signer.to_private_jwk())?.as_bytes())?;
    Ok(path)
}
