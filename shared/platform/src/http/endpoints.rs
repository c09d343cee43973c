//! The operational endpoints every service serves: liveness, readiness and Prometheus metrics.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpResponse};

use super::Problem;
use crate::health::Readiness;
use crate::metrics::Metrics;

/// Liveness: 200 while the process can answer at all.
pub const LIVE_PATH: &str = "/health/live";
/// Readiness: 200 only when every registered check passes, 503 otherwise.
pub const READY_PATH: &str = "/health/ready";
/// Prometheus text exposition.
pub const METRICS_PATH: &str = "/metrics";

/// Mounts the three endpoints with their state, for `App::configure`:
///
/// ```no_run
/// # use platform::{Readiness, Metrics};
/// # fn f(readiness: Readiness, metrics: Metrics) {
/// let app = actix_web::App::new().configure(platform::http::configure(readiness, metrics));
/// # }
/// ```
pub fn configure(
    readiness: Readiness,
    metrics: Metrics,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(readiness.clone()))
            .app_data(web::Data::new(metrics.clone()))
            .route(LIVE_PATH, web::get().to(live))
            .route(READY_PATH, web::get().to(ready))
            .route(METRICS_PATH, web::get().to(metrics_text));
    }
}

fn no_store() -> (header::HeaderName, HeaderValue) {
    (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(no_store())
        .json(serde_json::json!({ "status": "live" }))
}

async fn ready(readiness: web::Data<Readiness>) -> HttpResponse {
    let report = readiness.report().await;
    let mut resp = if report.ready {
        HttpResponse::Ok()
    } else {
        HttpResponse::ServiceUnavailable()
    };
    resp.insert_header(no_store()).json(report)
}

async fn metrics_text(metrics: web::Data<Metrics>) -> Result<HttpResponse, Problem> {
    let text = metrics.render().map_err(Problem::internal)?;
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        ))
        .insert_header(no_store())
        .body(text))
}
