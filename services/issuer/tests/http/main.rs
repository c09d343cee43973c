//! HTTP tests of the issuer surface on a random port, over SQLite and PostgreSQL: JWKS, CRLs and
//! revocation checked with the library's verifier against what the server serves, rotation,
//! `$health-cards-issue`, downloads and the printable PDF (read back with poppler), several
//! issuers, admin audit, the PKCS#11 store on SoftHSM2, and the official validator on our JWKS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod admin;
mod cards;
mod helpers;
mod issue_op;
mod keys;
mod pkcs11;
mod wellknown;
