//! Clinician launch sessions (services/launch): the server side of an opaque browser cookie.
//! The row id is the SHA-256 of the cookie value (the caller hashes), `data` is the launch's
//! state as JSON — including the EHR's OAuth tokens, which is why `Debug` prints ids only and
//! expired rows are purged.

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::db::{dispatch, micros, now, Store};
use crate::error::Result;

/// A launch session row. `Debug` omits `data` (it holds tokens).
#[derive(Clone, PartialEq, sqlx::FromRow)]
pub struct LaunchSession {
    /// SHA-256 (hex) of the cookie value.
    pub id: String,
    /// The launch state (state, PKCE verifier, tokens, patient id, fhirUser).
    #[sqlx(json)]
    pub data: serde_json::Value,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last written.
    pub updated_at: DateTime<Utc>,
    /// After this the session is gone (reads return `None`).
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for LaunchSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LaunchSession")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, data, created_at, updated_at, expires_at";

impl Store {
    /// Create or replace the session `id` with `data`, valid until `expires_at`.
    pub async fn put_launch_session(
        &self,
        id: &str,
        data: &serde_json::Value,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let at = now();
        let expires_at = micros(expires_at);
        dispatch!(self, pool, _pg => {
            sqlx::query(
                "INSERT INTO launch_sessions (id, data, created_at, updated_at, expires_at) \
                 VALUES ($1, $2, $3, $3, $4) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data, \
                 updated_at = excluded.updated_at, expires_at = excluded.expires_at",
            )
            .bind(id)
            .bind(Json(data))
            .bind(at)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The session `id` if it exists and has not expired.
    pub async fn get_launch_session(&self, id: &str) -> Result<Option<LaunchSession>> {
        let sql =
            format!("SELECT {COLUMNS} FROM launch_sessions WHERE id = $1 AND expires_at > $2");
        let at = now();
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, LaunchSession>(&sql)
                .bind(id)
                .bind(at)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// Delete the session `id` (logout, or replaced by a new launch). Returns whether it existed.
    pub async fn delete_launch_session(&self, id: &str) -> Result<bool> {
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("DELETE FROM launch_sessions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// Delete expired sessions; returns how many.
    pub async fn purge_expired_launch_sessions(&self) -> Result<u64> {
        let at = now();
        Ok(dispatch!(self, pool, _pg => {
            sqlx::query("DELETE FROM launch_sessions WHERE expires_at <= $1")
                .bind(at)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
