//! Vaccine value sets as data, grouped by disease (one card = one disease group, spec-checklist
//! §L.69, §M.70–71).
//!
//! The built-in configuration is `valuesets/groups.json` plus the FHIR `ValueSet` files it names,
//! embedded at compile time, so a binary never runs without its terminology. Other deployments
//! can build a [`ValueSets`] from their own files with [`ValueSets::from_config`].

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Reject;
use crate::model::{CVX, ICD11, ICD11_TERM, SNOMED};

/// Files under `shared/model/valuesets/`, embedded. `groups.json` names the others.
const EMBEDDED: &[(&str, &str)] = &[
    ("groups.json", include_str!("../valuesets/groups.json")),
    (
        "covid-19/immunization-covid-cvx.json",
        include_str!("../valuesets/covid-19/immunization-covid-cvx.json"),
    ),
    (
        "covid-19/immunization-covid-all.json",
        include_str!("../valuesets/covid-19/immunization-covid-all.json"),
    ),
    (
        "orthopoxvirus/immunization-orthopoxvirus-cvx.json",
        include_str!("../valuesets/orthopoxvirus/immunization-orthopoxvirus-cvx.json"),
    ),
];

/// One disease group: the codes whose doses may share a card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiseaseGroup {
    /// Stable id (`covid-19`).
    pub id: String,
    /// Human label.
    pub label: String,
    /// The SHC `vc.type` entry for this group, when one exists (`https://smarthealth.cards#covid19`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shc_type: Option<String>,
}

/// How a single coding classifies against the value sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeClass<'a> {
    /// In the value sets of this group.
    Group(&'a DiseaseGroup),
    /// A valid code, but too unspecific to issue (CVX 213, 500).
    Unspecific,
    /// Not in any configured group.
    Unknown,
}

/// The loaded value sets.
#[derive(Debug, Clone)]
pub struct ValueSets {
    groups: Vec<DiseaseGroup>,
    /// (canonical system, code) → index into `groups`.
    codes: HashMap<(String, String), usize>,
    unspecific: HashSet<(String, String)>,
}

#[derive(Deserialize)]
struct GroupsFile {
    groups: Vec<GroupEntry>,
    #[serde(default)]
    unspecific: Vec<UnspecificEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupEntry {
    id: String,
    label: String,
    #[serde(default)]
    shc_type: Option<String>,
    files: Vec<String>,
}

#[derive(Deserialize)]
struct UnspecificEntry {
    system: String,
    code: String,
}

impl ValueSets {
    /// The value sets embedded from `shared/model/valuesets/`, loaded once.
    pub fn builtin() -> Result<&'static Self, Reject> {
        static BUILTIN: OnceLock<Result<ValueSets, Reject>> = OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                let file = |name: &str| {
                    EMBEDDED
                        .iter()
                        .find(|(n, _)| *n == name)
                        .map(|(_, text)| (*text).to_owned())
                };
                let groups = file("groups.json").ok_or_else(|| Reject::ValueSetInvalid {
                    file: "groups.json".into(),
                })?;
                Self::from_config(&groups, file)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Builds value sets from a `groups.json` text and a function returning the text of each
    /// `ValueSet` file it names. Group order is priority order (first = default card group).
    pub fn from_config(
        groups_json: &str,
        mut file: impl FnMut(&str) -> Option<String>,
    ) -> Result<Self, Reject> {
        let invalid = |f: &str| Reject::ValueSetInvalid { file: f.to_owned() };
        let cfg: GroupsFile =
            serde_json::from_str(groups_json).map_err(|_| invalid("groups.json"))?;
        let mut out = Self {
            groups: Vec::new(),
            codes: HashMap::new(),
            unspecific: HashSet::new(),
        };
        for u in cfg.unspecific {
            out.unspecific
                .insert((canonical_system(&u.system).to_owned(), u.code));
        }
        for (index, g) in cfg.groups.into_iter().enumerate() {
            for name in &g.files {
                let text = file(name).ok_or_else(|| invalid(name))?;
                let vs: Value = serde_json::from_str(&text).map_err(|_| invalid(name))?;
                let includes = vs
                    .pointer("/compose/include")
                    .and_then(Value::as_array)
                    .ok_or_else(|| invalid(name))?;
                for inc in includes {
                    let system = inc
                        .get("system")
                        .and_then(Value::as_str)
                        .ok_or_else(|| invalid(name))?;
                    let system = canonical_system(system).to_owned();
                    for concept in inc
                        .get("concept")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let code = concept
                            .get("code")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid(name))?;
                        let key = (system.clone(), code.to_owned());
                        if out.unspecific.contains(&key) {
                            continue;
                        }
                        // A code listed in two groups would make cards ambiguous: first group wins.
                        out.codes.entry(key).or_insert(index);
                    }
                }
            }
            out.groups.push(DiseaseGroup {
                id: g.id,
                label: g.label,
                shc_type: g.shc_type,
            });
        }
        Ok(out)
    }

    /// The configured groups, in priority order.
    pub fn groups(&self) -> &[DiseaseGroup] {
        &self.groups
    }

    /// A group by id.
    pub fn group(&self, id: &str) -> Option<&DiseaseGroup> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// The disease group of a code, if it is in a configured value set and specific enough.
    /// Accepts both ICD-11 system URIs and the CVX/SNOMED OIDs real feeds send.
    pub fn disease_of(&self, system: &str, code: &str) -> Option<&DiseaseGroup> {
        match self.classify(system, code) {
            CodeClass::Group(g) => Some(g),
            _ => None,
        }
    }

    /// Classifies one coding.
    pub fn classify(&self, system: &str, code: &str) -> CodeClass<'_> {
        let key = (
            canonical_system(system.trim()).to_owned(),
            code.trim().to_owned(),
        );
        if self.unspecific.contains(&key) {
            return CodeClass::Unspecific;
        }
        match self.codes.get(&key).and_then(|&i| self.groups.get(i)) {
            Some(g) => CodeClass::Group(g),
            None => CodeClass::Unknown,
        }
    }

    /// Every (system, code) of one group, sorted (for tests, listings and configuration checks).
    pub fn codes_of(&self, group_id: &str) -> Vec<(String, String)> {
        let Some(index) = self.groups.iter().position(|g| g.id == group_id) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = self
            .codes
            .iter()
            .filter(|(_, &i)| i == index)
            .map(|(k, _)| k.clone())
            .collect();
        out.sort();
        out
    }

    /// Number of (system, code) pairs across all groups.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    /// Whether no code is configured.
    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// Maps the synonyms feeds use onto the system URIs cards carry: the TERM ICD-11 URI (§M.71) and
/// the HL7 OIDs of CVX and SNOMED CT (v2-era interfaces still send them in FHIR).
pub fn canonical_system(system: &str) -> &str {
    match system {
        ICD11_TERM => ICD11,
        "urn:oid:2.16.840.1.113883.12.292" => CVX,
        "urn:oid:2.16.840.1.113883.6.96" => SNOMED,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_covid_group_has_the_45_cvx_codes_and_not_213_500() {
        let vs = ValueSets::builtin().unwrap();
        assert_eq!(vs.groups().first().unwrap().id, "covid-19");
        // §M.70: 45 codes on master.
        for code in [
            "207", "208", "210", "211", "212", "217", "218", "219", "221", "225", "226", "227",
            "228", "229", "230", "300", "301", "302", "308", "309", "310", "311", "312", "313",
        ] {
            assert_eq!(vs.disease_of(CVX, code).unwrap().id, "covid-19", "{code}");
        }
        for n in 501..=521 {
            assert!(vs.disease_of(CVX, &n.to_string()).is_some(), "{n}");
        }
        assert_eq!(vs.classify(CVX, "213"), CodeClass::Unspecific);
        assert_eq!(vs.classify(CVX, "500"), CodeClass::Unspecific);
        assert_eq!(vs.classify(CVX, "03"), CodeClass::Unknown);
    }

    #[test]
    fn both_icd11_uris_and_oids_are_accepted() {
        // §M.71: TERM files use icd11/mms, the IG fixes icd/release/11/mms.
        let vs = ValueSets::builtin().unwrap();
        assert!(vs.disease_of(ICD11, "XM68M6").is_some());
        assert!(vs.disease_of(ICD11_TERM, "XM68M6").is_some());
        assert!(vs
            .disease_of("urn:oid:2.16.840.1.113883.12.292", "207")
            .is_some());
        assert_eq!(vs.disease_of(CVX, "206").unwrap().id, "orthopoxvirus");
    }

    #[test]
    fn broken_config_is_a_typed_error() {
        let err = ValueSets::from_config(
            r#"{"groups":[{"id":"x","label":"x","files":["missing.json"]}]}"#,
            |_| None,
        )
        .unwrap_err();
        assert_eq!(err.code(), "value-set-invalid");
    }
}
