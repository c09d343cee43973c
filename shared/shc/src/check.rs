//! Checks a verifier runs on a decoded payload and its FHIR bundle, reported as [`Problem`]s.
//!
//! These are written from the rules (spec-checklist §A, §B, §J–L), not from vaxcred's builder, so
//! they catch what the builder might get wrong. Severity follows the spec: a SHALL broken is an
//! error, a SHOULD or a data-minimization element present is a warning.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::{Problem, ProblemKind};
use crate::payload::issuer_url_problem;
use crate::{rid, HEALTH_CARD_TYPE};

/// Clock skew tolerated before a card counts as "not yet valid".
pub const NBF_SKEW_SECS: f64 = 300.0;
/// Above this a NumericDate is taken to be in milliseconds by mistake (year 5138 in seconds).
const MILLIS_THRESHOLD: f64 = 1e11;

/// Checks the claims and the bundle of a payload at time `now` (seconds since the epoch).
pub fn check_payload(payload: &Value, now: f64) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(obj) = payload.as_object() else {
        problems.push(Problem::error(
            ProblemKind::JsonParse,
            "payload is not a JSON object",
        ));
        return problems;
    };
    match obj.get("iss").and_then(Value::as_str) {
        Some(iss) => {
            if let Some(why) = issuer_url_problem(iss) {
                problems.push(Problem::error(ProblemKind::InvalidIssuerUrl, why));
            }
        }
        None => problems.push(Problem::error(
            ProblemKind::Schema,
            "payload lacks `iss` (rule 1)",
        )),
    }
    let nbf = obj.get("nbf").and_then(Value::as_f64);
    match nbf {
        None => problems.push(Problem::error(
            ProblemKind::Schema,
            "payload lacks a numeric `nbf` (rule 3)",
        )),
        Some(nbf) if nbf > MILLIS_THRESHOLD => problems.push(Problem::error(
            ProblemKind::NotYetValid,
            "`nbf` is in milliseconds; NumericDate is seconds (rule 3)",
        )),
        Some(nbf) if nbf > now + NBF_SKEW_SECS => problems.push(Problem::warning(
            ProblemKind::NotYetValid,
            "`nbf` is in the future",
        )),
        Some(_) => {}
    }
    if let Some(exp) = obj.get("exp") {
        match exp.as_f64() {
            None => problems.push(Problem::error(
                ProblemKind::Schema,
                "`exp` is not a number (rule 4)",
            )),
            Some(exp) => {
                if nbf.is_some_and(|nbf| exp < nbf) {
                    problems.push(Problem::error(
                        ProblemKind::Expired,
                        "`exp` is before `nbf` (rule 4)",
                    ));
                } else if exp > MILLIS_THRESHOLD {
                    problems.push(Problem::warning(
                        ProblemKind::Expired,
                        "`exp` looks like milliseconds; NumericDate is seconds (rule 4)",
                    ));
                } else if exp < now {
                    problems.push(Problem::error(
                        ProblemKind::Expired,
                        "card has expired (rule 4)",
                    ));
                }
            }
        }
    }
    let Some(vc) = obj.get("vc").and_then(Value::as_object) else {
        problems.push(Problem::error(
            ProblemKind::Schema,
            "payload lacks the `vc` object (rule 1)",
        ));
        return problems;
    };
    let has_type = vc
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(HEALTH_CARD_TYPE)));
    if !has_type {
        problems.push(Problem::error(
            ProblemKind::Schema,
            "`vc.type` lacks `https://smarthealth.cards#health-card` (rule 5)",
        ));
    }
    if let Some(r) = vc.get("rid") {
        if !r.as_str().is_some_and(rid::is_valid) {
            problems.push(Problem::error(
                ProblemKind::Schema,
                "`vc.rid` must be 1–24 base64url characters (rule 28)",
            ));
        }
    }
    let subject = vc.get("credentialSubject");
    if subject
        .and_then(|s| s.get("fhirVersion"))
        .and_then(Value::as_str)
        .is_none()
    {
        problems.push(Problem::warning(
            ProblemKind::Schema,
            "`credentialSubject.fhirVersion` is missing (rule 6)",
        ));
    }
    match subject.and_then(|s| s.get("fhirBundle")) {
        Some(bundle) => problems.extend(check_bundle(bundle)),
        None => problems.push(Problem::error(
            ProblemKind::Schema,
            "`credentialSubject.fhirBundle` is missing (rule 7)",
        )),
    }
    problems
}

const IMMUNIZATION_DM: &[&str] = &[
    "resourceType",
    "meta",
    "status",
    "vaccineCode",
    "patient",
    "occurrenceDateTime",
    "performer",
    "lotNumber",
    "isSubpotent",
];
const PATIENT_DM: &[&str] = &["resourceType", "name", "birthDate"];
const CODING_ELEMENTS: &[&str] = &[
    "id",
    "extension",
    "system",
    "version",
    "code",
    "display",
    "userSelected",
];
const IAL_SYSTEM: &str = "https://smarthealth.cards/ial";
const IAL_CODES: &[&str] = &["IAL1.2", "IAL1.4", "IAL2", "IAL3"];

/// Checks a card's FHIR bundle against minimization (§B), FHIR basics and the vaccination
/// profiles (§J–L).
pub fn check_bundle(bundle: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let Some(obj) = bundle.as_object() else {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            "fhirBundle is not a JSON object",
        ));
        return problems;
    };
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            "fhirBundle.resourceType is not `Bundle` (rule 7)",
        ));
    }
    check_empty_values(bundle, "Bundle", &mut problems);
    let Some(entries) = obj.get("entry").and_then(Value::as_array) else {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            "fhirBundle has no `entry` array",
        ));
        return problems;
    };
    let mut full_urls = HashSet::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry.get("fullUrl").and_then(Value::as_str) {
            Some(url) if is_resource_uri(url) => {
                full_urls.insert(url.to_owned());
                if url != format!("resource:{i}") {
                    problems.push(Problem::warning(
                        ProblemKind::Profile,
                        format!("entry {i}: `fullUrl` should be `resource:{i}` (numbered from 0)"),
                    ));
                }
            }
            _ => problems.push(Problem::error(
                ProblemKind::Profile,
                format!("entry {i}: `fullUrl` must be a `resource:N` URI (rule 15)"),
            )),
        }
    }
    let mut types = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let Some(resource) = entry.get("resource").and_then(Value::as_object) else {
            problems.push(Problem::error(
                ProblemKind::FhirSchema,
                format!("entry {i} has no resource"),
            ));
            continue;
        };
        let rtype = resource
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default();
        types.push(rtype.to_owned());
        check_resource(i, rtype, resource, &full_urls, &mut problems);
    }
    if types.iter().any(|t| t == "Immunization") {
        let patients = types.iter().filter(|t| *t == "Patient").count();
        if patients != 1 {
            problems.push(Problem::error(
                ProblemKind::Profile,
                format!(
                    "a vaccination bundle holds exactly one Patient, this one {patients} (rule 68)"
                ),
            ));
        }
        for (i, t) in types.iter().enumerate() {
            if t != "Patient" && t != "Immunization" {
                problems.push(Problem::error(
                    ProblemKind::Profile,
                    format!("entry {i}: a vaccination bundle holds only Patient and Immunization entries (rule 68)"),
                ));
            }
        }
    }
    problems
}

fn is_resource_uri(s: &str) -> bool {
    s.strip_prefix("resource:")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn check_resource(
    i: usize,
    rtype: &str,
    resource: &Map<String, Value>,
    full_urls: &HashSet<String>,
    problems: &mut Vec<Problem>,
) {
    if resource.contains_key("id") {
        problems.push(Problem::warning(
            ProblemKind::Profile,
            format!("entry {i}: `{rtype}.id` should be omitted (rule 10)"),
        ));
    }
    if resource.contains_key("text") {
        problems.push(Problem::warning(
            ProblemKind::Profile,
            format!("entry {i}: `{rtype}.text` should be omitted (rule 12)"),
        ));
    }
    if let Some(meta) = resource.get("meta") {
        check_meta(i, meta, problems);
    }
    let mut refs = Vec::new();
    collect(&Value::Object(resource.clone()), &mut refs, problems, i);
    // A reference to something outside the bundle is a minimization miss (even the spec's example
    // 02 has two); the Immunization's patient reference must resolve (checked below).
    for r in refs {
        if !is_resource_uri(&r) || !full_urls.contains(&r) {
            problems.push(Problem::warning(
                ProblemKind::Profile,
                format!("entry {i}: reference should be a `resource:N` URI of an entry in the bundle (rule 16)"),
            ));
        }
    }
    match rtype {
        "Immunization" => {
            check_immunization(i, resource, problems);
            let patient = resource
                .get("patient")
                .and_then(|p| p.get("reference"))
                .and_then(Value::as_str);
            if patient.is_some_and(|p| !full_urls.contains(p)) {
                problems.push(Problem::error(
                    ProblemKind::Profile,
                    format!("entry {i}: `Immunization.patient` must reference the bundle's Patient as `resource:N` (rule 54)"),
                ));
            }
        }
        "Patient" => {
            for key in resource.keys() {
                if !PATIENT_DM.contains(&key.as_str()) {
                    problems.push(Problem::warning(
                        ProblemKind::Profile,
                        format!("entry {i}: `Patient.{key}` is outside the data-minimization profile (rule 66)"),
                    ));
                }
            }
        }
        _ => {}
    }
}

fn check_meta(i: usize, meta: &Value, problems: &mut Vec<Problem>) {
    let Some(meta) = meta.as_object() else {
        problems.push(Problem::warning(
            ProblemKind::FhirSchema,
            format!("entry {i}: `meta` is not an object; omit it (rule 11)"),
        ));
        return;
    };
    for key in meta.keys() {
        if key != "security" {
            problems.push(Problem::warning(
                ProblemKind::FhirSchema,
                format!(
                    "entry {i}: `meta.{key}` present; only `meta.security` is allowed (rule 11)"
                ),
            ));
        }
    }
    if let Some(security) = meta.get("security") {
        let Some(codings) = security.as_array() else {
            problems.push(Problem::error(
                ProblemKind::FhirSchema,
                format!("entry {i}: `meta.security` is not an array"),
            ));
            return;
        };
        for coding in codings {
            let Some(c) = coding.as_object() else {
                problems.push(Problem::error(
                    ProblemKind::FhirSchema,
                    format!("entry {i}: `meta.security` holds a non-Coding"),
                ));
                continue;
            };
            if let Some(key) = c.keys().find(|k| !CODING_ELEMENTS.contains(&k.as_str())) {
                problems.push(Problem::error(
                    ProblemKind::FhirSchema,
                    format!("entry {i}: `meta.security` Coding has unknown element `{key}`"),
                ));
            }
            let code = c.get("code").and_then(Value::as_str);
            if c.get("system").and_then(Value::as_str) == Some(IAL_SYSTEM)
                && !code.is_some_and(|c| IAL_CODES.contains(&c))
            {
                problems.push(Problem::warning(
                    ProblemKind::Profile,
                    format!("entry {i}: identity assurance code is not one of IAL1.2, IAL1.4, IAL2, IAL3 (rule 59)"),
                ));
            }
        }
    }
}

fn check_immunization(i: usize, r: &Map<String, Value>, problems: &mut Vec<Problem>) {
    if r.get("status").and_then(Value::as_str) != Some("completed") {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("entry {i}: Immunization.status must be `completed` (rule 53)"),
        ));
    }
    let occurrences: Vec<&String> = r.keys().filter(|k| k.starts_with("occurrence")).collect();
    match occurrences.as_slice() {
        [] => problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("entry {i}: Immunization lacks `occurrenceDateTime` (rule 55)"),
        )),
        [one] if one.as_str() == "occurrenceDateTime" => {}
        [_] => problems.push(Problem::warning(
            ProblemKind::Profile,
            format!("entry {i}: use `occurrenceDateTime` (rule 55)"),
        )),
        _ => problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("entry {i}: Immunization has several `occurrence[x]` (rule 55)"),
        )),
    }
    let codings = r
        .get("vaccineCode")
        .and_then(|v| v.get("coding"))
        .and_then(Value::as_array);
    if codings.is_none_or(|c| c.is_empty()) {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("entry {i}: `vaccineCode.coding` is missing (rule 56)"),
        ));
    }
    if r.get("patient").and_then(|p| p.get("reference")).is_none() {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("entry {i}: Immunization lacks `patient.reference` (rule 54)"),
        ));
    }
    if r.get("isSubpotent")
        .is_some_and(|v| v != &Value::Bool(true))
    {
        problems.push(Problem::warning(
            ProblemKind::Profile,
            format!("entry {i}: `isSubpotent` is only populated with `true` (rule 60)"),
        ));
    }
    if let Some(lot) = r.get("lotNumber").and_then(Value::as_str) {
        if lot.len() >= 20 || lot.to_ascii_lowercase().contains("lot") {
            problems.push(Problem::warning(
                ProblemKind::Profile,
                format!("entry {i}: `lotNumber` should be under 20 characters and not contain \"lot\" (rule 57)"),
            ));
        }
    }
    for key in r.keys() {
        if !IMMUNIZATION_DM.contains(&key.as_str()) {
            problems.push(Problem::warning(
                ProblemKind::Profile,
                format!("entry {i}: `Immunization.{key}` is outside the data-minimization profile (rule 63)"),
            ));
        }
    }
}

/// Collects references and flags `CodeableConcept.text` / `Coding.display` (rules 13–14).
fn collect(value: &Value, refs: &mut Vec<String>, problems: &mut Vec<Problem>, i: usize) {
    match value {
        Value::Object(obj) => {
            if obj.contains_key("coding") && obj.contains_key("text") {
                problems.push(Problem::warning(
                    ProblemKind::Profile,
                    format!("entry {i}: `CodeableConcept.text` should be omitted (rule 13)"),
                ));
            }
            if obj.contains_key("system") && obj.contains_key("code") && obj.contains_key("display")
            {
                problems.push(Problem::warning(
                    ProblemKind::Profile,
                    format!("entry {i}: `Coding.display` should be omitted (rule 14)"),
                ));
            }
            if let Some(Value::String(r)) = obj.get("reference") {
                refs.push(r.clone());
            }
            for v in obj.values() {
                collect(v, refs, problems, i);
            }
        }
        Value::Array(items) => {
            for v in items {
                collect(v, refs, problems, i);
            }
        }
        _ => {}
    }
}

/// FHIR forbids empty strings, arrays and objects.
fn check_empty_values(value: &Value, path: &str, problems: &mut Vec<Problem>) {
    let empty = match value {
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if empty {
        problems.push(Problem::error(
            ProblemKind::FhirSchema,
            format!("`{path}` is empty; FHIR forbids empty values"),
        ));
        return;
    }
    match value {
        Value::Object(obj) => {
            for (k, v) in obj {
                check_empty_values(v, &format!("{path}.{k}"), problems);
            }
        }
        Value::Array(items) => {
            for (n, v) in items.iter().enumerate() {
                check_empty_values(v, &format!("{path}[{n}]"), problems);
            }
        }
        _ => {}
    }
}
