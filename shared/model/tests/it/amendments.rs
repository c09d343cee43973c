//! Amendment rules (DESIGN.md §4): newer version replaces, replay is a no-op, older is stale,
//! entered-in-error removes, not-done is recorded but not issued.

use model::{Applied, DoseEvent, DoseSet, NoOpReason};
use serde_json::{json, Value};

use crate::helpers::{bytes, ready};

/// One Epic-like Immunization event with a version, status and lot.
fn event(version: &str, status: &str, lot: &str) -> DoseEvent {
    let v = json!({
        "resourceType": "Immunization",
        "id": "imm-1",
        "meta": { "versionId": version },
        "contained": [{ "resourceType": "Patient", "id": "p", "name": [{ "text": "A B" }], "birthDate": "1970" }],
        "status": status,
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "208" }] },
        "patient": { "reference": "#p" },
        "occurrenceDateTime": "2021-02-01",
        "lotNumber": lot
    });
    let mut n = ready(&bytes(&v), None);
    assert_eq!(n.events.len(), 1, "{n:?}");
    n.events.remove(0)
}

#[test]
fn newer_version_replaces_replay_and_older_are_no_ops() {
    let mut set = DoseSet::new();
    assert_eq!(set.apply(event("1", "completed", "AAA1")), Applied::Added);
    assert_eq!(
        set.apply(event("1", "completed", "AAA1")),
        Applied::NoOp(NoOpReason::Replay)
    );
    assert_eq!(
        set.apply(event("2", "completed", "BBB2")),
        Applied::Replaced
    );
    assert_eq!(
        set.card_doses("covid-19")[0].lot_number.as_deref(),
        Some("BBB2")
    );
    // A late delivery of version 1 does not win over version 2.
    assert_eq!(
        set.apply(event("1", "completed", "AAA1")),
        Applied::NoOp(NoOpReason::Stale)
    );
    // Version 10 > 9 numerically, not as text.
    assert_eq!(
        set.apply(event("10", "completed", "BBB2")),
        Applied::NoOp(NoOpReason::SameContent)
    );
    assert!(!Applied::NoOp(NoOpReason::SameContent).changes_card());
    assert_eq!(
        set.apply(event("9", "completed", "CCC3")),
        Applied::NoOp(NoOpReason::Stale)
    );
}

#[test]
fn entered_in_error_removes_and_old_versions_cannot_resurrect() {
    let mut set = DoseSet::new();
    set.apply(event("1", "completed", "AAA1"));
    let removal = event("2", "entered-in-error", "AAA1");
    assert!(matches!(removal, DoseEvent::Remove(_)));
    assert_eq!(set.apply(removal.clone()), Applied::Removed);
    assert!(set.card_doses("covid-19").is_empty());
    assert_eq!(set.apply(removal), Applied::NoOp(NoOpReason::Replay));
    assert_eq!(
        set.apply(event("1", "completed", "AAA1")),
        Applied::NoOp(NoOpReason::Stale)
    );
    // A corrected version 3 brings it back.
    assert_eq!(set.apply(event("3", "completed", "AAA1")), Applied::Added);
    // The set persists as JSON (the store keeps it).
    let back: DoseSet = serde_json::from_str(&serde_json::to_string(&set).unwrap()).unwrap();
    assert_eq!(back, set);
}

#[test]
fn not_done_is_recorded_not_issued() {
    let mut set = DoseSet::new();
    assert_eq!(set.apply(event("1", "not-done", "AAA1")), Applied::Recorded);
    assert!(set.card_doses("covid-19").is_empty());
    assert_eq!(set.records().len(), 1);
    // Amended to completed later: now a dose.
    assert_eq!(set.apply(event("2", "completed", "AAA1")), Applied::Added);
    // And back to not-done: the dose leaves the card.
    assert_eq!(set.apply(event("3", "not-done", "AAA1")), Applied::Removed);
}

#[test]
fn last_updated_orders_unversioned_events() {
    let mk = |ts: &str, lot: &str| {
        let mut e = event("1", "completed", lot);
        if let DoseEvent::Upsert(d) = &mut e {
            d.version.version_id = None;
            d.version.last_updated = Some(ts.into());
        }
        e
    };
    let mut set = DoseSet::new();
    set.apply(mk("2021-03-01T10:00:00+01:00", "AAA1"));
    // Same instant in another offset is a replay; earlier is stale; later replaces.
    assert_eq!(
        set.apply(mk("2021-03-01T09:00:00Z", "AAA1")),
        Applied::NoOp(NoOpReason::Replay)
    );
    assert_eq!(
        set.apply(mk("2021-03-01T08:59:59Z", "XXX9")),
        Applied::NoOp(NoOpReason::Stale)
    );
    assert_eq!(
        set.apply(mk("2021-03-02T00:00:00Z", "BBB2")),
        Applied::Replaced
    );
}

fn history_entry(version: &str, status: &str, lot: &str) -> Value {
    json!({
        "fullUrl": "https://ehr.example.org/fhir/Immunization/imm-5",
        "resource": {
            "resourceType": "Immunization", "id": "imm-5", "meta": { "versionId": version },
            "status": status,
            "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "207" }] },
            "patient": { "reference": "Patient/pt-1" },
            "occurrenceDateTime": "2021-06-01", "lotNumber": lot
        },
        "request": { "method": "PUT", "url": "Immunization/imm-5" }
    })
}

#[test]
fn history_bundle_newest_first_gives_the_newest_version_on_the_card() {
    let patient = json!({
        "fullUrl": "https://ehr.example.org/fhir/Patient/pt-1",
        "resource": { "resourceType": "Patient", "id": "pt-1", "name": [{ "family": "Doe", "given": ["J"] }], "birthDate": "1990-01-01" }
    });
    let bundle = json!({
        "resourceType": "Bundle", "type": "history",
        "entry": [history_entry("2", "completed", "NEW2"), history_entry("1", "completed", "OLD1"), patient]
    });
    let card = model::card_bundle_from_fhir(&bytes(&bundle), None).unwrap();
    let lots: Vec<&str> = card["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["resource"]["lotNumber"].as_str())
        .collect();
    assert_eq!(lots, ["NEW2"]);
}

#[test]
fn history_delete_and_entered_in_error_in_one_bundle_leave_no_dose() {
    let patient = json!({
        "fullUrl": "https://ehr.example.org/fhir/Patient/pt-1",
        "resource": { "resourceType": "Patient", "id": "pt-1", "name": [{ "family": "Doe", "given": ["J"] }], "birthDate": "1990-01-01" }
    });
    let delete = json!({
        "fullUrl": "https://ehr.example.org/fhir/Immunization/imm-5",
        "request": { "method": "DELETE", "url": "Immunization/imm-5" }
    });
    let bundle = json!({ "resourceType": "Bundle", "type": "history", "entry": [history_entry("1", "completed", "OLD1"), delete, patient.clone()] });
    let n = ready(&bytes(&bundle), None);
    assert!(
        matches!(&n.events[1], DoseEvent::Remove(r) if r.source.id == "imm-5" && r.source.system == "https://ehr.example.org/fhir")
    );
    assert_eq!(
        model::card_bundle_from_fhir(&bytes(&bundle), None)
            .unwrap_err()
            .code(),
        "no-doses"
    );

    let eie = json!({ "resourceType": "Bundle", "type": "history",
        "entry": [history_entry("1", "completed", "OLD1"), history_entry("2", "entered-in-error", "OLD1"), patient] });
    assert_eq!(
        model::card_bundle_from_fhir(&bytes(&eie), None)
            .unwrap_err()
            .code(),
        "no-doses"
    );
}
