//! FHIR R4 messages as an EHR sends them, for the tests: valid bundles (Patient + Immunization),
//! amendments, entered-in-error, bare Immunizations whose Patient must be fetched, and bad input.

use serde_json::{json, Value};

/// Identifier system of test patients.
pub const MRN: &str = "urn:test:mrn";
/// Identifier system of test Immunizations.
pub const IMM: &str = "urn:test:imm";

/// A Patient resource with identifier `MRN|mrn`.
pub fn patient_resource(id: &str, mrn: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{ "system": MRN, "value": mrn }],
        "name": [{ "family": "Test", "given": ["Pat"] }],
        "birthDate": "1980-01-15"
    })
}

/// An Immunization resource.
pub fn immunization(
    imm_id: &str,
    version: u32,
    status: &str,
    cvx: &str,
    date: &str,
    lot: &str,
    patient_ref: &str,
) -> Value {
    json!({
        "resourceType": "Immunization",
        "meta": { "versionId": version.to_string() },
        "identifier": [{ "system": IMM, "value": imm_id }],
        "status": status,
        "vaccineCode": { "coding": [{ "system": "http://hl7.org/fhir/sid/cvx", "code": cvx }] },
        "patient": { "reference": patient_ref },
        "occurrenceDateTime": date,
        "lotNumber": lot
    })
}

/// A collection Bundle: the Patient and one Immunization.
pub fn bundle(mrn: &str, imm: Value) -> Vec<u8> {
    let mut imm = imm;
    imm["patient"] = json!({ "reference": "urn:uuid:00000000-0000-4000-8000-000000000001" });
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001", "resource": patient_resource(mrn, mrn) },
            { "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": imm }
        ]
    })
    .to_string()
    .into_bytes()
}

/// Dose `n` (1 or 2) of a patient, completed, version 1.
pub fn dose(mrn: &str, n: u32, version: u32, lot: &str) -> Vec<u8> {
    let date = if n == 1 { "2021-01-10" } else { "2021-02-10" };
    bundle(
        mrn,
        immunization(
            &format!("{mrn}-imm{n}"),
            version,
            "completed",
            "207",
            date,
            lot,
            "",
        ),
    )
}

/// Dose `n` withdrawn (`entered-in-error`, version 2).
pub fn entered_in_error(mrn: &str, n: u32) -> Vec<u8> {
    let date = if n == 1 { "2021-01-10" } else { "2021-02-10" };
    bundle(
        mrn,
        immunization(
            &format!("{mrn}-imm{n}"),
            2,
            "entered-in-error",
            "207",
            date,
            "A1001",
            "",
        ),
    )
}

/// A bare Immunization referencing `Patient/{id}` on the source EHR (the Patient is fetched).
pub fn needs_fetch(patient_id: &str) -> Vec<u8> {
    immunization(
        &format!("{patient_id}-imm1"),
        1,
        "completed",
        "208",
        "2021-03-01",
        "F1001",
        &format!("Patient/{patient_id}"),
    )
    .to_string()
    .into_bytes()
}

/// A valid bundle with a vaccine code outside every value set.
pub fn unknown_code(mrn: &str) -> Vec<u8> {
    bundle(
        mrn,
        immunization(
            &format!("{mrn}-immx"),
            1,
            "completed",
            "99999",
            "2021-01-10",
            "X1001",
            "",
        ),
    )
}

/// Not JSON.
pub fn malformed(n: usize) -> Vec<u8> {
    format!("{{ this is not json {n}").into_bytes()
}

/// A FHIR resource of the wrong type.
pub fn wrong_type(n: usize) -> Vec<u8> {
    json!({ "resourceType": "Observation", "id": format!("obs-{n}"), "status": "final" })
        .to_string()
        .into_bytes()
}
