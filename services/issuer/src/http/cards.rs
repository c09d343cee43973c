//! Card downloads for one credential (rules 39–42): the `.smart-health-card` file with
//! `Content-Type: application/smart-health-card`, the QR as PNG and SVG (SVG starting with
//! `<svg`, DESIGN §10), and the printable PDF ([`crate::pdf`]).
//!
//! A card is patient data: every download needs a caller allowed to read that patient's
//! immunizations (see [`super::auth`]), and answers `Cache-Control: no-store`. Only active and
//! superseded cards are served; held (under review) and revoked ones are not.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use platform::http::Problem;
use store::{Credential, CredentialFormat, CredentialStatus};

use super::auth::{authenticate, AuthError};
use super::{issuer_of, HttpState};
use crate::pdf::{self, Paper, PrintOptions};

/// Pixels per QR module of the PNG: ~700 px for a version-18 card, crisp on phones and print.
const PNG_SCALE: u32 = 7;

pub(super) fn auth_problem(e: AuthError) -> Problem {
    match e {
        AuthError::Missing | AuthError::Invalid => Problem::unauthorized(),
        AuthError::Unavailable => Problem::unavailable(e.code()),
    }
}

fn store_problem(e: &store::Error) -> Problem {
    if e.is_retryable() {
        Problem::unavailable(e.code())
    } else {
        Problem::internal(std::io::Error::other(e.code()))
    }
}

/// The credential `id` of the addressed issuer, if the caller may read it.
async fn readable(state: &HttpState, req: &HttpRequest, id: &str) -> Result<Credential, Problem> {
    let caller = authenticate(state, req).await.map_err(auth_problem)?;
    let issuer = issuer_of(state, req)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(Problem::not_found)?;
    let cred = state
        .store
        .get_credential(id)
        .await
        .map_err(|e| store_problem(&e))?
        .filter(|c| c.issuer_id == issuer.id && c.format == CredentialFormat::Shc)
        .ok_or_else(Problem::not_found)?;
    if !caller.may_read_immunizations_of(&cred.patient_id) {
        return Err(Problem::forbidden());
    }
    match cred.status {
        CredentialStatus::Active | CredentialStatus::Superseded => Ok(cred),
        // Gone for good, or not released yet: same answer, no hint which.
        CredentialStatus::Revoked | CredentialStatus::Held => Err(Problem::new(
            actix_web::http::StatusCode::GONE,
            "credential-unavailable",
            "This card is not available",
        )),
    }
}

fn id_param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// `GET {base}/credentials/{id}` and `{id}.smart-health-card`: the card file.
pub async fn file(state: web::Data<HttpState>, req: HttpRequest) -> Result<HttpResponse, Problem> {
    let raw = id_param(&req, "file");
    let id = raw.strip_suffix(".smart-health-card").unwrap_or(&raw);
    let cred = readable(&state, &req, id).await?;
    let body = shc::file::HealthCardFile::single(cred.artefact).to_json();
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, shc::FILE_CONTENT_TYPE))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.smart-health-card\"", cred.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

fn qr_of(cred: &Credential) -> Result<qrcodegen::QrCode, Problem> {
    let text = shc::qr::numeric_text(&cred.artefact)
        .map_err(|_| Problem::internal(std::io::Error::other("stored card is not a JWS")))?;
    shc::qr::matrix(&text).map_err(|_| {
        Problem::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "card-too-large-for-qr",
            "This card is too large for a QR code; download the file instead",
        )
    })
}

/// `GET {base}/credentials/{id}/qr.png`
pub async fn qr_png(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let cred = readable(&state, &req, &id_param(&req, "id")).await?;
    let code = qr_of(&cred)?;
    let png = shc::qr::to_png(&code, PNG_SCALE)
        .map_err(|_| Problem::internal(std::io::Error::other("QR PNG rendering failed")))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/png"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(png))
}

/// `GET {base}/credentials/{id}/qr.svg`
pub async fn qr_svg(
    state: web::Data<HttpState>,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let cred = readable(&state, &req, &id_param(&req, "id")).await?;
    let code = qr_of(&cred)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "image/svg+xml"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(shc::qr::to_svg(&code)))
}

/// Query of the PDF route.
#[derive(Debug, serde::Deserialize)]
pub struct PdfQuery {
    /// `a4` (default) or `letter`.
    paper: Option<String>,
}

/// `GET {base}/credentials/{id}/card.pdf?paper=a4|letter`
pub async fn pdf(
    state: web::Data<HttpState>,
    req: HttpRequest,
    query: web::Query<PdfQuery>,
) -> Result<HttpResponse, Problem> {
    let paper = match query.paper.as_deref() {
        None => Paper::A4,
        Some(p) => Paper::parse(p).ok_or_else(|| {
            Problem::bad_request("paper-unknown", "paper must be `a4` or `letter`")
        })?,
    };
    let cred = readable(&state, &req, &id_param(&req, "id")).await?;
    let issuer = state
        .store
        .get_issuer(&cred.issuer_id)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(Problem::not_found)?;
    let opts = PrintOptions {
        issuer_name: &issuer.display_name,
        iss: &issuer.iss,
        paper,
    };
    let bytes = pdf::render(&cred.artefact, &opts).map_err(|e| match e {
        pdf::PdfError::TooLargeForQr => Problem::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            "This card is too large for a QR code; download the file instead",
        ),
        pdf::PdfError::Unreadable => Problem::internal(e),
    })?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/pdf"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"vaccination-card-{}.pdf\"", cred.id),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(bytes))
}
