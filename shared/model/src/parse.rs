//! Ingest parsing: bytes → a checked FHIR envelope (a bare Immunization or an accepted Bundle).
//!
//! # Why not `fhir-sdk` here
//! Ingest is parsed into `serde_json::Value` and read with small, lenient accessors instead of
//! `fhir-sdk`'s typed models. `fhir-sdk` models R4B with strict enums and `deny`-style decoding of
//! some elements, so one unexpected code (an R5 `Bundle.type` of `subscription-notification`, a
//! vendor `status`, a malformed extension) fails the whole resource, while the issue requires that
//! unknown elements and extensions never fail a parse and that each Immunization is judged on its
//! own. It is also a heavy compile on a 2-core CI, and a re-serialisation through it changes bytes
//! (`176` → `176.0`, DESIGN.md §10), so it could never build the card anyway. The elements we read
//! are few (about twenty paths); each is read with `Value::get`/`as_str`, so a wrong type is
//! "absent", never a panic. A service that talks to an EHR may still use `fhir-sdk` as its client
//! and hand the response bytes to [`parse`].
//!
//! Strictness lives in `normalize`: what the card needs (a patient, a name, a valid date, a known
//! code) is checked there, per Immunization.

use serde_json::Value;

use crate::error::Reject;

/// Default input limit (4 MiB): a searchset with a long immunization history is ~100 KiB, so
/// this only stops abuse and mistakes (a whole `$everything` export on the ingest queue).
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Bundle types accepted on ingest (DESIGN.md §3). `subscription-notification` is the R4B/R5
/// name; the R4 Subscriptions Backport sends `history` with a SubscriptionStatus `Parameters` first.
const BUNDLE_TYPES: &[&str] = &[
    "transaction",
    "batch",
    "collection",
    "history",
    "searchset",
    "subscription-notification",
];

/// What the top-level resource was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    /// A bare `Immunization`.
    Immunization,
    /// A `Bundle` of the given (accepted) type.
    Bundle(String),
}

/// A `Bundle.entry.request` (transaction, batch, history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) url: String,
}

/// One entry: a resource with its `fullUrl`, or a bare request (a history `DELETE`).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) full_url: Option<String>,
    pub(crate) resource: Option<Value>,
    pub(crate) request: Option<Request>,
}

/// A parsed message, ready for [`crate::normalize`].
#[derive(Debug, Clone)]
pub struct Parsed {
    kind: InputKind,
    pub(crate) entries: Vec<Entry>,
}

impl Parsed {
    /// What the top-level resource was.
    pub fn kind(&self) -> &InputKind {
        &self.kind
    }

    /// Number of entries (1 for a bare Immunization).
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Number of Immunization resources in the message.
    pub fn immunization_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| {
                e.resource
                    .as_ref()
                    .is_some_and(|r| resource_type(r) == Some("Immunization"))
            })
            .count()
    }
}

/// Parses a message with the [`DEFAULT_MAX_BYTES`] limit.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Reject> {
    parse_with_limit(bytes, DEFAULT_MAX_BYTES)
}

/// Parses a message: size check, JSON, `resourceType`, accepted bundle type. Unknown elements are
/// ignored; entries that are not objects are dropped.
pub fn parse_with_limit(bytes: &[u8], limit: usize) -> Result<Parsed, Reject> {
    let root = parse_json(bytes, limit)?;
    match resource_type(&root) {
        Some("Immunization") => Ok(Parsed {
            kind: InputKind::Immunization,
            entries: vec![Entry {
                full_url: None,
                resource: Some(root),
                request: None,
            }],
        }),
        Some("Bundle") => {
            let ty = root.get("type").and_then(Value::as_str).unwrap_or("");
            if !BUNDLE_TYPES.contains(&ty) {
                return Err(Reject::bundle_type(ty));
            }
            let kind = InputKind::Bundle(ty.to_owned());
            let entries = bundle_entries(root);
            Ok(Parsed { kind, entries })
        }
        Some(other) => Err(Reject::wrong_type(other)),
        None => Err(Reject::NotFhirJson),
    }
}

/// A Patient fetched from the source (or given on the command line), for [`crate::normalize`].
#[derive(Debug, Clone)]
pub struct FetchedPatient {
    pub(crate) resource: Value,
}

impl FetchedPatient {
    /// Parses a `Patient`, or a Bundle (a search result) whose first Patient entry is taken.
    pub fn parse(bytes: &[u8]) -> Result<Self, Reject> {
        let root = parse_json(bytes, DEFAULT_MAX_BYTES)?;
        Self::from_value(root)
    }

    /// From an already-decoded JSON value.
    pub fn from_value(root: Value) -> Result<Self, Reject> {
        match resource_type(&root) {
            Some("Patient") => Ok(Self { resource: root }),
            Some("Bundle") => bundle_entries(root)
                .into_iter()
                .find_map(|e| match e.resource {
                    Some(r) if resource_type(&r) == Some("Patient") => Some(Self { resource: r }),
                    _ => None,
                })
                .ok_or_else(|| Reject::wrong_type("Bundle")),
            Some(other) => Err(Reject::wrong_type(other)),
            None => Err(Reject::NotFhirJson),
        }
    }
}

fn parse_json(bytes: &[u8], limit: usize) -> Result<Value, Reject> {
    if bytes.len() > limit {
        return Err(Reject::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    // serde_json's recursion limit (128) bounds nesting, so hostile input cannot blow the stack.
    let root: Value = serde_json::from_slice(bytes).map_err(|_| Reject::NotFhirJson)?;
    if !root.is_object() {
        return Err(Reject::NotFhirJson);
    }
    Ok(root)
}

fn bundle_entries(mut root: Value) -> Vec<Entry> {
    let Some(Value::Array(entries)) = root.get_mut("entry").map(Value::take) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter_map(|mut e| {
            let obj = e.as_object_mut()?;
            let full_url = obj
                .get("fullUrl")
                .and_then(Value::as_str)
                .map(|s| s.trim().to_owned());
            let resource = obj.remove("resource").filter(Value::is_object);
            let request = obj.get("request").and_then(|r| {
                Some(Request {
                    method: r.get("method")?.as_str()?.trim().to_ascii_uppercase(),
                    url: r.get("url")?.as_str()?.trim().to_owned(),
                })
            });
            Some(Entry {
                full_url,
                resource,
                request,
            })
        })
        .collect()
}

/// `resourceType` as a string, if present.
pub(crate) fn resource_type(v: &Value) -> Option<&str> {
    v.get("resourceType").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_shapes() {
        assert_eq!(parse_with_limit(b"{}", 1).unwrap_err().code(), "too-large");
        assert_eq!(parse(b"\xff").unwrap_err().code(), "not-fhir-json");
        assert_eq!(parse(b"[1]").unwrap_err().code(), "not-fhir-json");
        assert_eq!(parse(br#"{"a":1}"#).unwrap_err().code(), "not-fhir-json");
        assert_eq!(
            parse(br#"{"resourceType":"Observation"}"#)
                .unwrap_err()
                .code(),
            "wrong-resource-type"
        );
        assert_eq!(
            parse(br#"{"resourceType":"Bundle","type":"document"}"#)
                .unwrap_err()
                .code(),
            "bundle-type-unsupported"
        );
        let p = parse(br#"{"resourceType":"Bundle","type":"history","entry":[1,{"request":{"method":"delete","url":"Immunization/1"}}]}"#).unwrap();
        assert_eq!(p.entry_count(), 1);
        assert_eq!(p.kind(), &InputKind::Bundle("history".into()));
    }
}
