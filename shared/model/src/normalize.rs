//! FHIR R4 → credential model: patient resolution and identity, one dose event per Immunization,
//! per-Immunization skip reasons.
//!
//! Lenient where FHIR and real feeds vary (several names, codings, performers; OIDs for CVX;
//! surrounding whitespace; `Lot #` prefixes), strict where the card needs it (a resolvable patient
//! with a name and a valid birth date; a specific vaccine code from the value sets; a day-precise
//! occurrence). Every read goes through `Value::get`/`as_*`: a wrong JSON type reads as absent.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::date::FhirDate;
use crate::error::Reject;
use crate::model::{
    ContactKind, ContactPoint, Dose, DoseEvent, HumanName, Identifier, Normalized, NotDone,
    Outcome, Patient, PatientNeeded, Removal, Skipped, SourceKey, SourceVersion, VaccineCode, CVX,
    IAL_SYSTEM, ICD11, SNOMED,
};
use crate::parse::{resource_type, Entry, FetchedPatient, Parsed};
use crate::valuesets::{canonical_system, CodeClass, ValueSets};

/// IAL codes allowed in `meta.security` (§J.59; `IAL1` is not in the ValueSet).
pub const IAL_CODES: &[&str] = &["IAL1.2", "IAL1.4", "IAL2", "IAL3"];

/// Performer display limit: §J.58 says SHOULD be under 30 characters.
pub const PERFORMER_MAX_CHARS: usize = 29;

/// Normalizes with the built-in value sets.
pub fn normalize(
    parsed: &Parsed,
    fetched_patient: Option<&FetchedPatient>,
) -> Result<Outcome, Reject> {
    normalize_with(parsed, fetched_patient, ValueSets::builtin()?)
}

/// Normalizes a parsed message. `fetched_patient` is the Patient fetched after a previous
/// [`Outcome::PatientNeeded`] (or given on the command line).
pub fn normalize_with(
    parsed: &Parsed,
    fetched_patient: Option<&FetchedPatient>,
    value_sets: &ValueSets,
) -> Result<Outcome, Reject> {
    let ctx = Ctx {
        entries: &parsed.entries,
    };
    let immunizations: Vec<(usize, &Entry, &Value)> = parsed
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let r = e.resource.as_ref()?;
            (resource_type(r) == Some("Immunization")).then_some((i, e, r))
        })
        .collect();
    if immunizations.is_empty() {
        return Err(Reject::NoImmunization);
    }

    // Patient: every Immunization must lead to the same person.
    let mut found: Vec<(&Value, Option<String>)> = Vec::new();
    let mut needed: Option<String> = None;
    for &(i, _, imm) in &immunizations {
        match ctx.resolve_patient(i, imm, fetched_patient)? {
            PatientRef::Found(p, reference) => found.push((p, reference)),
            PatientRef::Fetch(reference) => {
                needed.get_or_insert(reference);
            }
        }
    }
    if let Some(reference) = needed {
        return Ok(Outcome::PatientNeeded(PatientNeeded { reference }));
    }
    let mut patient: Option<Patient> = None;
    for (resource, reference) in found {
        let p = patient_from_fhir(resource, reference)?;
        match &patient {
            None => patient = Some(p),
            Some(first) if first.identity() != p.identity() => {
                return Err(Reject::MultiplePatients)
            }
            Some(_) => {}
        }
    }
    let Some(patient) = patient else {
        return Err(Reject::NoImmunization);
    };

    let mut events = Vec::new();
    let mut skipped = Vec::new();
    for (i, entry) in parsed.entries.iter().enumerate() {
        match &entry.resource {
            Some(imm) if resource_type(imm) == Some("Immunization") => {
                match ctx.immunization_event(i, entry, imm, value_sets) {
                    (Some(ev), skip) => {
                        events.push(ev);
                        skipped.extend(skip);
                    }
                    (None, skip) => skipped.extend(skip),
                }
            }
            None => {
                if let Some(ev) = deleted_immunization(entry) {
                    events.push(ev);
                }
            }
            Some(_) => {}
        }
    }
    Ok(Outcome::Ready(Normalized {
        patient,
        events,
        skipped,
    }))
}

/// A patient reference resolved inside the message (or to the fetched Patient), or to be fetched.
enum PatientRef<'a> {
    Found(&'a Value, Option<String>),
    Fetch(String),
}

struct Ctx<'a> {
    entries: &'a [Entry],
}

impl<'a> Ctx<'a> {
    fn resolve_patient(
        &self,
        entry: usize,
        imm: &'a Value,
        fetched: Option<&'a FetchedPatient>,
    ) -> Result<PatientRef<'a>, Reject> {
        let Some(pref) = imm.get("patient").filter(|p| p.is_object()) else {
            return Err(Reject::PatientMissing { entry });
        };
        let reference = str_at(pref, "reference");
        if let Some(reference) = reference {
            if let Some(target) = self.resolve(imm, reference) {
                return if resource_type(target) == Some("Patient") {
                    Ok(PatientRef::Found(target, rest_reference(reference, target)))
                } else {
                    Err(Reject::PatientUnresolved { entry })
                };
            }
            if !is_fetchable(reference) {
                return Err(Reject::PatientUnresolved { entry });
            }
            return match fetched {
                Some(f) => {
                    let want = typed_id(reference).map(|(_, id)| id);
                    let have = str_at(&f.resource, "id");
                    match (want, have) {
                        (Some(w), Some(h)) if w != h => Err(Reject::PatientMismatch),
                        _ => Ok(PatientRef::Found(&f.resource, Some(reference.to_owned()))),
                    }
                }
                None => Ok(PatientRef::Fetch(reference.to_owned())),
            };
        }
        // Identifier-only reference (allowed by FHIR): fetchable by search.
        let ident = pref.get("identifier");
        let value = ident.and_then(|i| str_at(i, "value"));
        if let Some(value) = value {
            let system = ident.and_then(|i| str_at(i, "system")).unwrap_or("");
            return match fetched {
                Some(f) => {
                    let ids = identifiers(&f.resource);
                    if ids.is_empty()
                        || ids
                            .iter()
                            .any(|i| i.value == value && (system.is_empty() || i.system == system))
                    {
                        Ok(PatientRef::Found(&f.resource, None))
                    } else {
                        Err(Reject::PatientMismatch)
                    }
                }
                None => Ok(PatientRef::Fetch(format!(
                    "Patient?identifier={system}|{value}"
                ))),
            };
        }
        Err(Reject::PatientMissing { entry })
    }

    /// Resolves a reference made from `from` (for contained `#id`) within the message.
    fn resolve(&self, from: &'a Value, reference: &str) -> Option<&'a Value> {
        if let Some(local) = reference.strip_prefix('#') {
            return from
                .get("contained")
                .and_then(Value::as_array)?
                .iter()
                .find(|c| str_at(c, "id") == Some(local));
        }
        if let Some(r) = self
            .entries
            .iter()
            .find(|e| e.full_url.as_deref() == Some(reference))
            .and_then(|e| e.resource.as_ref())
        {
            return Some(r);
        }
        let (ty, id) = typed_id(reference)?;
        self.entries
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .find(|r| resource_type(r) == Some(ty) && str_at(r, "id") == Some(id))
    }

    /// The event for one Immunization and, when it yields no dose, why.
    fn immunization_event(
        &self,
        i: usize,
        entry: &Entry,
        imm: &Value,
        vs: &ValueSets,
    ) -> (Option<DoseEvent>, Option<Skipped>) {
        let key = source_key(entry, imm);
        let version = source_version(imm);
        let skip = |key: Option<SourceKey>, reason: Reject| Skipped {
            entry: i,
            source: key,
            message: reason.to_string(),
            reason,
        };
        let status = str_at(imm, "status").unwrap_or("");
        match status {
            "completed" => match self.dose(i, imm, vs, key.clone(), version) {
                Ok(d) => (Some(DoseEvent::Upsert(d)), None),
                Err(reason) => (None, Some(skip(key, reason))),
            },
            "not-done" => match key {
                Some(source) => {
                    let vaccine = choose_code(i, imm, vs).ok().map(|(c, _)| c);
                    let ev = DoseEvent::NotDone(NotDone {
                        source: source.clone(),
                        version,
                        vaccine,
                    });
                    (
                        Some(ev),
                        Some(skip(Some(source), Reject::StatusNotDone { entry: i })),
                    )
                }
                None => (None, Some(skip(None, Reject::StatusNotDone { entry: i }))),
            },
            "entered-in-error" => {
                // Without a source identity, the content hash of what was sent identifies the dose.
                let source = match key {
                    Some(k) => Ok(k),
                    None => self
                        .dose(i, imm, vs, None, version.clone())
                        .map(|d| d.source),
                };
                match source {
                    Ok(source) => (Some(DoseEvent::Remove(Removal { source, version })), None),
                    Err(reason) => (None, Some(skip(None, reason))),
                }
            }
            _ => (None, Some(skip(key, Reject::StatusInvalid { entry: i }))),
        }
    }

    fn dose(
        &self,
        i: usize,
        imm: &Value,
        vs: &ValueSets,
        key: Option<SourceKey>,
        version: SourceVersion,
    ) -> Result<Dose, Reject> {
        let (vaccine, disease) = choose_code(i, imm, vs)?;
        let occurrence = match str_at(imm, "occurrenceDateTime") {
            Some(s) => FhirDate::parse_date_time(s)
                .filter(FhirDate::is_full)
                .ok_or(Reject::OccurrenceInvalid { entry: i })?,
            None if imm.get("occurrenceString").is_some() => {
                return Err(Reject::OccurrenceInvalid { entry: i })
            }
            None => return Err(Reject::OccurrenceMissing { entry: i }),
        };
        let lot_number = str_at(imm, "lotNumber").and_then(clean_lot);
        let performer = self.performer(imm);
        let is_subpotent = imm
            .get("isSubpotent")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let ial = imm
            .pointer("/meta/security")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|c| str_at(c, "system") == Some(IAL_SYSTEM))
            .filter_map(|c| str_at(c, "code"))
            .find(|c| IAL_CODES.contains(c))
            .map(str::to_owned);
        let mut dose = Dose {
            source: SourceKey {
                system: String::new(),
                id: String::new(),
            },
            version,
            vaccine,
            disease,
            occurrence,
            lot_number,
            performer,
            is_subpotent,
            ial,
        };
        dose.source = key.unwrap_or_else(|| content_key(&dose));
        Ok(dose)
    }

    /// §J.58: the performing organisation's display. A person (Practitioner, PractitionerRole)
    /// is never put on a card; the Immunization's `location` is the fallback.
    fn performer(&self, imm: &Value) -> Option<String> {
        for p in imm
            .get("performer")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(actor) = p.get("actor") else {
                continue;
            };
            let reference = str_at(actor, "reference");
            let target = reference.and_then(|r| self.resolve(imm, r));
            let kind = target
                .and_then(resource_type)
                .or_else(|| reference.and_then(typed_id).map(|(t, _)| t))
                .or_else(|| str_at(actor, "type"));
            if matches!(
                kind,
                Some("Practitioner" | "PractitionerRole" | "Patient" | "RelatedPerson")
            ) {
                continue;
            }
            let shown = str_at(actor, "display").or_else(|| target.and_then(|t| str_at(t, "name")));
            if let Some(s) = shown.and_then(clean_display) {
                return Some(s);
            }
        }
        let loc = imm.get("location")?;
        let shown = str_at(loc, "display").or_else(|| {
            str_at(loc, "reference")
                .and_then(|r| self.resolve(imm, r))
                .and_then(|t| str_at(t, "name"))
        });
        shown.and_then(clean_display)
    }
}

/// A `DELETE` of an Immunization in a history or transaction bundle: a removal by logical id.
fn deleted_immunization(entry: &Entry) -> Option<DoseEvent> {
    let req = entry.request.as_ref()?;
    if req.method != "DELETE" {
        return None;
    }
    let path = req.url.split(['?', '#']).next()?;
    let mut parts = path.trim_start_matches('/').split('/');
    if parts.next()? != "Immunization" {
        return None;
    }
    let id = parts.next().filter(|s| !s.is_empty())?;
    let system = entry
        .full_url
        .as_deref()
        .and_then(|u| server_base(u, "Immunization", id))
        .unwrap_or(SourceKey::LOGICAL_ID_SYSTEM);
    Some(DoseEvent::Remove(Removal {
        source: SourceKey {
            system: system.to_owned(),
            id: id.to_owned(),
        },
        version: SourceVersion::default(),
    }))
}

/// Picks the single code for the card: value-set codes only, CVX before SNOMED CT before ICD-11
/// (§J.56: SHOULD NOT send several); unspecific and contradicting codes are refused.
fn choose_code(i: usize, imm: &Value, vs: &ValueSets) -> Result<(VaccineCode, String), Reject> {
    let mut best: Option<(u8, VaccineCode, &str)> = None;
    let mut group: Option<&str> = None;
    let mut unspecific = false;
    for c in imm
        .pointer("/vaccineCode/coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(system), Some(code)) = (str_at(c, "system"), str_at(c, "code")) else {
            continue;
        };
        let system = canonical_system(system);
        match vs.classify(system, code) {
            CodeClass::Group(g) => {
                if group.is_some_and(|id| id != g.id) {
                    return Err(Reject::VaccineCodeConflict { entry: i });
                }
                group = Some(&g.id);
                let rank = match system {
                    CVX => 0,
                    SNOMED => 1,
                    ICD11 => 2,
                    _ => 3,
                };
                if best.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                    best = Some((
                        rank,
                        VaccineCode {
                            system: system.to_owned(),
                            code: code.to_owned(),
                        },
                        &g.id,
                    ));
                }
            }
            CodeClass::Unspecific => unspecific = true,
            CodeClass::Unknown => {}
        }
    }
    match best {
        Some((_, code, group)) => Ok((code, group.to_owned())),
        None if unspecific => Err(Reject::VaccineCodeUnspecific { entry: i }),
        None => Err(Reject::VaccineCodeUnknown { entry: i }),
    }
}

/// Source identity: the first business identifier with system and value; else the logical id
/// namespaced by the server base taken from `fullUrl`; else `None` (the caller hashes content).
fn source_key(entry: &Entry, imm: &Value) -> Option<SourceKey> {
    let ident = imm
        .get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|i| {
            Some(SourceKey {
                system: str_at(i, "system")?.to_owned(),
                id: str_at(i, "value")?.to_owned(),
            })
        });
    if ident.is_some() {
        return ident;
    }
    let id = str_at(imm, "id")?;
    let system = entry
        .full_url
        .as_deref()
        .and_then(|u| server_base(u, "Immunization", id))
        .unwrap_or(SourceKey::LOGICAL_ID_SYSTEM);
    Some(SourceKey {
        system: system.to_owned(),
        id: id.to_owned(),
    })
}

/// `https://ehr/fhir/R4/Immunization/123` → `https://ehr/fhir/R4`.
fn server_base<'u>(full_url: &'u str, ty: &str, id: &str) -> Option<&'u str> {
    if !(full_url.starts_with("http://") || full_url.starts_with("https://")) {
        return None;
    }
    let tail = format!("/{ty}/{id}");
    full_url.strip_suffix(tail.as_str())
}

fn source_version(imm: &Value) -> SourceVersion {
    SourceVersion {
        version_id: imm
            .pointer("/meta/versionId")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        last_updated: imm
            .pointer("/meta/lastUpdated")
            .and_then(Value::as_str)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    }
}

/// Key for an Immunization without id or identifier: SHA-256 of what the card would show.
fn content_key(d: &Dose) -> SourceKey {
    let mut h = Sha256::new();
    for part in [
        d.vaccine.system.as_str(),
        d.vaccine.code.as_str(),
        &d.occurrence.to_string(),
        d.lot_number.as_deref().unwrap_or(""),
        d.performer.as_deref().unwrap_or(""),
        if d.is_subpotent { "subpotent" } else { "" },
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    SourceKey {
        system: SourceKey::CONTENT_SYSTEM.to_owned(),
        id: hex,
    }
}

/// Builds the patient model from a FHIR Patient.
pub(crate) fn patient_from_fhir(
    p: &Value,
    source_reference: Option<String>,
) -> Result<Patient, Reject> {
    let names = p
        .get("name")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let name = choose_name(names).ok_or(Reject::PatientNameMissing)?;
    let birth_date = match str_at(p, "birthDate") {
        None => return Err(Reject::BirthDateMissing),
        Some(s) => FhirDate::parse(s).ok_or(Reject::BirthDateInvalid)?,
    };
    let source_reference =
        source_reference.or_else(|| str_at(p, "id").map(|id| format!("Patient/{id}")));
    let contacts = p
        .get("telecom")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| str_at(t, "use") != Some("old"))
        .filter_map(|t| {
            let kind = match str_at(t, "system")? {
                "phone" | "sms" => ContactKind::Phone,
                "email" => ContactKind::Email,
                _ => return None,
            };
            Some(ContactPoint {
                kind,
                value: str_at(t, "value")?.to_owned(),
                use_: str_at(t, "use").map(str::to_owned),
            })
        })
        .collect();
    Ok(Patient {
        source_reference,
        identifiers: identifiers(p),
        name,
        birth_date,
        contacts,
    })
}

fn identifiers(p: &Value) -> Vec<Identifier> {
    p.get("identifier")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| {
            Some(Identifier {
                system: str_at(i, "system").unwrap_or("").to_owned(),
                value: str_at(i, "value")?.to_owned(),
            })
        })
        .collect()
}

/// §K.64: `official`, else `usual`, else a name without `use`, else any other current name;
/// `old` and `maiden` names are never used.
fn choose_name(names: &[Value]) -> Option<HumanName> {
    let rank = |n: &Value| match str_at(n, "use") {
        Some("official") => Some(0),
        Some("usual") => Some(1),
        None => Some(2),
        Some("old" | "maiden") => None,
        Some(_) => Some(3),
    };
    let mut ranked: Vec<(u8, &Value)> = names.iter().filter_map(|n| Some((rank(n)?, n))).collect();
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().find_map(|(_, n)| name_from_fhir(n))
}

fn name_from_fhir(n: &Value) -> Option<HumanName> {
    let list = |key: &str| -> Vec<String> {
        n.get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(collapse)
            .collect()
    };
    let family = str_at(n, "family").and_then(collapse);
    let given = list("given");
    let suffix = list("suffix");
    if let Some(family) = &family {
        if !given.is_empty() {
            return Some(HumanName::Parts {
                family: family.clone(),
                given,
                suffix,
            });
        }
    }
    if let Some(text) = str_at(n, "text").and_then(collapse) {
        return Some(HumanName::Text { text });
    }
    // Mononyms: the invariant wants family *and* given, or text.
    let joined: Vec<String> = given.into_iter().chain(family).collect();
    (!joined.is_empty()).then(|| HumanName::Text {
        text: joined.join(" "),
    })
}

/// §J.57: trims, strips a leading "Lot"/"Lot #"/"LOT:"/"Lot No." label, drops placeholders.
pub fn clean_lot(raw: &str) -> Option<String> {
    let mut s = raw.trim();
    if s.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("lot")) {
        let rest = s.get(3..).unwrap_or("");
        let mut r = rest.trim_start();
        let mut labelled = r.len() < rest.len();
        for word in ["number", "num", "nbr", "no"] {
            let head = r
                .get(..word.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(word));
            let after = r.get(word.len()..).unwrap_or("");
            if head && !after.starts_with(|c: char| c.is_ascii_alphanumeric()) {
                r = after;
                labelled = true;
                break;
            }
        }
        let r2 =
            r.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '#' | ':' | '.' | '-'));
        labelled |= r2.len() < r.len();
        if labelled && !r2.is_empty() {
            s = r2.trim_end();
        }
    }
    const PLACEHOLDERS: &[&str] = &[
        "",
        "n/a",
        "na",
        "unk",
        "unknown",
        "none",
        "null",
        "-",
        "?",
        "not recorded",
    ];
    if PLACEHOLDERS.iter().any(|p| s.eq_ignore_ascii_case(p)) {
        return None;
    }
    Some(s.to_owned())
}

/// Collapses whitespace and keeps the display under 30 characters (§J.58), cutting at a word
/// boundary when that keeps most of it.
pub fn clean_display(raw: &str) -> Option<String> {
    let s = collapse(raw)?;
    if s.chars().count() <= PERFORMER_MAX_CHARS {
        return Some(s);
    }
    let hard: String = s.chars().take(PERFORMER_MAX_CHARS).collect();
    let cut = match hard.rfind(' ') {
        Some(pos) if pos >= PERFORMER_MAX_CHARS / 2 => hard.get(..pos).unwrap_or(&hard).to_owned(),
        _ => hard.clone(),
    };
    Some(cut.trim_end_matches([' ', ',', '-', '/']).to_owned())
}

/// Trimmed, inner whitespace runs collapsed to one space; `None` when empty.
fn collapse(s: &str) -> Option<String> {
    let out = s.split_whitespace().collect::<Vec<_>>().join(" ");
    (!out.is_empty()).then_some(out)
}

/// A non-empty trimmed string at `key`.
fn str_at<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// `Type/id` at the end of a relative or absolute literal reference (`/_history/n` tolerated).
fn typed_id(reference: &str) -> Option<(&str, &str)> {
    let path = reference.split(['?', '#']).next()?;
    let path = match path.find("/_history/") {
        Some(pos) => path.get(..pos)?,
        None => path,
    };
    let mut it = path.rsplit('/');
    let id = it.next().filter(|s| !s.is_empty())?;
    let ty = it
        .next()
        .filter(|t| t.starts_with(|c: char| c.is_ascii_uppercase()))?;
    Some((ty, id))
}

/// A reference a FHIR server could answer: relative `Patient/x` or absolute `http(s)://…/Patient/x`.
fn is_fetchable(reference: &str) -> bool {
    let absolute = reference.starts_with("http://") || reference.starts_with("https://");
    let relative = !reference.contains(':') && !reference.starts_with('#');
    (absolute || relative) && typed_id(reference).is_some_and(|(t, _)| t == "Patient")
}

/// The REST reference to remember for a Patient found in the message.
fn rest_reference(reference: &str, target: &Value) -> Option<String> {
    if is_fetchable(reference) {
        Some(reference.to_owned())
    } else {
        str_at(target, "id").map(|id| format!("Patient/{id}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lot_labels_are_stripped_j57() {
        for (raw, want) in [
            ("  0123L45A ", Some("0123L45A")),
            ("Lot # 0123L45A", Some("0123L45A")),
            ("LOT:EL9261", Some("EL9261")),
            ("lot number: 1234", Some("1234")),
            ("Lot No. 011J20A", Some("011J20A")),
            ("Lot#EL9261", Some("EL9261")),
            ("lot Nov21A", Some("Nov21A")),
            ("LOT123", Some("LOT123")),
            ("N/A", None),
            ("   ", None),
            ("Lot", Some("Lot")),
        ] {
            assert_eq!(clean_lot(raw).as_deref(), want, "{raw:?}");
        }
    }

    #[test]
    fn performer_display_is_kept_under_30_j58() {
        assert_eq!(
            clean_display("  ABC   General Hospital ").unwrap(),
            "ABC General Hospital"
        );
        let long = clean_display("Massachusetts General Hospital Boston Campus").unwrap();
        assert!(long.chars().count() < 30, "{long}");
        assert_eq!(long, "Massachusetts General");
        let nospace = clean_display(&"X".repeat(50)).unwrap();
        assert_eq!(nospace.len(), 29);
    }

    #[test]
    fn references() {
        assert_eq!(typed_id("Patient/123"), Some(("Patient", "123")));
        assert_eq!(
            typed_id("https://ehr/fhir/Patient/abc/_history/2"),
            Some(("Patient", "abc"))
        );
        assert!(is_fetchable("https://ehr/fhir/Patient/abc"));
        assert!(!is_fetchable("urn:uuid:1234"));
        assert!(!is_fetchable("#p1"));
        assert!(!is_fetchable("resource:0"));
        assert_eq!(
            server_base("https://ehr/R4/Immunization/9", "Immunization", "9"),
            Some("https://ehr/R4")
        );
    }
}
