//! Revocation lists (rules 29–32): `{"kid":…,"method":"rid","ctr":n,"rids":["rid[.ts]",…]}` at
//! `<iss>/.well-known/crl/<kid>.json`.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Problem, ProblemKind};
use crate::rid;

/// A revocation list for one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Crl {
    /// The key it applies to.
    pub kid: String,
    /// Always `rid`.
    pub method: String,
    /// Counter, starting at 1, incremented on each change (emitted as an integer; rule 29).
    pub ctr: u64,
    /// Revoked ids, each optionally `.` + NumericDate: revoked if issued before that time.
    pub rids: Vec<String>,
}

impl Crl {
    /// An empty list for `kid` at counter 1.
    pub fn new(kid: impl Into<String>) -> Self {
        Crl {
            kid: kid.into(),
            method: "rid".into(),
            ctr: 1,
            rids: Vec::new(),
        }
    }

    /// Parses a CRL leniently (`ctr` as integer or numeric string, rule 29) and reports every
    /// defect: wrong method, malformed or duplicate rids.
    pub fn parse(value: &Value) -> Result<(Self, Vec<Problem>), Problem> {
        let bad = |why: &str| Problem::error(ProblemKind::Revocation, why.to_owned());
        let kid = value
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("CRL lacks `kid`"))?;
        let method = value
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ctr = match value.get("ctr") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .ok_or_else(|| bad("CRL lacks a numeric `ctr` (rule 29)"))?;
        let rids: Vec<String> = value
            .get("rids")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("CRL lacks a `rids` array (rule 29)"))?
            .iter()
            .map(|r| r.as_str().unwrap_or_default().to_owned())
            .collect();
        let mut problems = Vec::new();
        if method != "rid" {
            problems.push(bad("CRL `method` must be `rid` (rule 29)"));
        }
        let mut seen = HashSet::new();
        for entry in &rids {
            let (id, ts) = split_entry(entry);
            if !rid::is_valid(id) {
                problems.push(bad("CRL entry is not 1–24 base64url characters (rule 28)"));
            }
            if ts.is_some_and(|t| t.parse::<f64>().is_err()) {
                problems.push(bad("CRL entry timestamp is not a NumericDate (rule 30)"));
            }
            if !seen.insert(id) {
                problems.push(bad("CRL lists the same rid twice"));
            }
        }
        Ok((
            Crl {
                kid: kid.to_owned(),
                method: method.to_owned(),
                ctr,
                rids,
            },
            problems,
        ))
    }

    /// Whether a card with `rid` issued at `nbf` is revoked (rule 32).
    pub fn revokes(&self, card_rid: &str, nbf: f64) -> bool {
        self.rids.iter().any(|entry| {
            let (id, ts) = split_entry(entry);
            id == card_rid
                && match ts.and_then(|t| t.parse::<f64>().ok()) {
                    Some(ts) => nbf < ts,
                    None => true,
                }
        })
    }
}

fn split_entry(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('.') {
        Some((id, ts)) => (id, Some(ts)),
        None => (entry, None),
    }
}
