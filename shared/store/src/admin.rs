//! People-facing records: review cases (the review queue), staff accounts, API tokens (stored as
//! SHA-256 hashes only: tokens are high-entropy, so a fast hash is enough to make a database dump
//! useless to an attacker) and the append-only audit trail (ids only).

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::types::Json;

use crate::db::{dispatch, micros, new_id, now, Store};
use crate::error::{Error, Result};
use crate::types::{
    ApiToken, AuditEntry, NewApiToken, NewAuditEntry, NewReviewCase, NewStaff, ReviewCase,
    ReviewStatus, Staff,
};

const REVIEW_COLUMNS: &str = "id, kind, status, issuer_id, patient_id, event_id, credential_id, \
     details, created_at, resolved_at, resolved_by";
const STAFF_COLUMNS: &str = "id, issuer_id, username, display_name, role, disabled_at, created_at";
const TOKEN_COLUMNS: &str = "id, source_id, staff_id, scopes, created_at, expires_at, revoked_at";
const AUDIT_COLUMNS: &str = "id, at, actor, action, subject_kind, subject_id, details";

fn token_hash(token: &str) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

impl Store {
    /// Open a review case.
    pub async fn open_review_case(&self, new: &NewReviewCase) -> Result<ReviewCase> {
        let case = ReviewCase {
            id: new_id("rev"),
            kind: new.kind,
            status: ReviewStatus::Open,
            issuer_id: new.issuer_id.clone(),
            patient_id: new.patient_id.clone(),
            event_id: new.event_id.clone(),
            credential_id: new.credential_id.clone(),
            details: new.details.clone(),
            created_at: now(),
            resolved_at: None,
            resolved_by: None,
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(&format!(
                "INSERT INTO review_cases ({REVIEW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ))
            .bind(&case.id)
            .bind(case.kind.as_str())
            .bind(case.status.as_str())
            .bind(&case.issuer_id)
            .bind(&case.patient_id)
            .bind(&case.event_id)
            .bind(&case.credential_id)
            .bind(Json(&case.details))
            .bind(case.created_at)
            .bind(case.resolved_at)
            .bind(&case.resolved_by)
            .execute(pool)
            .await?;
        });
        Ok(case)
    }

    /// A review case by id.
    pub async fn get_review_case(&self, id: &str) -> Result<Option<ReviewCase>> {
        let sql = format!("SELECT {REVIEW_COLUMNS} FROM review_cases WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, ReviewCase>(&sql).bind(id).fetch_optional(pool).await?)
        })
    }

    /// Open cases, oldest first.
    pub async fn list_open_review_cases(&self, limit: u32) -> Result<Vec<ReviewCase>> {
        let sql = format!(
            "SELECT {REVIEW_COLUMNS} FROM review_cases WHERE status = 'open' \
             ORDER BY created_at, id LIMIT $1"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, ReviewCase>(&sql).bind(i64::from(limit)).fetch_all(pool).await?)
        })
    }

    /// Close an open case as `Resolved` or `Dismissed` by a staff member. Returns whether it was open.
    pub async fn close_review_case(
        &self,
        id: &str,
        status: ReviewStatus,
        staff_id: &str,
    ) -> Result<bool> {
        if status == ReviewStatus::Open {
            return Err(Error::Invalid(
                "closing status must be resolved or dismissed",
            ));
        }
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query(
                "UPDATE review_cases SET status = $1, resolved_at = $2, resolved_by = $3 \
                 WHERE id = $4 AND status = 'open'",
            )
            .bind(status.as_str())
            .bind(at)
            .bind(staff_id)
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Create a staff account. `store-constraint` if the username is taken.
    pub async fn create_staff(&self, new: &NewStaff) -> Result<Staff> {
        let staff = Staff {
            id: new_id("stf"),
            issuer_id: new.issuer_id.clone(),
            username: new.username.clone(),
            display_name: new.display_name.clone(),
            role: new.role.clone(),
            disabled_at: None,
            created_at: now(),
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(
                "INSERT INTO staff (id, issuer_id, username, display_name, role, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&staff.id)
            .bind(&staff.issuer_id)
            .bind(&staff.username)
            .bind(&staff.display_name)
            .bind(&staff.role)
            .bind(&new.password_hash)
            .bind(staff.created_at)
            .execute(pool)
            .await?;
        });
        Ok(staff)
    }

    /// A staff account by username, with its password hash (for login).
    pub async fn get_staff_by_username(
        &self,
        username: &str,
    ) -> Result<Option<(Staff, Option<String>)>> {
        let sql = format!("SELECT {STAFF_COLUMNS}, password_hash FROM staff WHERE username = $1");
        dispatch!(self, pool, _pg => {
            let row: Option<(Staff, Option<String>)> = {
                use sqlx::Row;
                match sqlx::query(&sql).bind(username).fetch_optional(pool).await? {
                    Some(r) => {
                        let staff = <Staff as sqlx::FromRow<_>>::from_row(&r)?;
                        let hash: Option<String> = r.try_get("password_hash")?;
                        Some((staff, hash))
                    }
                    None => None,
                }
            };
            Ok(row)
        })
    }

    /// Disable a staff account. Returns whether it was enabled.
    pub async fn disable_staff(&self, staff_id: &str) -> Result<bool> {
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("UPDATE staff SET disabled_at = $1 WHERE id = $2 AND disabled_at IS NULL")
                .bind(at)
                .bind(staff_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Store an API token (its SHA-256 only). The caller generates `token` (≥ 32 random bytes)
    /// and shows it once.
    pub async fn create_api_token(&self, new: &NewApiToken, token: &str) -> Result<ApiToken> {
        let t = ApiToken {
            id: new_id("tok"),
            source_id: new.source_id.clone(),
            staff_id: new.staff_id.clone(),
            scopes: new.scopes.clone(),
            created_at: now(),
            expires_at: new.expires_at.map(micros),
            revoked_at: None,
        };
        let hash = token_hash(token);
        dispatch!(self, pool, _pg => {
            sqlx::query(
                "INSERT INTO api_tokens (id, token_hash, source_id, staff_id, scopes, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&t.id)
            .bind(&hash)
            .bind(&t.source_id)
            .bind(&t.staff_id)
            .bind(&t.scopes)
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(pool)
            .await?;
        });
        Ok(t)
    }

    /// The token record for a presented token, if it exists, is not revoked and not expired at `at`.
    pub async fn authenticate_api_token(
        &self,
        token: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<ApiToken>> {
        let hash = token_hash(token);
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, ApiToken>(&sql).bind(&hash).bind(at).fetch_optional(pool).await?)
        })
    }

    /// Revoke a token. Returns whether it was live.
    pub async fn revoke_api_token(&self, token_id: &str) -> Result<bool> {
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(token_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Append an audit entry; returns its sequence id.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64> {
        let at = now();
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_scalar(
                "INSERT INTO audit (at, actor, action, subject_kind, subject_id, details) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(at)
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.subject_kind)
            .bind(&entry.subject_id)
            .bind(Json(&entry.details))
            .fetch_one(pool)
            .await?)
        })
    }

    /// Audit entries about one object, oldest first.
    pub async fn list_audit(
        &self,
        subject_kind: &str,
        subject_id: &str,
    ) -> Result<Vec<AuditEntry>> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE subject_kind = $1 AND subject_id = $2 ORDER BY id"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, AuditEntry>(&sql)
                .bind(subject_kind)
                .bind(subject_id)
                .fetch_all(pool)
                .await?)
        })
    }
}
