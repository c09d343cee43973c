//! `vaxcred`: the one binary. The CLI subcommands are thin calls into the workspace libraries;
//! `vaxcred serve` (added with the pipeline) runs every service in one process.
//!
//! # Layout
//! - [`cards`]: `issue` and `verify` — SMART Health Cards without a broker or a database.
//! - [`keys`]: `keys generate`, and `keys rotate|list|retire|revoke` through [`keys_admin`].
//! - [`issuers`]: `issuers add|list|add-source` (several issuers per deployment).
//! - [`tokens`]: `tokens create|revoke` (API tokens, stored hashed).
//! - [`doctor`]: `doctor ISS` — an outside check of a running issuer.
//! - [`normalize`]: `normalize` — what vaxcred makes of an EHR message.
//! - [`dlq`]: `dlq list|replay` — the dead-letter queue for operators.
//! - [`serve`]: `serve` — ingest, issue workers, outbox relay, delivery and HTTP in one process.

mod cards;
mod dlq;
mod doctor;
mod issuers;
mod keys;
mod keys_admin;
mod normalize;
mod serve;
mod tokens;

use std::process::ExitCode;

// Many small short-lived allocations per event (JSON, SQL binds, AMQP frames): glibc's malloc
// and free were ~17 % of the pipeline's CPU in `perf`; mimalloc is a well-kept drop-in.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// vaxcred turns FHIR R4 Immunization events into verifiable SMART Health Cards.
#[derive(Debug, Parser)]
#[command(name = "vaxcred", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a card from a FHIR bundle or a raw EHR message: writes the .smart-health-card file,
    /// the QR code (PNG and SVG) and its shc:/ text.
    Issue(cards::IssueArgs),
    /// Check a card (.smart-health-card file, JWS, shc:/ text or QR image) against an issuer's
    /// keys; exits non-zero when it is not valid.
    Verify(cards::VerifyArgs),
    /// Signing keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Show the normalized credential model of a FHIR message (doses kept, reasons for skipped ones).
    Normalize(normalize::NormalizeArgs),
    /// Run every service in one process (ingest, issuer, outbox relay, delivery, HTTP) until
    /// SIGTERM or Ctrl-C.
    Serve(serve::ServeArgs),
    /// Issuers this deployment signs for, and the EHR sources mapped to them.
    #[command(subcommand)]
    Issuers(issuers::IssuersCommand),
    /// API tokens for the issuer's HTTP API (admin, $health-cards-issue).
    #[command(subcommand)]
    Tokens(tokens::TokensCommand),
    /// The dead-letter queue: list rejected messages with their reasons, replay them once fixed.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Check a running issuer from the outside, like the VCI directory's audit; exits 1 on a failure.
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Issue(args) => cards::issue(args),
        Command::Verify(args) => cards::verify(args),
        Command::Keys(cmd) => keys::run(cmd),
        Command::Normalize(args) => normalize::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Issuers(cmd) => issuers::run(cmd),
        Command::Tokens(cmd) => tokens::run(cmd),
        Command::Doctor(args) => doctor::run(args),
        Command::Dlq(cmd) => dlq::run(cmd),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
