//! An independent checker of the data-minimization (DM) profile rules for a card bundle,
//! written from spec-checklist §B.10–16, §J.52–63, §K.64–66 and §L.68 — not from the builder in
//! `card.rs` — so tests (and the issuer, before signing) can catch a builder regression.
//!
//! It checks element allow-lists per resource (everything DM sets to 0..0 is absent), fixed values,
//! `resource:N` numbering and references, code-system slices, and date shapes. SHOULD-level
//! rules are reported with `shall: false`.

use serde_json::{Map, Value};

use crate::date::FhirDate;
use crate::model::{CVX, IAL_SYSTEM, ICD11, SNOMED};
use crate::normalize::IAL_CODES;

/// One rule the bundle breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// spec-checklist rule, e.g. `J.58`.
    pub rule: &'static str,
    /// JSON path of the offending element.
    pub path: String,
    /// `true` for SHALL / profile-error rules, `false` for SHOULD.
    pub shall: bool,
    /// What is wrong (no patient data: element names only).
    pub what: &'static str,
}

/// Checks a card bundle against the DM profiles; an empty result means conformant.
pub fn check_card_bundle(bundle: &Value) -> Vec<Violation> {
    let mut c = Checker { out: Vec::new() };
    c.bundle(bundle);
    c.out
}

struct Checker {
    out: Vec<Violation>,
}

impl Checker {
    fn err(&mut self, rule: &'static str, path: impl Into<String>, what: &'static str) {
        self.out.push(Violation {
            rule,
            path: path.into(),
            shall: true,
            what,
        });
    }

    fn warn(&mut self, rule: &'static str, path: impl Into<String>, what: &'static str) {
        self.out.push(Violation {
            rule,
            path: path.into(),
            shall: false,
            what,
        });
    }

    fn only(&mut self, rule: &'static str, path: &str, obj: &Map<String, Value>, allowed: &[&str]) {
        for k in obj.keys() {
            if !allowed.contains(&k.as_str()) {
                self.err(
                    rule,
                    format!("{path}.{k}"),
                    "element not allowed by the DM profile",
                );
            }
        }
    }

    fn bundle(&mut self, b: &Value) {
        let Some(obj) = b.as_object() else {
            self.err("L.68", "Bundle", "not an object");
            return;
        };
        self.only("L.68", "Bundle", obj, &["resourceType", "type", "entry"]);
        if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            self.err("L.68", "Bundle.resourceType", "must be Bundle");
        }
        if obj.get("type").and_then(Value::as_str) != Some("collection") {
            self.err("L.68", "Bundle.type", "must be collection");
        }
        let entries = obj
            .get("entry")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut patients = 0;
        let mut immunizations = 0;
        for (i, e) in entries.iter().enumerate() {
            let path = format!("Bundle.entry[{i}]");
            let Some(eo) = e.as_object() else {
                self.err("L.68", path, "entry is not an object");
                continue;
            };
            self.only("L.68", &path, eo, &["fullUrl", "resource"]);
            let want = format!("resource:{i}");
            if eo.get("fullUrl").and_then(Value::as_str) != Some(want.as_str()) {
                self.err(
                    "B.15",
                    format!("{path}.fullUrl"),
                    "must be resource:N numbered from 0",
                );
            }
            let res = eo.get("resource").unwrap_or(&Value::Null);
            match res.get("resourceType").and_then(Value::as_str) {
                Some("Patient") => {
                    patients += 1;
                    if i != 0 {
                        self.err("L.68", &path, "Patient must be the first entry");
                    }
                    self.patient(res, &format!("{path}.resource"));
                }
                Some("Immunization") => {
                    immunizations += 1;
                    self.immunization(res, &format!("{path}.resource"), entries);
                }
                _ => self.err(
                    "L.68",
                    format!("{path}.resource"),
                    "only Patient and Immunization entries are allowed",
                ),
            }
        }
        if patients != 1 {
            self.err("L.68", "Bundle.entry", "exactly one Patient required");
        }
        if immunizations == 0 {
            self.err("L.68", "Bundle.entry", "at least one Immunization required");
        }
    }

    fn patient(&mut self, p: &Value, path: &str) {
        let Some(obj) = p.as_object() else { return };
        // §K.66: no id, meta, text, telecom, address, gender, identifier … in DM.
        self.only("K.66", path, obj, &["resourceType", "name", "birthDate"]);
        match obj.get("name").and_then(Value::as_array) {
            Some(names) if names.len() == 1 => {
                if let Some(n) = names.first().and_then(Value::as_object) {
                    let np = format!("{path}.name[0]");
                    self.only(
                        "K.64",
                        &np,
                        n,
                        &["family", "given", "prefix", "suffix", "text"],
                    );
                    let has_family = n
                        .get("family")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty());
                    let has_given = n.get("given").and_then(Value::as_array).is_some_and(|g| {
                        !g.is_empty() && g.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty()))
                    });
                    let has_text = n
                        .get("text")
                        .and_then(Value::as_str)
                        .is_some_and(|s| !s.is_empty());
                    if (has_family && has_given) == has_text {
                        self.err("K.64", np, "vc-name-invariant: (family and given) xor text");
                    }
                } else {
                    self.err("K.64", format!("{path}.name[0]"), "name is not an object");
                }
            }
            _ => self.err(
                "K.64",
                format!("{path}.name"),
                "exactly one name required (DM 1..1)",
            ),
        }
        match obj.get("birthDate") {
            None => self.warn("K.65", format!("{path}.birthDate"), "birth date absent"),
            Some(v) => {
                if v.as_str().and_then(FhirDate::parse).is_none() {
                    self.err("K.65", format!("{path}.birthDate"), "not a FHIR date");
                }
            }
        }
    }

    fn immunization(&mut self, r: &Value, path: &str, entries: &[Value]) {
        let Some(obj) = r.as_object() else { return };
        self.only(
            "J.63",
            path,
            obj,
            &[
                "resourceType",
                "meta",
                "status",
                "vaccineCode",
                "patient",
                "occurrenceDateTime",
                "performer",
                "lotNumber",
                "isSubpotent",
            ],
        );
        if let Some(meta) = obj.get("meta") {
            self.meta(meta, &format!("{path}.meta"));
        }
        if obj.get("status").and_then(Value::as_str) != Some("completed") {
            self.err("J.53", format!("{path}.status"), "must be completed");
        }
        self.vaccine_code(obj.get("vaccineCode"), &format!("{path}.vaccineCode"));
        // §J.54, §B.16: patient = {reference: resource:N} resolving to the Patient entry.
        let pp = format!("{path}.patient");
        match obj.get("patient").and_then(Value::as_object) {
            Some(p) => {
                self.only("J.54", &pp, p, &["reference"]);
                let target = p
                    .get("reference")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix("resource:"))
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| entries.get(n))
                    .and_then(|e| e.pointer("/resource/resourceType"))
                    .and_then(Value::as_str);
                if target != Some("Patient") {
                    self.err(
                        "B.16",
                        format!("{pp}.reference"),
                        "must be resource:N resolving to the Patient",
                    );
                }
            }
            None => self.err("J.54", pp, "patient reference required"),
        }
        match obj.get("occurrenceDateTime").and_then(Value::as_str) {
            Some(s) => {
                let full = s.len() == 10 && FhirDate::parse(s).is_some_and(|d| d.is_full());
                if !full {
                    if FhirDate::parse_date_time(s).is_some() {
                        self.warn(
                            "J.55",
                            format!("{path}.occurrenceDateTime"),
                            "SHOULD be YYYY-MM-DD",
                        );
                    } else {
                        self.err(
                            "J.55",
                            format!("{path}.occurrenceDateTime"),
                            "not a FHIR dateTime",
                        );
                    }
                }
            }
            None => self.err(
                "J.55",
                format!("{path}.occurrenceDateTime"),
                "occurrenceDateTime required",
            ),
        }
        if let Some(perf) = obj.get("performer") {
            self.performer(perf, &format!("{path}.performer"));
        }
        if let Some(lot) = obj.get("lotNumber") {
            match lot.as_str() {
                Some(s) if !s.is_empty() => {
                    if s.chars().count() >= 20 {
                        self.warn(
                            "J.57",
                            format!("{path}.lotNumber"),
                            "SHOULD be under 20 characters",
                        );
                    }
                    if s.to_ascii_lowercase().contains("lot") {
                        self.warn(
                            "J.57",
                            format!("{path}.lotNumber"),
                            "SHOULD NOT contain 'lot'",
                        );
                    }
                }
                _ => self.err(
                    "J.57",
                    format!("{path}.lotNumber"),
                    "must be a non-empty string",
                ),
            }
        }
        if let Some(s) = obj.get("isSubpotent") {
            if s != &Value::Bool(true) {
                self.err(
                    "J.60",
                    format!("{path}.isSubpotent"),
                    "only true may be populated",
                );
            }
        }
    }

    fn meta(&mut self, meta: &Value, path: &str) {
        let Some(m) = meta.as_object() else {
            self.err("J.59", path, "meta is not an object");
            return;
        };
        self.only("B.11", path, m, &["security"]);
        let sec = m.get("security").and_then(Value::as_array);
        match sec.map(Vec::as_slice) {
            Some([one]) => {
                let ok_system = one.get("system").and_then(Value::as_str) == Some(IAL_SYSTEM);
                let ok_code = one
                    .get("code")
                    .and_then(Value::as_str)
                    .is_some_and(|c| IAL_CODES.contains(&c));
                if let Some(o) = one.as_object() {
                    self.only(
                        "J.59",
                        &format!("{path}.security[0]"),
                        o,
                        &["system", "code"],
                    );
                }
                if !(ok_system && ok_code) {
                    self.err(
                        "J.59",
                        format!("{path}.security[0]"),
                        "must be an IAL code of https://smarthealth.cards/ial",
                    );
                }
            }
            _ => self.err(
                "J.59",
                format!("{path}.security"),
                "exactly one security label allowed",
            ),
        }
    }

    fn vaccine_code(&mut self, vc: Option<&Value>, path: &str) {
        let Some(vc) = vc.and_then(Value::as_object) else {
            self.err("J.56", path, "vaccineCode required");
            return;
        };
        self.only("J.56", path, vc, &["coding"]);
        let codings = vc
            .get("coding")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if codings.is_empty() {
            self.err(
                "J.56",
                format!("{path}.coding"),
                "at least one coding required",
            );
        }
        let mut seen: Vec<&str> = Vec::new();
        for (i, c) in codings.iter().enumerate() {
            let cp = format!("{path}.coding[{i}]");
            let Some(co) = c.as_object() else {
                self.err("J.56", cp, "coding is not an object");
                continue;
            };
            self.only("B.14", &cp, co, &["system", "code"]);
            let system = co.get("system").and_then(Value::as_str).unwrap_or("");
            if ![CVX, SNOMED, ICD11].contains(&system) {
                self.err(
                    "J.56",
                    format!("{cp}.system"),
                    "closed slicing: CVX, SNOMED CT or ICD-11 only",
                );
            }
            if seen.contains(&system) {
                self.err(
                    "J.56",
                    format!("{cp}.system"),
                    "each code system slice is 0..1",
                );
            }
            seen.push(system);
            if co
                .get("code")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                self.err("J.56", format!("{cp}.code"), "code required");
            }
        }
        if codings.len() > 1 {
            self.warn(
                "J.56",
                format!("{path}.coding"),
                "SHOULD NOT send several codes",
            );
        }
    }

    fn performer(&mut self, perf: &Value, path: &str) {
        match perf.as_array().map(Vec::as_slice) {
            Some([one]) => {
                let Some(po) = one.as_object() else {
                    self.err("J.58", path, "performer is not an object");
                    return;
                };
                self.only("J.58", &format!("{path}[0]"), po, &["actor"]);
                match po.get("actor").and_then(Value::as_object) {
                    Some(actor) => {
                        self.only("J.58", &format!("{path}[0].actor"), actor, &["display"]);
                        match actor.get("display").and_then(Value::as_str) {
                            Some(d) if !d.is_empty() => {
                                if d.chars().count() >= 30 {
                                    self.warn(
                                        "J.58",
                                        format!("{path}[0].actor.display"),
                                        "SHOULD be under 30 characters",
                                    );
                                }
                            }
                            _ => self.err(
                                "J.58",
                                format!("{path}[0].actor.display"),
                                "display required (1..1)",
                            ),
                        }
                    }
                    None => self.err("J.58", format!("{path}[0].actor"), "actor required"),
                }
            }
            _ => self.err("J.58", path, "performer is 0..1"),
        }
    }
}
