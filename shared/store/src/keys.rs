//! Issuers, their sources (EHR feeds), signing keys (public JWK, status, optional encrypted
//! private key) and certificate revocation lists (per issuer and kid, `ctr` bumped on each change).

use chrono::{DateTime, Utc};
use sqlx::types::Json;

use crate::db::{dispatch, new_id, now, BeginWrite, Store};
use crate::error::{Error, Result};
use crate::types::{
    Crl, Issuer, KeyStatus, NewIssuer, NewSigningKey, NewSource, RevokedRid, SigningKey, Source,
};

const ISSUER_COLUMNS: &str = "id, iss, slug, display_name, created_at";
const SOURCE_COLUMNS: &str = "id, issuer_id, name, fhir_base_url, created_at";
const KEY_COLUMNS: &str = "issuer_id, kid, public_jwk, status, key_store, created_at, retired_at";

/// Inside an open write transaction `$tx`: add or change the CRL entry (issuer, kid, rid) and
/// bump the kid's `ctr` (starting at 1) when the entry is new or its timestamp changed.
/// Evaluates to the CRL's `ctr` afterwards; `?` returns errors from the enclosing function.
macro_rules! add_revocation_in_tx {
    ($tx:ident, $issuer:expr, $kid:expr, $rid:expr, $before:expr, $at:expr) => {{
        let existing: Option<(Option<i64>,)> = sqlx::query_as(
            "SELECT revoked_before FROM revocations WHERE issuer_id = $1 AND kid = $2 AND rid = $3",
        )
        .bind($issuer)
        .bind($kid)
        .bind($rid)
        .fetch_optional(&mut *$tx)
        .await?;
        if existing == Some(($before,)) {
            let ctr: i64 =
                sqlx::query_scalar("SELECT ctr FROM crls WHERE issuer_id = $1 AND kid = $2")
                    .bind($issuer)
                    .bind($kid)
                    .fetch_one(&mut *$tx)
                    .await?;
            ctr
        } else {
            let ctr: i64 = sqlx::query_scalar(
                "INSERT INTO crls (issuer_id, kid, ctr, updated_at) VALUES ($1, $2, 1, $3) \
                 ON CONFLICT (issuer_id, kid) DO UPDATE SET ctr = crls.ctr + 1, \
                 updated_at = excluded.updated_at RETURNING ctr",
            )
            .bind($issuer)
            .bind($kid)
            .bind($at)
            .fetch_one(&mut *$tx)
            .await?;
            sqlx::query(
                "INSERT INTO revocations (issuer_id, kid, rid, revoked_before, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (issuer_id, kid, rid) \
                 DO UPDATE SET revoked_before = excluded.revoked_before",
            )
            .bind($issuer)
            .bind($kid)
            .bind($rid)
            .bind($before)
            .bind($at)
            .execute(&mut *$tx)
            .await?;
            ctr
        }
    }};
}
pub(crate) use add_revocation_in_tx;

impl Store {
    /// Create an issuer. `store-constraint` if `iss` or `slug` is taken.
    pub async fn create_issuer(&self, new: &NewIssuer) -> Result<Issuer> {
        let issuer = Issuer {
            id: new_id("iss"),
            iss: new.iss.clone(),
            slug: new.slug.clone(),
            display_name: new.display_name.clone(),
            created_at: now(),
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(&format!("INSERT INTO issuers ({ISSUER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"))
                .bind(&issuer.id)
                .bind(&issuer.iss)
                .bind(&issuer.slug)
                .bind(&issuer.display_name)
                .bind(issuer.created_at)
                .execute(pool)
                .await?;
        });
        Ok(issuer)
    }

    /// An issuer by id.
    pub async fn get_issuer(&self, issuer_id: &str) -> Result<Option<Issuer>> {
        self.issuer_where("id", issuer_id).await
    }

    /// An issuer by slug (`/issuers/{slug}`).
    pub async fn get_issuer_by_slug(&self, slug: &str) -> Result<Option<Issuer>> {
        self.issuer_where("slug", slug).await
    }

    /// An issuer by its `iss` URL.
    pub async fn get_issuer_by_iss(&self, iss: &str) -> Result<Option<Issuer>> {
        self.issuer_where("iss", iss).await
    }

    async fn issuer_where(&self, column: &'static str, value: &str) -> Result<Option<Issuer>> {
        let sql = format!("SELECT {ISSUER_COLUMNS} FROM issuers WHERE {column} = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Issuer>(&sql).bind(value).fetch_optional(pool).await?)
        })
    }

    /// All issuers, by slug.
    pub async fn list_issuers(&self) -> Result<Vec<Issuer>> {
        let sql = format!("SELECT {ISSUER_COLUMNS} FROM issuers ORDER BY slug");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Issuer>(&sql).fetch_all(pool).await?)
        })
    }

    /// Change an issuer's display name. `store-not-found` if unknown.
    pub async fn update_issuer_display_name(&self, issuer_id: &str, name: &str) -> Result<()> {
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("UPDATE issuers SET display_name = $1 WHERE id = $2")
                .bind(name)
                .bind(issuer_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(Error::NotFound("issuer"));
        }
        Ok(())
    }

    /// Create a source (EHR feed) of an issuer. `store-constraint` if the name is taken or the
    /// issuer does not exist.
    pub async fn create_source(&self, new: &NewSource) -> Result<Source> {
        let source = Source {
            id: new_id("src"),
            issuer_id: new.issuer_id.clone(),
            name: new.name.clone(),
            fhir_base_url: new.fhir_base_url.clone(),
            created_at: now(),
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(&format!("INSERT INTO sources ({SOURCE_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"))
                .bind(&source.id)
                .bind(&source.issuer_id)
                .bind(&source.name)
                .bind(&source.fhir_base_url)
                .bind(source.created_at)
                .execute(pool)
                .await?;
        });
        Ok(source)
    }

    /// A source by name (the AMQP `source` header).
    pub async fn get_source_by_name(&self, name: &str) -> Result<Option<Source>> {
        let sql = format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE name = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Source>(&sql).bind(name).fetch_optional(pool).await?)
        })
    }

    /// Sources of an issuer, by name.
    pub async fn list_sources(&self, issuer_id: &str) -> Result<Vec<Source>> {
        let sql =
            format!("SELECT {SOURCE_COLUMNS} FROM sources WHERE issuer_id = $1 ORDER BY name");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, Source>(&sql).bind(issuer_id).fetch_all(pool).await?)
        })
    }

    /// Delete a source. `store-not-found` if unknown; `store-constraint` if tokens refer to it.
    pub async fn delete_source(&self, source_id: &str) -> Result<()> {
        let n = dispatch!(self, pool, _pg => {
            sqlx::query("DELETE FROM sources WHERE id = $1")
                .bind(source_id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 0 {
            return Err(Error::NotFound("source"));
        }
        Ok(())
    }

    /// Register a signing key (status `active`).
    pub async fn add_signing_key(&self, new: &NewSigningKey) -> Result<SigningKey> {
        let key = SigningKey {
            issuer_id: new.issuer_id.clone(),
            kid: new.kid.clone(),
            public_jwk: new.public_jwk.clone(),
            status: KeyStatus::Active,
            key_store: new.key_store.clone(),
            created_at: now(),
            retired_at: None,
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(
                "INSERT INTO signing_keys (issuer_id, kid, public_jwk, status, key_store, \
                 private_key_encrypted, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&key.issuer_id)
            .bind(&key.kid)
            .bind(Json(&key.public_jwk))
            .bind(key.status.as_str())
            .bind(&key.key_store)
            .bind(&new.private_key_encrypted)
            .bind(key.created_at)
            .execute(pool)
            .await?;
        });
        Ok(key)
    }

    /// One signing key.
    pub async fn get_signing_key(&self, issuer_id: &str, kid: &str) -> Result<Option<SigningKey>> {
        let sql =
            format!("SELECT {KEY_COLUMNS} FROM signing_keys WHERE issuer_id = $1 AND kid = $2");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, SigningKey>(&sql)
                .bind(issuer_id)
                .bind(kid)
                .fetch_optional(pool)
                .await?)
        })
    }

    /// An issuer's keys, oldest first (all statuses; the JWKS leaves out `revoked`).
    pub async fn list_signing_keys(&self, issuer_id: &str) -> Result<Vec<SigningKey>> {
        let sql = format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE issuer_id = $1 ORDER BY created_at, kid"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, SigningKey>(&sql).bind(issuer_id).fetch_all(pool).await?)
        })
    }

    /// The encrypted private key, when the key store is the database.
    pub async fn signing_key_private(&self, issuer_id: &str, kid: &str) -> Result<Option<Vec<u8>>> {
        let row: Option<Option<Vec<u8>>> = dispatch!(self, pool, _pg => {
            sqlx::query_scalar(
                "SELECT private_key_encrypted FROM signing_keys WHERE issuer_id = $1 AND kid = $2",
            )
            .bind(issuer_id)
            .bind(kid)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.flatten())
    }

    /// Change a key's status. Leaving `active` sets `retired_at` and destroys any private key
    /// material held in the database. `store-not-found` if unknown.
    pub async fn set_signing_key_status(
        &self,
        issuer_id: &str,
        kid: &str,
        status: KeyStatus,
    ) -> Result<()> {
        let at: Option<DateTime<Utc>> = (status != KeyStatus::Active).then(now);
        let n = dispatch!(self, pool, _pg => {
            sqlx::query(
                "UPDATE signing_keys SET status = $1, retired_at = COALESCE(retired_at, $2), \
                 private_key_encrypted = CASE WHEN $3 THEN private_key_encrypted ELSE NULL END \
                 WHERE issuer_id = $4 AND kid = $5",
            )
            .bind(status.as_str())
            .bind(at)
            .bind(status == KeyStatus::Active)
            .bind(issuer_id)
            .bind(kid)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if n == 0 {
            return Err(Error::NotFound("signing key"));
        }
        Ok(())
    }

    /// Add (or change the timestamp of) a CRL entry for `rid` under (issuer, kid); returns the
    /// CRL's `ctr`, which increments on each change and stays put on an identical repeat.
    pub async fn add_revocation(
        &self,
        issuer_id: &str,
        kid: &str,
        rid: &str,
        revoked_before: Option<i64>,
    ) -> Result<i64> {
        let at = now();
        dispatch!(self, pool, _pg => {
            let mut tx = pool.begin_write().await?;
            let ctr = add_revocation_in_tx!(tx, issuer_id, kid, rid, revoked_before, at);
            tx.commit().await?;
            Ok(ctr)
        })
    }

    /// The time before which cards with this `rid` are revoked, if the `rid` is on the key's
    /// CRL: `Some(None)` revokes every card with it, `Some(Some(t))` those with `nbf` < t.
    pub async fn revoked_before(
        &self,
        issuer_id: &str,
        kid: &str,
        rid: &str,
    ) -> Result<Option<Option<i64>>> {
        dispatch!(self, pool, _pg => {
            let row: Option<(Option<i64>,)> = sqlx::query_as(
                "SELECT revoked_before FROM revocations WHERE issuer_id = $1 AND kid = $2 AND rid = $3",
            )
            .bind(issuer_id)
            .bind(kid)
            .bind(rid)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(t,)| t))
        })
    }

    /// [`Store::revoked_before`] for many `rid`s of one key in one query (the issue worker's
    /// batch): the `rid`s on the CRL, with their time. `rid`s not listed are not revoked.
    pub async fn revoked_before_many(
        &self,
        issuer_id: &str,
        kid: &str,
        rids: &[String],
    ) -> Result<std::collections::HashMap<String, Option<i64>>> {
        let mut out = std::collections::HashMap::new();
        for chunk in rids.chunks(crate::events::CHUNK) {
            dispatch!(self, pool, _pg => {
                let mut qb = sqlx::QueryBuilder::new(
                    "SELECT rid, revoked_before FROM revocations WHERE issuer_id = ",
                );
                qb.push_bind(issuer_id);
                qb.push(" AND kid = ");
                qb.push_bind(kid);
                qb.push(" AND rid IN (");
                let mut sep = qb.separated(", ");
                for rid in chunk {
                    sep.push_bind(rid.as_str());
                }
                qb.push(")");
                let rows: Vec<(String, Option<i64>)> = qb.build_query_as().fetch_all(pool).await?;
                out.extend(rows);
            });
        }
        Ok(out)
    }

    /// The CRL of one key, or `None` if nothing was ever revoked under it.
    pub async fn get_crl(&self, issuer_id: &str, kid: &str) -> Result<Option<Crl>> {
        dispatch!(self, pool, pg => {
            let mut tx = if pg {
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?
            } else {
                pool.begin().await?
            };
            let ctr: Option<i64> =
                sqlx::query_scalar("SELECT ctr FROM crls WHERE issuer_id = $1 AND kid = $2")
                    .bind(issuer_id)
                    .bind(kid)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(ctr) = ctr else {
                return Ok(None);
            };
            let rids: Vec<RevokedRid> = sqlx::query_as(
                "SELECT rid, revoked_before FROM revocations WHERE issuer_id = $1 AND kid = $2 ORDER BY rid",
            )
            .bind(issuer_id)
            .bind(kid)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(Crl { issuer_id: issuer_id.to_owned(), kid: kid.to_owned(), ctr, rids }))
        })
    }

    /// CRL counters of an issuer's keys (`crlVersion` in the JWKS), as (kid, ctr).
    pub async fn crl_versions(&self, issuer_id: &str) -> Result<Vec<(String, i64)>> {
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as("SELECT kid, ctr FROM crls WHERE issuer_id = $1 ORDER BY kid")
                .bind(issuer_id)
                .fetch_all(pool)
                .await?)
        })
    }
}
