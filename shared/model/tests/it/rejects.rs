//! Every rejection and skip reason, from inputs that trigger exactly it; and no patient data in
//! any message.

use model::{HumanName, Outcome, Reject, SNOMED};
use serde_json::{json, Value};

use crate::helpers::{bytes, ready, reject_code};

const NAME: &str = "Zyxwvut";
const BIRTH: &str = "1971-07-17";

/// A bare Immunization with a contained Patient, changed by `f`.
fn imm(f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut v = json!({
        "resourceType": "Immunization",
        "id": "i1",
        "contained": [{ "resourceType": "Patient", "id": "p", "name": [{ "family": NAME, "given": ["Q"] }], "birthDate": BIRTH }],
        "status": "completed",
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": "207" }] },
        "patient": { "reference": "#p" },
        "occurrenceDateTime": "2021-01-01",
        "lotNumber": "SECRETLOT1"
    });
    f(&mut v);
    bytes(&v)
}

/// The single skip reason of a message that yields no dose.
fn skip_code(b: &[u8]) -> &'static str {
    let n = ready(b, None);
    assert_eq!(n.doses().count(), 0, "{n:?}");
    let r = n
        .skipped
        .first()
        .map(|s| s.reason.clone())
        .expect("a skip reason");
    assert_no_phi(&r);
    // The CLI `issue` path reports the same reason.
    assert_eq!(
        model::card_bundle_from_fhir(b, None).unwrap_err().code(),
        r.code()
    );
    r.code()
}

fn assert_no_phi(r: &Reject) {
    let text = r.to_string();
    for phi in [NAME, BIRTH, "SECRETLOT1", "1980"] {
        assert!(!text.contains(phi), "{} leaks {phi}: {text}", r.code());
    }
}

#[test]
fn per_immunization_skip_reasons() {
    // §M.70 / §J.56
    assert_eq!(
        skip_code(&imm(|v| v["vaccineCode"]["coding"][0]["code"] = json!("03"))),
        "vaccine-code-unknown"
    );
    assert_eq!(
        skip_code(&imm(|v| v["vaccineCode"] = json!({ "text": "covid shot" }))),
        "vaccine-code-unknown"
    );
    assert_eq!(
        skip_code(&imm(
            |v| v["vaccineCode"]["coding"][0]["code"] = json!("213")
        )),
        "vaccine-code-unspecific"
    );
    assert_eq!(
        skip_code(&imm(
            |v| v["vaccineCode"]["coding"][0]["code"] = json!("500")
        )),
        "vaccine-code-unspecific"
    );
    assert_eq!(
        skip_code(&imm(
            |v| v["vaccineCode"]["coding"] = json!([{ "system": "http://hl7.org/fhir/sid/cvx", "code": "207" }, { "system": "http://hl7.org/fhir/sid/cvx", "code": "206" }])
        )),
        "vaccine-code-conflict"
    );
    // §J.55
    assert_eq!(
        skip_code(&imm(|v| {
            v.as_object_mut().unwrap().remove("occurrenceDateTime");
        })),
        "occurrence-missing"
    );
    assert_eq!(
        skip_code(&imm(|v| {
            v.as_object_mut().unwrap().remove("occurrenceDateTime");
            v["occurrenceString"] = json!("spring 2021");
        })),
        "occurrence-invalid"
    );
    assert_eq!(
        skip_code(&imm(|v| v["occurrenceDateTime"] = json!("2021-05"))),
        "occurrence-invalid"
    );
    assert_eq!(
        skip_code(&imm(|v| v["occurrenceDateTime"] = json!("2021-02-30"))),
        "occurrence-invalid"
    );
    // §J.53
    assert_eq!(
        skip_code(&imm(|v| v["status"] = json!("in-progress"))),
        "status-invalid"
    );
    assert_eq!(
        skip_code(&imm(|v| v["status"] = json!("not-done"))),
        "status-not-done"
    );
}

#[test]
fn unspecific_cvx_next_to_a_specific_snomed_code_uses_the_specific_one() {
    let n = ready(
        &imm(|v| {
            v["vaccineCode"]["coding"] = json!([
                { "system": "http://hl7.org/fhir/sid/cvx", "code": "213" },
                { "system": "http://snomed.info/sct", "code": "1031000172108", "display": "Pfizer" }
            ])
        }),
        None,
    );
    let d = n.doses().next().unwrap();
    assert_eq!(
        (d.vaccine.system.as_str(), d.vaccine.code.as_str()),
        (SNOMED, "1031000172108")
    );
}

#[test]
fn whole_message_rejections() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not-fhir-json"),
        (b"{\"resourceType\":".to_vec(), "not-fhir-json"),
        (
            br#"{"resourceType":"Observation","status":"final"}"#.to_vec(),
            "wrong-resource-type",
        ),
        (
            br#"{"resourceType":"Bundle","type":"document","entry":[]}"#.to_vec(),
            "bundle-type-unsupported",
        ),
        (
            br#"{"resourceType":"Bundle","type":"collection","entry":[]}"#.to_vec(),
            "no-immunization",
        ),
        (
            imm(|v| {
                v.as_object_mut().unwrap().remove("patient");
            }),
            "patient-missing",
        ),
        (
            imm(|v| v["patient"] = json!({ "reference": "#nope" })),
            "patient-unresolved",
        ),
        (
            imm(|v| {
                v["patient"] =
                    json!({ "reference": "urn:uuid:00000000-0000-0000-0000-000000000000" })
            }),
            "patient-unresolved",
        ),
        (
            imm(|v| {
                v["contained"][0].as_object_mut().unwrap().remove("name");
            }),
            "patient-name-missing",
        ),
        (
            imm(|v| {
                v["contained"][0]["name"] =
                    json!([{ "use": "old", "family": NAME, "given": ["Q"] }])
            }),
            "patient-name-missing",
        ),
        (
            imm(|v| {
                v["contained"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("birthDate");
            }),
            "birth-date-missing",
        ),
        (
            imm(|v| v["contained"][0]["birthDate"] = json!("1980-02-30")),
            "birth-date-invalid",
        ),
        (
            imm(|v| v["contained"][0]["birthDate"] = json!("03/14/1980")),
            "birth-date-invalid",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(reject_code(&input), want);
        let err = model::card_bundle_from_fhir(&input, None).unwrap_err();
        assert_eq!(err.code(), want);
        assert_no_phi(&err);
    }
    let big = vec![b' '; model::DEFAULT_MAX_BYTES + 1];
    assert_eq!(reject_code(&big), "too-large");
}

#[test]
fn immunizations_of_two_patients_are_refused() {
    let a = String::from_utf8(imm(|_| {})).unwrap();
    let b = String::from_utf8(imm(|v| {
        v["contained"][0]["birthDate"] = json!("1999-09-09")
    }))
    .unwrap();
    let bundle = format!(
        r#"{{"resourceType":"Bundle","type":"batch","entry":[{{"resource":{a}}},{{"resource":{b}}}]}}"#
    );
    assert_eq!(reject_code(bundle.as_bytes()), "multiple-patients");
}

#[test]
fn identifier_only_patient_must_be_fetched() {
    let input = imm(|v| {
        v["patient"] = json!({ "identifier": { "system": "https://ehr/mrn", "value": "42" } })
    });
    let parsed = model::parse(&input).unwrap();
    match model::normalize(&parsed, None).unwrap() {
        Outcome::PatientNeeded(p) => {
            assert_eq!(p.reference, "Patient?identifier=https://ehr/mrn|42")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        model::card_bundle_from_fhir(&input, None)
            .unwrap_err()
            .code(),
        "patient-fetch-required"
    );
}

#[test]
fn tolerant_identity_k64() {
    let text_only = ready(
        &imm(|v| v["contained"][0]["name"] = json!([{ "text": "  Zyxwvut   Q " }])),
        None,
    );
    assert_eq!(
        text_only.patient.name,
        HumanName::Text {
            text: "Zyxwvut Q".into()
        }
    );
    let mononym = ready(
        &imm(|v| v["contained"][0]["name"] = json!([{ "given": ["Cher"] }])),
        None,
    );
    assert_eq!(
        mononym.patient.name,
        HumanName::Text {
            text: "Cher".into()
        }
    );
    let year = ready(
        &imm(|v| v["contained"][0]["birthDate"] = json!("1980")),
        None,
    );
    assert_eq!(year.patient.birth_date.to_string(), "1980");
    // Unknown elements and extensions, and wrongly-typed optional elements, never fail a parse.
    let odd = ready(
        &imm(|v| {
            v["extension"] = json!([{ "url": "x", "valueWeird": { "deep": [1, 2, 3] } }]);
            v["modifierExtension"] = json!(7);
            v["performer"] = json!("not an array");
            v["lotNumber"] = json!(12345);
            v["futureR6Element"] = json!({ "a": true });
        }),
        None,
    );
    let d = odd.doses().next().unwrap();
    assert_eq!(d.performer, None);
    assert_eq!(d.lot_number, None);
}
