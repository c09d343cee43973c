//! A real headless Chromium (Debian's `chromium` + `chromedriver`) walks the launch: EHR launch
//! URL → the EHR's consent page → doses page → "Issue card now" → the QR on the screen, read back
//! from a screenshot, decodes to a card that verifies. Screenshots of the doses page and the QR
//! page are saved to `target/screenshots/` for people to look at; "Print (PDF)" answers a PDF.
//!
//! Driven over chromedriver's W3C WebDriver HTTP API with reqwest (no extra crate: six calls).

use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::helpers::{spawn, Options};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver {
    child: tokio::process::Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing (apt-get install chromium)"
        );
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists(),
            "{CHROMEDRIVER} is missing (apt-get install chromium-driver)"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .kill_on_drop(true)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        platform::tls::ensure_crypto_provider();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                let v: Value = r.json().await.unwrap_or_default();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not become ready"
            );
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-component-update", "--disable-sync",
                         "--window-size=1100,1400", "--hide-scrollbars",
                         format!("--user-data-dir={}", profile.path().display())]
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
        Driver {
            child,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{}", self.base, self.session, path);
        let req = self.http.request(method.clone(), url);
        let req = if method == reqwest::Method::GET {
            req
        } else {
            req.json(&body)
        };
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let el = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = el
            .as_object()
            .unwrap()
            .values()
            .next()
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", json!({}))
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Waits (bounded) until the page's URL ends with `suffix`.
    async fn wait_for_path(&self, suffix: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let url = self.current_url().await;
            if url.split('?').next().unwrap_or("").ends_with(suffix) {
                return;
            }
            assert!(Instant::now() < deadline, "stuck on {url}, wanted {suffix}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> Vec<u8> {
        let v = self
            .cmd(reqwest::Method::GET, "/screenshot", json!({}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), &png).unwrap();
        png
    }

    async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.child.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_walks_the_launch_and_scans_the_card_from_the_screen() {
    let app = spawn(Options::default()).await;
    let driver = Driver::start().await;

    driver.goto(&app.launch_url()).await;
    driver.wait_for_path("/auth/authorize").await;
    assert!(driver.source().await.contains("Allow vaxcred"));
    driver.click("#allow").await;
    driver.wait_for_path("/launch/patient").await;
    let doses = driver.source().await;
    assert!(doses.contains("Johnny Q. Anyperson"), "{doses}");
    driver.screenshot("launch-doses.png").await;

    driver.click("#issue").await;
    driver.wait_for_path("/launch/card").await;
    let png = driver.screenshot("launch-qr.png").await;
    // The QR as the patient's phone sees it: decoded from the screenshot, then verified.
    let scanned = shc::qr::scan_image(&png).unwrap();
    let texts: Vec<&str> = scanned.iter().filter_map(|s| s.text.as_deref()).collect();
    assert_eq!(texts.len(), 1, "one QR on the page");
    let verification = app.verifier().verify_qr_texts(&texts);
    assert!(
        verification.is_valid(),
        "{:?}",
        verification.all_problems().collect::<Vec<_>>()
    );

    // "Print (PDF)": the page's own print form, posted with the browser's session cookie and
    // the page's CSRF token (the page's CSP forbids scripts, so the POST goes from here).
    let cookies = driver.cmd(reqwest::Method::GET, "/cookie", json!({})).await;
    let session = cookies
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == launch::session::COOKIE_NAME)
        .expect("the browser holds the session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["secure"], true);
    assert_eq!(session["sameSite"], "Lax");
    let page = driver.source().await;
    assert!(page.contains("action=\"/launch/print\""));
    let csrf = crate::helpers::csrf_of(&page);
    platform::tls::ensure_crypto_provider();
    let pdf = reqwest::Client::new()
        .post(format!("{}/launch/print", app.base))
        .header(
            "cookie",
            format!(
                "{}={}",
                launch::session::COOKIE_NAME,
                session["value"].as_str().unwrap()
            ),
        )
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));

    driver.quit().await;
}
