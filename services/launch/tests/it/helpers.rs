//! Fixtures: a database schema per test, the launch app on port 0 with a real file key store and
//! the default issuer, and a small "browser" (reqwest without redirects, one cookie jar by hand:
//! reqwest's jar does not send `Secure` cookies over http://127.0.0.1, Chromium does).

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::{App, HttpServer};
use launch::{ClientAuth, LaunchSettings, LaunchState, SigningActions};

use crate::mock_ehr::{MockEhr, CLIENT_ID};

pub const ISS: &str = "https://issuer.vaxcred.test";
/// The `rid` secret cards are signed with (as `vaxcred serve` passes the issue worker's).
pub const RID_SECRET: &str = "launch-test-rid-secret";

pub use testkit::TestDb;

pub struct TestApp {
    pub base: String,
    pub receivers: crate::receivers::Receivers,
    pub ehr: MockEhr,
    pub db: TestDb,
    pub issuer_id: String,
    pub keys: Arc<issuer::keystore::FileKeyStore>,
}

/// Options for [`spawn`].
#[derive(Default)]
pub struct Options {
    pub public_client: bool,
    /// Build the app with `LaunchState::from_config` from environment-style settings.
    pub from_config: bool,
}

pub async fn spawn(opts: Options) -> TestApp {
    let ehr = MockEhr::start().await;
    let db = TestDb::postgres().await;
    let issuer = issuer::issuers::ensure_default_issuer(&db.store, ISS, "Test issuer")
        .await
        .unwrap();
    let keys = Arc::new(
        issuer::keystore::FileKeyStore::open(
            &db.dir.path().join("keys"),
            &db.store,
            std::slice::from_ref(&issuer),
        )
        .await
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let client_auth = if opts.public_client {
        ehr.state.public_client.store(true, Ordering::SeqCst);
        ClientAuth::Public
    } else {
        *ehr.state.jwks_url.lock().unwrap() = Some(format!("{base}/launch/jwks.json"));
        ClientAuth::Confidential(Box::new(launch::crypto::ClientKey::generate()))
    };
    let settings = LaunchSettings::new(
        url::Url::parse(&base).unwrap(),
        vec![url::Url::parse(&ehr.state.fhir_base()).unwrap()],
        CLIENT_ID,
        client_auth,
    );
    // Delivery for real: its SMS gateway client and SSRF guard (loopback allow-listed for the
    // in-process receivers), wallet pushes with retries.
    let receivers = crate::receivers::Receivers::start().await;
    let mut delivery_settings = delivery::DeliverySettings::new(base.clone());
    delivery_settings.outbound_allowlist = vec!["127.0.0.1".to_owned()];
    delivery_settings.sms = Some(delivery::sms::SmsSettings {
        base_url: url::Url::parse(&receivers.base).unwrap(),
        account: "AC0001".to_owned(),
        token: platform::SecretString::from("test-token".to_owned()),
        from: "+15005550006".to_owned(),
    });
    let delivery_state = delivery::DeliveryState::new(db.store.clone(), delivery_settings).unwrap();
    let actions = Arc::new(
        SigningActions::new(keys.clone(), issuer.id.clone(), ISS, db.store.clone())
            .with_issuing(
                issuer::worker::IssueConfig {
                    rid_secret: Some(RID_SECRET.to_owned()),
                    ..issuer::worker::IssueConfig::default()
                },
                None,
            )
            .with_delivery(delivery_state),
    );
    let state = if opts.from_config {
        let data_dir = db.dir.path().join("data").display().to_string();
        let config = platform::Config::from_env_vars([
            ("VAXCRED_DATA_DIR", data_dir.as_str()),
            ("VAXCRED_HTTP__PUBLIC_BASE_URL", base.as_str()),
            (
                "VAXCRED_LAUNCH__EHR_ALLOWLIST",
                ehr.state.fhir_base().as_str(),
            ),
            ("VAXCRED_LAUNCH__CLIENT_ID", CLIENT_ID),
            ("VAXCRED_LAUNCH__PRINT_PAPER", "a4"),
        ])
        .unwrap();
        let _ = (settings, actions);
        let issuing = (
            issuer::worker::IssueConfig {
                rid_secret: Some(RID_SECRET.to_owned()),
                ..issuer::worker::IssueConfig::default()
            },
            None,
        );
        LaunchState::from_config(
            &config,
            db.store.clone(),
            keys.clone(),
            &issuer,
            issuing,
            None,
        )
        .unwrap()
        .expect("launch is configured")
    } else {
        LaunchState::new(settings, db.store.clone(), actions).unwrap()
    };
    let configure = launch::configure(state);
    let server = HttpServer::new(move || App::new().configure(configure.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    TestApp {
        base,
        receivers,
        ehr,
        db,
        issuer_id: issuer.id,
        keys,
    }
}

impl TestApp {
    pub fn launch_url(&self) -> String {
        let mut u = url::Url::parse(&format!("{}/launch", self.base)).unwrap();
        u.query_pairs_mut()
            .append_pair("iss", &self.ehr.state.fhir_base())
            .append_pair("launch", crate::mock_ehr::LAUNCH_ID);
        u.to_string()
    }

    /// A verifier trusting this app's issuer key.
    pub fn verifier(&self) -> shc::Verifier {
        use issuer::keystore::KeyStore as _;
        let jwks = self.keys.public_jwks(&self.issuer_id).unwrap();
        let mut trust = shc::TrustStore::new();
        trust.add_issuer(ISS, jwks);
        shc::Verifier::new(trust)
    }
}

/// A minimal browser: no automatic redirects, the session cookie kept by hand.
pub struct Browser {
    pub http: reqwest::Client,
    pub cookie: Option<String>,
    pub set_cookie_headers: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub content_type: String,
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: {
                platform::tls::ensure_crypto_provider();
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
            },
            cookie: None,
            set_cookie_headers: Vec::new(),
        }
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap().to_owned();
            if let Some(pair) = v.split(';').next() {
                if pair.starts_with(launch::session::COOKIE_NAME) {
                    self.cookie = Some(pair.to_owned());
                }
            }
            self.set_cookie_headers.push(v);
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = resp.bytes().await.unwrap().to_vec();
        Page {
            status,
            location,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            content_type,
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        let mut req = self.http.get(url);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let mut req = self.http.post(url).form(form);
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }
}

/// Resolves a `Location` against a base.
pub fn absolute(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

/// The value of `name="csrf"` in a page.
pub fn csrf_of(body: &str) -> String {
    let at = body.find("name=\"csrf\" value=\"").expect("a CSRF field");
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// The `href` of the consent page's "Allow" link.
pub fn allow_href(body: &str) -> String {
    let at = body.find("id=\"allow\" href=\"").expect("an Allow link");
    let rest = &body[at + "id=\"allow\" href=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Runs launch → authorize (consent) and returns the callback URL the EHR redirects to.
pub async fn authorize(app: &TestApp, browser: &mut Browser, launch_url: &str) -> String {
    let page = browser.get(launch_url).await;
    assert_eq!(page.status, 302, "{}", page.body);
    let authorize = page.location.unwrap();
    let consent = browser.get(&authorize).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    let approve = absolute(&app.ehr.state.base, &allow_href(&consent.body));
    let redirect = browser.get(&approve).await;
    assert_eq!(redirect.status, 302);
    redirect.location.unwrap()
}

/// A full launch ending on the doses page; returns that page.
pub async fn launch_to_doses(app: &TestApp, browser: &mut Browser) -> Page {
    let callback = authorize(app, browser, &app.launch_url()).await;
    let page = browser.get(&callback).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/launch/patient"));
    let doses = browser.get(&format!("{}/launch/patient", app.base)).await;
    assert_eq!(doses.status, 200, "{}", doses.body);
    doses
}
