//! Passcode hashing and the lifetime wrong-passcode budget (checklist O.81).

use shl::{Error, PasscodeHasher, PasscodeOutcome, PasscodePolicy};

/// O.81: the default (production) Argon2id hasher stores a salted PHC string and verifies.
#[test]
fn default_hasher_round_trips_with_fresh_salts() {
    let hasher = PasscodeHasher::default();
    let a = hasher.hash("1234").unwrap();
    let b = hasher.hash("1234").unwrap();
    assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
    assert_ne!(a, b, "each hash gets its own salt");
    assert!(!a.contains("1234"));
    assert!(hasher.verify("1234", &a).unwrap());
    assert!(hasher.verify("1234", &b).unwrap());
    assert!(!hasher.verify("12345", &a).unwrap());
    assert!(!hasher.verify("", &a).unwrap());
}

/// Parameters live in the stored string, so a cheaper or costlier hasher still verifies it.
#[test]
fn stored_parameters_win_and_bad_hashes_are_typed_errors() {
    let cheap = PasscodeHasher::with_cost(1024, 1, 1).unwrap();
    let stored = cheap.hash("0000").unwrap();
    assert!(stored.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
    assert!(PasscodeHasher::default().verify("0000", &stored).unwrap());
    assert_eq!(
        cheap.verify("0000", "not a hash").unwrap_err(),
        Error::InvalidPasscodeHash
    );
    assert_eq!(
        cheap.hash("").unwrap_err(),
        Error::InvalidField { field: "passcode" }
    );
    assert_eq!(
        PasscodeHasher::with_cost(1, 0, 0).unwrap_err().code(),
        "shl-passcode-hash-failed"
    );
}

/// O.80, O.81: remaining attempts count down over the link's life; a missing passcode is not
/// a guess; an exhausted link answers 404 even for the right passcode.
#[test]
fn policy_counts_a_lifetime_budget() {
    let policy = PasscodePolicy { max_attempts: 3 };
    assert_eq!(policy.evaluate(0, Some(true)), PasscodeOutcome::Accepted);
    assert_eq!(
        policy.evaluate(0, Some(false)),
        PasscodeOutcome::Rejected {
            remaining_attempts: 2,
            counts_as_failure: true
        }
    );
    assert_eq!(
        policy.evaluate(1, None),
        PasscodeOutcome::Rejected {
            remaining_attempts: 2,
            counts_as_failure: false
        }
    );
    assert_eq!(
        policy
            .evaluate(2, Some(false))
            .error_body()
            .unwrap()
            .remaining_attempts,
        0
    );
    assert_eq!(policy.evaluate(2, Some(true)), PasscodeOutcome::Accepted);
    assert_eq!(policy.evaluate(3, Some(true)), PasscodeOutcome::Disabled);
    assert_eq!(
        policy.evaluate(u32::MAX, Some(false)),
        PasscodeOutcome::Disabled
    );
    assert_eq!(policy.remaining_attempts(7), 0);
    assert_eq!(
        PasscodePolicy { max_attempts: 0 }.evaluate(0, Some(true)),
        PasscodeOutcome::Disabled
    );
    assert_eq!(PasscodeOutcome::Accepted.error_body(), None);
}

/// A disabled link costs no Argon2 work: `check` answers before reading the stored hash.
#[test]
fn check_skips_hashing_for_disabled_links() {
    let hasher = PasscodeHasher::with_cost(1024, 1, 1).unwrap();
    let policy = PasscodePolicy::default();
    assert_eq!(
        policy.check(&hasher, "garbage", 10, Some("1234")).unwrap(),
        PasscodeOutcome::Disabled
    );
    assert!(policy.check(&hasher, "garbage", 9, Some("1234")).is_err());
    let stored = hasher.hash("1234").unwrap();
    assert_eq!(
        policy.check(&hasher, &stored, 9, Some("1234")).unwrap(),
        PasscodeOutcome::Accepted
    );
    assert_eq!(
        policy.check(&hasher, &stored, 9, Some("4321")).unwrap(),
        PasscodeOutcome::Rejected {
            remaining_attempts: 0,
            counts_as_failure: true
        }
    );
}
