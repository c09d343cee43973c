//! Outbox relay: claim with lease, mark sent, release, concurrent claimers.

use std::collections::BTreeSet;
use std::time::Duration;

use store::{DoseStatus, Store};

use crate::helpers::{both, change, dose, issuer, new_event};

/// `n` outbox rows: one applied batch each (a batch writes one `issue` row per pack of jobs).
async fn fill(store: &Store, n: usize) {
    let iss = issuer(store, "a").await;
    for i in 0..n {
        let e = new_event(store, &format!("o{i}")).await;
        let one = change(
            &e,
            &iss,
            &format!("p{i}"),
            vec![dose("imm", 1, DoseStatus::Completed)],
        );
        store.apply_events(&[one]).await.unwrap();
    }
}

/// A batch of many patients writes its issue jobs as packs of `JOBS_PER_PACK`.
async fn batches_write_packs(store: Store) {
    let iss = issuer(&store, "a").await;
    let mut batch = Vec::new();
    for i in 0..(store::JOBS_PER_PACK + 5) {
        let e = new_event(&store, &format!("k{i}")).await;
        batch.push(change(
            &e,
            &iss,
            &format!("k{i}"),
            vec![dose(&format!("kimm{i}"), 1, DoseStatus::Completed)],
        ));
    }
    store.apply_events(&batch).await.unwrap();
    let rows = store
        .claim_outbox(10, Duration::from_secs(60))
        .await
        .unwrap();
    let sizes: Vec<usize> = rows
        .into_iter()
        .map(|r| {
            serde_json::from_value::<store::IssueMessage>(r.payload)
                .unwrap()
                .into_jobs()
                .len()
        })
        .collect();
    assert_eq!(sizes, vec![store::JOBS_PER_PACK, 5]);
}
both!(batches_write_packs);

async fn claim_mark_release(store: Store) {
    assert_eq!(store.oldest_pending_outbox_age().await.unwrap(), None);
    fill(&store, 5).await;
    assert_eq!(store.count_pending_outbox().await.unwrap(), 5);
    let lag = store.oldest_pending_outbox_age().await.unwrap().unwrap();
    assert!(lag < Duration::from_secs(60), "{lag:?}");
    let lease = Duration::from_secs(60);
    let a = store.claim_outbox(3, lease).await.unwrap();
    assert_eq!(a.len(), 3);
    assert!(a.windows(2).all(|w| w[0].id < w[1].id));
    assert!(a.iter().all(|m| m.attempts == 1 && m.kind == "issue"));
    // Leased rows are not handed out again.
    let b = store.claim_outbox(10, lease).await.unwrap();
    assert_eq!(b.len(), 2);
    assert!(store.claim_outbox(10, lease).await.unwrap().is_empty());

    let a_ids: Vec<i64> = a.iter().map(|m| m.id).collect();
    assert_eq!(store.mark_outbox_sent(&a_ids).await.unwrap(), 3);
    assert_eq!(
        store.mark_outbox_sent(&a_ids).await.unwrap(),
        0,
        "already sent"
    );
    let b_ids: Vec<i64> = b.iter().map(|m| m.id).collect();
    assert_eq!(store.release_outbox(&b_ids).await.unwrap(), 2);
    let again = store.claim_outbox(10, lease).await.unwrap();
    assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), b_ids);
    assert!(again.iter().all(|m| m.attempts == 2));
    assert_eq!(store.count_pending_outbox().await.unwrap(), 2);

    // An expired lease makes rows claimable again (a relay died).
    let short = store.claim_outbox(10, Duration::from_millis(1)).await;
    assert!(short.unwrap().is_empty(), "still leased for 60 s");
    store.release_outbox(&b_ids).await.unwrap();
    assert_eq!(
        store
            .claim_outbox(10, Duration::from_millis(1))
            .await
            .unwrap()
            .len(),
        2
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = store.claim_outbox(10, lease).await.unwrap();
        if r.len() == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "lease never expired");
        tokio::task::yield_now().await;
    }
}
both!(claim_mark_release);

async fn concurrent_claimers_get_disjoint_rows(store: Store) {
    fill(&store, 200).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let rows = store
                    .claim_outbox(7, Duration::from_secs(300))
                    .await
                    .unwrap();
                if rows.is_empty() {
                    return mine;
                }
                mine.extend(rows.into_iter().map(|m| m.id));
            }
        }));
    }
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for t in tasks {
        let ids = t.await.unwrap();
        total += ids.len();
        seen.extend(ids);
    }
    assert_eq!(total, 200, "every row claimed exactly once");
    assert_eq!(seen.len(), 200);
}
both!(concurrent_claimers_get_disjoint_rows);

/// PostgreSQL's in-transaction relay: rows handed to `publish` are sent only if it succeeds;
/// a failed publish leaves them unsent for the next round; kinds not asked for are untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_in_transaction_commits_only_what_was_published() {
    let db = crate::helpers::TestDb::postgres().await;
    let store = db.store.clone();
    fill(&store, 6).await;
    // A failed publish: nothing is marked.
    let failed: Result<Result<usize, &str>, _> = store
        .relay_outbox_in_transaction(4, &["issue"], |rows| async move {
            assert_eq!(rows.len(), 4);
            Err("broker down")
        })
        .await;
    assert_eq!(failed.unwrap(), Err("broker down"));
    assert_eq!(store.count_pending_outbox().await.unwrap(), 6);
    // Kinds not asked for are left alone.
    let none: Result<usize, ()> = store
        .relay_outbox_in_transaction(10, &["deliver"], |_| async { Ok(()) })
        .await
        .unwrap();
    assert_eq!(none, Ok(0));
    // Two rounds publish everything once, oldest first.
    let mut published: Vec<i64> = Vec::new();
    for expected in [4, 2] {
        let ids = std::sync::Mutex::new(Vec::new());
        let n = store
            .relay_outbox_in_transaction(4, &["issue"], |rows| {
                let ids = &ids;
                async move {
                    ids.lock()
                        .unwrap()
                        .extend(rows.iter().map(|r| (r.id, r.kind.clone())));
                    Ok::<(), ()>(())
                }
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, expected);
        let got = ids.into_inner().unwrap();
        assert!(got.iter().all(|(_, kind)| kind == "issue"));
        published.extend(got.into_iter().map(|(id, _)| id));
    }
    assert!(published.windows(2).all(|w| w[0] < w[1]), "{published:?}");
    assert_eq!(store.count_pending_outbox().await.unwrap(), 0);
    // SQLite refuses: it would hold the write lock while publishing.
    let lite = crate::helpers::TestDb::sqlite().await;
    let refused = lite
        .store
        .relay_outbox_in_transaction(4, &["issue"], |_| async { Ok::<(), ()>(()) })
        .await;
    assert_eq!(refused.unwrap_err().code(), "store-invalid-input");
}
