//! The issue worker's side: a consistent snapshot of a patient and their issuable doses, storing
//! a signed card only if it is still current (stale check + supersede + `deliver` outbox row in
//! one transaction), credential lookups and revocation (with its CRL entry, atomically).

use sqlx::types::Json;

use crate::apply::{DOSE_COLUMNS, PATIENT_COLUMNS};
use crate::db::{dispatch, new_id, now, BeginWrite, Store};
use crate::error::{Error, Result};
use crate::keys::add_revocation_in_tx;
use crate::types::{
    Credential, CredentialFormat, CredentialStatus, DeliverJob, Dose, DoseStatus, IssueSnapshot,
    NewCredential, Patient, RevokeOutcome, StoreCredentialOutcome, OUTBOX_DELIVER,
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
        let psql = format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE id = $1");
        let dsql = current_doses_sql();
        dispatch!(self, pool, pg => {
            // PostgreSQL's default READ COMMITTED takes a new snapshot per statement.
            let mut tx = if pg {
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
            } else {
                pool.begin().await?
            };
            let patient: Option<Patient> =
                sqlx::query_as(&psql).bind(patient_id).fetch_optional(&mut *tx).await?;
            let Some(patient) = patient else {
                return Ok(None);
            };
            let doses: Vec<Dose> = sqlx::query_as(&dsql)
                .bind(patient_id)
                .bind(DoseStatus::Completed.as_str())
                .fetch_all(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(IssueSnapshot { patient, doses }))
        })
    }

    /// Store a signed card, in one transaction, only if `doses_version` is still the patient's
    /// current one (else [`StoreCredentialOutcome::Stale`], nothing written). An `Active` card
    /// supersedes the patient's active card for the same issuer, disease and format and queues
    /// an outbox row `deliver {credential_id}`; a `Held` card does neither. A second active card
    /// for the same version is refused as [`StoreCredentialOutcome::AlreadyIssued`].
    pub async fn store_credential(&self, c: &NewCredential) -> Result<StoreCredentialOutcome> {
        if !matches!(c.status, CredentialStatus::Active | CredentialStatus::Held) {
            return Err(Error::Invalid("a new credential is active or held"));
        }
        let at = now();
        let id = new_id("cred");
        let insert = format!(
            "INSERT INTO credentials ({CREDENTIAL_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)"
        );
        dispatch!(self, pool, pg => {
            let lock = if pg { " FOR UPDATE" } else { "" };
            let mut tx = pool.begin_write().await?;
            let current: Option<i64> =
                sqlx::query_scalar(&format!("SELECT doses_version FROM patients WHERE id = $1{lock}"))
                    .bind(&c.patient_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let current = current.ok_or(Error::NotFound("patient"))?;
            if current != c.doses_version {
                return Ok(StoreCredentialOutcome::Stale { current_doses_version: current });
            }
            let mut superseded = Vec::new();
            let mut outbox_id = None;
            if c.status == CredentialStatus::Active {
                let same: Option<String> = sqlx::query_scalar(
                    "SELECT id FROM credentials WHERE patient_id = $1 AND issuer_id = $2 \
                     AND disease = $3 AND format = $4 AND status = 'active' AND doses_version = $5",
                )
                .bind(&c.patient_id)
                .bind(&c.issuer_id)
                .bind(&c.disease)
                .bind(c.format.as_str())
                .bind(c.doses_version)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(credential_id) = same {
                    return Ok(StoreCredentialOutcome::AlreadyIssued { credential_id });
                }
                superseded = sqlx::query_scalar(
                    "UPDATE credentials SET status = 'superseded', updated_at = $1 \
                     WHERE patient_id = $2 AND issuer_id = $3 AND disease = $4 AND format = $5 \
                     AND status = 'active' RETURNING id",
                )
                .bind(at)
                .bind(&c.patient_id)
                .bind(&c.issuer_id)
                .bind(&c.disease)
                .bind(c.format.as_str())
                .fetch_all(&mut *tx)
                .await?;
            }
            sqlx::query(&insert)
                .bind(&id)
                .bind(&c.issuer_id)
                .bind(&c.patient_id)
                .bind(&c.disease)
                .bind(c.doses_version)
                .bind(c.format.as_str())
                .bind(&c.artefact)
                .bind(&c.kid)
                .bind(&c.rid)
                .bind(c.nbf)
                .bind(c.exp)
                .bind(c.status.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if c.status == CredentialStatus::Active {
                let job = DeliverJob { credential_id: id.clone() };
                let oid: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (kind, payload, created_at) VALUES ($1, $2, $3) RETURNING id",
                )
                .bind(OUTBOX_DELIVER)
                .bind(Json(&job))
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
                outbox_id = Some(oid);
            }
            tx.commit().await?;
            Ok(StoreCredentialOutcome::Stored { credential_id: id, superseded, outbox_id })
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
