//! What the doses page shows: the patient's name and birth date, and every Immunization the EHR
//! holds with whether it goes on the card and, if not, why — in plain words a nurse understands,
//! mapped from `shared/model`'s typed reasons.
//!
//! Each Immunization is normalized on its own, so every row on the page is one EHR record and its
//! reason cannot be attributed to the wrong dose; the events are then applied together in a
//! [`model::DoseSet`] for the card.

use model::{DoseEvent, DoseSet, FetchedPatient, HumanName, Outcome, Patient, Reject, ValueSets};
use serde_json::{json, Value};

use crate::error::{LaunchError, Result};
use crate::fhir::PatientRecord;

/// One row of the doses table.
#[derive(Debug, Clone)]
pub struct DoseRow {
    /// Date as the EHR gave it (`YYYY-MM-DD` or partial), or empty.
    pub date: String,
    /// Vaccine as the EHR names it (text or first coding display), or the code.
    pub vaccine: String,
    /// Lot number, if any.
    pub lot: Option<String>,
    /// Whether this dose goes on the card.
    pub on_card: bool,
    /// Why not, in plain words.
    pub reason: Option<String>,
}

/// The patient and their doses, ready for the page and the card.
#[derive(Debug, Clone)]
pub struct RecordView {
    /// The normalized patient (name, birth date, contacts).
    pub patient: Patient,
    /// One row per Immunization.
    pub rows: Vec<DoseRow>,
    /// The doses the card will hold (one disease group).
    pub card_doses: Vec<model::Dose>,
    /// The card's disease group label (`COVID-19`), when there are doses.
    pub group_label: Option<String>,
    /// The whole record as the model sees it (every dose event), for issuing.
    pub normalized: model::Normalized,
}

impl RecordView {
    /// The patient's name as one line.
    pub fn display_name(&self) -> String {
        name_line(&self.patient.name)
    }

    /// Phone numbers from `Patient.telecom` (mobile first).
    pub fn phones(&self) -> Vec<String> {
        let mut phones: Vec<&model::ContactPoint> = self
            .patient
            .contacts
            .iter()
            .filter(|c| c.kind == model::ContactKind::Phone)
            .collect();
        phones.sort_by_key(|c| c.use_.as_deref() != Some("mobile"));
        phones.into_iter().map(|c| c.value.clone()).collect()
    }
}

/// A name as one line: given names then family, or the text.
pub fn name_line(name: &HumanName) -> String {
    match name {
        HumanName::Parts {
            family,
            given,
            suffix,
        } => {
            let mut parts: Vec<&str> = given.iter().map(String::as_str).collect();
            parts.push(family);
            parts.extend(suffix.iter().map(String::as_str));
            parts.join(" ")
        }
        HumanName::Text { text } => text.clone(),
    }
}

/// Plain-words explanation of why an Immunization is not on the card.
pub fn plain_reason(reject: &Reject) -> String {
    let text = match reject.code() {
        "status-not-done" => "Recorded as not given",
        "status-invalid" => "The EHR does not mark this dose as completed",
        "vaccine-code-unknown" => "This vaccine is not one the card covers",
        "vaccine-code-unspecific" => {
            "The vaccine product is not specified (an \"unspecified formulation\" code)"
        }
        "vaccine-code-conflict" => "The record has conflicting vaccine codes",
        "occurrence-missing" => "No date of administration in the record",
        "occurrence-invalid" => "The date of administration is not a full, valid date",
        "patient-mismatch" | "patient-unresolved" | "multiple-patients" => {
            "The record points to a different patient"
        }
        other => return format!("This record cannot go on a card (reason code {other})"),
    };
    text.to_owned()
}

/// Normalizes the EHR's record into the page's view.
pub fn build_view(record: &PatientRecord) -> Result<RecordView> {
    let value_sets =
        ValueSets::builtin().map_err(|_| LaunchError::Internal("value sets do not load"))?;
    let fetched = FetchedPatient::from_value(record.patient.clone())
        .map_err(|r| LaunchError::PatientUnusable(r.code()))?;
    let patient_ref = record
        .patient
        .get("id")
        .and_then(Value::as_str)
        .map(|id| format!("Patient/{id}"))
        .ok_or(LaunchError::FhirInvalid("Patient has no id"))?;

    let mut patient: Option<Patient> = None;
    let mut doses = DoseSet::new();
    let mut events = Vec::new();
    let mut rows = Vec::new();
    let mut row_sources = Vec::new();
    for imm in &record.immunizations {
        let mut row = DoseRow {
            date: imm
                .get("occurrenceDateTime")
                .and_then(Value::as_str)
                .map(|d| d.get(..10).unwrap_or(d).to_owned())
                .unwrap_or_default(),
            vaccine: vaccine_label(imm),
            lot: imm
                .get("lotNumber")
                .and_then(Value::as_str)
                .map(str::to_owned),
            on_card: false,
            reason: None,
        };
        let outcome = normalize_one(imm, &fetched, value_sets);
        match outcome {
            Ok(n) => {
                patient.get_or_insert(n.patient);
                if let Some(skip) = n.skipped.first() {
                    row.reason = Some(plain_reason(&skip.reason));
                }
                for ev in n.events {
                    if let DoseEvent::Remove(_) = ev {
                        row.reason = Some("Marked \"entered in error\" in the EHR".to_owned());
                    }
                    row_sources.push((rows.len(), ev.source().clone()));
                    events.push(ev.clone());
                    doses.apply(ev);
                }
            }
            Err(reject) if is_patient_level(&reject) => {
                return Err(LaunchError::PatientUnusable(reject.code()))
            }
            Err(reject) => row.reason = Some(plain_reason(&reject)),
        }
        rows.push(row);
    }
    let patient = match patient {
        Some(p) => p,
        None => patient_only(&fetched, &patient_ref, value_sets)?,
    };

    let group = value_sets
        .groups()
        .iter()
        .find(|g| !doses.card_doses(&g.id).is_empty());
    let card_doses = group.map(|g| doses.card_doses(&g.id)).unwrap_or_default();
    for (i, source) in &row_sources {
        let Some(row) = rows.get_mut(*i) else {
            continue;
        };
        if card_doses.iter().any(|d| &d.source == source) {
            row.on_card = true;
            row.reason = None;
        } else if row.reason.is_none() {
            let active = doses.active().any(|d| &d.source == source);
            row.reason = Some(if active {
                "A different vaccine group; it goes on its own card".to_owned()
            } else {
                "Replaced by a newer version of the same record".to_owned()
            });
        }
    }
    Ok(RecordView {
        normalized: model::Normalized {
            patient: patient.clone(),
            events,
            skipped: Vec::new(),
        },
        patient,
        rows,
        card_doses,
        group_label: group.map(|g| g.label.clone()),
    })
}

fn is_patient_level(r: &Reject) -> bool {
    matches!(
        r.code(),
        "patient-name-missing" | "birth-date-missing" | "birth-date-invalid"
    )
}

fn normalize_one(
    imm: &Value,
    fetched: &FetchedPatient,
    value_sets: &ValueSets,
) -> std::result::Result<model::Normalized, Reject> {
    let bytes = serde_json::to_vec(imm).map_err(|_| Reject::NotFhirJson)?;
    let parsed = model::parse(&bytes)?;
    match model::normalize_with(&parsed, Some(fetched), value_sets)? {
        Outcome::Ready(n) => Ok(n),
        Outcome::PatientNeeded(_) => Err(Reject::PatientFetchRequired),
    }
}

/// The patient when they have no Immunization at all: normalize a `not-done` placeholder
/// Immunization that references them, so the name and birth date follow the model's rules
/// (which name is chosen, partial dates) exactly as for a patient with doses.
fn patient_only(
    fetched: &FetchedPatient,
    patient_ref: &str,
    value_sets: &ValueSets,
) -> Result<Patient> {
    let placeholder = json!({
        "resourceType": "Immunization",
        "status": "not-done",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "208"}]},
        "patient": {"reference": patient_ref},
        "occurrenceDateTime": "2021-01-01",
    });
    normalize_one(&placeholder, fetched, value_sets)
        .map(|n| n.patient)
        .map_err(|r| LaunchError::PatientUnusable(r.code()))
}

fn vaccine_label(imm: &Value) -> String {
    let code = imm.get("vaccineCode");
    let text = code.and_then(|c| c.get("text")).and_then(Value::as_str);
    let codings = code
        .and_then(|c| c.get("coding"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let display = codings
        .iter()
        .find_map(|c| c.get("display").and_then(Value::as_str));
    let first_code = codings
        .iter()
        .find_map(|c| c.get("code").and_then(Value::as_str))
        .map(|c| format!("code {c}"));
    text.or(display)
        .map(str::to_owned)
        .or(first_code)
        .unwrap_or_else(|| "Unknown vaccine".to_owned())
}
