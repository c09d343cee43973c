//! Launch sessions: put, replace, read, expiry, delete, purge.

use chrono::{Duration, Utc};
use serde_json::json;
use store::Store;

use crate::helpers::both;

async fn launch_sessions_round_trip_and_expire(store: Store) {
    let later = Utc::now() + Duration::minutes(30);
    store
        .put_launch_session("s1", &json!({"state": "abc"}), later)
        .await
        .unwrap();
    let got = store.get_launch_session("s1").await.unwrap().unwrap();
    assert_eq!(got.data, json!({"state": "abc"}));
    assert!(
        !format!("{got:?}").contains("abc"),
        "Debug must not print data"
    );

    store
        .put_launch_session("s1", &json!({"access_token": "t"}), later)
        .await
        .unwrap();
    let got = store.get_launch_session("s1").await.unwrap().unwrap();
    assert_eq!(got.data, json!({"access_token": "t"}));
    assert!(got.updated_at >= got.created_at);

    let past = Utc::now() - Duration::seconds(1);
    store
        .put_launch_session("old", &json!({}), past)
        .await
        .unwrap();
    assert_eq!(store.get_launch_session("old").await.unwrap(), None);
    assert_eq!(store.purge_expired_launch_sessions().await.unwrap(), 1);

    assert!(store.delete_launch_session("s1").await.unwrap());
    assert!(!store.delete_launch_session("s1").await.unwrap());
    assert_eq!(store.get_launch_session("s1").await.unwrap(), None);
}
both!(launch_sessions_round_trip_and_expire);
