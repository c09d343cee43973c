//! Passcode storage and the lifetime wrong-passcode budget of `P` links (checklist O.81).
//!
//! Hashing is Argon2id with OWASP's baseline parameters (19 MiB, 2 passes, 1 lane) and a fresh
//! random salt per hash — one hash per link, so a per-link salt. Argon2id over PBKDF2/HMAC because
//! SHL passcodes are short PINs: only a memory-hard hash makes an offline guess of a stolen
//! database cost real money, and one ~20 ms verification per manifest request is affordable
//! since the lifetime failure budget caps how many an attacker can trigger per link. The stored
//! form is the PHC string, which carries its own parameters, so they can be raised later without
//! breaking existing links. Verification compares the Argon2 outputs in constant time
//! (`password-hash`'s `Output` equality).
//!
//! The failure count itself lives in the database; [`PasscodePolicy`] is the pure arithmetic on
//! it. The store must read and bump the count under a per-link lock (or an atomic
//! `UPDATE … RETURNING`), otherwise parallel guesses overrun the budget.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::OsRng;

use crate::error::{Error, Result};
use crate::manifest::PasscodeErrorBody;

/// Hashes and verifies link passcodes.
#[derive(Clone)]
pub struct PasscodeHasher {
    argon2: Argon2<'static>,
}

impl std::fmt::Debug for PasscodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasscodeHasher").finish_non_exhaustive()
    }
}

impl Default for PasscodeHasher {
    /// Argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet baseline).
    fn default() -> Self {
        Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default()),
        }
    }
}

impl PasscodeHasher {
    /// Argon2id with explicit cost: memory in KiB, passes, lanes. New hashes use these; existing
    /// hashes verify with the parameters recorded in them.
    pub fn with_cost(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|_| Error::PasscodeHash)?;
        Ok(Self {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        })
    }

    /// Hashes a passcode into a PHC string (`$argon2id$v=19$m=…$salt$hash`) for storage.
    /// Empty passcodes are refused: a `P` link needs something to ask for.
    pub fn hash(&self, passcode: &str) -> Result<String> {
        if passcode.is_empty() {
            return Err(Error::InvalidField { field: "passcode" });
        }
        let salt = SaltString::generate(&mut OsRng);
        self.argon2
            .hash_password(passcode.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| Error::PasscodeHash)
    }

    /// Whether `passcode` matches the stored PHC string (constant-time comparison).
    pub fn verify(&self, passcode: &str, stored: &str) -> Result<bool> {
        let parsed = PasswordHash::new(stored).map_err(|_| Error::InvalidPasscodeHash)?;
        match self.argon2.verify_password(passcode.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(_) => Err(Error::InvalidPasscodeHash),
        }
    }
}

/// The lifetime budget of wrong passcodes per link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasscodePolicy {
    /// Wrong passcodes a link takes over its whole life before it answers 404.
    pub max_attempts: u32,
}

impl Default for PasscodePolicy {
    /// 10, as the SHL validator's mock server.
    fn default() -> Self {
        Self { max_attempts: 10 }
    }
}

/// What to answer a manifest request on a `P` link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeOutcome {
    /// Right passcode: serve the manifest. The failure count is not reset (it is a lifetime
    /// count).
    Accepted,
    /// 401 with `{"remainingAttempts": n}`.
    Rejected {
        /// Attempts left after this one.
        remaining_attempts: u32,
        /// Whether the store must add one to the failure count: yes for a wrong passcode, no for
        /// a request without any (a malformed request is not a guess).
        counts_as_failure: bool,
    },
    /// Budget used up: the link is no longer active, answer 404 (O.80).
    Disabled,
}

impl PasscodeOutcome {
    /// The 401 body for a rejection.
    pub fn error_body(self) -> Option<PasscodeErrorBody> {
        match self {
            Self::Rejected {
                remaining_attempts, ..
            } => Some(PasscodeErrorBody { remaining_attempts }),
            Self::Accepted | Self::Disabled => None,
        }
    }
}

impl PasscodePolicy {
    /// Attempts left given the lifetime failure count.
    pub fn remaining_attempts(&self, failures: u32) -> u32 {
        self.max_attempts.saturating_sub(failures)
    }

    /// Whether the link is disabled by failures. Check this before hashing, so a disabled link
    /// costs no Argon2 work.
    pub fn is_exhausted(&self, failures: u32) -> bool {
        failures >= self.max_attempts
    }

    /// Decides the answer from the failure count read under the per-link lock and whether the
    /// passcode matched (`None`: the request had no passcode).
    pub fn evaluate(&self, failures_before: u32, matched: Option<bool>) -> PasscodeOutcome {
        if self.is_exhausted(failures_before) {
            return PasscodeOutcome::Disabled;
        }
        match matched {
            Some(true) => PasscodeOutcome::Accepted,
            Some(false) => PasscodeOutcome::Rejected {
                remaining_attempts: self.remaining_attempts(failures_before.saturating_add(1)),
                counts_as_failure: true,
            },
            None => PasscodeOutcome::Rejected {
                remaining_attempts: self.remaining_attempts(failures_before),
                counts_as_failure: false,
            },
        }
    }

    /// Full check of a request: disabled links answer without hashing; otherwise the provided
    /// passcode is verified against the stored hash.
    pub fn check(
        &self,
        hasher: &PasscodeHasher,
        stored_hash: &str,
        failures_before: u32,
        provided: Option<&str>,
    ) -> Result<PasscodeOutcome> {
        if self.is_exhausted(failures_before) {
            return Ok(PasscodeOutcome::Disabled);
        }
        let matched = match provided {
            Some(p) => Some(hasher.verify(p, stored_hash)?),
            None => None,
        };
        Ok(self.evaluate(failures_before, matched))
    }
}
