//! Why an input, an Immunization or a card request was refused: one typed reason with a stable code.
//!
//! The same enum serves as the whole-message rejection (`parse`/`normalize` return it) and as the
//! per-Immunization skip reason inside [`crate::Normalized`]. Messages never carry patient data:
//! no names, dates, identifiers' values, lot numbers or free text from the input — at most entry
//! indexes, element names and the (sanitised) `resourceType`/`Bundle.type` strings.

use serde::{Deserialize, Serialize};

/// A rejection or skip reason. [`Reject::code`] is stable and low-cardinality (DLQ header
/// `x-vaxcred-error`, metric label, OperationOutcome code); `Display` is the PHI-free human text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Reject {
    /// The input is larger than the configured limit (checked before parsing).
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input size in bytes.
        size: usize,
        /// Configured limit in bytes.
        limit: usize,
    },
    /// Not UTF-8 JSON, not an object, or no string `resourceType`.
    #[error("input is not a FHIR JSON resource")]
    NotFhirJson,
    /// A FHIR resource, but neither an `Immunization` nor a `Bundle` (or a Patient where a
    /// Patient was expected, and vice versa).
    #[error("resource type {found} is not accepted here")]
    WrongResourceType {
        /// The sanitised `resourceType` found.
        found: String,
    },
    /// A `Bundle` whose `type` is not transaction, batch, collection, history, searchset or
    /// subscription-notification.
    #[error("bundle type {found} is not accepted")]
    BundleTypeUnsupported {
        /// The sanitised `Bundle.type` found.
        found: String,
    },
    /// A valid bundle that holds no Immunization (e.g. a lab-result card, a DiagnosticReport).
    #[error("the input holds no Immunization")]
    NoImmunization,
    /// An Immunization without `patient` (neither reference nor identifier).
    #[error("Immunization (entry {entry}) has no patient reference")]
    PatientMissing {
        /// Bundle entry index (0 for a bare Immunization).
        entry: usize,
    },
    /// The patient reference points inside the message (contained `#id`, `urn:uuid:`) but
    /// nothing there matches it.
    #[error(
        "patient reference of Immunization (entry {entry}) does not resolve inside the message"
    )]
    PatientUnresolved {
        /// Bundle entry index.
        entry: usize,
    },
    /// The Patient supplied as fetched is not the one the Immunizations reference (ids differ).
    #[error("the supplied Patient is not the one the Immunization references")]
    PatientMismatch,
    /// The Patient is only referenced and must be fetched from the source first
    /// (see [`crate::Outcome::PatientNeeded`] for the reference itself).
    #[error("the Patient is only referenced and must be fetched first")]
    PatientFetchRequired,
    /// The Immunizations of one message belong to different patients.
    #[error("the message holds Immunizations for more than one patient")]
    MultiplePatients,
    /// The Patient has no usable name (family+given or text).
    #[error("the Patient has no usable name")]
    PatientNameMissing,
    /// The Patient has no birth date.
    #[error("the Patient has no birth date")]
    BirthDateMissing,
    /// The birth date is not a valid FHIR date (format or calendar, e.g. a 30th of February).
    #[error("the Patient's birth date is not a valid date")]
    BirthDateInvalid,
    /// `status` is `not-done`: the event is recorded, no dose is issued.
    #[error("Immunization (entry {entry}) has status not-done")]
    StatusNotDone {
        /// Bundle entry index.
        entry: usize,
    },
    /// `status` is missing or not one of the R4 codes.
    #[error("Immunization (entry {entry}) has a missing or unknown status")]
    StatusInvalid {
        /// Bundle entry index.
        entry: usize,
    },
    /// No CVX, SNOMED CT or ICD-11 code from a configured value set.
    #[error("Immunization (entry {entry}) has no vaccine code from a configured value set")]
    VaccineCodeUnknown {
        /// Bundle entry index.
        entry: usize,
    },
    /// The only known codes are too unspecific to check a schedule (CVX 213, 500; §M.70).
    #[error("Immunization (entry {entry}) has only an unspecific vaccine code")]
    VaccineCodeUnspecific {
        /// Bundle entry index.
        entry: usize,
    },
    /// Known codes of the Immunization point to different disease groups (§J.56: codes SHALL NOT contradict).
    #[error("Immunization (entry {entry}) has vaccine codes of different disease groups")]
    VaccineCodeConflict {
        /// Bundle entry index.
        entry: usize,
    },
    /// No `occurrenceDateTime`.
    #[error("Immunization (entry {entry}) has no occurrence date")]
    OccurrenceMissing {
        /// Bundle entry index.
        entry: usize,
    },
    /// `occurrenceDateTime` is not a valid date, or less precise than a day, or given as
    /// `occurrenceString`.
    #[error("Immunization (entry {entry}) has an invalid or imprecise occurrence date")]
    OccurrenceInvalid {
        /// Bundle entry index.
        entry: usize,
    },
    /// A card was requested without any dose.
    #[error("no dose to put on a card")]
    NoDoses,
    /// A card was requested with doses of more than one disease group (§L.69: one card per disease).
    #[error("doses of more than one disease group cannot share a card")]
    DiseaseGroupMixed,
    /// The value-set configuration is unreadable (a deployment fault, not an input fault).
    #[error("value-set configuration {file} is invalid")]
    ValueSetInvalid {
        /// The configuration file name.
        file: String,
    },
}

impl Reject {
    /// Stable kebab-case code, the same string as the serde tag.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too-large",
            Self::NotFhirJson => "not-fhir-json",
            Self::WrongResourceType { .. } => "wrong-resource-type",
            Self::BundleTypeUnsupported { .. } => "bundle-type-unsupported",
            Self::NoImmunization => "no-immunization",
            Self::PatientMissing { .. } => "patient-missing",
            Self::PatientUnresolved { .. } => "patient-unresolved",
            Self::PatientMismatch => "patient-mismatch",
            Self::PatientFetchRequired => "patient-fetch-required",
            Self::MultiplePatients => "multiple-patients",
            Self::PatientNameMissing => "patient-name-missing",
            Self::BirthDateMissing => "birth-date-missing",
            Self::BirthDateInvalid => "birth-date-invalid",
            Self::StatusNotDone { .. } => "status-not-done",
            Self::StatusInvalid { .. } => "status-invalid",
            Self::VaccineCodeUnknown { .. } => "vaccine-code-unknown",
            Self::VaccineCodeUnspecific { .. } => "vaccine-code-unspecific",
            Self::VaccineCodeConflict { .. } => "vaccine-code-conflict",
            Self::OccurrenceMissing { .. } => "occurrence-missing",
            Self::OccurrenceInvalid { .. } => "occurrence-invalid",
            Self::NoDoses => "no-doses",
            Self::DiseaseGroupMixed => "disease-group-mixed",
            Self::ValueSetInvalid { .. } => "value-set-invalid",
        }
    }

    /// Whether retrying the same input later can succeed. Normalization is a pure function of its
    /// input, so only [`Reject::PatientFetchRequired`] (fetch, then retry) qualifies.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::PatientFetchRequired)
    }

    /// `WrongResourceType` from untrusted text: only a short FHIR-name-shaped string is echoed.
    pub(crate) fn wrong_type(found: &str) -> Self {
        Self::WrongResourceType {
            found: sanitize_name(found),
        }
    }

    /// `BundleTypeUnsupported` from untrusted text.
    pub(crate) fn bundle_type(found: &str) -> Self {
        Self::BundleTypeUnsupported {
            found: sanitize_name(found),
        }
    }
}

/// Keeps a code-like string (letters, digits, `-`, up to 40 chars); anything else could be free
/// text typed by a person, so it is replaced.
fn sanitize_name(s: &str) -> String {
    let ok =
        !s.is_empty() && s.len() <= 40 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        s.to_owned()
    } else {
        "(unrecognised)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_matches_serde_tag() {
        let samples = [
            Reject::TooLarge { size: 2, limit: 1 },
            Reject::NotFhirJson,
            Reject::wrong_type("Observation"),
            Reject::VaccineCodeUnspecific { entry: 3 },
            Reject::PatientFetchRequired,
        ];
        for r in samples {
            let v = serde_json::to_value(&r).unwrap();
            assert_eq!(v["code"], r.code());
            let back: Reject = serde_json::from_value(v).unwrap();
            assert_eq!(back, r);
        }
    }

    #[test]
    fn untrusted_type_names_are_not_echoed() {
        let r = Reject::wrong_type("John Smith 1980-01-01");
        assert!(!r.to_string().contains("Smith"));
        assert_eq!(
            Reject::bundle_type("document").to_string(),
            "bundle type document is not accepted"
        );
    }
}
