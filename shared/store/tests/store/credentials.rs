//! Storing cards: stale check, supersede, one active card, revocation.

use store::{
    CredentialFormat, CredentialStatus, DeliverJob, DoseStatus, NewCredential, RevokeOutcome,
    Store, StoreCredentialOutcome, OUTBOX_DELIVER,
};

use crate::helpers::{both, change, dose, issuer, new_event};

fn card(issuer_id: &str, patient_id: &str, v: i64) -> NewCredential {
    NewCredential {
        issuer_id: issuer_id.to_owned(),
        patient_id: patient_id.to_owned(),
        disease: "covid-19".to_owned(),
        doses_version: v,
        format: CredentialFormat::Shc,
        artefact: format!("jws-for-v{v}"),
        kid: "kid1".to_owned(),
        rid: Some(format!("rid{v}")),
        nbf: 1_700_000_000 + v,
        exp: None,
        status: CredentialStatus::Active,
    }
}

async fn add_dose(store: &Store, iss: &str, n: u32) -> String {
    let e = new_event(store, &format!("m{n}")).await;
    match store
        .apply_event(&change(
            &e,
            iss,
            "p1",
            vec![dose(&format!("imm{n}"), 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap()
    {
        store::ApplyOutcome::Applied { patient_id, .. } => patient_id,
        other => panic!("{other:?}"),
    }
}

async fn stale_cards_are_refused(store: Store) {
    let iss = issuer(&store, "a").await;
    let pid = add_dose(&store, &iss, 1).await;
    let snap1 = store.issue_snapshot(&pid).await.unwrap().unwrap();
    assert_eq!((snap1.patient.doses_version, snap1.doses.len()), (1, 1));
    add_dose(&store, &iss, 2).await;
    let snap2 = store.issue_snapshot(&pid).await.unwrap().unwrap();
    assert_eq!((snap2.patient.doses_version, snap2.doses.len()), (2, 2));

    // The worker that read v1 finishes last: refused, nothing written.
    let r = store.store_credential(&card(&iss, &pid, 1)).await.unwrap();
    assert_eq!(
        r,
        StoreCredentialOutcome::Stale {
            current_doses_version: 2
        }
    );
    assert!(store.list_credentials(&pid).await.unwrap().is_empty());

    let r = store.store_credential(&card(&iss, &pid, 2)).await.unwrap();
    let StoreCredentialOutcome::Stored {
        credential_id: c2,
        superseded,
        outbox_id,
    } = r
    else {
        panic!("{r:?}")
    };
    assert!(superseded.is_empty());
    assert!(outbox_id.is_some());

    // A duplicate issue job for the same version writes nothing.
    let r = store.store_credential(&card(&iss, &pid, 2)).await.unwrap();
    assert_eq!(
        r,
        StoreCredentialOutcome::AlreadyIssued {
            credential_id: c2.clone()
        }
    );

    // The next version supersedes it.
    add_dose(&store, &iss, 3).await;
    let r = store.store_credential(&card(&iss, &pid, 3)).await.unwrap();
    let StoreCredentialOutcome::Stored {
        credential_id: c3,
        superseded,
        ..
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(superseded, vec![c2.clone()]);
    assert_eq!(
        store.get_credential(&c2).await.unwrap().unwrap().status,
        CredentialStatus::Superseded
    );
    let active = store
        .active_credential(&pid, &iss, "covid-19", CredentialFormat::Shc)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.id, c3);
    assert_eq!(active.artefact, "jws-for-v3");
    assert!(
        !format!("{active:?}").contains("jws-for"),
        "Debug must not print the artefact"
    );

    // One deliver row per stored card.
    let rows = store
        .claim_outbox(100, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    let delivers: Vec<DeliverJob> = rows
        .into_iter()
        .filter(|r| r.kind == OUTBOX_DELIVER)
        .flat_map(|r| {
            serde_json::from_value::<store::DeliverMessage>(r.payload)
                .unwrap()
                .into_jobs()
        })
        .collect();
    assert_eq!(
        delivers,
        vec![
            DeliverJob { credential_id: c2 },
            DeliverJob { credential_id: c3 }
        ]
    );

    // Unknown patient.
    let err = store
        .store_credential(&card(&iss, "pat_nope", 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store-not-found");
    assert!(store.issue_snapshot("pat_nope").await.unwrap().is_none());
}
both!(stale_cards_are_refused);

async fn interleaved_stores_leave_one_active_card(store: Store) {
    let iss = issuer(&store, "a").await;
    let pid = add_dose(&store, &iss, 1).await;
    for n in 2..=4 {
        add_dose(&store, &iss, n).await;
    }
    // Ten workers race, holding snapshots of every version 1..=4 (and duplicates of 4).
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let c = card(&iss, &pid, (i % 4) + 1);
        tasks.push(tokio::spawn(async move {
            store.store_credential(&c).await.unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            StoreCredentialOutcome::Stored { .. } => stored += 1,
            StoreCredentialOutcome::Stale {
                current_doses_version,
            } => assert_eq!(current_doses_version, 4),
            StoreCredentialOutcome::AlreadyIssued { .. } => {}
        }
    }
    assert_eq!(stored, 1, "a burst yields one current card, not N");
    let all = store.list_credentials(&pid).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].doses_version, 4);
    assert_eq!(all[0].status, CredentialStatus::Active);
}
both!(interleaved_stores_leave_one_active_card);

async fn held_cards_and_revocation(store: Store) {
    let iss = issuer(&store, "a").await;
    let pid = add_dose(&store, &iss, 1).await;
    let r = store.store_credential(&card(&iss, &pid, 1)).await.unwrap();
    let StoreCredentialOutcome::Stored {
        credential_id: active,
        ..
    } = r
    else {
        panic!()
    };

    // A held card neither supersedes nor queues delivery.
    let held = NewCredential {
        status: CredentialStatus::Held,
        format: CredentialFormat::Dcc,
        ..card(&iss, &pid, 1)
    };
    let r = store.store_credential(&held).await.unwrap();
    let StoreCredentialOutcome::Stored {
        superseded,
        outbox_id,
        ..
    } = r
    else {
        panic!()
    };
    assert!(superseded.is_empty() && outbox_id.is_none());
    let bad = NewCredential {
        status: CredentialStatus::Revoked,
        ..card(&iss, &pid, 1)
    };
    assert_eq!(
        store.store_credential(&bad).await.unwrap_err().code(),
        "store-invalid-input"
    );

    // Revoking puts its rid on the kid's CRL.
    assert_eq!(
        store.revoke_credential(&active).await.unwrap(),
        RevokeOutcome::Revoked { crl_ctr: Some(1) }
    );
    assert_eq!(
        store.revoke_credential(&active).await.unwrap(),
        RevokeOutcome::AlreadyRevoked
    );
    let crl = store.get_crl(&iss, "kid1").await.unwrap().unwrap();
    assert_eq!(crl.ctr, 1);
    assert_eq!(
        crl.rids,
        vec![store::RevokedRid {
            rid: "rid1".to_owned(),
            // The card's own nbf + 1: this card and earlier ones, not the patient's later cards.
            revoked_before: Some(store.get_credential(&active).await.unwrap().unwrap().nbf + 1)
        }]
    );
    let nbf = store.get_credential(&active).await.unwrap().unwrap().nbf;
    assert_eq!(
        store.revoked_before(&iss, "kid1", "rid1").await.unwrap(),
        Some(Some(nbf + 1))
    );
    assert_eq!(
        store.revoked_before(&iss, "kid1", "other").await.unwrap(),
        None
    );
    assert_eq!(
        store.get_credential(&active).await.unwrap().unwrap().status,
        CredentialStatus::Revoked
    );
    assert!(store
        .active_credential(&pid, &iss, "covid-19", CredentialFormat::Shc)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .revoke_credential("cred_nope")
            .await
            .unwrap_err()
            .code(),
        "store-not-found"
    );
}
both!(held_cards_and_revocation);

/// The issue worker's batch: one call stores cards of several patients, refuses the stale and
/// the duplicate ones, supersedes older cards and queues one delivery per stored card; the
/// batched snapshot reads every patient with their doses and active cards.
async fn batches_of_cards(store: Store) {
    let iss = issuer(&store, "a").await;
    let mut pids = Vec::new();
    for n in 0..3u32 {
        let e = new_event(&store, &format!("b{n}")).await;
        let outcome = store
            .apply_event(&change(
                &e,
                &iss,
                &format!("bp{n}"),
                vec![dose(&format!("bimm{n}"), 1, DoseStatus::Completed)],
            ))
            .await
            .unwrap();
        let store::ApplyOutcome::Applied { patient_id, .. } = outcome else {
            panic!("{outcome:?}")
        };
        pids.push(patient_id);
    }
    // Patient 0 already has a card for version 1.
    let first = store
        .store_credential(&card(&iss, &pids[0], 1))
        .await
        .unwrap();
    let StoreCredentialOutcome::Stored {
        credential_id: old, ..
    } = first
    else {
        panic!("{first:?}")
    };
    let mut snapshots = store
        .issue_snapshots(&[
            pids[2].clone(),
            pids[0].clone(),
            "pat_nope".into(),
            pids[1].clone(),
        ])
        .await
        .unwrap();
    assert_eq!(snapshots.len(), 3, "unknown patients are left out");
    snapshots.sort_by(|a, b| a.snapshot.patient.id.cmp(&b.snapshot.patient.id));
    for s in &snapshots {
        assert_eq!(s.snapshot.doses.len(), 1);
        assert_eq!(s.snapshot.doses[0].patient_id, s.snapshot.patient.id);
        let expected_active = usize::from(s.snapshot.patient.id == pids[0]);
        assert_eq!(s.active.len(), expected_active);
    }

    let mut newer = card(&iss, &pids[1], 1);
    newer.artefact = "second card, same version".into();
    let outcomes = store
        .store_credentials(&[
            card(&iss, &pids[0], 1), // duplicate of the stored one
            card(&iss, &pids[1], 1), // new
            newer,                   // same patient and version again in the batch
            card(&iss, &pids[2], 7), // stale
            card(&iss, "pat_nope", 1),
        ])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], Ok(StoreCredentialOutcome::AlreadyIssued { credential_id }) if *credential_id == old)
    );
    let Ok(StoreCredentialOutcome::Stored {
        credential_id: stored,
        outbox_id: Some(_),
        ..
    }) = &outcomes[1]
    else {
        panic!("{:?}", outcomes[1])
    };
    assert!(
        matches!(&outcomes[2], Ok(StoreCredentialOutcome::AlreadyIssued { credential_id }) if credential_id == stored)
    );
    assert!(matches!(
        &outcomes[3],
        Ok(StoreCredentialOutcome::Stale {
            current_doses_version: 1
        })
    ));
    assert_eq!(outcomes[4].as_ref().unwrap_err().code(), "store-not-found");
    let creds = store.list_credentials(&pids[1]).await.unwrap();
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].artefact, "jws-for-v1");

    // A newer version supersedes, in a batch too.
    let e = new_event(&store, "b0-2").await;
    store
        .apply_event(&change(
            &e,
            &iss,
            "bp0",
            vec![dose("bimm0-2", 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let outcomes = store
        .store_credentials(&[card(&iss, &pids[0], 2)])
        .await
        .unwrap();
    assert!(
        matches!(&outcomes[0], Ok(StoreCredentialOutcome::Stored { superseded, .. }) if *superseded == vec![old.clone()])
    );
    let old_row = store.get_credential(&old).await.unwrap().unwrap();
    assert_eq!(old_row.status, CredentialStatus::Superseded);
}
both!(batches_of_cards);
