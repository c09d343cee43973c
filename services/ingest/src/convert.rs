//! The normalized model (one message) → the store's [`ApplyEvent`]: patient identifiers and
//! identity, and one [`NewDose`] per dose event.
//!
//! Identifiers: the Patient's business identifiers, plus its FHIR reference on the source server
//! (system = the source's FHIR base URL, or `urn:vaxcred:source:{name}` without one). Message-
//! local references (`urn:uuid:`, contained `#id`) are not identities. A Patient with neither
//! falls back to a demographic key (SHA-256 of name and birth date, system
//! [`DEMOGRAPHIC_SYSTEM`]): cards still get issued, and a later message with real identifiers
//! for the same person joins it only through review (possible duplicate).
//!
//! Versions: the store orders versions of one Immunization as integers. A numeric
//! `meta.versionId` is used as is; otherwise `meta.lastUpdated` as microseconds since 1970;
//! otherwise 0 (an unversioned re-send is a replay). A removal without any version uses the time
//! of receipt, so it wins over the unversioned dose it withdraws.

use model::{ContactKind, DoseEvent, HumanName, Normalized, SourceVersion};
use sha2::{Digest, Sha256};
use store::{ApplyEvent, ContactPoint, DoseStatus, Identifier, NewDose, PatientIdentity};

/// Identifier system of the demographic fallback key.
pub const DEMOGRAPHIC_SYSTEM: &str = "urn:vaxcred:demographics-sha256";

/// Builds the store change for one normalized message.
pub fn apply_event(
    event_id: &str,
    issuer_id: &str,
    source_name: Option<&str>,
    fhir_base: Option<&str>,
    n: &Normalized,
    received_micros: i64,
) -> ApplyEvent {
    let p = &n.patient;
    let mut identifiers: Vec<Identifier> = p
        .identifiers
        .iter()
        .filter(|i| !i.value.is_empty())
        .map(|i| Identifier {
            system: i.system.clone(),
            value: i.value.clone(),
        })
        .collect();
    if let Some(reference) = p.source_reference.as_deref() {
        if let Some((system, value)) = reference_identity(reference, source_name, fhir_base) {
            identifiers.push(Identifier { system, value });
        }
    }
    let identity = identity_of(p);
    if identifiers.is_empty() {
        let mut h = Sha256::new();
        h.update(serde_json::to_vec(&p.name).unwrap_or_default());
        h.update(b"|");
        h.update(p.birth_date.to_string().as_bytes());
        identifiers.push(Identifier {
            system: DEMOGRAPHIC_SYSTEM.to_owned(),
            value: hex::encode(h.finalize()),
        });
    }
    let doses = n
        .events
        .iter()
        .map(|e| new_dose(e, received_micros))
        .collect();
    ApplyEvent {
        event_id: event_id.to_owned(),
        issuer_id: issuer_id.to_owned(),
        identifiers,
        identity: Some(identity),
        doses,
    }
}

/// `Patient/123`, `{base}/Patient/123` → (base or source urn, `Patient/123`). Search references
/// and message-local ones have no stable identity.
fn reference_identity(
    reference: &str,
    source_name: Option<&str>,
    fhir_base: Option<&str>,
) -> Option<(String, String)> {
    if reference.starts_with("urn:") || reference.starts_with('#') || reference.contains('?') {
        return None;
    }
    let (base, relative) = match reference.find("/Patient/") {
        Some(i) if reference.starts_with("http") => {
            let (b, r) = reference.split_at(i);
            (Some(b.to_owned()), r.trim_start_matches('/').to_owned())
        }
        _ => (None, reference.trim_start_matches('/').to_owned()),
    };
    if !relative.starts_with("Patient/") {
        return None;
    }
    // Drop a `/_history/n` suffix: the identity is the logical id.
    let relative = relative
        .split("/_history")
        .next()
        .unwrap_or_default()
        .to_owned();
    let system = base
        .or_else(|| fhir_base.map(|b| b.trim_end_matches('/').to_owned()))
        .unwrap_or_else(|| format!("urn:vaxcred:source:{}", source_name.unwrap_or("")));
    Some((system, relative))
}

fn identity_of(p: &model::Patient) -> PatientIdentity {
    let (family, given, text) = match &p.name {
        HumanName::Parts { family, given, .. } => (Some(family.clone()), given.clone(), None),
        HumanName::Text { text } => (None, Vec::new(), Some(text.clone())),
    };
    PatientIdentity {
        family,
        given,
        text,
        birth_date: Some(p.birth_date.to_string()),
        telecom: p
            .contacts
            .iter()
            .map(|c| ContactPoint {
                system: match c.kind {
                    ContactKind::Phone => "phone".to_owned(),
                    ContactKind::Email => "email".to_owned(),
                },
                value: c.value.clone(),
            })
            .collect(),
    }
}

/// The integer version of a source version (see the module docs).
pub fn version_number(v: &SourceVersion) -> Option<i64> {
    if let Some(n) = v.version_id.as_deref().and_then(|s| s.parse::<i64>().ok()) {
        return Some(n);
    }
    v.last_updated
        .as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.timestamp_micros())
}

fn new_dose(e: &DoseEvent, received_micros: i64) -> NewDose {
    match e {
        DoseEvent::Upsert(d) => NewDose {
            source_system: d.source.system.clone(),
            source_id: d.source.id.clone(),
            version: version_number(&d.version).unwrap_or(0),
            status: DoseStatus::Completed,
            vaccine_system: d.vaccine.system.clone(),
            vaccine_code: d.vaccine.code.clone(),
            occurrence: Some(d.occurrence.to_string()),
            lot_number: d.lot_number.clone(),
            performer: d.performer.clone(),
            is_subpotent: d.is_subpotent,
            disease: d.disease.clone(),
        },
        DoseEvent::NotDone(x) => NewDose {
            source_system: x.source.system.clone(),
            source_id: x.source.id.clone(),
            version: version_number(&x.version).unwrap_or(0),
            status: DoseStatus::NotDone,
            vaccine_system: x
                .vaccine
                .as_ref()
                .map(|v| v.system.clone())
                .unwrap_or_default(),
            vaccine_code: x
                .vaccine
                .as_ref()
                .map(|v| v.code.clone())
                .unwrap_or_default(),
            occurrence: None,
            lot_number: None,
            performer: None,
            is_subpotent: false,
            disease: String::new(),
        },
        DoseEvent::Remove(r) => NewDose {
            source_system: r.source.system.clone(),
            source_id: r.source.id.clone(),
            version: version_number(&r.version).unwrap_or(received_micros),
            status: DoseStatus::EnteredInError,
            vaccine_system: String::new(),
            vaccine_code: String::new(),
            occurrence: None,
            lot_number: None,
            performer: None,
            is_subpotent: false,
            disease: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_prefer_numeric_ids_then_timestamps() {
        let v = |id: Option<&str>, lu: Option<&str>| SourceVersion {
            version_id: id.map(str::to_owned),
            last_updated: lu.map(str::to_owned),
        };
        assert_eq!(version_number(&v(Some("3"), None)), Some(3));
        assert_eq!(
            version_number(&v(Some("abc"), Some("1970-01-01T00:00:01Z"))),
            Some(1_000_000)
        );
        assert_eq!(version_number(&v(None, None)), None);
    }

    #[test]
    fn references_become_identifiers_on_their_server() {
        assert_eq!(
            reference_identity("Patient/9", Some("a"), Some("http://ehr/fhir/")),
            Some(("http://ehr/fhir".into(), "Patient/9".into()))
        );
        assert_eq!(
            reference_identity("http://x/fhir/Patient/9/_history/2", None, None),
            Some(("http://x/fhir".into(), "Patient/9".into()))
        );
        assert_eq!(reference_identity("urn:uuid:1", None, None), None);
        assert_eq!(
            reference_identity("Patient/9", Some("s"), None).unwrap().0,
            "urn:vaxcred:source:s"
        );
    }
}
