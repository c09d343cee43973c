//! Test fixtures: a fresh store per test on SQLite (temp file) or PostgreSQL (own schema in
//! database `test`, dropped when the fixture goes away), and small builders for inputs.

use store::{
    ApplyEvent, DoseStatus, Identifier, IncomingEvent, NewDose, NewIssuer, PatientIdentity,
    Recorded, Store,
};

pub use testkit::{pg_url, TestDb};

/// Runs an async test body on SQLite and on PostgreSQL: `both!(name)` calls `name(store)`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = crate::helpers::TestDb::sqlite().await;
                super::$name(db.store.clone()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = crate::helpers::TestDb::postgres().await;
                super::$name(db.store.clone()).await;
            }
        }
    };
}
pub(crate) use both;

pub async fn issuer(store: &Store, slug: &str) -> String {
    store
        .create_issuer(&NewIssuer {
            iss: format!("https://example.org/{slug}"),
            slug: slug.to_owned(),
            display_name: format!("Issuer {slug}"),
        })
        .await
        .unwrap()
        .id
}

pub fn dose(source_id: &str, version: i64, status: DoseStatus) -> NewDose {
    NewDose {
        source_system: "https://ehr.example.org/fhir".to_owned(),
        source_id: source_id.to_owned(),
        version,
        status,
        vaccine_system: "http://hl7.org/fhir/sid/cvx".to_owned(),
        vaccine_code: "207".to_owned(),
        occurrence: Some("2021-01-01".to_owned()),
        lot_number: Some("LOT1".to_owned()),
        performer: Some("Clinic".to_owned()),
        is_subpotent: false,
        disease: "covid-19".to_owned(),
    }
}

pub fn identity(family: &str) -> PatientIdentity {
    PatientIdentity {
        family: Some(family.to_owned()),
        given: vec!["Ann".to_owned()],
        text: None,
        birth_date: Some("1980-01-01".to_owned()),
        telecom: vec![],
    }
}

pub fn mrn(value: &str) -> Identifier {
    Identifier {
        system: "urn:mrn".to_owned(),
        value: value.to_owned(),
    }
}

/// Record one message and return its event id.
pub async fn new_event(store: &Store, message_id: &str) -> String {
    let r = store
        .record_events(&[IncomingEvent {
            message_id: Some(message_id.to_owned()),
            content_hash: format!("hash-{message_id}"),
            source: Some("ehr".to_owned()),
        }])
        .await
        .unwrap();
    match r.into_iter().next().unwrap() {
        Recorded::New { event_id } => event_id,
        other => panic!("expected a new event, got {other:?}"),
    }
}

pub fn change(event_id: &str, issuer_id: &str, patient: &str, doses: Vec<NewDose>) -> ApplyEvent {
    ApplyEvent {
        event_id: event_id.to_owned(),
        issuer_id: issuer_id.to_owned(),
        identifiers: vec![mrn(patient)],
        identity: Some(identity("Doe")),
        doses,
    }
}
