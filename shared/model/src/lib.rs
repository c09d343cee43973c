//! vaxcred's credential model and FHIR R4 normalization (DESIGN.md §4).
//!
//! Hospitals send FHIR R4 `Immunization` resources in many shapes (bare, in transaction, batch,
//! collection, history, searchset or Subscriptions-Backport notification bundles; Patients
//! bundled, contained or only referenced; several codings; extensions). This crate turns them
//! into the model — a [`Patient`] and [`DoseEvent`]s with per-Immunization skip reasons — keeps a
//! patient's doses with the amendment rules ([`DoseSet`]), and builds the data-minimized card
//! bundle the SHC core signs ([`card_bundle`]). It depends on nothing else of ours.
//!
//! ```text
//! bytes ──parse──► Parsed ──normalize(+fetched Patient)──► Outcome::Ready(Normalized) | PatientNeeded
//!                                                              │ events
//!                                                              ▼
//!                                        DoseSet::apply ──► card_doses(group) ──card_bundle──► Value
//! ```
//!
//! # Layout
//! - `error.rs` — [`Reject`]: every rejection/skip reason with a stable `code()`.
//! - `date.rs` — [`FhirDate`]: partial dates, calendar validation.
//! - `model.rs` — the model types (all `Serialize`/`Deserialize`).
//! - `parse.rs` — [`parse`]: size limit, JSON, accepted resource and bundle types (and why not `fhir-sdk`).
//! - `normalize.rs` — [`normalize`]: patient resolution and identity, doses, lot/performer cleaning.
//! - `valuesets.rs` — [`ValueSets`]: disease groups from the data files in `valuesets/`.
//! - `doseset.rs` — [`DoseSet`]: amendments, replays, removals.
//! - `card.rs` — [`card_bundle`]: the minimized bundle, in the SHC examples' member order.
//! - `conformance.rs` — [`check_card_bundle`]: an independent DM-profile checker.

mod card;
mod conformance;
mod date;
mod doseset;
mod error;
mod model;
mod normalize;
mod parse;
mod valuesets;

pub use card::{card_bundle, CardOptions, MetaSecurity};
pub use conformance::{check_card_bundle, Violation};
pub use date::FhirDate;
pub use doseset::{compare_versions, Applied, DoseSet, NoOpReason, Record, RecordState};
pub use error::Reject;
pub use model::{
    ContactKind, ContactPoint, Dose, DoseEvent, HumanName, Identifier, Normalized, NotDone,
    Outcome, Patient, PatientNeeded, Removal, Skipped, SourceKey, SourceVersion, VaccineCode, CVX,
    IAL_SYSTEM, ICD11, ICD11_TERM, SNOMED,
};
pub use normalize::{
    clean_display, clean_lot, normalize, normalize_with, IAL_CODES, PERFORMER_MAX_CHARS,
};
pub use parse::{parse, parse_with_limit, FetchedPatient, InputKind, Parsed, DEFAULT_MAX_BYTES};
pub use valuesets::{canonical_system, CodeClass, DiseaseGroup, ValueSets};

/// FHIR in, card bundle out (the `vaxcred issue` path): parse, normalize, apply the events in
/// message order (so amendments and removals inside one history bundle count), and build the card
/// for the first configured disease group that has doses, without `meta` (as the SHC examples).
/// `patient` is a fetched Patient (or a search Bundle holding one), for messages that only
/// reference theirs.
pub fn card_bundle_from_fhir(
    bytes: &[u8],
    patient: Option<&[u8]>,
) -> Result<serde_json::Value, Reject> {
    let parsed = parse(bytes)?;
    let fetched = patient.map(FetchedPatient::parse).transpose()?;
    let normalized = match normalize(&parsed, fetched.as_ref())? {
        Outcome::Ready(n) => n,
        Outcome::PatientNeeded(_) => return Err(Reject::PatientFetchRequired),
    };
    let mut doses = DoseSet::new();
    for ev in normalized.events.iter().cloned() {
        doses.apply(ev);
    }
    let vs = ValueSets::builtin()?;
    let card = vs
        .groups()
        .iter()
        .map(|g| doses.card_doses(&g.id))
        .find(|d| !d.is_empty());
    match card {
        Some(card) => card_bundle(&normalized.patient, &card, &CardOptions::default()),
        // No dose: the first skip reason says why (e.g. `status-not-done`), else plain `no-doses`
        // (everything was withdrawn).
        None => Err(normalized
            .skipped
            .first()
            .map(|s| s.reason.clone())
            .unwrap_or(Reject::NoDoses)),
    }
}
