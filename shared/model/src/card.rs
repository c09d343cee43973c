//! Model → the minimized FHIR Bundle that goes into a SMART Health Card (spec-checklist §B, §J–L).
//!
//! Built with `serde_json::Map` (the workspace enables `preserve_order`) so member order is the
//! one of the published SHC examples — Bundle `resourceType,type,entry`; entry `fullUrl,resource`;
//! Patient `resourceType,name,birthDate`; Immunization `resourceType,[meta],status,vaccineCode,
//! patient,occurrenceDateTime,[performer],[lotNumber],[isSubpotent]` — and only data-minimization
//! (DM) elements appear. Never built through `fhir-sdk` (DESIGN.md §10: it rewrites numbers and
//! drops elements).

use serde_json::{json, Map, Value};

use crate::error::Reject;
use crate::model::{Dose, HumanName, Patient, IAL_SYSTEM};
use crate::normalize::IAL_CODES;

/// Where `meta.security` (IAL, §J.59) comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MetaSecurity {
    /// No `meta` at all (as the SHC example generator emits).
    #[default]
    Omit,
    /// Each dose's own IAL from its source, when it has one.
    FromDoses,
    /// The issuer attests this IAL for every dose (must be one of `IAL1.2`, `IAL1.4`, `IAL2`, `IAL3`;
    /// anything else is omitted).
    Fixed(String),
}

/// Card-building options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardOptions {
    /// IAL policy.
    pub meta_security: MetaSecurity,
}

/// Builds the card bundle: Patient as `resource:0`, one Immunization per dose as `resource:1..n`
/// in the given order. Refuses an empty dose list and doses of several disease groups (§L.69).
pub fn card_bundle(patient: &Patient, doses: &[Dose], opts: &CardOptions) -> Result<Value, Reject> {
    let first = doses.first().ok_or(Reject::NoDoses)?;
    if doses.iter().any(|d| d.disease != first.disease) {
        return Err(Reject::DiseaseGroupMixed);
    }
    let mut entries = Vec::with_capacity(doses.len() + 1);
    entries.push(entry(0, patient_resource(patient)));
    for (i, d) in doses.iter().enumerate() {
        entries.push(entry(i + 1, immunization_resource(d, opts)));
    }
    let mut bundle = Map::new();
    bundle.insert("resourceType".into(), "Bundle".into());
    bundle.insert("type".into(), "collection".into());
    bundle.insert("entry".into(), Value::Array(entries));
    Ok(Value::Object(bundle))
}

fn entry(index: usize, resource: Value) -> Value {
    let mut e = Map::new();
    e.insert("fullUrl".into(), format!("resource:{index}").into());
    e.insert("resource".into(), resource);
    Value::Object(e)
}

fn patient_resource(p: &Patient) -> Value {
    let mut name = Map::new();
    match &p.name {
        HumanName::Parts {
            family,
            given,
            suffix,
        } => {
            name.insert("family".into(), family.as_str().into());
            name.insert("given".into(), given.clone().into());
            if !suffix.is_empty() {
                name.insert("suffix".into(), suffix.clone().into());
            }
        }
        HumanName::Text { text } => {
            name.insert("text".into(), text.as_str().into());
        }
    }
    let mut r = Map::new();
    r.insert("resourceType".into(), "Patient".into());
    r.insert("name".into(), Value::Array(vec![Value::Object(name)]));
    r.insert("birthDate".into(), p.birth_date.to_string().into());
    Value::Object(r)
}

fn immunization_resource(d: &Dose, opts: &CardOptions) -> Value {
    let mut r = Map::new();
    r.insert("resourceType".into(), "Immunization".into());
    let ial = match &opts.meta_security {
        MetaSecurity::Omit => None,
        MetaSecurity::FromDoses => d.ial.as_deref(),
        MetaSecurity::Fixed(code) => Some(code.as_str()),
    };
    if let Some(ial) = ial.filter(|c| IAL_CODES.contains(c)) {
        r.insert(
            "meta".into(),
            json!({ "security": [{ "system": IAL_SYSTEM, "code": ial }] }),
        );
    }
    r.insert("status".into(), "completed".into());
    r.insert(
        "vaccineCode".into(),
        json!({ "coding": [{ "system": d.vaccine.system, "code": d.vaccine.code }] }),
    );
    r.insert("patient".into(), json!({ "reference": "resource:0" }));
    r.insert("occurrenceDateTime".into(), d.occurrence.to_string().into());
    if let Some(p) = &d.performer {
        r.insert("performer".into(), json!([{ "actor": { "display": p } }]));
    }
    if let Some(lot) = &d.lot_number {
        r.insert("lotNumber".into(), lot.as_str().into());
    }
    // §J.60: only `true` is ever written.
    if d.is_subpotent {
        r.insert("isSubpotent".into(), true.into());
    }
    Value::Object(r)
}
