//! Real-world-shaped inputs (Epic, Cerner, Subscriptions-Backport notification, integration-engine
//! transaction) and the model each must give.

use model::{
    card_bundle, CardOptions, ContactKind, DoseEvent, FetchedPatient, HumanName, Outcome,
    SourceKey, CVX, SNOMED,
};

use crate::helpers::{fixture, ready, shall_violations};

#[test]
fn epic_immunization_with_contained_patient_extensions_and_several_codings() {
    let n = ready(&fixture("epic-immunization-contained-patient.json"), None);
    // §K.64: `official` wins over `usual` and `old`; blank given names dropped; prefix not kept.
    assert_eq!(
        n.patient.name,
        HumanName::Parts {
            family: "Lin".into(),
            given: vec!["Derrick".into()],
            suffix: vec![]
        }
    );
    assert_eq!(n.patient.birth_date.to_string(), "1973-06-03");
    assert_eq!(n.patient.identifiers.len(), 2);
    assert_eq!(n.patient.identifiers[1].value, "203713");
    // Delivery contacts: the `old` phone is dropped; never on the card.
    assert_eq!(n.patient.contacts.len(), 2);
    assert_eq!(n.patient.contacts[1].kind, ContactKind::Email);
    assert!(n.skipped.is_empty());
    let [DoseEvent::Upsert(d)] = n.events.as_slice() else {
        panic!("{:?}", n.events)
    };
    // §J.56: the CVX coding is chosen over the local and NDC codes; whitespace trimmed.
    assert_eq!(
        (d.vaccine.system.as_str(), d.vaccine.code.as_str()),
        (CVX, "208")
    );
    assert_eq!(d.disease, "covid-19");
    // §J.55: the local date as written, not converted to UTC.
    assert_eq!(d.occurrence.to_string(), "2021-01-29");
    // §J.57: "Lot # EL9261 " → "EL9261".
    assert_eq!(d.lot_number.as_deref(), Some("EL9261"));
    // §J.58: the nurse (Practitioner) is skipped; the contained Organization's name, cut under 30.
    assert_eq!(d.performer.as_deref(), Some("Current Medical Group"));
    assert_eq!(
        d.source,
        SourceKey {
            system: "urn:oid:1.2.840.114350.1.13.0.1.7.2.768076".into(),
            id: "80041".into()
        }
    );
    assert_eq!(d.version.version_id.as_deref(), Some("1"));

    let card = card_bundle(&n.patient, std::slice::from_ref(d), &CardOptions::default()).unwrap();
    assert_eq!(
        serde_json::to_string(&card).unwrap(),
        r#"{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"resource:0","resource":{"resourceType":"Patient","name":[{"family":"Lin","given":["Derrick"]}],"birthDate":"1973-06-03"}},{"fullUrl":"resource:1","resource":{"resourceType":"Immunization","status":"completed","vaccineCode":{"coding":[{"system":"http://hl7.org/fhir/sid/cvx","code":"208"}]},"patient":{"reference":"resource:0"},"occurrenceDateTime":"2021-01-29","performer":[{"actor":{"display":"Current Medical Group"}}],"lotNumber":"EL9261"}}]}"#
    );
    assert!(shall_violations(&card).is_empty());
}

#[test]
fn cerner_searchset_with_included_patient_and_full_urls() {
    let n = ready(&fixture("cerner-searchset.json"), None);
    assert_eq!(
        n.patient.name,
        HumanName::Parts {
            family: "SMART".into(),
            given: vec!["NANCY".into()],
            suffix: vec![]
        }
    );
    assert_eq!(
        n.patient.source_reference.as_deref(),
        Some("Patient/12724066")
    );
    let doses: Vec<_> = n.doses().collect();
    assert_eq!(doses.len(), 2);
    let base = "https://fhir-ehr.cerner.com/r4/ec2458f2-1e24-41c8-b71b-0e701af7583d";
    assert_eq!(
        doses[0].source,
        SourceKey {
            system: base.into(),
            id: "M-197392457".into()
        }
    );
    assert_eq!(doses[0].lot_number.as_deref(), Some("011J20A"));
    assert_eq!(
        doses[0].performer.as_deref(),
        Some("Baseline East Medical Center")
    );
    assert_eq!(doses[0].occurrence.to_string(), "2021-02-10");
    assert_eq!(doses[1].occurrence.to_string(), "2021-03-10");
    // The influenza dose (CVX 150) is not in a configured group: skipped with its reason.
    assert_eq!(n.skipped.len(), 1);
    assert_eq!(n.skipped[0].entry, 3);
    assert_eq!(n.skipped[0].reason.code(), "vaccine-code-unknown");
    let card = card_bundle(
        &n.patient,
        &doses.into_iter().cloned().collect::<Vec<_>>(),
        &CardOptions::default(),
    )
    .unwrap();
    assert!(shall_violations(&card).is_empty());
}

#[test]
fn backport_notification_needs_the_patient_then_normalizes_with_it() {
    let bytes = fixture("backport-notification.json");
    let parsed = model::parse(&bytes).unwrap();
    match model::normalize(&parsed, None).unwrap() {
        Outcome::PatientNeeded(p) => {
            assert_eq!(p.reference, "https://ehr.example.org/fhir/Patient/pt-1001")
        }
        other => panic!("{other:?}"),
    }
    let n = ready(&bytes, Some(&fixture("patient-pt-1001.json")));
    // Name without `use` preferred over the nickname.
    assert_eq!(
        n.patient.name,
        HumanName::Parts {
            family: "Okafor".into(),
            given: vec!["Robert".into(), "James".into()],
            suffix: vec![]
        }
    );
    assert_eq!(n.patient.birth_date.to_string(), "1965"); // §K.65 partial birth date
    assert_eq!(n.patient.contacts[0].kind, ContactKind::Phone);
    let [DoseEvent::Upsert(d)] = n.events.as_slice() else {
        panic!("{:?}", n.events)
    };
    // SNOMED CT preferred over ICD-11 (TERM URI accepted, §M.71); the SubscriptionStatus entry ignored.
    assert_eq!(
        (d.vaccine.system.as_str(), d.vaccine.code.as_str()),
        (SNOMED, "10871000172106")
    );
    assert_eq!(d.source.system, "https://ehr.example.org/fhir");
    assert_eq!(d.version.version_id.as_deref(), Some("3"));
    assert_eq!(d.performer, None);

    // A fetched Patient with another id is refused.
    let other = FetchedPatient::parse(
        br#"{"resourceType":"Patient","id":"pt-2","name":[{"text":"X"}],"birthDate":"1990"}"#,
    )
    .unwrap();
    assert_eq!(
        model::normalize(&parsed, Some(&other)).unwrap_err().code(),
        "patient-mismatch"
    );
}

#[test]
fn transaction_with_urn_uuid_references_subpotent_and_not_done() {
    let n = ready(&fixture("transaction-urn-uuid.json"), None);
    assert_eq!(
        n.patient.name,
        HumanName::Parts {
            family: "Nguyen".into(),
            given: vec!["Anh".into()],
            suffix: vec!["Jr.".into()]
        }
    );
    assert_eq!(n.patient.birth_date.to_string(), "1980-03");
    assert_eq!(n.events.len(), 2);
    let DoseEvent::Upsert(d) = &n.events[0] else {
        panic!()
    };
    // CVX given by its OID is mapped to the CVX URI.
    assert_eq!(
        (d.vaccine.system.as_str(), d.vaccine.code.as_str()),
        (CVX, "212")
    );
    assert!(d.is_subpotent);
    assert_eq!(d.performer.as_deref(), Some("County Health Department"));
    assert_eq!(d.source.id, "IMM-1");
    // not-done: recorded (event), not issued (skip reason).
    let DoseEvent::NotDone(nd) = &n.events[1] else {
        panic!()
    };
    assert_eq!(nd.vaccine.as_ref().unwrap().code, "229");
    assert_eq!(n.skipped[0].reason.code(), "status-not-done");

    let card = card_bundle(&n.patient, std::slice::from_ref(d), &CardOptions::default()).unwrap();
    let s = serde_json::to_string(&card).unwrap();
    assert!(
        s.contains(
            r#""name":[{"family":"Nguyen","given":["Anh"],"suffix":["Jr."]}],"birthDate":"1980-03""#
        ),
        "{s}"
    );
    assert!(s.ends_with(r#""performer":[{"actor":{"display":"County Health Department"}}],"isSubpotent":true}}]}"#), "{s}");
    assert!(shall_violations(&card).is_empty());
}

#[test]
fn model_round_trips_through_serde() {
    let n = ready(&fixture("epic-immunization-contained-patient.json"), None);
    let json = serde_json::to_string(&n).unwrap();
    let back: model::Normalized = serde_json::from_str(&json).unwrap();
    assert_eq!(back, n);
}
