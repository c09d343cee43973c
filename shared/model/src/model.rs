//! The credential model (DESIGN.md §4): patient identity, doses, dose events, and the result of
//! normalizing one FHIR message.
//!
//! Everything here is `Serialize`/`Deserialize`: the store persists it and the CLI prints it.
//! The store assigns the patient's stable internal id; this crate only reports what the source
//! said (identifiers per source system), which is what the store matches on.

use serde::{Deserialize, Serialize};

use crate::date::FhirDate;
use crate::error::Reject;

/// CVX code system (spec-checklist §J.56).
pub const CVX: &str = "http://hl7.org/fhir/sid/cvx";
/// SNOMED CT.
pub const SNOMED: &str = "http://snomed.info/sct";
/// ICD-11 MMS as fixed by the Vaccination IG — the URI cards carry (§M.71).
pub const ICD11: &str = "http://id.who.int/icd/release/11/mms";
/// ICD-11 MMS as written by terminology.smarthealth.cards — accepted on input only (§M.71).
pub const ICD11_TERM: &str = "http://id.who.int/icd11/mms";
/// The IAL code system of `meta.security` (§J.59).
pub const IAL_SYSTEM: &str = "https://smarthealth.cards/ial";

/// A patient's name: either structured (family and at least one given name) or text only —
/// the `vc-name-invariant` of §K.64, `(family and given) xor text`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HumanName {
    /// Family name and given names (in order), optional suffixes (`Jr.`, `III`).
    Parts {
        /// Family name.
        family: String,
        /// Given names, at least one.
        given: Vec<String>,
        /// Suffixes, possibly empty.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        suffix: Vec<String>,
    },
    /// The whole name as one text (mononyms, names the source only has as text).
    Text {
        /// The name text.
        text: String,
    },
}

/// A business identifier of the patient in one source system (MRN, enterprise id, …).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// Identifier system URI (may be empty when the source omitted it).
    pub system: String,
    /// Identifier value.
    pub value: String,
}

/// Kind of contact point kept for delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactKind {
    /// Telephone (`phone` or `sms`).
    Phone,
    /// E-mail address.
    Email,
}

/// A phone number or e-mail address, for delivery only — never put into a card (§K.66).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ContactPoint {
    /// Phone or email.
    pub kind: ContactKind,
    /// The value as the source wrote it, trimmed.
    pub value: String,
    /// FHIR `use` (`home`, `mobile`, `work`), when given.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "use")]
    pub use_: Option<String>,
}

/// The patient as the source describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    /// The source's reference for the Patient (`Patient/123`, a full URL, `urn:uuid:…`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_reference: Option<String>,
    /// Business identifiers per source system.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// The name chosen for the card.
    pub name: HumanName,
    /// Birth date, possibly partial.
    pub birth_date: FhirDate,
    /// Phone numbers and e-mail addresses, for delivery only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<ContactPoint>,
}

impl Patient {
    /// A patient with only what a card carries (name, birth date).
    pub fn new(name: HumanName, birth_date: FhirDate) -> Self {
        Self {
            source_reference: None,
            identifiers: Vec::new(),
            name,
            birth_date,
            contacts: Vec::new(),
        }
    }

    /// The card-relevant identity (name and birth date), for comparisons.
    pub fn identity(&self) -> (&HumanName, &FhirDate) {
        (&self.name, &self.birth_date)
    }
}

/// Identity of an Immunization in its source: the key amendments are matched on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourceKey {
    /// Namespace of `id`: a business-identifier system, the FHIR server base, or
    /// [`SourceKey::CONTENT_SYSTEM`] when the source gave no identity at all.
    pub system: String,
    /// Identifier value, logical id, or content hash.
    pub id: String,
}

impl SourceKey {
    /// System used when the Immunization carries no id or identifier: `id` is then a hash of the
    /// dose content, so replays are still no-ops (amendments cannot be recognised).
    pub const CONTENT_SYSTEM: &'static str = "urn:vaxcred:content-sha256";
    /// System used for a logical id whose server base is unknown (a bare resource, relative URLs).
    pub const LOGICAL_ID_SYSTEM: &'static str = "urn:vaxcred:fhir-logical-id";
}

/// Version of one Immunization event: `meta.versionId` and `meta.lastUpdated` as sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceVersion {
    /// `meta.versionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// `meta.lastUpdated`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

/// A vaccine code (system + code), with the card's system URIs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VaccineCode {
    /// Code system: [`CVX`], [`SNOMED`] or [`ICD11`].
    pub system: String,
    /// The code.
    pub code: String,
}

/// One administered dose, as it goes on a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dose {
    /// Source identity of the Immunization.
    pub source: SourceKey,
    /// Source version.
    #[serde(default)]
    pub version: SourceVersion,
    /// The single code put on the card (most specific of CVX, SNOMED CT, ICD-11).
    pub vaccine: VaccineCode,
    /// Disease group id from the value sets (`covid-19`, …).
    pub disease: String,
    /// Day of administration.
    pub occurrence: FhirDate,
    /// Lot number, cleaned (§J.57).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    /// Performing organisation's display (§J.58), at most 29 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// Whether the dose was subpotent (§J.60: cards carry only `true`).
    #[serde(default)]
    pub is_subpotent: bool,
    /// Identity assurance level from the source's `meta.security` (§J.59), when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ial: Option<String>,
}

/// A `not-done` Immunization: recorded for the patient's history, never issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotDone {
    /// Source identity of the Immunization.
    pub source: SourceKey,
    /// Source version.
    #[serde(default)]
    pub version: SourceVersion,
    /// The vaccine code, if a known one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vaccine: Option<VaccineCode>,
}

/// A dose that the source withdrew (`entered-in-error`, or a `DELETE` in a history/transaction bundle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    /// Source identity of the Immunization.
    pub source: SourceKey,
    /// Source version.
    #[serde(default)]
    pub version: SourceVersion,
}

/// What one Immunization in a message means for the patient's dose set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum DoseEvent {
    /// `completed`: add the dose, or replace an older version of it.
    Upsert(Dose),
    /// `not-done`: record, do not issue.
    NotDone(NotDone),
    /// `entered-in-error` or deleted: remove the dose.
    Remove(Removal),
}

impl DoseEvent {
    /// Source identity the event is about.
    pub fn source(&self) -> &SourceKey {
        match self {
            Self::Upsert(d) => &d.source,
            Self::NotDone(n) => &n.source,
            Self::Remove(r) => &r.source,
        }
    }

    /// Source version of the event.
    pub fn version(&self) -> &SourceVersion {
        match self {
            Self::Upsert(d) => &d.version,
            Self::NotDone(n) => &n.version,
            Self::Remove(r) => &r.version,
        }
    }
}

/// An Immunization that yields no dose, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// Bundle entry index (0 for a bare Immunization).
    pub entry: usize,
    /// Source identity, when it could be determined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceKey>,
    /// The typed reason (serialized with its `code`).
    pub reason: Reject,
    /// The reason's PHI-free text, for people reading CLI output.
    pub message: String,
}

/// The result of normalizing one message whose Patient is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    /// The patient.
    pub patient: Patient,
    /// Dose events in message order (apply them with [`crate::DoseSet::apply`]).
    pub events: Vec<DoseEvent>,
    /// Immunizations that yield no dose, with their reasons (includes `not-done`).
    pub skipped: Vec<Skipped>,
}

impl Normalized {
    /// Doses this message would put on a card (the `Upsert` events).
    pub fn doses(&self) -> impl Iterator<Item = &Dose> {
        self.events.iter().filter_map(|e| match e {
            DoseEvent::Upsert(d) => Some(d),
            _ => None,
        })
    }

    /// The reason to report when the message changes nothing at all (no event of any kind):
    /// the first skip reason. `None` when there is at least one event.
    pub fn sole_reject(&self) -> Option<&Reject> {
        if self.events.is_empty() {
            self.skipped.first().map(|s| &s.reason)
        } else {
            None
        }
    }
}

/// The Patient is only referenced: fetch it (e.g. `GET [base]/Patient/123`) and normalize again
/// with it supplied. The reference may be `Patient?identifier=system|value` when the source gave
/// only an identifier — it is patient data for logging purposes: keep it out of logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientNeeded {
    /// The reference as the Immunization gave it (relative, absolute, or a search).
    pub reference: String,
}

/// Result of [`crate::normalize`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// Patient known: the normalized model.
    Ready(Normalized),
    /// "patient must be fetched: <reference>".
    PatientNeeded(PatientNeeded),
}
