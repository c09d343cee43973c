//! Applying events: find-or-create patients, dose versions, doses_version bumps, outbox rows.

use std::time::Duration;

use store::{
    ApplyEvent, ApplyOutcome, DoseOutcome, DoseStatus, EventStatus, IssueJob, IssueMessage, Store,
    OUTBOX_ISSUE,
};

use crate::helpers::{both, change, dose, identity, issuer, mrn, new_event};

fn applied(o: &ApplyOutcome) -> (String, bool, bool, i64, Vec<DoseOutcome>) {
    match o {
        ApplyOutcome::Applied {
            patient_id,
            created_patient,
            changed,
            doses_version,
            doses,
        } => (
            patient_id.clone(),
            *created_patient,
            *changed,
            *doses_version,
            doses.clone(),
        ),
        other => panic!("expected applied, got {other:?}"),
    }
}

async fn issue_jobs(store: &Store) -> Vec<IssueJob> {
    let rows = store
        .claim_outbox(1000, Duration::from_secs(60))
        .await
        .unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    store.mark_outbox_sent(&ids).await.unwrap();
    rows.into_iter()
        .filter(|r| r.kind == OUTBOX_ISSUE)
        .flat_map(|r| {
            serde_json::from_value::<IssueMessage>(r.payload)
                .unwrap()
                .into_jobs()
        })
        .collect()
}

async fn amendments_replays_and_removals(store: Store) {
    let iss = issuer(&store, "a").await;
    // New patient, first dose.
    let e = new_event(&store, "1").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm1", 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let (pid, created, changed, v, doses) = applied(&o);
    assert!(created && changed);
    assert_eq!((v, doses), (1, vec![DoseOutcome::Inserted]));
    assert_eq!(
        issue_jobs(&store).await,
        vec![IssueJob {
            patient_id: pid.clone(),
            doses_version: 1
        }]
    );
    assert_eq!(
        store.get_event(&e).await.unwrap().unwrap().status,
        EventStatus::Processed
    );

    // Replay of the same version: nothing changes, no outbox row.
    let e = new_event(&store, "1-replay").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm1", 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let (pid2, created, changed, v, doses) = applied(&o);
    assert_eq!(pid2, pid);
    assert!(!created && !changed);
    assert_eq!((v, doses), (1, vec![DoseOutcome::Unchanged]));
    assert!(issue_jobs(&store).await.is_empty());

    // Newer version with a different lot: replaced, bumped.
    let mut amended = dose("imm1", 3, DoseStatus::Completed);
    amended.lot_number = Some("LOT2".to_owned());
    let e = new_event(&store, "1-v3").await;
    let o = store
        .apply_event(&change(&e, &iss, "p1", vec![amended]))
        .await
        .unwrap();
    let (_, _, changed, v, doses) = applied(&o);
    assert!(changed);
    assert_eq!((v, doses), (2, vec![DoseOutcome::Replaced]));
    assert_eq!(
        issue_jobs(&store).await,
        vec![IssueJob {
            patient_id: pid.clone(),
            doses_version: 2
        }]
    );

    // Older version arriving late: ignored.
    let e = new_event(&store, "1-v2").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm1", 2, DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let (_, _, changed, v, doses) = applied(&o);
    assert!(!changed);
    assert_eq!((v, doses), (2, vec![DoseOutcome::Outdated]));
    let current = store.load_current_doses(&pid).await.unwrap();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].lot_number.as_deref(), Some("LOT2"));
    assert_eq!(current[0].version, 3);

    // Newer version with identical content: stored, but the card does not change.
    let mut same = dose("imm1", 4, DoseStatus::Completed);
    same.lot_number = Some("LOT2".to_owned());
    let e = new_event(&store, "1-v4").await;
    let o = store
        .apply_event(&change(&e, &iss, "p1", vec![same]))
        .await
        .unwrap();
    let (_, _, changed, v, doses) = applied(&o);
    assert!(!changed);
    assert_eq!((v, doses), (2, vec![DoseOutcome::Replaced]));
    assert!(issue_jobs(&store).await.is_empty());

    // Entered-in-error: the dose is gone from the card, version bumped.
    let e = new_event(&store, "1-eie").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm1", 5, DoseStatus::EnteredInError)],
        ))
        .await
        .unwrap();
    let (_, _, changed, v, _) = applied(&o);
    assert!(changed);
    assert_eq!(v, 3);
    assert!(store.load_current_doses(&pid).await.unwrap().is_empty());
    let all = store.list_doses(&pid).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, DoseStatus::EnteredInError);
    assert_eq!(
        issue_jobs(&store).await,
        vec![IssueJob {
            patient_id: pid.clone(),
            doses_version: 3
        }]
    );

    // Not-done: recorded, not issuable, no bump.
    let e = new_event(&store, "2-nd").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm2", 1, DoseStatus::NotDone)],
        ))
        .await
        .unwrap();
    let (_, _, changed, v, doses) = applied(&o);
    assert!(!changed);
    assert_eq!((v, doses), (3, vec![DoseOutcome::Inserted]));
    assert_eq!(store.list_doses(&pid).await.unwrap().len(), 2);
    assert!(store.load_current_doses(&pid).await.unwrap().is_empty());
    assert!(issue_jobs(&store).await.is_empty());
}
both!(amendments_replays_and_removals);

async fn identity_changes(store: Store) {
    let iss = issuer(&store, "a").await;
    let e = new_event(&store, "a").await;
    let o = store
        .apply_event(&change(
            &e,
            &iss,
            "p1",
            vec![dose("imm1", 1, DoseStatus::Completed)],
        ))
        .await
        .unwrap();
    let (pid, ..) = applied(&o);
    issue_jobs(&store).await;

    // A new phone number does not change the card.
    let mut ev = change(&new_event(&store, "b").await, &iss, "p1", vec![]);
    let mut id = identity("Doe");
    id.telecom = vec![store::ContactPoint {
        system: "phone".to_owned(),
        value: "+15550100".to_owned(),
    }];
    ev.identity = Some(id.clone());
    let (_, _, changed, v, _) = applied(&store.apply_event(&ev).await.unwrap());
    assert!(!changed);
    assert_eq!(v, 1);
    let p = store.get_patient(&pid).await.unwrap().unwrap();
    assert_eq!(p.identity, id);

    // A new family name does.
    let mut ev = change(&new_event(&store, "c").await, &iss, "p1", vec![]);
    ev.identity = Some(identity("Smith"));
    let (_, _, changed, v, _) = applied(&store.apply_event(&ev).await.unwrap());
    assert!(changed);
    assert_eq!(v, 2);
    assert_eq!(
        issue_jobs(&store).await,
        vec![IssueJob {
            patient_id: pid.clone(),
            doses_version: 2
        }]
    );

    // No identity in the event keeps the stored one.
    let mut ev = change(&new_event(&store, "d").await, &iss, "p1", vec![]);
    ev.identity = None;
    let (_, _, changed, _, _) = applied(&store.apply_event(&ev).await.unwrap());
    assert!(!changed);
    let p = store.get_patient(&pid).await.unwrap().unwrap();
    assert_eq!(p.identity.family.as_deref(), Some("Smith"));

    // Lookup by identifier.
    let found = store
        .find_patient_by_identifier(&iss, "urn:mrn", "p1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, pid);
    assert!(store
        .find_patient_by_identifier(&iss, "urn:mrn", "nobody")
        .await
        .unwrap()
        .is_none());
}
both!(identity_changes);

async fn batch_bumps_once_per_patient(store: Store) {
    let iss = issuer(&store, "a").await;
    let mut batch = Vec::new();
    for i in 0..4 {
        let e = new_event(&store, &format!("b{i}")).await;
        batch.push(change(
            &e,
            &iss,
            "p1",
            vec![dose(&format!("imm{i}"), 1, DoseStatus::Completed)],
        ));
    }
    let e = new_event(&store, "other").await;
    batch.push(change(
        &e,
        &iss,
        "p2",
        vec![dose("imm-x", 1, DoseStatus::Completed)],
    ));
    // Same dose twice in one batch: the second is a replay.
    let e = new_event(&store, "dup").await;
    batch.push(change(
        &e,
        &iss,
        "p2",
        vec![dose("imm-x", 1, DoseStatus::Completed)],
    ));

    let out = store.apply_events(&batch).await.unwrap();
    let first = applied(&out[0]);
    assert!(first.1, "first event creates the patient");
    for o in &out[1..4] {
        let (pid, created, changed, v, _) = applied(o);
        assert_eq!(pid, first.0);
        assert!(!created && changed);
        assert_eq!(v, 1, "bumped once for the whole batch");
    }
    assert_eq!(applied(&out[5]).4, vec![DoseOutcome::Unchanged]);
    let mut jobs = issue_jobs(&store).await;
    jobs.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));
    assert_eq!(jobs.len(), 2);
    assert!(jobs.iter().all(|j| j.doses_version == 1));
    assert_eq!(store.load_current_doses(&first.0).await.unwrap().len(), 4);
    for b in &batch {
        assert_eq!(
            store.get_event(&b.event_id).await.unwrap().unwrap().status,
            EventStatus::Processed
        );
    }
}
both!(batch_bumps_once_per_patient);

async fn ambiguous_identifiers_are_held(store: Store) {
    let iss = issuer(&store, "a").await;
    let e1 = new_event(&store, "1").await;
    let e2 = new_event(&store, "2").await;
    store
        .apply_events(&[
            change(&e1, &iss, "A", vec![dose("i1", 1, DoseStatus::Completed)]),
            change(&e2, &iss, "B", vec![dose("i2", 1, DoseStatus::Completed)]),
        ])
        .await
        .unwrap();
    let e3 = new_event(&store, "3").await;
    let ev = ApplyEvent {
        identifiers: vec![mrn("A"), mrn("B")],
        ..change(&e3, &iss, "A", vec![dose("i3", 1, DoseStatus::Completed)])
    };
    let o = store.apply_event(&ev).await.unwrap();
    let ApplyOutcome::Held { review_case_id } = o else {
        panic!("{o:?}")
    };
    assert_eq!(
        store.get_event(&e3).await.unwrap().unwrap().status,
        EventStatus::Held
    );
    let case = store
        .get_review_case(&review_case_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.kind, store::ReviewKind::PossibleDuplicate);
    assert_eq!(case.event_id.as_deref(), Some(e3.as_str()));
    assert_eq!(
        case.details["candidate_patient_ids"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // A second identifier for a known patient is attached to it.
    let e4 = new_event(&store, "4").await;
    let ev = ApplyEvent {
        identifiers: vec![
            mrn("A"),
            store::Identifier {
                system: "urn:other".to_owned(),
                value: "x".to_owned(),
            },
        ],
        ..change(&e4, &iss, "A", vec![])
    };
    let (pid, created, ..) = applied(&store.apply_event(&ev).await.unwrap());
    assert!(!created);
    assert_eq!(
        store
            .find_patient_by_identifier(&iss, "urn:other", "x")
            .await
            .unwrap()
            .unwrap()
            .id,
        pid
    );

    // Identifiers are per issuer.
    let iss2 = issuer(&store, "b").await;
    let e5 = new_event(&store, "5").await;
    let (pid_b, created, ..) = applied(
        &store
            .apply_event(&change(&e5, &iss2, "A", vec![]))
            .await
            .unwrap(),
    );
    assert!(created);
    assert_ne!(pid_b, pid);

    let err = store
        .apply_event(&ApplyEvent {
            identifiers: vec![],
            ..change(&e5, &iss, "A", vec![])
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "store-invalid-input");
}
both!(ambiguous_identifiers_are_held);

async fn concurrent_batches_for_the_same_new_patient(store: Store) {
    // Several consumers see events of one new patient at once: one creates it, the others lose
    // the race with a retryable conflict and succeed on retry; nothing is duplicated.
    let iss = issuer(&store, "a").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = store.clone();
        let iss = iss.clone();
        tasks.push(tokio::spawn(async move {
            let e = new_event(&store, &format!("c{i}")).await;
            let ev = change(
                &e,
                &iss,
                "same",
                vec![dose(&format!("imm{i}"), 1, DoseStatus::Completed)],
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                match store.apply_event(&ev).await {
                    Ok(o) => return o,
                    Err(e) if e.is_retryable() && std::time::Instant::now() < deadline => continue,
                    Err(e) => panic!("{e:?}"),
                }
            }
        }));
    }
    let mut pids = std::collections::BTreeSet::new();
    for t in tasks {
        pids.insert(applied(&t.await.unwrap()).0);
    }
    assert_eq!(pids.len(), 1);
    let pid = pids.into_iter().next().unwrap();
    assert_eq!(store.load_current_doses(&pid).await.unwrap().len(), 6);
    let p = store.get_patient(&pid).await.unwrap().unwrap();
    assert!(p.doses_version >= 1 && p.doses_version <= 6);
}
both!(concurrent_batches_for_the_same_new_patient);
