//! SMS through an in-process Twilio-compatible gateway: the Messages API wire format (path,
//! basic auth, form fields), E.164 normalization, the passcode kept out of the message, retry
//! after a gateway 500 with the status recorded, and typed rejection of bad numbers.

use base64::Engine as _;
use serde_json::Value;
use store::DeliveryStatus;
use url::Url;

use crate::helpers::{receiver, seed, spawn_app, wait_for, Reply, TestApp, TestDb, ADMIN_TOKEN};

fn twilio_ok() -> Reply {
    let mut r = Reply::status(201);
    r.body = r#"{"sid":"SM0123456789abcdef","status":"queued","to":"+12015550123"}"#.to_owned();
    r
}

async fn app_with_gateway(db: &TestDb, gateway: &str) -> TestApp {
    let base = Url::parse(gateway).unwrap();
    spawn_app(db.store.clone(), move |s| {
        s.sms = Some(delivery::sms::SmsSettings {
            base_url: base,
            account: "ACtest0001".to_owned(),
            token: "gateway-token".to_owned().into(),
            from: "+15005550006".to_owned(),
        });
    })
    .await
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(f: &'a [(String, String)], k: &str) -> &'a str {
    f.iter()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_is_sent_by_sms_without_the_passcode_and_retried() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let gateway = receiver(vec![Reply::status(500), twilio_ok()]).await;
    let app = app_with_gateway(&db, &gateway.base).await;

    let r = app
        .http
        .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({ "passcode": "7341", "label": "COVID-19 card", "phone": "(201) 555-0123" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let viewer_link = created["viewer_link"].as_str().unwrap().to_owned();
    assert!(viewer_link.starts_with(&format!("{}/shl/view#shlink:/", app.base)));
    assert_eq!(created["flags"], "P");

    let job = wait_for("SMS delivered", || async {
        let jobs = db.store.list_deliveries(&s.credential_id).await.unwrap();
        jobs.into_iter()
            .find(|d| d.channel.starts_with("sms:") && d.status != DeliveryStatus::Pending)
    })
    .await;
    assert_eq!((job.status, job.attempts), (DeliveryStatus::Succeeded, 2));

    let seen = gateway.seen();
    assert_eq!(seen.len(), 2);
    for req in &seen {
        assert_eq!(req.path, "/2010-04-01/Accounts/ACtest0001/Messages.json");
        assert_eq!(
            req.header("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let expected = base64::engine::general_purpose::STANDARD.encode("ACtest0001:gateway-token");
        assert_eq!(
            req.header("authorization"),
            Some(format!("Basic {expected}").as_str())
        );
        let f = form(&req.body);
        assert_eq!(field(&f, "To"), "+12015550123");
        assert_eq!(field(&f, "From"), "+15005550006");
        let body = field(&f, "Body");
        assert_eq!(body, format!("Your vaccination record: {viewer_link}"));
        assert!(
            !body.contains("7341"),
            "the passcode never travels with the link"
        );
    }

    // The gateway's message id and status are recorded with the attempt.
    let r: Value = app
        .http
        .get(format!(
            "{}/credentials/{}/deliveries",
            app.base, s.credential_id
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sms = r["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["channel"].as_str().unwrap().starts_with("sms:"))
        .unwrap();
    let log = sms["attempt_log"].as_array().unwrap();
    assert_eq!(log[0]["details"]["error_code"], "peer-5xx");
    assert_eq!(log[1]["details"]["gateway_sid"], "SM0123456789abcdef");
    assert_eq!(log[1]["details"]["gateway_status"], "queued");
    assert!(
        !r.to_string().contains("555"),
        "no phone number in delivery records"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_numbers_are_rejected_with_a_reason_and_nothing_is_sent() {
    let db = TestDb::sqlite().await;
    let s = seed(&db.store).await;
    let gateway = receiver(vec![twilio_ok()]).await;
    let app = app_with_gateway(&db, &gateway.base).await;
    for bad in ["12", "call me maybe", "+1 555 0100 999999"] {
        let r = app
            .http
            .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "phone": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], "phone-invalid");
        assert!(!body.to_string().contains(bad), "the number is not echoed");
    }
    assert!(gateway.seen().is_empty());
    assert!(db
        .store
        .list_shl_links_for_credential(&s.credential_id)
        .await
        .unwrap()
        .is_empty());
}
