//! Applying normalized events: find-or-create the patient by its source identifiers, update its
//! identity, apply dose changes by source version, bump `doses_version` when the card content
//! changed, queue one `issue` outbox row per changed patient and mark the events processed — for
//! a whole micro-batch in ONE transaction with a fixed number of set-based statements (multi-row
//! reads and upserts), since per-row round trips cap PostgreSQL at a few thousand events/s.

use std::collections::{BTreeSet, HashMap};

use sqlx::types::Json;
use sqlx::QueryBuilder;

use crate::db::{builder, dispatch, new_id, now, BeginWrite, Dialect, Store};
use crate::error::{Error, Result};
use crate::events::CHUNK;
use crate::types::{
    ApplyEvent, ApplyOutcome, Dose, DoseOutcome, DoseStatus, EventStatus, IssueJob, IssueMessage,
    NewDose, Patient, PatientIdentity, ReviewKind, ReviewStatus, JOBS_PER_PACK, OUTBOX_ISSUE,
};

pub(crate) const DOSE_COLUMNS: &str = "id, issuer_id, patient_id, source_system, source_id, \
     version, status, vaccine_system, vaccine_code, occurrence, lot_number, performer, \
     is_subpotent, disease, event_id, created_at, updated_at";

pub(crate) const PATIENT_COLUMNS: &str =
    "id, issuer_id, identity, doses_version, created_at, updated_at";

type IdentKey = (String, String, String);
type DoseKey = (String, String, String);

struct PatientState {
    patient: Patient,
    is_new: bool,
    dirty: bool,
    changed: bool,
}

struct DoseState {
    dose: Dose,
    dirty: bool,
}

struct HeldCase {
    review_case_id: String,
    event_id: String,
    issuer_id: String,
    candidates: Vec<String>,
}

/// Per-event bookkeeping until the batch's final versions are known.
enum Pending {
    Applied {
        patient_id: String,
        created_patient: bool,
        changed: bool,
        doses: Vec<DoseOutcome>,
    },
    Held {
        review_case_id: String,
    },
}

fn same_content(a: &Dose, b: &NewDose) -> bool {
    a.status == b.status
        && a.vaccine_system == b.vaccine_system
        && a.vaccine_code == b.vaccine_code
        && a.occurrence == b.occurrence
        && a.lot_number == b.lot_number
        && a.performer == b.performer
        && a.is_subpotent == b.is_subpotent
        && a.disease == b.disease
}

fn issuable(s: DoseStatus) -> bool {
    s == DoseStatus::Completed
}

impl Store {
    /// [`Store::apply_events`] for one event.
    pub async fn apply_event(&self, event: &ApplyEvent) -> Result<ApplyOutcome> {
        self.apply_events(std::slice::from_ref(event))
            .await?
            .into_iter()
            .next()
            .ok_or(Error::NotFound("apply outcome"))
    }

    /// Apply a micro-batch of events in one transaction; returns one outcome per input, same order.
    ///
    /// Dose rules, per (issuer, source system, source id): unknown → inserted; newer version →
    /// replaced (entered-in-error / not-done then stop counting as issuable); same version →
    /// replay, no-op; older version → ignored. A patient whose card content (issuable doses, or
    /// name/birth date) changed gets `doses_version + 1` (once per batch) and an issue job
    /// `{patient_id, doses_version}`, in `issue` outbox rows of up to [`JOBS_PER_PACK`]
    /// jobs each ([`IssueMessage`]). Identifiers matching several patients hold the event
    /// and open a `possible-duplicate` review case. Events are marked `processed` (or `held`).
    ///
    /// Errors: `store-invalid-input` if an event has no identifiers; `store-conflict`
    /// (retryable) when a concurrent batch created the same patient first — retry the batch.
    pub async fn apply_events(&self, batch: &[ApplyEvent]) -> Result<Vec<ApplyOutcome>> {
        if batch.iter().any(|e| e.identifiers.is_empty()) {
            return Err(Error::Invalid("event without patient identifiers"));
        }
        let at = now();
        let mut ident_keys: Vec<IdentKey> = batch
            .iter()
            .flat_map(|e| {
                e.identifiers
                    .iter()
                    .map(|i| (e.issuer_id.clone(), i.system.clone(), i.value.clone()))
            })
            .collect();
        ident_keys.sort();
        ident_keys.dedup();

        dispatch!(self, pool, pg => {
            let lock = if pg { " FOR UPDATE" } else { "" };
            let mut tx = pool.begin_write().await?;

            // 1. Which patients do the identifiers point to?
            let mut ident_map: HashMap<IdentKey, String> = HashMap::new();
            for chunk in ident_keys.chunks(CHUNK) {
                let mut qb = builder(pool, "SELECT t.issuer_id, t.system, t.value, t.patient_id ");
                Dialect::push_from_keys(
                    &mut qb,
                    "patient_identifiers",
                    ("issuer_id", "system", "value"),
                    chunk,
                );
                let rows: Vec<(String, String, String, String)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                for (i, s, v, p) in rows {
                    ident_map.insert((i, s, v), p);
                }
            }

            // 2. Resolve each event to one patient (new, existing) or hold it.
            let mut patients: HashMap<String, PatientState> = HashMap::new();
            let mut new_identifiers: Vec<(IdentKey, String)> = Vec::new();
            let mut resolved: Vec<Option<String>> = Vec::with_capacity(batch.len());
            let mut held: Vec<HeldCase> = Vec::new();
            let mut to_load: BTreeSet<String> = BTreeSet::new();
            for e in batch {
                let keys: Vec<IdentKey> = e
                    .identifiers
                    .iter()
                    .map(|i| (e.issuer_id.clone(), i.system.clone(), i.value.clone()))
                    .collect();
                let found: BTreeSet<&String> = keys.iter().filter_map(|k| ident_map.get(k)).collect();
                if found.len() > 1 {
                    held.push(HeldCase {
                        review_case_id: new_id("rev"),
                        event_id: e.event_id.clone(),
                        issuer_id: e.issuer_id.clone(),
                        candidates: found.into_iter().cloned().collect(),
                    });
                    resolved.push(None);
                    continue;
                }
                let patient_id = match found.into_iter().next() {
                    Some(p) => p.clone(),
                    None => {
                        let id = new_id("pat");
                        patients.insert(
                            id.clone(),
                            PatientState {
                                patient: Patient {
                                    id: id.clone(),
                                    issuer_id: e.issuer_id.clone(),
                                    identity: PatientIdentity::default(),
                                    doses_version: 0,
                                    created_at: at,
                                    updated_at: at,
                                },
                                is_new: true,
                                dirty: true,
                                changed: false,
                            },
                        );
                        id
                    }
                };
                for k in keys {
                    if !ident_map.contains_key(&k) {
                        ident_map.insert(k.clone(), patient_id.clone());
                        new_identifiers.push((k, patient_id.clone()));
                    }
                }
                if !patients.contains_key(&patient_id) {
                    to_load.insert(patient_id.clone());
                }
                resolved.push(Some(patient_id));
            }

            // 3. Lock and load the existing patients, in id order so concurrent batches cannot
            //    deadlock, and only THEN read the doses the batch touches: read before the lock,
            //    a dose could be changed by a concurrent batch of the same patient between the
            //    read and our write, and our upsert would take it back to an older version
            //    (an entered-in-error dose revived). Doses found under a patient not yet locked
            //    (a dose moving between patients) lock that one too, and are read again.
            let mut dose_keys: Vec<DoseKey> = batch
                .iter()
                .zip(&resolved)
                .filter(|(_, r)| r.is_some())
                .flat_map(|(e, _)| {
                    e.doses.iter().map(|d| {
                        (e.issuer_id.clone(), d.source_system.clone(), d.source_id.clone())
                    })
                })
                .collect();
            dose_keys.sort();
            dose_keys.dedup();
            let mut doses: HashMap<DoseKey, DoseState> = HashMap::new();
            let mut pending_load: Vec<String> = to_load.into_iter().collect();
            let mut attempted: BTreeSet<String> = BTreeSet::new();
            loop {
                attempted.extend(pending_load.iter().cloned());
                for chunk in pending_load.chunks(CHUNK) {
                    let mut qb =
                        builder(pool, format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE "));
                    Dialect::push_in(&mut qb, "id", chunk);
                    qb.push(" ORDER BY id");
                    qb.push(lock);
                    let rows: Vec<Patient> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    for p in rows {
                        patients.insert(
                            p.id.clone(),
                            PatientState { patient: p, is_new: false, dirty: false, changed: false },
                        );
                    }
                }
                doses.clear();
                let mut owners: BTreeSet<String> = BTreeSet::new();
                for chunk in dose_keys.chunks(CHUNK) {
                    let mut qb = builder(pool, format!("SELECT {} ", prefixed(DOSE_COLUMNS, "t")));
                    Dialect::push_from_keys(
                        &mut qb,
                        "doses",
                        ("issuer_id", "source_system", "source_id"),
                        chunk,
                    );
                    let rows: Vec<Dose> = qb.build_query_as().fetch_all(&mut *tx).await?;
                    for d in rows {
                        if !patients.contains_key(&d.patient_id) && !attempted.contains(&d.patient_id) {
                            // The dose may move to another patient: that one changes too.
                            owners.insert(d.patient_id.clone());
                        }
                        let key = (d.issuer_id.clone(), d.source_system.clone(), d.source_id.clone());
                        doses.insert(key, DoseState { dose: d, dirty: false });
                    }
                }
                if owners.is_empty() {
                    break;
                }
                pending_load = owners.into_iter().collect();
            }

            // 5. Apply in order, in memory.
            let mut pending: Vec<Pending> = Vec::with_capacity(batch.len());
            let mut held_iter = held.iter();
            let mut announced_new: BTreeSet<String> = BTreeSet::new();
            for (e, r) in batch.iter().zip(&resolved) {
                let Some(patient_id) = r else {
                    let h = held_iter.next().ok_or(Error::NotFound("held case"))?;
                    pending.push(Pending::Held { review_case_id: h.review_case_id.clone() });
                    continue;
                };
                let mut changed = false;
                let mut moved_from: Vec<String> = Vec::new();
                let state = patients.get_mut(patient_id).ok_or(Error::NotFound("patient"))?;
                let created_patient = state.is_new && announced_new.insert(patient_id.clone());
                if let Some(identity) = &e.identity {
                    if *identity != state.patient.identity {
                        if !identity.same_card_fields(&state.patient.identity) {
                            changed = true;
                        }
                        state.patient.identity = identity.clone();
                        state.dirty = true;
                    }
                }
                let mut outcomes = Vec::with_capacity(e.doses.len());
                for d in &e.doses {
                    let key = (e.issuer_id.clone(), d.source_system.clone(), d.source_id.clone());
                    match doses.get_mut(&key) {
                        None => {
                            if issuable(d.status) {
                                changed = true;
                            }
                            doses.insert(
                                key,
                                DoseState {
                                    dose: Dose {
                                        id: new_id("dose"),
                                        issuer_id: e.issuer_id.clone(),
                                        patient_id: patient_id.clone(),
                                        source_system: d.source_system.clone(),
                                        source_id: d.source_id.clone(),
                                        version: d.version,
                                        status: d.status,
                                        vaccine_system: d.vaccine_system.clone(),
                                        vaccine_code: d.vaccine_code.clone(),
                                        occurrence: d.occurrence.clone(),
                                        lot_number: d.lot_number.clone(),
                                        performer: d.performer.clone(),
                                        is_subpotent: d.is_subpotent,
                                        disease: d.disease.clone(),
                                        event_id: Some(e.event_id.clone()),
                                        created_at: at,
                                        updated_at: at,
                                    },
                                    dirty: true,
                                },
                            );
                            outcomes.push(DoseOutcome::Inserted);
                        }
                        Some(s) if d.version > s.dose.version => {
                            let was = issuable(s.dose.status);
                            let is = issuable(d.status);
                            let moved = s.dose.patient_id != *patient_id;
                            if was != is || (is && !same_content(&s.dose, d)) || (moved && is) {
                                changed = true;
                            }
                            if moved && was {
                                moved_from.push(s.dose.patient_id.clone());
                            }
                            let x = &mut s.dose;
                            x.patient_id = patient_id.clone();
                            x.version = d.version;
                            x.status = d.status;
                            x.vaccine_system = d.vaccine_system.clone();
                            x.vaccine_code = d.vaccine_code.clone();
                            x.occurrence = d.occurrence.clone();
                            x.lot_number = d.lot_number.clone();
                            x.performer = d.performer.clone();
                            x.is_subpotent = d.is_subpotent;
                            x.disease = d.disease.clone();
                            x.event_id = Some(e.event_id.clone());
                            x.updated_at = at;
                            s.dirty = true;
                            outcomes.push(DoseOutcome::Replaced);
                        }
                        Some(s) if d.version == s.dose.version => outcomes.push(DoseOutcome::Unchanged),
                        Some(_) => outcomes.push(DoseOutcome::Outdated),
                    }
                }
                if changed {
                    if let Some(s) = patients.get_mut(patient_id) {
                        s.changed = true;
                    }
                }
                for other in moved_from {
                    if let Some(s) = patients.get_mut(&other) {
                        s.changed = true;
                    }
                }
                pending.push(Pending::Applied {
                    patient_id: patient_id.clone(),
                    created_patient,
                    changed,
                    doses: outcomes,
                });
            }

            // 6. Bump versions once per changed patient.
            let mut issue_jobs: Vec<IssueJob> = Vec::new();
            for s in patients.values_mut() {
                if s.changed {
                    s.patient.doses_version += 1;
                    s.patient.updated_at = at;
                    s.dirty = true;
                    issue_jobs.push(IssueJob {
                        patient_id: s.patient.id.clone(),
                        doses_version: s.patient.doses_version,
                    });
                }
            }
            issue_jobs.sort_by(|a, b| a.patient_id.cmp(&b.patient_id));

            // 7. Write: patients (upsert serves as multi-row update), identifiers, doses, outbox,
            //    review cases, event statuses.
            let dirty_patients: Vec<&Patient> = {
                let mut v: Vec<&Patient> =
                    patients.values().filter(|s| s.dirty).map(|s| &s.patient).collect();
                v.sort_by(|a, b| a.id.cmp(&b.id));
                v
            };
            for chunk in dirty_patients.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO patients (id, issuer_id, identity, birth_date, doses_version, created_at, updated_at) ",
                );
                qb.push_values(chunk, |mut b, p| {
                    b.push_bind(&p.id)
                        .push_bind(&p.issuer_id)
                        .push_bind(Json(&p.identity))
                        .push_bind(p.identity.birth_date.as_deref())
                        .push_bind(p.doses_version)
                        .push_bind(p.created_at)
                        .push_bind(at);
                });
                qb.push(
                    " ON CONFLICT (id) DO UPDATE SET identity = excluded.identity, \
                     birth_date = excluded.birth_date, doses_version = excluded.doses_version, \
                     updated_at = excluded.updated_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            // Key order, like the patient locks, so two batches meet on unique keys in one order.
            new_identifiers.sort();
            for chunk in new_identifiers.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO patient_identifiers (issuer_id, system, value, patient_id) ",
                );
                qb.push_values(chunk, |mut b, (k, p)| {
                    b.push_bind(&k.0).push_bind(&k.1).push_bind(&k.2).push_bind(p);
                });
                qb.build()
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| Error::from(e).lost_race())?;
            }
            let mut dirty_doses: Vec<(&DoseKey, &Dose)> =
                doses.iter().filter(|(_, s)| s.dirty).map(|(k, s)| (k, &s.dose)).collect();
            dirty_doses.sort_by(|a, b| a.0.cmp(b.0));
            let dirty_doses: Vec<&Dose> = dirty_doses.into_iter().map(|(_, d)| d).collect();
            for chunk in dirty_doses.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(format!("INSERT INTO doses ({DOSE_COLUMNS}) "));
                qb.push_values(chunk, |mut b, d| {
                    b.push_bind(&d.id)
                        .push_bind(&d.issuer_id)
                        .push_bind(&d.patient_id)
                        .push_bind(&d.source_system)
                        .push_bind(&d.source_id)
                        .push_bind(d.version)
                        .push_bind(d.status.as_str())
                        .push_bind(&d.vaccine_system)
                        .push_bind(&d.vaccine_code)
                        .push_bind(&d.occurrence)
                        .push_bind(&d.lot_number)
                        .push_bind(&d.performer)
                        .push_bind(d.is_subpotent)
                        .push_bind(&d.disease)
                        .push_bind(&d.event_id)
                        .push_bind(d.created_at)
                        .push_bind(d.updated_at);
                });
                qb.push(
                    " ON CONFLICT (issuer_id, source_system, source_id) DO UPDATE SET \
                     patient_id = excluded.patient_id, version = excluded.version, \
                     status = excluded.status, vaccine_system = excluded.vaccine_system, \
                     vaccine_code = excluded.vaccine_code, occurrence = excluded.occurrence, \
                     lot_number = excluded.lot_number, performer = excluded.performer, \
                     is_subpotent = excluded.is_subpotent, disease = excluded.disease, \
                     event_id = excluded.event_id, updated_at = excluded.updated_at",
                );
                qb.build().execute(&mut *tx).await?;
            }
            // One outbox row per pack of jobs, not per patient: an outbox row is written,
            // claimed and marked, and at one per event that was the pipeline's largest single
            // cost on PostgreSQL. The relay publishes packs as they are.
            let packs: Vec<IssueMessage> = issue_jobs
                .chunks(JOBS_PER_PACK)
                .map(|jobs| IssueMessage::Batch { jobs: jobs.to_vec() })
                .collect();
            for chunk in packs.chunks(CHUNK) {
                let mut qb = QueryBuilder::new("INSERT INTO outbox (kind, payload, created_at) ");
                qb.push_values(chunk, |mut b, pack| {
                    b.push_bind(OUTBOX_ISSUE).push_bind(Json(pack)).push_bind(at);
                });
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in held.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(
                    "INSERT INTO review_cases (id, kind, status, issuer_id, event_id, details, created_at) ",
                );
                qb.push_values(chunk, |mut b, h| {
                    b.push_bind(&h.review_case_id)
                        .push_bind(ReviewKind::PossibleDuplicate.as_str())
                        .push_bind(ReviewStatus::Open.as_str())
                        .push_bind(&h.issuer_id)
                        .push_bind(&h.event_id)
                        .push_bind(Json(serde_json::json!({ "candidate_patient_ids": h.candidates })))
                        .push_bind(at);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let held_ids: BTreeSet<&str> = held.iter().map(|h| h.event_id.as_str()).collect();
            let processed_ids: BTreeSet<&str> = batch
                .iter()
                .map(|e| e.event_id.as_str())
                .filter(|id| !held_ids.contains(id))
                .collect();
            for (status, ids) in [(EventStatus::Processed, &processed_ids), (EventStatus::Held, &held_ids)] {
                let ids: Vec<&&str> = ids.iter().collect();
                for chunk in ids.chunks(CHUNK) {
                    let mut qb = builder(pool, "UPDATE events SET status = ");
                    qb.push_bind(status.as_str());
                    qb.push(", error_code = NULL, updated_at = ");
                    qb.push_bind(at);
                    qb.push(" WHERE ");
                    Dialect::push_in(&mut qb, "id", chunk);
                    qb.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;

            pending
                .into_iter()
                .map(|p| match p {
                    Pending::Held { review_case_id } => Ok(ApplyOutcome::Held { review_case_id }),
                    Pending::Applied { patient_id, created_patient, changed, doses } => {
                        let doses_version = patients
                            .get(&patient_id)
                            .map(|s| s.patient.doses_version)
                            .ok_or(Error::NotFound("patient"))?;
                        Ok(ApplyOutcome::Applied {
                            patient_id,
                            created_patient,
                            changed,
                            doses_version,
                            doses,
                        })
                    }
                })
                .collect()
        })
    }
}

/// `a, b, c` → `t.a, t.b, t.c`.
fn prefixed(columns: &str, alias: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}
