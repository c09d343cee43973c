//! The issue worker's side: a consistent snapshot of a patient and their issuable doses, storing
//! a signed card only if it is still current (stale check + supersede + `deliver` outbox row in
//! one transaction), credential lookups and revocation (with its CRL entry, atomically).

use std::collections::HashMap;

use sqlx::types::Json;
use sqlx::QueryBuilder;

use crate::apply::{DOSE_COLUMNS, PATIENT_COLUMNS};
use crate::db::{builder, dispatch, new_id, now, BeginWrite, Dialect, Store};
use crate::error::{Error, Result};
use crate::events::CHUNK;
use crate::keys::add_revocation_in_tx;
use crate::types::{
    Credential, CredentialFormat, CredentialStatus, DeliverJob, DeliverMessage, Dose, DoseStatus,
    IssueSnapshot, IssueState, NewCredential, Patient, RevokeOutcome, StoreCredentialOutcome,
    JOBS_PER_PACK, OUTBOX_DELIVER,
};

pub(crate) const CREDENTIAL_COLUMNS: &str = "id, issuer_id, patient_id, disease, doses_version, \
     format, artefact, kid, rid, nbf, exp, status, created_at, updated_at";

impl Store {
    /// A patient by internal id.
    pub async fn get_patient(&self, patient_id: &str) -> Result<Option<Patient>> {
        let sql = format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Patient>(&sql).bind(patient_id).fetch_optional(pool).await?)
        })
    }

    /// The patient a source identifier belongs to, if any.
    pub async fn find_patient_by_identifier(
        &self,
        issuer_id: &str,
        system: &str,
        value: &str,
    ) -> Result<Option<Patient>> {
        let sql = format!(
            "SELECT {PATIENT_COLUMNS} FROM patients WHERE id = (SELECT patient_id FROM \
             patient_identifiers WHERE issuer_id = $1 AND system = $2 AND value = $3)"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Patient>(&sql)
                .bind(issuer_id)
                .bind(system)
                .bind(value)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Current issuable doses (status `completed`) of a patient, by occurrence then source id.
    pub async fn load_current_doses(&self, patient_id: &str) -> Result<Vec<Dose>> {
        let sql = current_doses_sql();
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Dose>(&sql)
                .bind(patient_id)
                .bind(DoseStatus::Completed.as_str())
                .fetch_all(pool)
                .await?)
        })
    }

    /// Every stored dose of a patient whatever its status (review pages, tests).
    pub async fn list_doses(&self, patient_id: &str) -> Result<Vec<Dose>> {
        let sql = format!(
            "SELECT {DOSE_COLUMNS} FROM doses WHERE patient_id = $1 ORDER BY source_system, source_id"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Dose>(&sql).bind(patient_id).fetch_all(pool).await?)
        })
    }

    /// Patient (identity, `doses_version`) and current issuable doses, read in one snapshot so
    /// the doses match the version. `None` if the patient does not exist.
    pub async fn issue_snapshot(&self, patient_id: &str) -> Result<Option<IssueSnapshot>> {
        let mut all = self.issue_snapshots(&[patient_id.to_owned()]).await?;
        Ok(all.pop().map(|s| s.snapshot))
    }

    /// [`Store::issue_snapshot`] for many patients at once, with each patient's active cards:
    /// one read-only transaction and three queries per chunk of patients, whatever their
    /// number (the issue worker's batch). Patients that do not exist are left out.
    pub async fn issue_snapshots(&self, patient_ids: &[String]) -> Result<Vec<IssueState>> {
        let mut ids: Vec<&String> = patient_ids.iter().collect();
        ids.sort();
        ids.dedup();
        let mut out: Vec<IssueState> = Vec::with_capacity(ids.len());
        dispatch!(self, pool, pg => {
            // PostgreSQL's default READ COMMITTED takes a new snapshot per statement.
            let mut tx = if pg {
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
            } else {
                pool.begin().await?
            };
            for chunk in ids.chunks(CHUNK) {
                let mut qb = builder(pool, format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE "));
                Dialect::push_in(&mut qb, "id", chunk);
                qb.push(" ORDER BY id");
                let patients: Vec<Patient> = qb.build_query_as().fetch_all(&mut *tx).await?;
                if patients.is_empty() {
                    continue;
                }
                let mut qb = builder(pool, format!("SELECT {DOSE_COLUMNS} FROM doses WHERE status = "));
                qb.push_bind(DoseStatus::Completed.as_str());
                qb.push(" AND ");
                Dialect::push_in(&mut qb, "patient_id", chunk);
                qb.push(" ORDER BY patient_id, occurrence, source_system, source_id");
                let doses: Vec<Dose> = qb.build_query_as().fetch_all(&mut *tx).await?;
                let mut qb = builder(
                    pool,
                    format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE status = 'active' AND "),
                );
                Dialect::push_in(&mut qb, "patient_id", chunk);
                qb.push(" ORDER BY patient_id, id");
                let active: Vec<Credential> = qb.build_query_as().fetch_all(&mut *tx).await?;
                // Grouped by id, not merged by order: SQL sorts text by the database's
                // collation, which need not be Rust's byte order.
                let mut doses_of: HashMap<String, Vec<Dose>> = HashMap::new();
                for d in doses {
                    doses_of.entry(d.patient_id.clone()).or_default().push(d);
                }
                let mut active_of: HashMap<String, Vec<Credential>> = HashMap::new();
                for c in active {
                    active_of.entry(c.patient_id.clone()).or_default().push(c);
                }
                for patient in patients {
                    let doses = doses_of.remove(&patient.id).unwrap_or_default();
                    let active = active_of.remove(&patient.id).unwrap_or_default();
                    out.push(IssueState { snapshot: IssueSnapshot { patient, doses }, active });
                }
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Store a signed card, in one transaction, only if `doses_version` is still the patient's
    /// current one (else [`StoreCredentialOutcome::Stale`], nothing written). An `Active` card
    /// supersedes the patient's active card for the same issuer, disease and format and queues
    /// a `deliver` outbox row for it; a `Held` card does neither. A second active card
    /// for the same version is refused as [`StoreCredentialOutcome::AlreadyIssued`].
    /// `store-not-found` if the patient does not exist.
    pub async fn store_credential(&self, c: &NewCredential) -> Result<StoreCredentialOutcome> {
        self.store_credentials(std::slice::from_ref(c))
            .await?
            .pop()
            .unwrap_or(Err(Error::NotFound("credential outcome")))
    }

    /// [`Store::store_credential`] for a batch of cards, in ONE transaction with a fixed number
    /// of statements per chunk (patients locked in id order, one supersede, one multi-row insert
    /// of cards, one `deliver` outbox row per [`JOBS_PER_PACK`] cards): the issue worker's
    /// batch. Cards are considered in order, so
    /// a later card of the batch for the same patient, disease and format supersedes an earlier
    /// one. One answer per card, same order; a card whose patient does not exist gets
    /// `store-not-found` and the others are stored.
    pub async fn store_credentials(
        &self,
        cards: &[NewCredential],
    ) -> Result<Vec<Result<StoreCredentialOutcome>>> {
        if cards
            .iter()
            .any(|c| !matches!(c.status, CredentialStatus::Active | CredentialStatus::Held))
        {
            return Err(Error::Invalid("a new credential is active or held"));
        }
        let at = now();
        let mut patient_ids: Vec<&str> = cards.iter().map(|c| c.patient_id.as_str()).collect();
        patient_ids.sort_unstable();
        patient_ids.dedup();
        dispatch!(self, pool, pg => {
            let lock = if pg { " FOR UPDATE" } else { "" };
            let mut tx = pool.begin_write().await?;
            // 1. Lock the patients (id order: concurrent batches cannot deadlock) and read their
            //    versions and active cards.
            let mut versions: HashMap<String, i64> = HashMap::new();
            let mut active: HashMap<CardKey, (String, i64)> = HashMap::new();
            for chunk in patient_ids.chunks(CHUNK) {
                let mut qb = builder(pool, "SELECT id, doses_version FROM patients WHERE ");
                Dialect::push_in(&mut qb, "id", chunk);
                qb.push(" ORDER BY id");
                qb.push(lock);
                let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *tx).await?;
                versions.extend(rows);
                let mut qb = builder(
                    pool,
                    "SELECT id, patient_id, issuer_id, disease, format, doses_version FROM credentials \
                     WHERE status = 'active' AND ",
                );
                Dialect::push_in(&mut qb, "patient_id", chunk);
                let rows: Vec<(String, String, String, String, String, i64)> =
                    qb.build_query_as().fetch_all(&mut *tx).await?;
                for (id, patient_id, issuer_id, disease, format, version) in rows {
                    active.insert((patient_id, issuer_id, disease, format), (id, version));
                }
            }

            // 2. Decide, in order, in memory.
            let mut outcomes: Vec<Result<StoreCredentialOutcome>> = Vec::with_capacity(cards.len());
            let mut superseded_ids: Vec<String> = Vec::new();
            let mut inserts: Vec<(String, &NewCredential)> = Vec::new();
            for c in cards {
                let Some(current) = versions.get(&c.patient_id).copied() else {
                    outcomes.push(Err(Error::NotFound("patient")));
                    continue;
                };
                if current != c.doses_version {
                    outcomes.push(Ok(StoreCredentialOutcome::Stale { current_doses_version: current }));
                    continue;
                }
                let id = new_id("cred");
                let mut superseded = Vec::new();
                if c.status == CredentialStatus::Active {
                    let key = (
                        c.patient_id.clone(),
                        c.issuer_id.clone(),
                        c.disease.clone(),
                        c.format.as_str().to_owned(),
                    );
                    match active.get(&key) {
                        Some((existing, version)) if *version == c.doses_version => {
                            outcomes.push(Ok(StoreCredentialOutcome::AlreadyIssued {
                                credential_id: existing.clone(),
                            }));
                            continue;
                        }
                        // Every card that passed the version check has the current version,
                        // so an older active card is always one of the table's.
                        Some((existing, _)) => {
                            superseded_ids.push(existing.clone());
                            superseded.push(existing.clone());
                        }
                        None => {}
                    }
                    active.insert(key, (id.clone(), c.doses_version));
                }
                inserts.push((id.clone(), c));
                outcomes.push(Ok(StoreCredentialOutcome::Stored {
                    credential_id: id,
                    superseded,
                    outbox_id: None,
                }));
            }

            // 3. Write.
            for chunk in superseded_ids.chunks(CHUNK) {
                let mut qb = builder(pool, "UPDATE credentials SET status = 'superseded', updated_at = ");
                qb.push_bind(at);
                qb.push(" WHERE status = 'active' AND ");
                Dialect::push_in(&mut qb, "id", chunk);
                qb.build().execute(&mut *tx).await?;
            }
            for chunk in inserts.chunks(CHUNK) {
                let mut qb = QueryBuilder::new(format!("INSERT INTO credentials ({CREDENTIAL_COLUMNS}) "));
                qb.push_values(chunk, |mut b, (id, c)| {
                    b.push_bind(id)
                        .push_bind(&c.issuer_id)
                        .push_bind(&c.patient_id)
                        .push_bind(&c.disease)
                        .push_bind(c.doses_version)
                        .push_bind(c.format.as_str())
                        .push_bind(&c.artefact)
                        .push_bind(&c.kid)
                        .push_bind(&c.rid)
                        .push_bind(c.nbf)
                        .push_bind(c.exp)
                        .push_bind(c.status.as_str())
                        .push_bind(at)
                        .push_bind(at);
                });
                qb.build().execute(&mut *tx).await?;
            }
            let deliver: Vec<DeliverJob> = inserts
                .iter()
                .filter(|(_, c)| c.status == CredentialStatus::Active)
                .map(|(id, _)| DeliverJob { credential_id: id.clone() })
                .collect();
            // One outbox row (and message) per pack of cards, like issue jobs.
            let mut outbox_ids: HashMap<String, i64> = HashMap::new();
            for pack in deliver.chunks(JOBS_PER_PACK) {
                let message = DeliverMessage::Batch { jobs: pack.to_vec() };
                let oid: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(OUTBOX_DELIVER)
                .bind(Json(&message))
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
                for job in pack {
                    outbox_ids.insert(job.credential_id.clone(), oid);
                }
            }
            tx.commit().await?;
            Ok(outcomes
                .into_iter()
                .map(|o| match o {
                    Ok(StoreCredentialOutcome::Stored { credential_id, superseded, .. }) => {
                        let outbox_id = outbox_ids.get(&credential_id).copied();
                        Ok(StoreCredentialOutcome::Stored { credential_id, superseded, outbox_id })
                    }
                    other => other,
                })
                .collect())
        })
    }

    /// A credential by id.
    pub async fn get_credential(&self, credential_id: &str) -> Result<Option<Credential>> {
        let sql = format!("SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Credential>(&sql).bind(credential_id).fetch_optional(pool).await?)
        })
    }

    /// All credentials of a patient, newest first.
    pub async fn list_credentials(&self, patient_id: &str) -> Result<Vec<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE patient_id = $1 \
             ORDER BY created_at DESC, id DESC"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Credential>(&sql).bind(patient_id).fetch_all(pool).await?)
        })
    }

    /// The patient's current card for an issuer, disease group and format.
    pub async fn active_credential(
        &self,
        patient_id: &str,
        issuer_id: &str,
        disease: &str,
        format: CredentialFormat,
    ) -> Result<Option<Credential>> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS} FROM credentials WHERE patient_id = $1 AND issuer_id = $2 \
             AND disease = $3 AND format = $4 AND status = 'active'"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Credential>(&sql)
                .bind(patient_id)
                .bind(issuer_id)
                .bind(disease)
                .bind(format.as_str())
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Revoke a credential; when it has a `rid`, add it to its key's CRL (bumping `ctr`) in the
    /// same transaction, as `rid.(nbf + 1)`: a `rid` is per patient and key, so an entry without
    /// a time would also revoke the patient's *later* cards (rule 30: `rid.t` revokes cards with
    /// `nbf` < t). Cards issued afterwards get an `nbf` ≥ t ([`Store::revoked_before`]).
    /// `store-not-found` if it does not exist.
    pub async fn revoke_credential(&self, credential_id: &str) -> Result<RevokeOutcome> {
        let at = now();
        dispatch!(self, pool, pg => {
            let lock = if pg { " FOR UPDATE" } else { "" };
            let mut tx = pool.begin_write().await?;
            let row: Option<(String, String, Option<String>, String, i64)> = sqlx::query_as(&format!(
                "SELECT issuer_id, kid, rid, status, nbf FROM credentials WHERE id = $1{lock}"
            ))
            .bind(credential_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (issuer_id, kid, rid, status, nbf) = row.ok_or(Error::NotFound("credential"))?;
            if status == CredentialStatus::Revoked.as_str() {
                return Ok(RevokeOutcome::AlreadyRevoked);
            }
            sqlx::query("UPDATE credentials SET status = 'revoked', updated_at = $1 WHERE id = $2")
                .bind(at)
                .bind(credential_id)
                .execute(&mut *tx)
                .await?;
            let crl_ctr = match &rid {
                Some(rid) => {
                    let before = Some(nbf.saturating_add(1));
                    Some(add_revocation_in_tx!(tx, &issuer_id, &kid, rid, before, at))
                }
                None => None,
            };
            tx.commit().await?;
            Ok(RevokeOutcome::Revoked { crl_ctr })
        })
    }
}

fn current_doses_sql() -> String {
    format!(
        "SELECT {DOSE_COLUMNS} FROM doses WHERE patient_id = $1 AND status = $2 \
         ORDER BY occurrence, source_system, source_id"
    )
}

/// (patient, issuer, disease group, format): the key of the one-active-card rule.
type CardKey = (String, String, String, String);
