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
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.get(W3C_ELEMENT)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    async fn text(&self, element: &str) -> String {
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{element}/text"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

/// Polls `check` (bounded); on timeout fails with the page's status line and browser log.
async fn poll<T, F, Fut>(d: &Driver, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            let status = match d.find("#status").await {
                Some(e) => d.text(&e).await,
                None => String::new(),
            };
            let logs = d
                .http
                .post(format!("{}/session/{}/se/log", d.base, d.session))
                .json(&json!({ "type": "browser" }))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("timed out waiting for {what}; page status {status:?}; browser log {logs}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
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
    let viewer_link = r.json::<Value>().await.unwrap()["viewer_link"]
        .as_str()
        .unwrap()
        .to_owned();

    // The page loads nothing from elsewhere: only relative asset URLs, and a strict CSP.
    let r = app
        .http
        .get(format!("{}/shl/view", app.base))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("://"),
        "no absolute (third-party) URLs in the viewer page"
    );
    // The viewer's assets are served by vaxcred itself.
    for asset in ["viewer.js", "viewer.css", "qrcode.js"] {
        let r = app
            .http
            .get(format!("{}/shl/view/{asset}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut chromedriver = tokio::process::Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromedriver (Debian package chromium-driver) must be installed");
    let base = format!("http://127.0.0.1:{port}");
    platform::tls::ensure_crypto_provider();
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
        "goog:loggingPrefs": { "browser": "ALL" },
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
    let v: Value = http
        .post(format!("{base}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = v["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {v}"))
        .to_owned();
    let d = Driver {
        http: http.clone(),
        base: base.clone(),
        session,
    };

    d.cmd(
        reqwest::Method::POST,
        "/url",
        Some(json!({ "url": viewer_link })),
    )
    .await;
    let input = poll(&d, "passcode field", || {
        d.find("#passcode-form:not([hidden]) #passcode")
    })
    .await;
    // A wrong passcode first: the page says how many attempts are left.
    let typed = d
        .cmd(
            reqwest::Method::POST,
            &format!("/element/{input}/value"),
            Some(json!({ "text": "1111" })),
        )
        .await;
    assert!(typed.is_null(), "typing failed: {typed}");
    let button = d.find("#open").await.unwrap();
    let clicked = d
        .cmd(
            reqwest::Method::POST,
            &format!("/element/{button}/click"),
            Some(json!({})),
        )
        .await;
    assert!(clicked.is_null(), "click failed: {clicked}");
    let error = poll(&d, "wrong-passcode message", || async {
        let e = d.find("#passcode-error").await?;
        let t = d.text(&e).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(error, "Wrong passcode. 9 attempts left.");

    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{input}/value"),
        Some(json!({ "text": "2468" })),
    )
    .await;
    d.cmd(
        reqwest::Method::POST,
        &format!("/element/{button}/click"),
        Some(json!({})),
    )
    .await;
    let name = poll(&d, "patient name", || async {
        let e = d.find("#card:not([hidden]) #patient-name").await?;
        let t = d.text(&e).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(name, "John B. Anyperson");
    assert!(
        d.find("#qr svg path").await.is_some(),
        "the QR code is drawn as SVG"
    );
    let doses = d.find("#doses tbody").await.unwrap();
    let doses_text = d.text(&doses).await;
    assert!(
        doses_text.contains("2021-01-01") && doses_text.contains("2021-01-29"),
        "{doses_text}"
    );
    assert!(doses_text.contains("Moderna"), "{doses_text}");
    let download = d.find("#download").await.unwrap();
    let href = d
        .cmd(
            reqwest::Method::GET,
            &format!("/element/{download}/attribute/href"),
            None,
        )
        .await;
    assert!(href.as_str().unwrap().starts_with("blob:"), "{href}");

    let png = d.cmd(reqwest::Method::GET, "/screenshot", None).await;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png.as_str().unwrap())
        .unwrap();
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("viewer.png"), &png).unwrap();
    assert!(png.starts_with(b"\x89PNG"));

    // The QR on screen decodes to exactly the spec's numeric QR text for this card.
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let (w, h) = img.dimensions();
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
            img.get_pixel(x as u32, y as u32).0[0]
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the page");
    let (_, content) = grids[0].decode().unwrap();
    let expected = std::fs::read_to_string(
        crate::helpers::conformance()
            .join("shc-examples/spec-site/example-00-f-qr-code-numeric-value-0.txt"),
    )
    .unwrap();
    assert_eq!(content, expected.trim());

    // A `U` link (no passcode, no manifest) opens straight away.
    let r = app
        .http
        .post(format!("{}/credentials/{}/shl", app.base, s.credential_id))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "direct_file": true }))
        .send()
        .await
        .unwrap();
    let direct_link = r.json::<Value>().await.unwrap()["viewer_link"]
        .as_str()
        .unwrap()
        .to_owned();
    d.cmd(
        reqwest::Method::POST,
        "/url",
        Some(json!({ "url": direct_link })),
    )
    .await;
    let name = poll(&d, "patient name (U link)", || async {
        let e = d.find("#card:not([hidden]) #patient-name").await?;
        let t = d.text(&e).await;
        (!t.is_empty()).then_some(t)
    })
    .await;
    assert_eq!(name, "John B. Anyperson");

    let _ = http
        .delete(format!("{base}/session/{}", d.session))
        .send()
        .await;
    let _ = chromedriver.kill().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), chromedriver.wait()).await;
}
