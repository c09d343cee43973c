//! The HTTP routes: EHR and standalone launch, the OAuth callback, the doses and card pages, the
//! actions, and the app's JWKS. Mounted by [`crate::configure`].
//!
//! | route | what |
//! | --- | --- |
//! | `GET /launch?iss&launch` | EHR launch: discovery, new session, redirect to authorize |
//! | `GET /launch/standalone?iss` | standalone launch (`launch/patient`) |
//! | `GET /launch/callback?code&state` | token exchange, then redirect to the doses page |
//! | `GET /launch/patient` | the doses page |
//! | `POST /launch/issue` | issue the card, then redirect to the card page |
//! | `GET /launch/card` | QR page with print / download / SMS / wallet |
//! | `POST /launch/{print,download,sms,wallet}` | the actions |
//! | `GET /launch/jwks.json` | the app's public key set (confidential client) |

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::Deserialize;

use crate::actions::ActionContext;
use crate::crypto::{random_token, same_secret, Pkce};
use crate::error::{LaunchError, Result};
use crate::fhir::fetch_record;
use crate::pages;
use crate::record::{build_view, RecordView};
use crate::session::{session_cookie, Phase, Session, SessionData, COOKIE_NAME};
use crate::settings::ClientAuth;
use crate::smart::{authorize_url, check_state, now_secs};
use crate::LaunchState;

/// Refresh this many seconds before the access token's stated expiry.
const EXPIRY_MARGIN_SECS: u64 = 30;

impl ResponseError for LaunchError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        use crate::actions::ActionError as A;
        use actix_web::http::StatusCode as S;
        match self {
            LaunchError::IssNotAllowed | LaunchError::Csrf => S::FORBIDDEN,
            LaunchError::AuthorizationDenied(_) => S::FORBIDDEN,
            LaunchError::BadRequest(_)
            | LaunchError::StateMismatch
            | LaunchError::NoPatientContext => S::BAD_REQUEST,
            LaunchError::NoSession | LaunchError::TokenExpired => S::UNAUTHORIZED,
            LaunchError::Discovery(_)
            | LaunchError::TokenRejected { .. }
            | LaunchError::FhirInvalid(_) => S::BAD_GATEWAY,
            LaunchError::EhrUnavailable { .. } | LaunchError::Store(_) => S::SERVICE_UNAVAILABLE,
            LaunchError::PatientUnusable(_) | LaunchError::NoEligibleDose => {
                S::UNPROCESSABLE_ENTITY
            }
            LaunchError::Action(A::NotAvailable(_)) => S::NOT_IMPLEMENTED,
            LaunchError::Action(A::Invalid(_)) => S::BAD_REQUEST,
            LaunchError::Action(A::Card(_)) | LaunchError::Action(A::HeldForReview) => {
                S::UNPROCESSABLE_ENTITY
            }
            LaunchError::Action(_) => S::SERVICE_UNAVAILABLE,
            LaunchError::Internal(_) => S::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        // Codes only: the Display text never holds PHI, but the code is all operators need.
        tracing::warn!(
            error.code = self.code(),
            retryable = self.is_retryable(),
            "launch request failed"
        );
        HttpResponse::build(self.status_code())
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(pages::error_page(self).into_string())
    }
}

fn html(markup: maud::Markup) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        // Pages hold patient data: never cache them, never frame them.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(markup.into_string())
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Query of the EHR launch.
#[derive(Debug, Deserialize)]
pub struct LaunchQuery {
    iss: Option<String>,
    launch: Option<String>,
}

async fn ehr_launch(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    q: web::Query<LaunchQuery>,
) -> Result<HttpResponse> {
    let iss = q.iss.as_deref().ok_or(LaunchError::BadRequest("iss"))?;
    let launch = q
        .launch
        .as_deref()
        .filter(|l| !l.is_empty())
        .ok_or(LaunchError::BadRequest("launch"))?;
    start(&state, &req, iss, Some(launch)).await
}

/// Query of the standalone launch.
#[derive(Debug, Deserialize)]
pub struct StandaloneQuery {
    iss: Option<String>,
}

async fn standalone_launch(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    q: web::Query<StandaloneQuery>,
) -> Result<HttpResponse> {
    let iss = match q.iss.as_deref() {
        Some(iss) => iss.to_owned(),
        None => state
            .settings
            .ehr_allowlist
            .first()
            .map(crate::settings::base)
            .ok_or(LaunchError::IssNotAllowed)?,
    };
    start(&state, &req, &iss, None).await
}

async fn start(
    state: &LaunchState,
    req: &HttpRequest,
    iss: &str,
    launch: Option<&str>,
) -> Result<HttpResponse> {
    // The allowlist is checked before any request leaves: an attacker's `iss` must not make us
    // fetch their URL (SSRF) or send them our client assertion.
    let iss = state
        .settings
        .allowed_iss(iss)
        .ok_or(LaunchError::IssNotAllowed)?;
    let config = state.client.discover(&iss).await?;
    let pkce = Pkce::generate();
    let oauth_state = random_token();
    let url = authorize_url(
        &config,
        &state.settings,
        &iss,
        launch,
        config.scopes(launch.is_none()),
        &oauth_state,
        &pkce.challenge,
    )?;
    // A new launch replaces whatever session this browser had (no fixation, no mixing patients).
    if let Some(old) = req.cookie(COOKIE_NAME) {
        state.sessions.delete(old.value()).await?;
    }
    // Expired sessions hold tokens: sweep them as launches come in (one indexed DELETE).
    let sessions = state.sessions.clone();
    tokio::spawn(async move {
        if let Err(e) = sessions.purge_expired().await {
            tracing::warn!(
                error.code = e.code(),
                "purging expired launch sessions failed"
            );
        }
    });
    let (cookie_value, _) = state
        .sessions
        .create(SessionData {
            phase: Phase::Authorizing,
            csrf: random_token(),
            iss,
            token_endpoint: config.token_endpoint,
            state: Some(oauth_state),
            code_verifier: Some(pkce.verifier),
            access_token: None,
            refresh_token: None,
            expires_at: 0,
            patient: None,
            fhir_user: None,
            card: None,
        })
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie(cookie_value, "/"))
        .finish())
}

/// Query of the OAuth callback.
#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse> {
    let mut session = load(&state, &req).await?;
    if session.data.phase != Phase::Authorizing {
        return Err(LaunchError::StateMismatch);
    }
    // The state and verifier are single-use whatever happens next, a mismatch included: a
    // forged callback ends this launch attempt rather than leaving it open to more guesses.
    let checked = check_state(session.data.state.as_deref(), q.state.as_deref());
    session.data.state = None;
    let verifier = session.data.code_verifier.take();
    state.sessions.save(&session).await?;
    checked?;
    if let Some(error) = &q.error {
        // OAuth error codes are ASCII tokens; keep only that so no free text reaches logs.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(40)
            .collect();
        return Err(LaunchError::AuthorizationDenied(code));
    }
    let code = q.code.as_deref().ok_or(LaunchError::BadRequest("code"))?;
    let verifier = verifier.ok_or(LaunchError::StateMismatch)?;
    let grant = state
        .client
        .exchange_code(
            &state.settings,
            &session.data.token_endpoint,
            code,
            &verifier,
        )
        .await?;
    let patient = grant.patient.clone().ok_or(LaunchError::NoPatientContext)?;
    session.data.phase = Phase::Active;
    session.data.access_token = Some(grant.access_token);
    session.data.refresh_token = grant.refresh_token;
    session.data.expires_at = grant.expires_at;
    session.data.patient = Some(patient);
    session.data.fhir_user = grant.fhir_user;
    // A fresh CSRF token once signed in.
    session.data.csrf = random_token();
    state.sessions.save(&session).await?;
    Ok(see_other("/launch/patient"))
}

async fn load(state: &LaunchState, req: &HttpRequest) -> Result<Session> {
    let cookie = req.cookie(COOKIE_NAME).ok_or(LaunchError::NoSession)?;
    state.sessions.load(cookie.value()).await
}

async fn load_active(state: &LaunchState, req: &HttpRequest) -> Result<Session> {
    let session = load(state, req).await?;
    if session.data.phase != Phase::Active {
        return Err(LaunchError::NoSession);
    }
    Ok(session)
}

/// Refreshes the access token when it is (about to be) expired, or when `force`.
async fn refresh_if_needed(state: &LaunchState, session: &mut Session, force: bool) -> Result<()> {
    if !force && session.data.expires_at > now_secs() + EXPIRY_MARGIN_SECS {
        return Ok(());
    }
    let refresh_token = session
        .data
        .refresh_token
        .clone()
        .ok_or(LaunchError::TokenExpired)?;
    let grant = match state
        .client
        .refresh(
            &state.settings,
            &session.data.token_endpoint,
            &refresh_token,
        )
        .await
    {
        Ok(g) => g,
        Err(LaunchError::TokenRejected { .. }) => return Err(LaunchError::TokenExpired),
        Err(e) => return Err(e),
    };
    session.data.access_token = Some(grant.access_token);
    // Servers may rotate the refresh token; keep the old one when they do not send a new one.
    if grant.refresh_token.is_some() {
        session.data.refresh_token = grant.refresh_token;
    }
    session.data.expires_at = grant.expires_at;
    state.sessions.save(session).await?;
    tracing::info!("launch access token refreshed");
    Ok(())
}

/// Reads the patient's record, refreshing the token first when due and once more on a 401.
async fn record_view(state: &LaunchState, session: &mut Session) -> Result<RecordView> {
    refresh_if_needed(state, session, false).await?;
    let patient = session
        .data
        .patient
        .clone()
        .ok_or(LaunchError::NoPatientContext)?;
    let mut retried = false;
    loop {
        let token = session
            .data
            .access_token
            .clone()
            .ok_or(LaunchError::TokenExpired)?;
        match fetch_record(state.client.http(), &session.data.iss, &patient, &token).await {
            Ok(record) => return build_view(&record),
            Err(LaunchError::TokenExpired) if !retried => {
                retried = true;
                refresh_if_needed(state, session, true).await?;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn patient_page(state: web::Data<LaunchState>, req: HttpRequest) -> Result<HttpResponse> {
    let mut session = load_active(&state, &req).await?;
    let view = record_view(&state, &mut session).await?;
    Ok(html(pages::doses_page(&view, &session.data.csrf)))
}

/// The fields of the action forms.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    phone: Option<String>,
    confirm: Option<String>,
    url: Option<String>,
}

fn check_csrf(session: &Session, form: &ActionForm) -> Result<()> {
    match form.csrf.as_deref() {
        Some(t) if same_secret(t, &session.data.csrf) => Ok(()),
        _ => Err(LaunchError::Csrf),
    }
}

fn context(session: &Session) -> ActionContext {
    ActionContext {
        clinician: session
            .data
            .fhir_user
            .clone()
            .unwrap_or_else(|| "unknown-clinician".to_owned()),
        ehr: session.data.iss.clone(),
        ehr_patient_id: session.data.patient.clone().unwrap_or_default(),
    }
}

async fn issue(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse> {
    let mut session = load_active(&state, &req).await?;
    check_csrf(&session, &form)?;
    let view = record_view(&state, &mut session).await?;
    if view.card_doses.is_empty() {
        return Err(LaunchError::NoEligibleDose);
    }
    let card = state
        .actions
        .issue(&context(&session), &view.normalized, &view.card_doses)
        .await?;
    session.data.card = Some(card);
    state.sessions.save(&session).await?;
    Ok(see_other("/launch/card"))
}

async fn card_page(state: web::Data<LaunchState>, req: HttpRequest) -> Result<HttpResponse> {
    let mut session = load_active(&state, &req).await?;
    let card = session
        .data
        .card
        .clone()
        .ok_or(LaunchError::NoEligibleDose)?;
    let view = record_view(&state, &mut session).await?;
    let matrix =
        shc::qr::matrix(&card.qr_text).map_err(|_| LaunchError::Internal("QR does not encode"))?;
    let svg = shc::qr::to_svg(&matrix);
    Ok(html(pages::card_page(
        &view,
        &svg,
        &card.qr_text,
        &session.data.csrf,
    )))
}

async fn session_with_card(
    state: &LaunchState,
    req: &HttpRequest,
    form: &ActionForm,
) -> Result<(Session, crate::actions::IssuedCard)> {
    let session = load_active(state, req).await?;
    check_csrf(&session, form)?;
    let card = session
        .data
        .card
        .clone()
        .ok_or(LaunchError::NoEligibleDose)?;
    Ok((session, card))
}

async fn print(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse> {
    let (mut session, card) = session_with_card(&state, &req, &form).await?;
    let view = record_view(&state, &mut session).await?;
    let pdf = state
        .actions
        .printable_pdf(&context(&session), &card, &view.patient)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/pdf"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "inline; filename=\"vaccination-card.pdf\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(pdf))
}

async fn download(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse> {
    let (_, card) = session_with_card(&state, &req, &form).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, shc::FILE_CONTENT_TYPE))
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"vaccination.smart-health-card\"",
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.actions.health_card_file(&card)))
}

async fn sms(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse> {
    let (session, card) = session_with_card(&state, &req, &form).await?;
    if form.confirm.as_deref() != Some("yes") {
        return Err(LaunchError::Action(crate::actions::ActionError::Invalid(
            "phone not confirmed",
        )));
    }
    let phone = form
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or(LaunchError::BadRequest("phone"))?;
    state
        .actions
        .send_sms(&context(&session), &card, phone)
        .await?;
    Ok(html(pages::done_page(
        "Text message sent",
        "The patient will receive a text message with a link to their card.",
    )))
}

async fn wallet(
    state: web::Data<LaunchState>,
    req: HttpRequest,
    form: web::Form<ActionForm>,
) -> Result<HttpResponse> {
    let (session, card) = session_with_card(&state, &req, &form).await?;
    let url = form
        .url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .ok_or(LaunchError::BadRequest("url"))?;
    let registered = state
        .actions
        .register_wallet(&context(&session), &card, url)
        .await?;
    Ok(html(pages::wallet_page(&registered.signing_secret)))
}

async fn jwks(state: web::Data<LaunchState>) -> HttpResponse {
    match &state.settings.client_auth {
        ClientAuth::Confidential(key) => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .body(key.jwks().to_string()),
        ClientAuth::Public => HttpResponse::NotFound().finish(),
    }
}

/// Registers every route on `cfg`, in a `/launch` scope whose form and query parsing errors are
/// explained pages too (the scope keeps these handlers away from other services' routes).
pub(crate) fn register(cfg: &mut web::ServiceConfig) {
    let form = web::FormConfig::default()
        .limit(16 * 1024)
        .error_handler(|_, _| LaunchError::BadRequest("form").into());
    let query =
        web::QueryConfig::default().error_handler(|_, _| LaunchError::BadRequest("query").into());
    cfg.service(
        web::scope("/launch")
            .app_data(form)
            .app_data(query)
            .route("", web::get().to(ehr_launch))
            .route("/standalone", web::get().to(standalone_launch))
            .route("/callback", web::get().to(callback))
            .route("/patient", web::get().to(patient_page))
            .route("/issue", web::post().to(issue))
            .route("/card", web::get().to(card_page))
            .route("/print", web::post().to(print))
            .route("/download", web::post().to(download))
            .route("/sms", web::post().to(sms))
            .route("/wallet", web::post().to(wallet))
            .route("/jwks.json", web::get().to(jwks)),
    );
}
