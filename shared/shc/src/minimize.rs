//! Bundle minimization for QR-bound cards (rules 10–16).
//!
//! Works on `serde_json::Value` so that member order and number formatting of the input survive
//! (rule 9: the published examples are byte-compared). It is idempotent: a minimized bundle comes
//! back unchanged, which is how the examples' `-a-` bundles reproduce their `-c-` payloads.
//!
//! Kept on purpose: `meta.security` (rule 11 allows it; the Vaccination IG uses it for identity
//! assurance, rule 59). The spec's example generator drops `meta` entirely; vaxcred does not.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::Error;

/// Minimizes a FHIR `Bundle` in place: removes `Resource.id`, `Resource.text`, `Resource.meta`
/// (except `meta.security`), `CodeableConcept.text`, `Coding.display`; rewrites every `fullUrl` to
/// `resource:N` and every resolvable `Reference.reference` to the same short form.
pub fn minimize_bundle(bundle: &mut Value) -> Result<(), Error> {
    let obj = bundle
        .as_object_mut()
        .ok_or_else(|| Error::Bundle("not a JSON object".into()))?;
    if obj.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(Error::Bundle("resourceType is not Bundle".into()));
    }
    obj.shift_remove("id");
    obj.shift_remove("meta");
    obj.shift_remove("text");
    let entries = obj
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| Error::Bundle("Bundle has no entry array".into()))?;

    // Every way an entry can be referred to: its fullUrl, the fullUrl's last two segments
    // (`Patient/123` for `https://ehr/fhir/Patient/123`), and `Type/id` of its resource.
    let mut targets: HashMap<String, String> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let short = format!("resource:{i}");
        if let Some(full) = entry.get("fullUrl").and_then(Value::as_str) {
            targets.insert(full.to_owned(), short.clone());
            targets
                .entry(last_two_segments(full))
                .or_insert_with(|| short.clone());
        }
        let res = entry.get("resource");
        let rtype = res
            .and_then(|r| r.get("resourceType"))
            .and_then(Value::as_str);
        let id = res.and_then(|r| r.get("id")).and_then(Value::as_str);
        if let (Some(t), Some(id)) = (rtype, id) {
            targets.entry(format!("{t}/{id}")).or_insert(short);
        }
    }

    for (i, entry) in entries.iter_mut().enumerate() {
        let entry = entry
            .as_object_mut()
            .ok_or_else(|| Error::Bundle("Bundle.entry is not an object".into()))?;
        let short = Value::String(format!("resource:{i}"));
        match entry.get_mut("fullUrl") {
            Some(v) => *v = short,
            None => {
                entry.shift_insert(0, "fullUrl".into(), short);
            }
        }
        for key in ["id", "extension", "link", "search", "request", "response"] {
            entry.shift_remove(key);
        }
        if let Some(resource) = entry.get_mut("resource").and_then(Value::as_object_mut) {
            minimize_resource(resource, &targets);
        }
    }
    Ok(())
}

fn last_two_segments(url: &str) -> String {
    let mut parts = url.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(t)) => format!("{t}/{id}"),
        _ => url.to_owned(),
    }
}

fn minimize_resource(resource: &mut Map<String, Value>, targets: &HashMap<String, String>) {
    resource.shift_remove("id");
    resource.shift_remove("text");
    let security = resource
        .get("meta")
        .and_then(|m| m.get("security"))
        .cloned();
    match security {
        Some(security) => {
            if let Some(meta) = resource.get_mut("meta") {
                let mut only = Map::new();
                only.insert("security".into(), security);
                *meta = Value::Object(only);
            }
        }
        None => {
            resource.shift_remove("meta");
        }
    }
    for value in resource.values_mut() {
        clean(value, targets);
    }
}

fn clean(value: &mut Value, targets: &HashMap<String, String>) {
    match value {
        Value::Object(obj) => {
            if obj.contains_key("coding") {
                obj.shift_remove("text");
            }
            if obj.contains_key("system") && obj.contains_key("code") {
                obj.shift_remove("display");
            }
            if let Some(Value::String(reference)) = obj.get_mut("reference") {
                if let Some(short) = targets.get(reference.as_str()) {
                    *reference = short.clone();
                }
            }
            for v in obj.values_mut() {
                clean(v, targets);
            }
        }
        Value::Array(items) => {
            for v in items {
                clean(v, targets);
            }
        }
        _ => {}
    }
}
