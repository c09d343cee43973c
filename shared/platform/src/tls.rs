//! One TLS crypto provider for every outbound HTTPS client (EHR FHIR and token endpoints,
//! wallets, the SMS gateway, `vaxcred doctor`).
//!
//! reqwest is built with rustls but without a default provider (`rustls-no-provider`), so that
//! the workspace uses `ring` — already compiled for ES256 — instead of building aws-lc. rustls
//! then needs a process-wide provider before the first client is built, and panics without one;
//! every crate that builds a client calls [`ensure_crypto_provider`] first, whoever runs first.

/// Installs ring as the process-wide rustls provider if none is installed. Idempotent and safe
/// to call from several threads.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Err means another thread installed one in between: fine either way.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
