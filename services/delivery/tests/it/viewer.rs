//! The viewer in a real headless Chromium (Debian `chromium` + `chromedriver`, driven over the
//! WebDriver HTTP API): open the viewer link served on 127.0.0.1, type the passcode, see the
//! patient's name and the QR code (an `<svg>`), and save a screenshot to
//! `target/screenshots/viewer.png`.

use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{seed, spawn_app, wait_for, TestDb, ADMIN_TOKEN};

const W3C_ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd(reqwest::Method::POST, "/element", Some(json!({ "using": "css selector", "value": css })))
            .await;
        v.get(W3C_ELEMENT).and_then(Value::as_str).map(str::to_owned)
    }

    async fn text(&self, element: &str) -> String {
        self.cmd(reqwest::Method::GET, &format!("/element/{element}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_opens_the_link_with_the_passcode_and_shows_the_card() {
    let db = TestDb::postgres().await;
    let s = seed(&db.store).await;
    let app = spawn_app(db.store.clone(), |_| {}).await;
    let r = app
        .http
        .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "passcode": "2468", "label": "COVID-19 vaccination" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let viewer_link = r.json::<Value>().await.unwrap()["viewer_link"].as_str().unwrap().to_owned();

    // The viewer's assets are served by vaxcred itself.
    for asset in ["viewer.js", "viewer.css", "qrcode.js"] {
        let r = app.http.get(format!("{}/shl/view/{asset}", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut chromedriver = tokio::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (Debian package chromium-driver) must be installed");
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_for("chromedriver ready", || async {
        let r = http.get(format!("{base}/status")).send().await.ok()?;
        let v: Value = r.json().await.ok()?;
        v["value"]["ready"].as_bool().filter(|r| *r)
    })
    .await;
    let profile = tempfile::tempdir().unwrap();
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=900,1400",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        }
    }}});
    let v: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
    let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_owned();
    let d = Driver { http: http.clone(), base: base.clone(), session };

    d.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": viewer_link }))).await;
    let input = wait_for("passcode field", || d.find("#passcode-form:not([hidden]) #passcode")).await;
    // A wrong passcode first: the page says how many attempts are left.
    d.cmd(reqwest::Method::POST, &format!("/element/{input}/value"), Some(json!({ "text": "1111" }))).await;
    let button = d.find("#open").await.unwrap();
    d.cmd(reqwest::Method::POST, &format!("/element/{button}/click"), None).await;
    let error = wait_for("wrong-passcode message", || async {
        let e = d.find("#passcode-error").await?;
        let t = d.text(&e).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(error, "Wrong passcode. 9 attempts left.");

    d.cmd(reqwest::Method::POST, &format!("/element/{input}/value"), Some(json!({ "text": "2468" }))).await;
    d.cmd(reqwest::Method::POST, &format!("/element/{button}/click"), None).await;
    let name = wait_for("patient name", || async {
        let e = d.find("#card:not([hidden]) #patient-name").await?;
        let t = d.text(&e).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(name, "John B. Anyperson");
    assert!(d.find("#qr svg path").await.is_some(), "the QR code is drawn as SVG");
    let doses = d.find("#doses tbody").await.unwrap();
    let doses_text = d.text(&doses).await;
    assert!(doses_text.contains("2021-01-01") && doses_text.contains("2021-01-29"), "{doses_text}");
    assert!(doses_text.contains("Moderna"), "{doses_text}");
    let download = d.find("#download").await.unwrap();
    let href = d.cmd(reqwest::Method::GET, &format!("/element/{download}/attribute/href"), None).await;
    assert!(href.as_str().unwrap().starts_with("blob:"), "{href}");

    let png = d.cmd(reqwest::Method::GET, "/screenshot", None).await;
    let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/screenshots"));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("viewer.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    let _ = http.delete(format!("{base}/session/{}", d.session)).send().await;
    let _ = chromedriver.kill().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), chromedriver.wait()).await;
}
