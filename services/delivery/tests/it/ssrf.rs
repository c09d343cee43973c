//! The SSRF guard: metadata and loopback addresses are refused — by scheme, by literal address,
//! or by what the injected resolver says a name resolves to — before any request is sent, and a
//! redirect to loopback is not followed. Only in-process servers on 127.0.0.1 are ever contacted.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use delivery::outbound::{Allowlist, OutboundClient, StaticResolver};
use delivery::DeliveryError;
use url::Url;

use crate::helpers::{receiver, seed, spawn_app, Reply, TestDb, ADMIN_TOKEN};

fn client(resolver: StaticResolver, allow: &[String]) -> OutboundClient {
    OutboundClient::new(
        Arc::new(resolver),
        Allowlist::new(allow),
        Duration::from_secs(2),
    )
    .unwrap()
}

async fn post(c: &OutboundClient, url: &str) -> Result<reqwest::Response, DeliveryError> {
    c.send(Url::parse(url).unwrap(), |client, url| {
        client.post(url).body("{}")
    })
    .await
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[tokio::test]
async fn metadata_and_loopback_are_refused_before_sending() {
    let target = receiver(vec![Reply::status(200)]).await;
    let resolver = StaticResolver::new()
        .with("metadata.example", &[ip("169.254.169.254")])
        .with("loopback.example", &[ip("127.0.0.1")])
        .with("mixed.example", &[ip("93.184.216.34"), ip("10.0.0.1")])
        .with("v6.example", &[ip("fe80::1")]);
    let c = client(resolver, &[]);

    let e = post(&c, "http://169.254.169.254/latest/meta-data/")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "outbound-url-refused", "plain http is refused");
    let e = post(&c, "https://169.254.169.254/latest/meta-data/")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");
    let e = post(&c, "https://metadata.example/latest/meta-data/")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");
    let e = post(&c, &format!("http://127.0.0.1:{}/", target.port))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        "outbound-url-refused",
        "127.0.0.1 is not allow-listed here"
    );
    let e = post(&c, &format!("https://loopback.example:{}/", target.port))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");
    let e = post(&c, "https://mixed.example/").await.unwrap_err();
    assert_eq!(
        e.code(),
        "outbound-address-refused",
        "one internal address is enough to refuse"
    );
    let e = post(&c, "https://v6.example/").await.unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");
    let e = post(&c, "https://[::1]/").await.unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");
    let e = post(&c, "https://unknown.example/").await.unwrap_err();
    assert_eq!(e.code(), "outbound-resolve-failed");
    assert!(!e.is_retryable() || e.code() == "outbound-resolve-failed");

    assert!(
        target.seen().is_empty(),
        "no refused request may reach the server"
    );
}

#[tokio::test]
async fn redirects_to_loopback_are_not_followed() {
    let inner = receiver(vec![Reply::status(200)]).await;
    let mut to_http = Reply::status(307);
    to_http.headers = vec![(
        "location".into(),
        format!("http://127.0.0.1:{}/secret", inner.port),
    )];
    let mut to_name = Reply::status(308);
    to_name.headers = vec![(
        "location".into(),
        format!("https://internal.example:{}/", inner.port),
    )];
    let outer = receiver(vec![to_http, to_name]).await;
    let resolver = StaticResolver::new().with("internal.example", &[ip("127.0.0.1")]);
    // Only the outer server's port is allow-listed.
    let c = client(resolver, &[format!("127.0.0.1:{}", outer.port)]);

    let e = post(&c, &format!("{}/hook", outer.base)).await.unwrap_err();
    assert_eq!(e.code(), "outbound-url-refused");
    let e = post(&c, &format!("{}/hook", outer.base)).await.unwrap_err();
    assert_eq!(e.code(), "outbound-address-refused");

    assert_eq!(outer.seen().len(), 2);
    assert!(
        inner.seen().is_empty(),
        "the redirect target must never be contacted"
    );
}

#[tokio::test]
async fn allowlisted_redirect_is_followed() {
    let inner = receiver(vec![Reply::status(204)]).await;
    let mut hop = Reply::status(307);
    hop.headers = vec![("location".into(), format!("{}/final", inner.base))];
    let outer = receiver(vec![hop]).await;
    let c = client(StaticResolver::new(), &["127.0.0.1".to_owned()]);
    let r = post(&c, &format!("{}/hook", outer.base)).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(inner.seen()[0].path, "/final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_registration_refuses_internal_urls() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    // No allowlist: the app runs as in production.
    let app = spawn_app(db.store.clone(), |s| s.outbound_allowlist.clear()).await;
    for url in [
        "http://169.254.169.254/",
        "https://127.0.0.1/hook",
        "ftp://wallet.example/",
        "https://[fd00::1]/",
    ] {
        let r = app
            .http
            .post(format!("{}/patients/{}/wallets", app.base, s.patient_id))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert!(
            body["code"].as_str().unwrap().starts_with("outbound-"),
            "{body}"
        );
    }
    assert!(db
        .store
        .list_wallet_endpoints(&s.patient_id)
        .await
        .unwrap()
        .is_empty());
}
