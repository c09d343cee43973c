//! The SHL viewer: a static page, its script and style, and the vendored QR encoder, all
//! compiled into the binary and served by vaxcred (no CDN). The `shlink:/` payload — with the
//! key — lives in the URL fragment, which browsers never send, so the page fetches the manifest
//! and decrypts in the browser (WebCrypto AES-GCM, `DecompressionStream('deflate-raw')`).
//! A strict Content-Security-Policy keeps the page to its own scripts and to this origin.

use actix_web::http::header;
use actix_web::{web, HttpResponse};

const PAGE: &str = include_str!("../static/viewer.html");
const SCRIPT: &str = include_str!("../static/viewer.js");
const STYLE: &str = include_str!("../static/viewer.css");
/// qrcode-generator 2.0.4 by Kazuhiko Arase (MIT), unmodified; licence header inside.
const QRCODE: &str = include_str!("../static/vendor/qrcode.js");

const CSP: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn secured(mut b: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    b.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    b
}

/// `GET /shl/view`.
pub async fn page() -> HttpResponse {
    secured(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

/// `GET /shl/view/{asset}`.
pub async fn asset(path: web::Path<String>) -> HttpResponse {
    let (body, ctype) = match path.as_str() {
        "viewer.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "viewer.css" => (STYLE, "text/css; charset=utf-8"),
        "qrcode.js" => (QRCODE, "text/javascript; charset=utf-8"),
        _ => return HttpResponse::NotFound().finish(),
    };
    secured(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type(ctype)
        .body(body)
}
