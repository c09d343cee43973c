//! SMART Health Links: link rows (manifest id, key, flags, passcode hash, expiry) and the
//! lifetime passcode failure counter, which must stay exact under parallel manifest requests —
//! hence one conditional `UPDATE … RETURNING` instead of read-then-write.

use crate::db::{dispatch, micros, now, Store};
use crate::error::Result;
use crate::types::{NewShlLink, PasscodeFailure, ShlLink};

const SHL_COLUMNS: &str = "id, credential_id, patient_id, key, flags, label, passcode_hash, \
     failures, max_failures, expires_at, active, created_at, updated_at";

impl Store {
    /// Store a new link (active, no failures). `store-constraint` if the id exists.
    pub async fn create_shl_link(&self, new: &NewShlLink) -> Result<ShlLink> {
        let at = now();
        let link = ShlLink {
            id: new.id.clone(),
            credential_id: new.credential_id.clone(),
            patient_id: new.patient_id.clone(),
            key: new.key.clone(),
            flags: new.flags.clone(),
            label: new.label.clone(),
            passcode_hash: new.passcode_hash.clone(),
            failures: 0,
            max_failures: new.max_failures,
            expires_at: new.expires_at.map(micros),
            active: true,
            created_at: at,
            updated_at: at,
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(&format!(
                "INSERT INTO shl_links ({SHL_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            ))
            .bind(&link.id)
            .bind(&link.credential_id)
            .bind(&link.patient_id)
            .bind(&link.key)
            .bind(&link.flags)
            .bind(&link.label)
            .bind(&link.passcode_hash)
            .bind(link.failures)
            .bind(link.max_failures)
            .bind(link.expires_at)
            .bind(link.active)
            .bind(link.created_at)
            .bind(link.updated_at)
            .execute(pool)
            .await?;
        });
        Ok(link)
    }

    /// A link by manifest id.
    pub async fn get_shl_link(&self, link_id: &str) -> Result<Option<ShlLink>> {
        let sql = format!("SELECT {SHL_COLUMNS} FROM shl_links WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, ShlLink>(&sql).bind(link_id).fetch_optional(pool).await?)
        })
    }

    /// Links serving a credential, newest first (to re-send the same link, not mint another).
    pub async fn list_shl_links_for_credential(&self, credential_id: &str) -> Result<Vec<ShlLink>> {
        let sql = format!(
            "SELECT {SHL_COLUMNS} FROM shl_links WHERE credential_id = $1 ORDER BY created_at DESC"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, ShlLink>(&sql).bind(credential_id).fetch_all(pool).await?)
        })
    }

    /// Count one wrong passcode, atomically: `Counted { remaining }` while under the limit (the
    /// failure that reaches it also deactivates the link and reports 0), `Refused` when the link
    /// is unknown, inactive or already at its limit. Exact under any number of parallel calls.
    pub async fn register_passcode_failure(&self, link_id: &str) -> Result<PasscodeFailure> {
        let at = now();
        let row: Option<(i64, i64)> = dispatch!(self, pool, _pg => {
            sqlx::query_as(
                "UPDATE shl_links SET failures = failures + 1, \
                 active = CASE WHEN failures + 1 >= max_failures THEN FALSE ELSE active END, \
                 updated_at = $2 \
                 WHERE id = $1 AND active = TRUE AND failures < max_failures \
                 RETURNING failures, max_failures",
            )
            .bind(link_id)
            .bind(at)
            .fetch_optional(pool)
            .await?
        });
        Ok(match row {
            Some((failures, max)) => PasscodeFailure::Counted {
                remaining: (max - failures).max(0),
            },
            None => PasscodeFailure::Refused,
        })
    }

    /// Deactivate a link (revoked by the patient or staff). Returns whether it was active.
    pub async fn deactivate_shl_link(&self, link_id: &str) -> Result<bool> {
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("UPDATE shl_links SET active = FALSE, updated_at = $2 WHERE id = $1 AND active = TRUE")
                .bind(link_id)
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }
}
