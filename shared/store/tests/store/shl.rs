//! SMART Health Links: the passcode failure counter under concurrency, deactivation.

use store::{NewShlLink, PasscodeFailure, Store};

use crate::helpers::both;

fn link(id: &str) -> NewShlLink {
    NewShlLink {
        id: id.to_owned(),
        credential_id: None,
        patient_id: None,
        key: "k".repeat(43),
        flags: "P".to_owned(),
        label: Some("Card".to_owned()),
        passcode_hash: Some("$argon2id$stub".to_owned()),
        max_failures: 10,
        expires_at: None,
    }
}

async fn passcode_failures_are_exact_under_concurrency(store: Store) {
    store.create_shl_link(&link("link-a")).await.unwrap();
    store.create_shl_link(&link("link-b")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.register_passcode_failure("link-a").await.unwrap()
        }));
    }
    let mut remaining = Vec::new();
    let mut refused = 0;
    for t in tasks {
        match t.await.unwrap() {
            PasscodeFailure::Counted { remaining: r } => remaining.push(r),
            PasscodeFailure::Refused => refused += 1,
        }
    }
    remaining.sort_unstable();
    assert_eq!(
        remaining,
        (0..10).collect::<Vec<i64>>(),
        "each of 9..=0 exactly once"
    );
    assert_eq!(refused, 40);
    let a = store.get_shl_link("link-a").await.unwrap().unwrap();
    assert_eq!(a.failures, 10);
    assert!(!a.is_usable(chrono::Utc::now()));
    assert!(
        !format!("{a:?}").contains("kkkk"),
        "Debug must not print the key"
    );

    let b = store.get_shl_link("link-b").await.unwrap().unwrap();
    assert_eq!(b.failures, 0);
    assert!(b.is_usable(chrono::Utc::now()));
    assert_eq!(
        store.register_passcode_failure("link-b").await.unwrap(),
        PasscodeFailure::Counted { remaining: 9 }
    );
    assert_eq!(
        store.register_passcode_failure("nope").await.unwrap(),
        PasscodeFailure::Refused
    );

    assert!(store.deactivate_shl_link("link-b").await.unwrap());
    assert!(!store.deactivate_shl_link("link-b").await.unwrap());
    assert_eq!(
        store.register_passcode_failure("link-b").await.unwrap(),
        PasscodeFailure::Refused
    );
    assert!(!store
        .get_shl_link("link-b")
        .await
        .unwrap()
        .unwrap()
        .is_usable(chrono::Utc::now()));
    assert!(store.get_shl_link("missing").await.unwrap().is_none());
    assert_eq!(
        store
            .create_shl_link(&link("link-a"))
            .await
            .unwrap_err()
            .code(),
        "store-constraint"
    );
}
both!(passcode_failures_are_exact_under_concurrency);

async fn expired_links_are_not_usable(store: Store) {
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let l = store
        .create_shl_link(&NewShlLink {
            expires_at: Some(past),
            ..link("old")
        })
        .await
        .unwrap();
    assert!(!l.is_usable(chrono::Utc::now()));
    let stored = store.get_shl_link("old").await.unwrap().unwrap();
    assert_eq!(stored, l);
}
both!(expired_links_are_not_usable);
