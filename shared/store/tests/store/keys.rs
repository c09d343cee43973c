//! Issuers, sources, signing keys, CRL counters.

use store::{KeyStatus, NewIssuer, NewSigningKey, NewSource, Store};

use crate::helpers::{both, issuer};

async fn issuers_and_sources(store: Store) {
    let a = issuer(&store, "a").await;
    let got = store.get_issuer(&a).await.unwrap().unwrap();
    assert_eq!(got.slug, "a");
    assert_eq!(store.get_issuer_by_slug("a").await.unwrap().unwrap().id, a);
    assert_eq!(
        store
            .get_issuer_by_iss("https://example.org/a")
            .await
            .unwrap()
            .unwrap()
            .id,
        a
    );
    let dup = store
        .create_issuer(&NewIssuer {
            iss: "https://other".to_owned(),
            slug: "a".to_owned(),
            display_name: "x".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(dup.code(), "store-constraint");
    assert!(!dup.is_retryable());
    store
        .update_issuer_display_name(&a, "Renamed")
        .await
        .unwrap();
    assert_eq!(
        store.get_issuer(&a).await.unwrap().unwrap().display_name,
        "Renamed"
    );
    assert_eq!(
        store
            .update_issuer_display_name("iss_x", "n")
            .await
            .unwrap_err()
            .code(),
        "store-not-found"
    );
    issuer(&store, "b").await;
    assert_eq!(store.list_issuers().await.unwrap().len(), 2);

    let s = store
        .create_source(&NewSource {
            issuer_id: a.clone(),
            name: "ehr-1".to_owned(),
            fhir_base_url: Some("https://ehr/fhir".to_owned()),
        })
        .await
        .unwrap();
    assert_eq!(store.get_source_by_name("ehr-1").await.unwrap().unwrap(), s);
    assert_eq!(store.list_sources(&a).await.unwrap(), vec![s.clone()]);
    let orphan = store
        .create_source(&NewSource {
            issuer_id: "iss_missing".to_owned(),
            name: "x".to_owned(),
            fhir_base_url: None,
        })
        .await
        .unwrap_err();
    assert_eq!(orphan.code(), "store-constraint");
    store.delete_source(&s.id).await.unwrap();
    assert!(store.get_source_by_name("ehr-1").await.unwrap().is_none());
    assert_eq!(
        store.delete_source(&s.id).await.unwrap_err().code(),
        "store-not-found"
    );
}
both!(issuers_and_sources);

async fn signing_keys_lifecycle(store: Store) {
    let a = issuer(&store, "a").await;
    let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "kid": "k1"});
    store
        .add_signing_key(&NewSigningKey {
            issuer_id: a.clone(),
            kid: "k1".to_owned(),
            public_jwk: jwk.clone(),
            key_store: "database".to_owned(),
            private_key_encrypted: Some(vec![1, 2, 3]),
        })
        .await
        .unwrap();
    store
        .add_signing_key(&NewSigningKey {
            issuer_id: a.clone(),
            kid: "k2".to_owned(),
            public_jwk: jwk.clone(),
            key_store: "file".to_owned(),
            private_key_encrypted: None,
        })
        .await
        .unwrap();
    let k1 = store.get_signing_key(&a, "k1").await.unwrap().unwrap();
    assert_eq!(
        (k1.status, k1.public_jwk.clone(), k1.retired_at),
        (KeyStatus::Active, jwk, None)
    );
    assert_eq!(
        store.signing_key_private(&a, "k1").await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(store.signing_key_private(&a, "k2").await.unwrap(), None);

    store
        .set_signing_key_status(&a, "k1", KeyStatus::Retired)
        .await
        .unwrap();
    let k1 = store.get_signing_key(&a, "k1").await.unwrap().unwrap();
    assert_eq!(k1.status, KeyStatus::Retired);
    assert!(k1.retired_at.is_some());
    assert_eq!(
        store.signing_key_private(&a, "k1").await.unwrap(),
        None,
        "retire destroys the private key"
    );
    let keys = store.list_signing_keys(&a).await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["k1", "k2"]
    );
    assert_eq!(
        store
            .set_signing_key_status(&a, "nope", KeyStatus::Revoked)
            .await
            .unwrap_err()
            .code(),
        "store-not-found"
    );
}
both!(signing_keys_lifecycle);

async fn crl_ctr_increments_on_each_change(store: Store) {
    let a = issuer(&store, "a").await;
    assert!(store.get_crl(&a, "k1").await.unwrap().is_none());
    assert_eq!(
        store.add_revocation(&a, "k1", "rid-a", None).await.unwrap(),
        1
    );
    assert_eq!(
        store.add_revocation(&a, "k1", "rid-a", None).await.unwrap(),
        1,
        "identical repeat is no change"
    );
    assert_eq!(
        store
            .add_revocation(&a, "k1", "rid-b", Some(1_636_977_600))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .add_revocation(&a, "k1", "rid-b", Some(1_636_977_700))
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        store.add_revocation(&a, "k2", "rid-a", None).await.unwrap(),
        1,
        "per kid"
    );
    let crl = store.get_crl(&a, "k1").await.unwrap().unwrap();
    assert_eq!(crl.ctr, 3);
    assert_eq!(
        crl.rids,
        vec![
            store::RevokedRid {
                rid: "rid-a".to_owned(),
                revoked_before: None
            },
            store::RevokedRid {
                rid: "rid-b".to_owned(),
                revoked_before: Some(1_636_977_700)
            },
        ]
    );
    assert_eq!(
        store.crl_versions(&a).await.unwrap(),
        vec![("k1".to_owned(), 3), ("k2".to_owned(), 1)]
    );
    // Parallel changes each count.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                match store
                    .add_revocation(&a, "k1", &format!("par-{i}"), None)
                    .await
                {
                    Ok(c) => return c,
                    Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => continue,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(store.get_crl(&a, "k1").await.unwrap().unwrap().ctr, 13);
}
both!(crl_ctr_increments_on_each_change);
