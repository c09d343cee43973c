//! In-process receivers for what delivery sends: a Twilio-compatible SMS gateway
//! (`POST /2010-04-01/Accounts/{account}/Messages.json`, form body, JSON receipt) and a wallet
//! webhook endpoint. Both record what they get.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

/// One wallet push: its headers and body.
pub type Push = (HashMap<String, String>, Vec<u8>);

#[derive(Default)]
pub struct Received {
    pub sms: Mutex<Vec<HashMap<String, String>>>,
    /// (headers, body) of wallet pushes.
    pub pushes: Mutex<Vec<Push>>,
}

pub struct Receivers {
    pub base: String,
    pub got: Arc<Received>,
}

impl Receivers {
    pub async fn start() -> Receivers {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got = Arc::new(Received::default());
        let data = web::Data::from(got.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route(
                    "/2010-04-01/Accounts/{account}/Messages.json",
                    web::post().to(sms),
                )
                .route("/hook", web::post().to(push))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Receivers { base, got }
    }

    /// Waits (bounded) until `check` holds.
    pub async fn wait_until(&self, what: &str, check: impl Fn(&Received) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !check(&self.got) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn sms(got: web::Data<Received>, form: web::Form<HashMap<String, String>>) -> HttpResponse {
    got.sms.lock().unwrap().push(form.0);
    HttpResponse::Created().json(serde_json::json!({"sid": "SM0001", "status": "queued"}))
}

async fn push(got: web::Data<Received>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    got.pushes.lock().unwrap().push((headers, body.to_vec()));
    HttpResponse::Ok().finish()
}
