//! The server-rendered pages (maud: every interpolation is escaped). Built for a clinician at the
//! point of care: the patient's name and birth date first, a table of doses with a plain yes/no
//! and reason, then large one-click actions. WCAG 2.1 AA basics: `lang`, one `h1`, a skip link,
//! labelled form controls, table headers with `scope`, visible focus, text contrast ≥ 7:1, status
//! conveyed in words not only colour. No scripts, no external assets.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::error::LaunchError;
use crate::record::RecordView;

const STYLE: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#111;background:#fff;font-size:18px;line-height:1.45}
header{background:#0b3d62;color:#fff;padding:.6rem 1.5rem;font-weight:600}
main{max-width:62rem;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.9rem;margin:.6rem 0 .2rem}
.dob{font-size:1.25rem;margin:0 0 1rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{border:1px solid #666;padding:.5rem .7rem;text-align:left;vertical-align:top}
td.date{white-space:nowrap}
th{background:#e8eef3}
.yes{color:#0a5a1f;font-weight:700}
.no{color:#8a1414;font-weight:700}
.actions{display:flex;flex-wrap:wrap;gap:1rem;margin:1.2rem 0}
button,.button{font-size:1.15rem;padding:.75rem 1.3rem;border:2px solid #0b3d62;border-radius:6px;background:#0b3d62;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#fff;color:#0b3d62}
button:disabled{background:#ccc;border-color:#888;color:#333;cursor:not-allowed}
:focus-visible{outline:4px solid #f5b400;outline-offset:2px}
label{display:block;font-weight:600;margin:.6rem 0 .2rem}
input[type=tel],input[type=url]{font-size:1.1rem;padding:.5rem;width:22rem;max-width:100%;border:2px solid #555;border-radius:4px}
.check label{display:inline;font-weight:400}
fieldset{border:1px solid #999;border-radius:6px;margin:1rem 0;padding:.5rem 1rem 1rem}
legend{font-weight:700;padding:0 .3rem}
.notice{border-left:6px solid #8a1414;background:#fbeaea;padding:.8rem 1rem;margin:1rem 0}
.ok{border-left:6px solid #0a5a1f;background:#e9f6ec;padding:.8rem 1rem;margin:1rem 0}
.qr{width:min(92vw,560px);height:auto;display:block;margin:1rem 0;border:1px solid #999}
.skip{position:absolute;left:-999px}.skip:focus{left:1rem;top:1rem;background:#fff;color:#000;padding:.5rem}
"#;

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " — vaxcred" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header { "vaxcred · vaccination card" }
                main #main { (body) }
            }
        }
    }
}

fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

fn patient_heading(view: &RecordView) -> Markup {
    html! {
        h1 #patient-name { (view.display_name()) }
        p.dob { "Born " strong #birth-date { (view.patient.birth_date.to_string()) } }
    }
}

/// The doses page: who, which doses go on the card and why not, and the "issue card" action.
pub fn doses_page(view: &RecordView, csrf: &str) -> Markup {
    let eligible = view.card_doses.len();
    layout(
        "Doses",
        html! {
            (patient_heading(view))
            h2 { "Vaccination records in the EHR" }
            @if view.rows.is_empty() {
                p.notice role="status" { "The EHR has no vaccination record for this patient, so there is nothing to put on a card." }
            } @else {
                table {
                    caption.skip { "Doses and whether each goes on the card" }
                    thead { tr {
                        th scope="col" { "Date" }
                        th scope="col" { "Vaccine" }
                        th scope="col" { "Lot" }
                        th scope="col" { "On the card?" }
                    } }
                    tbody {
                        @for row in &view.rows {
                            tr {
                                td.date { (row.date) }
                                td { (row.vaccine) }
                                td { (row.lot.as_deref().unwrap_or("—")) }
                                td {
                                    @if row.on_card { span.yes { "✔ Yes" } }
                                    @else {
                                        span.no { "✘ No" }
                                        @if let Some(reason) = &row.reason { " — " (reason) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if eligible == 0 {
                @if !view.rows.is_empty() {
                    p.notice role="status" { "None of these doses can go on a card, so no card can be issued. The reasons are in the table." }
                }
            } @else {
                p {
                    "The card will hold " strong { (eligible) " " (if eligible == 1 { "dose" } else { "doses" }) }
                    @if let Some(group) = &view.group_label { " (" (group) ")" } "."
                }
                form method="post" action="/launch/issue" {
                    (csrf_input(csrf))
                    div.actions { button #issue type="submit" { "Issue card now" } }
                }
            }
        },
    )
}

/// The card page: the QR large enough to scan from the screen, and the delivery actions.
pub fn card_page(view: &RecordView, qr_svg: &str, qr_text: &str, csrf: &str) -> Markup {
    let phone = view.phones().into_iter().next().unwrap_or_default();
    layout(
        "Card issued",
        html! {
            (patient_heading(view))
            p.ok role="status" { "Card issued with " (view.card_doses.len()) " "
                (if view.card_doses.len() == 1 { "dose" } else { "doses" }) ". The patient can scan this code with their phone's health wallet." }
            div #qr role="img" aria-label="QR code of the patient's SMART Health Card" {
                (PreEscaped(qr_svg.replacen("<svg ", "<svg class=\"qr\" aria-hidden=\"true\" ", 1)))
            }
            div.actions {
                form method="post" action="/launch/print" target="_blank" {
                    (csrf_input(csrf))
                    button #print type="submit" { "Print (PDF)" }
                }
                form method="post" action="/launch/download" {
                    (csrf_input(csrf))
                    button.secondary #download type="submit" { "Download .smart-health-card" }
                }
            }
            form method="post" action="/launch/sms" {
                (csrf_input(csrf))
                fieldset {
                    legend { "Send by text message" }
                    label for="phone" { "Patient's mobile number" }
                    input #phone type="tel" name="phone" autocomplete="off" required value=(phone);
                    div.check {
                        input #confirm type="checkbox" name="confirm" value="yes" required;
                        " "
                        label for="confirm" { "I read this number back to the patient and they confirmed it" }
                    }
                    div.actions { button #send-sms type="submit" { "Send text message" } }
                }
            }
            form method="post" action="/launch/wallet" {
                (csrf_input(csrf))
                fieldset {
                    legend { "Send to the patient's wallet app" }
                    label for="wallet-url" { "Wallet endpoint address (from the patient's app)" }
                    input #wallet-url type="url" name="url" autocomplete="off" required;
                    div.actions { button #register-wallet type="submit" { "Register wallet and send" } }
                }
            }
            details {
                summary { "Card as text (for copying into another system)" }
                label for="shc-text" { "SMART Health Card QR text" }
                textarea #shc-text readonly rows="4" cols="60" { (qr_text) }
            }
            p { a href="/launch/patient" { "Back to the doses" } }
        },
    )
}

/// A short confirmation after an action.
pub fn done_page(title: &str, message: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p.ok role="status" { (message) }
            p { a href="/launch/card" { "Back to the card" } }
        },
    )
}

/// After registering a wallet: the signing secret the wallet app needs, shown once.
pub fn wallet_page(signing_secret: &str) -> Markup {
    layout(
        "Wallet registered",
        html! {
            h1 { "Wallet registered" }
            p.ok role="status" { "The card is being sent to the patient's wallet app; future updates will go there too." }
            p { "If the patient's app asks for a signing secret, enter this once (it is not shown again):" }
            label for="secret" { "Signing secret" }
            input #secret type="text" readonly size="60" value=(signing_secret);
            p { a href="/launch/card" { "Back to the card" } }
        },
    )
}

/// The explanation page for an error: what happened and what to do.
pub fn error_page(err: &LaunchError) -> Markup {
    let (title, what, todo) = explain(err);
    layout(
        title,
        html! {
            h1 { (title) }
            div.notice role="alert" {
                p { (what) }
                p { (todo) }
            }
            p { small { "Reference code: " code { (err.code()) } } }
        },
    )
}

fn explain(err: &LaunchError) -> (&'static str, &'static str, &'static str) {
    use crate::actions::ActionError as A;
    match err {
        LaunchError::IssNotAllowed => ("This EHR is not connected", "vaxcred was opened from an EHR that is not on its list of connected systems.", "Ask your IT team to add this EHR to vaxcred's allowlist."),
        LaunchError::BadRequest(_) => ("The request was incomplete", "The link that opened vaxcred is missing information.", "Open vaxcred again from the patient's chart."),
        LaunchError::Discovery(_) => ("The EHR's sign-in settings are unusable", "vaxcred could not read the EHR's SMART sign-in settings.", "Try again later; if it keeps happening, tell your IT team."),
        LaunchError::EhrUnavailable { .. } => ("The EHR is not answering", "The EHR did not respond, or reported that it is temporarily unavailable.", "Wait a minute and open vaxcred again from the patient's chart."),
        LaunchError::NoSession => ("Your vaxcred session has ended", "There is no open vaxcred session in this browser (it expired or was never started).", "Open vaxcred again from the patient's chart."),
        LaunchError::StateMismatch => ("The sign-in could not be verified", "The answer from the EHR did not match the sign-in this browser started, so it was refused for safety.", "Open vaxcred again from the patient's chart."),
        LaunchError::AuthorizationDenied(_) => ("Access was not granted", "The EHR did not grant vaxcred access to this patient's record.", "Open vaxcred again and approve the access request, or ask your IT team."),
        LaunchError::TokenRejected { .. } => ("The EHR refused the sign-in", "The EHR did not accept vaxcred's sign-in.", "Open vaxcred again from the patient's chart; if it keeps happening, tell your IT team."),
        LaunchError::TokenExpired => ("Your EHR session expired", "The access the EHR granted has expired and could not be renewed.", "Open vaxcred again from the patient's chart."),
        LaunchError::NoPatientContext => ("No patient selected", "The EHR did not say which patient to show.", "Open vaxcred from within a patient's chart."),
        LaunchError::FhirInvalid(_) => ("The EHR sent an unexpected answer", "The patient's record could not be read from the EHR.", "Try again; if it keeps happening, tell your IT team."),
        LaunchError::PatientUnusable(_) => ("This patient's record is incomplete", "A card needs the patient's full name and date of birth, and the EHR record lacks one of them.", "Complete the patient's demographics in the EHR, then open vaxcred again."),
        LaunchError::NoEligibleDose => ("No dose can go on a card", "None of this patient's recorded doses can go on a card.", "Go back to the doses page to see why for each dose."),
        LaunchError::Csrf => ("The form expired", "The form was sent without this session's security token.", "Go back, reload the page and try again."),
        LaunchError::Action(A::NotAvailable(_)) => ("Not available here", "This action is not set up on this vaxcred server.", "Use another action (the QR code or the download), or ask your IT team."),
        LaunchError::Action(A::Invalid(_)) => ("Please check what you typed", "The phone number or address could not be used.", "Go back, correct it, and try again."),
        LaunchError::Action(A::HeldForReview) => ("Held for review", "This patient's identifiers match more than one person in vaxcred, so the card is held until a colleague checks them.", "No card was issued. The review team has been notified through the review queue."),
        LaunchError::Action(A::Card(_)) => ("The card could not be made", "These doses could not be put on a card.", "Tell your IT team the reference code below."),
        LaunchError::Action(_) => ("Temporarily unavailable", "The action did not go through.", "Try again in a minute."),
        LaunchError::Store(_) => ("vaxcred is having trouble", "vaxcred could not reach its database.", "Try again in a minute."),
        LaunchError::Internal(_) => ("Something went wrong", "vaxcred hit an unexpected problem.", "Try again; if it keeps happening, tell your IT team the reference code below."),
    }
}
