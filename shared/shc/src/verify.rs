//! Verifying health cards (rule 51): from a `.smart-health-card` file, a compact JWS, `shc:/` QR
//! texts (single or the deprecated chunks, any order) or QR images.
//!
//! Keys come from a [`TrustStore`]: the JWKS of each trusted issuer, tied to its exact,
//! case-sensitive `iss` (spec-checklist §R.2), and the CRLs of keys that announce `crlVersion`.
//! Fetching them over HTTP is the caller's business (the CLI, a verifier service), so this stays
//! pure and testable. Every finding is a typed [`Problem`]; a card is valid when none is an error.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;

use crate::crl::Crl;
use crate::deflate::{inflate_raw, MAX_INFLATED};
use crate::error::{Problem, ProblemKind};
use crate::file::{parse_json_strict, HealthCardFile, EXTENSION};
use crate::keys::{verify_es256, Jwks};
use crate::payload::now_secs;
use crate::{check, jws, qr, MAX_SINGLE_QR_JWS};

/// Trusted issuers' keys and the revocation lists of those keys.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    issuers: HashMap<String, Jwks>,
    crls: HashMap<String, Crl>,
    crl_problems: HashMap<String, Vec<Problem>>,
}

impl TrustStore {
    /// An empty store: every card's issuer is unknown.
    pub fn new() -> Self {
        Self::default()
    }

    /// Trusts `jwks` for cards whose `iss` is exactly `iss`.
    pub fn add_issuer(&mut self, iss: impl Into<String>, jwks: Jwks) -> &mut Self {
        self.issuers.insert(iss.into(), jwks);
        self
    }

    /// Adds a CRL (keyed by its `kid`); defects found while parsing are reported with every card
    /// that needs it.
    pub fn add_crl(&mut self, crl: &Value) -> Result<&mut Self, Problem> {
        let (crl, problems) = Crl::parse(crl)?;
        self.crl_problems.insert(crl.kid.clone(), problems);
        self.crls.insert(crl.kid.clone(), crl);
        Ok(self)
    }

    /// The JWKS trusted for `iss`.
    pub fn jwks(&self, iss: &str) -> Option<&Jwks> {
        self.issuers.get(iss)
    }
}

/// What a card holds, for people to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CardContents {
    /// The patient's name as written (`given family`, or `text`).
    pub patient_name: Option<String>,
    /// Birth date as written (partial dates kept).
    pub birth_date: Option<String>,
    /// Immunizations in bundle order.
    pub immunizations: Vec<DoseSummary>,
    /// Entries that are neither the Patient nor Immunizations.
    pub other_entries: usize,
}

/// One immunization on a card.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DoseSummary {
    /// Code system of the first vaccine coding.
    pub system: Option<String>,
    /// Vaccine code.
    pub code: Option<String>,
    /// `occurrenceDateTime`.
    pub date: Option<String>,
    /// Lot number.
    pub lot_number: Option<String>,
    /// Who gave it.
    pub performer: Option<String>,
    /// Marked subpotent.
    pub subpotent: bool,
}

/// The verdict on one JWS.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardReport {
    /// The issuer (`iss`), when the payload could be read.
    pub issuer: Option<String>,
    /// The key (`kid` of the header).
    pub kid: Option<String>,
    /// Whether the signature verified with a trusted key.
    pub signature_verified: bool,
    /// Whether the card is on its issuer's revocation list.
    pub revoked: bool,
    /// The decoded payload.
    #[serde(skip)]
    pub payload: Option<Value>,
    /// What the card holds.
    pub contents: Option<CardContents>,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl CardReport {
    /// Valid: signature verified and no error-level problem.
    pub fn is_valid(&self) -> bool {
        self.signature_verified && !self.problems.iter().any(Problem::is_error)
    }

    /// Whether a problem of `kind` was found.
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.problems.iter().any(|p| p.kind == kind)
    }
}

/// The verdict on an artefact (file, QR set, image): problems of the container and one report per card.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verification {
    /// Problems of the artefact itself (QR form, file form).
    pub problems: Vec<Problem>,
    /// One report per JWS found.
    pub cards: Vec<CardReport>,
}

impl Verification {
    /// Valid: at least one card, every card valid, no error in the artefact.
    pub fn is_valid(&self) -> bool {
        !self.cards.is_empty()
            && self.cards.iter().all(CardReport::is_valid)
            && !self.problems.iter().any(Problem::is_error)
    }

    /// Every problem, the artefact's and the cards'.
    pub fn all_problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .chain(self.cards.iter().flat_map(|c| c.problems.iter()))
    }

    /// Whether any problem of `kind` was found.
    pub fn has(&self, kind: ProblemKind) -> bool {
        self.all_problems().any(|p| p.kind == kind)
    }

    fn failed(problem: Problem) -> Self {
        Verification {
            problems: vec![problem],
            cards: Vec::new(),
        }
    }
}

/// Verifies cards against a [`TrustStore`] at a point in time.
#[derive(Debug, Clone)]
pub struct Verifier {
    trust: TrustStore,
    now: Option<f64>,
    x5c_pki: bool,
}

impl Verifier {
    /// A verifier using the current time.
    pub fn new(trust: TrustStore) -> Self {
        Verifier {
            trust,
            now: None,
            x5c_pki: false,
        }
    }

    /// Verifies as if at `now` (seconds since the epoch), for tests and historical checks.
    pub fn at(mut self, now: f64) -> Self {
        self.now = Some(now);
        self
    }

    /// Also checks each key's `x5c` chain (rule 23): leaf matches the key, SAN URI equals `iss`,
    /// chain signatures and validity dates. Off by default: most verifiers trust issuers through
    /// a directory, and the spec's own example chain has expired (spec-checklist §R).
    pub fn with_x5c_pki(mut self) -> Self {
        self.x5c_pki = true;
        self
    }

    fn now(&self) -> f64 {
        self.now.unwrap_or_else(|| now_secs() as f64)
    }

    /// Verifies any artefact, recognised by its content: PNG/JPEG image, `shc:/` text, file JSON,
    /// or a compact JWS. `name` (a file name) is used for the extension check of files.
    pub fn verify_bytes(&self, bytes: &[u8], name: Option<&str>) -> Verification {
        if bytes.starts_with(&[0x89, b'P', b'N', b'G']) || bytes.starts_with(&[0xff, 0xd8, 0xff]) {
            return self.verify_qr_images(&[bytes]);
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Verification::failed(Problem::error(
                ProblemKind::JsonParse,
                "input is neither an image nor UTF-8 text",
            ));
        };
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        // `shc:` without the slash is still meant as a QR text: the QR decoder says what is wrong.
        if trimmed.starts_with("shc:") {
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            if lines.len() > 1 {
                return self.verify_qr_texts(&lines);
            }
            return self.verify_qr_texts(&[text]);
        }
        if trimmed.starts_with('{') {
            let is_parameters = serde_json::from_str::<Value>(trimmed)
                .ok()
                .is_some_and(|v| {
                    v.get("resourceType").and_then(Value::as_str) == Some("Parameters")
                });
            if is_parameters {
                return self.verify_fhir_parameters(text);
            }
            return self.verify_file(text, name);
        }
        let mut v = Verification::default();
        v.cards.push(self.verify_jws(text));
        v
    }

    /// Verifies a `.smart-health-card` file.
    pub fn verify_file(&self, text: &str, name: Option<&str>) -> Verification {
        let mut v = Verification::default();
        if let Some(name) = name {
            if !name.ends_with(&format!(".{EXTENSION}")) {
                v.problems.push(Problem::warning(
                    ProblemKind::InvalidFileExtension,
                    "file name should end with `.smart-health-card` (rule 39)",
                ));
            }
        }
        match HealthCardFile::parse(text) {
            Ok((file, problems)) => {
                v.problems.extend(problems);
                v.cards = file
                    .verifiable_credential
                    .iter()
                    .map(|j| self.verify_jws(j))
                    .collect();
            }
            Err(p) => v.problems.push(p),
        }
        v
    }

    /// Verifies the cards in a `$health-cards-issue` response, a FHIR `Parameters` with
    /// `verifiableCredential` parameters (rule 48).
    pub fn verify_fhir_parameters(&self, text: &str) -> Verification {
        let mut v = Verification::default();
        match parse_json_strict(text) {
            Ok((value, problems)) => {
                v.problems.extend(problems);
                let jws: Vec<&str> = value
                    .get("parameter")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|p| {
                        p.get("name").and_then(Value::as_str) == Some("verifiableCredential")
                    })
                    .filter_map(|p| p.get("valueString").and_then(Value::as_str))
                    .collect();
                if jws.is_empty() {
                    v.problems.push(Problem::error(
                        ProblemKind::Schema,
                        "Parameters holds no `verifiableCredential` (rule 48)",
                    ));
                }
                v.cards = jws.into_iter().map(|j| self.verify_jws(j)).collect();
            }
            Err(p) => v.problems.push(p),
        }
        v
    }

    /// Verifies `shc:/` QR texts: one, or the chunks of a chunked card in any order.
    pub fn verify_qr_texts(&self, texts: &[&str]) -> Verification {
        let (jws, problems) = qr::assemble(texts);
        let mut v = Verification {
            problems,
            cards: Vec::new(),
        };
        if let Some(jws) = jws {
            v.cards.push(self.verify_jws(&jws));
        }
        v
    }

    /// Verifies QR images (PNG or JPEG): one image, or one image per chunk.
    pub fn verify_qr_images(&self, images: &[&[u8]]) -> Verification {
        let mut problems = Vec::new();
        let mut texts = Vec::new();
        for image in images {
            match qr::scan_image(image) {
                Ok(scans) => {
                    for scan in scans {
                        problems.extend(scan.problems);
                        texts.extend(scan.text);
                    }
                }
                Err(p) => problems.push(p),
            }
        }
        if texts.is_empty() {
            if problems.is_empty() {
                problems.push(Problem::error(
                    ProblemKind::QrDecode,
                    "no QR code could be read",
                ));
            }
            return Verification {
                problems,
                cards: Vec::new(),
            };
        }
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let mut v = self.verify_qr_texts(&refs);
        problems.append(&mut v.problems);
        v.problems = problems;
        v
    }

    /// Verifies one compact JWS.
    pub fn verify_jws(&self, text: &str) -> CardReport {
        let mut report = CardReport::default();
        let (jws_text, trailing) = qr::split_trailing(text);
        report.problems.extend(trailing);
        let parsed = match jws::parse(jws_text) {
            Ok(p) => p,
            Err(p) => {
                report.problems.push(p);
                return report;
            }
        };
        report.kid = parsed.kid().map(str::to_owned);
        report.problems.extend(parsed.header_problems());
        if jws_text.len() > MAX_SINGLE_QR_JWS {
            report.problems.push(Problem::warning(
                ProblemKind::JwsTooLong,
                format!(
                    "JWS of {} characters does not fit one QR code (rule 36)",
                    jws_text.len()
                ),
            ));
        }
        let signature_ok_form = parsed.signature.len() == 64;
        if !signature_ok_form {
            report.problems.push(Problem::error(
                ProblemKind::SignatureFormat,
                format!(
                    "signature is {} bytes; ES256 needs the 64-byte R‖S form, not DER (rule 19)",
                    parsed.signature.len()
                ),
            ));
        }

        let payload_bytes = match inflate_raw(&parsed.payload, MAX_INFLATED) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                report.problems.push(Problem::error(
                    ProblemKind::Inflation,
                    "payload is not raw DEFLATE (uncompressed, or zlib/gzip-wrapped) (rule 18)",
                ));
                None
            }
        };
        if let Some(bytes) = payload_bytes {
            match std::str::from_utf8(&bytes) {
                Ok(text) => match parse_json_strict(text) {
                    Ok((value, problems)) => {
                        report.problems.extend(problems);
                        if value.is_object() {
                            report.issuer =
                                value.get("iss").and_then(Value::as_str).map(str::to_owned);
                            report
                                .problems
                                .extend(check::check_payload(&value, self.now()));
                            report.contents = Some(contents(&value));
                            report.payload = Some(value);
                        } else {
                            report.problems.push(Problem::error(
                                ProblemKind::JsonParse,
                                "payload is not a JSON object",
                            ));
                        }
                    }
                    Err(p) => report.problems.push(p),
                },
                Err(_) => report.problems.push(Problem::error(
                    ProblemKind::JsonParse,
                    "payload is not UTF-8",
                )),
            }
        }

        let Some(iss) = report.issuer.clone() else {
            return report;
        };
        let Some(jwks) = self.trust.jwks(&iss) else {
            report.problems.push(Problem::error(
                ProblemKind::IssuerUnknown,
                "no keys are known for this card's `iss` (rule 51)",
            ));
            return report;
        };
        let Some(kid) = report.kid.clone() else {
            return report;
        };
        let key = match jwks.find(&kid) {
            None => {
                report.problems.push(Problem::error(
                    ProblemKind::UnknownKid,
                    "the issuer's JWKS has no key with the card's `kid`",
                ));
                return report;
            }
            Some(Err(problems)) => {
                report.problems.extend(problems);
                return report;
            }
            Some(Ok(key)) => key,
        };
        report.problems.extend(key.problems.iter().cloned());
        if self.x5c_pki {
            report.problems.extend(crate::x5c::check_x5c(
                &key.jwk,
                Some(&iss),
                self.now() as i64,
            ));
        }
        if signature_ok_form {
            if verify_es256(&key.key, parsed.signing_input.as_bytes(), &parsed.signature) {
                report.signature_verified = true;
            } else {
                report.problems.push(Problem::error(
                    ProblemKind::SignatureInvalid,
                    "signature does not verify with the issuer's key",
                ));
            }
        }
        if let Some(version) = key.crl_version {
            self.check_revocation(&kid, version, &mut report);
        }
        report
    }

    fn check_revocation(&self, kid: &str, version: u64, report: &mut CardReport) {
        let Some(crl) = self.trust.crls.get(kid) else {
            report.problems.push(Problem::error(
                ProblemKind::Revocation,
                "the key announces `crlVersion` but its revocation list is not available (rule 32)",
            ));
            return;
        };
        if let Some(problems) = self.trust.crl_problems.get(kid) {
            report.problems.extend(problems.iter().cloned());
        }
        if crl.ctr != version {
            report.problems.push(Problem::error(
                ProblemKind::Revocation,
                format!(
                    "CRL `ctr` {} does not match the key's `crlVersion` {version} (rule 31)",
                    crl.ctr
                ),
            ));
        }
        let payload = report.payload.as_ref();
        let rid = payload
            .and_then(|p| p.get("vc"))
            .and_then(|vc| vc.get("rid"))
            .and_then(Value::as_str);
        let nbf = payload.and_then(|p| p.get("nbf")).and_then(Value::as_f64);
        if let (Some(rid), Some(nbf)) = (rid, nbf) {
            if crl.revokes(rid, nbf) {
                report.revoked = true;
                report.problems.push(Problem::error(
                    ProblemKind::Revoked,
                    "the card has been revoked by its issuer (rule 32)",
                ));
            }
        }
    }
}

/// Reads the human-relevant parts of a payload's bundle.
pub fn contents(payload: &Value) -> CardContents {
    let mut out = CardContents::default();
    let entries = payload
        .pointer("/vc/credentialSubject/fhirBundle/entry")
        .and_then(Value::as_array);
    for entry in entries.into_iter().flatten() {
        let Some(r) = entry.get("resource") else {
            continue;
        };
        let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        match r.get("resourceType").and_then(Value::as_str) {
            Some("Patient") if out.patient_name.is_none() => {
                let name = r.get("name").and_then(|n| n.get(0));
                out.patient_name = name.and_then(|n| {
                    let given: Vec<&str> = n
                        .get("given")
                        .and_then(Value::as_array)
                        .map(|g| g.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let family = n.get("family").and_then(Value::as_str);
                    match (given.is_empty(), family) {
                        (_, Some(f)) => Some(if given.is_empty() {
                            f.to_owned()
                        } else {
                            format!("{} {f}", given.join(" "))
                        }),
                        (false, None) => Some(given.join(" ")),
                        (true, None) => n.get("text").and_then(Value::as_str).map(str::to_owned),
                    }
                });
                out.birth_date = s(r.get("birthDate"));
            }
            Some("Immunization") => {
                let coding = r.pointer("/vaccineCode/coding/0");
                out.immunizations.push(DoseSummary {
                    system: s(coding.and_then(|c| c.get("system"))),
                    code: s(coding.and_then(|c| c.get("code"))),
                    date: s(r.get("occurrenceDateTime")),
                    lot_number: s(r.get("lotNumber")),
                    performer: s(r.pointer("/performer/0/actor/display")),
                    subpotent: r.get("isSubpotent") == Some(&Value::Bool(true)),
                });
            }
            _ => out.other_entries += 1,
        }
    }
    out
}
