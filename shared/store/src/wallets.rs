//! Wallet endpoints: a patient's registered push targets for new and superseded cards. The
//! signing secret is stored as is (it must be readable to sign) and kept out of `Debug`.

use crate::db::{dispatch, new_id, now, Store};
use crate::error::Result;
use crate::types::{NewWalletEndpoint, WalletEndpoint};

const WALLET_COLUMNS: &str = "id, patient_id, url, secret, created_at, disabled_at";

impl Store {
    /// Register a wallet endpoint for a patient (`store-constraint` if the patient is unknown).
    pub async fn create_wallet_endpoint(&self, new: &NewWalletEndpoint) -> Result<WalletEndpoint> {
        let endpoint = WalletEndpoint {
            id: new_id("wal"),
            patient_id: new.patient_id.clone(),
            url: new.url.clone(),
            secret: new.secret.clone(),
            created_at: now(),
            disabled_at: None,
        };
        dispatch!(self, pool, _pg => {
            sqlx::query(&format!(
                "INSERT INTO wallet_endpoints ({WALLET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
            ))
            .bind(&endpoint.id)
            .bind(&endpoint.patient_id)
            .bind(&endpoint.url)
            .bind(&endpoint.secret)
            .bind(endpoint.created_at)
            .bind(endpoint.disabled_at)
            .execute(pool)
            .await?;
        });
        Ok(endpoint)
    }

    /// A wallet endpoint by id (enabled or not).
    pub async fn get_wallet_endpoint(&self, id: &str) -> Result<Option<WalletEndpoint>> {
        let sql = format!("SELECT {WALLET_COLUMNS} FROM wallet_endpoints WHERE id = $1");
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, WalletEndpoint>(&sql).bind(id).fetch_optional(pool).await?)
        })
    }

    /// A patient's enabled wallet endpoints, oldest first.
    pub async fn list_wallet_endpoints(&self, patient_id: &str) -> Result<Vec<WalletEndpoint>> {
        let sql = format!(
            "SELECT {WALLET_COLUMNS} FROM wallet_endpoints WHERE patient_id = $1 \
             AND disabled_at IS NULL ORDER BY created_at, id"
        );
        dispatch!(self, pool, _pg => {
            Ok(sqlx::query_as::<_, WalletEndpoint>(&sql).bind(patient_id).fetch_all(pool).await?)
        })
    }

    /// Disable an endpoint (no further pushes). Returns whether it was enabled.
    pub async fn disable_wallet_endpoint(&self, id: &str) -> Result<bool> {
        let at = now();
        let n = dispatch!(self, pool, _pg => {
            sqlx::query(
                "UPDATE wallet_endpoints SET disabled_at = $2 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }
}
