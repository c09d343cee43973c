-- Wallet endpoints: where a patient's new or superseded cards are pushed (Standard Webhooks).
-- Keep in step with ../postgres/0002_wallet_endpoints.sql. `secret` is the per-endpoint signing
-- secret (`whsec_…`): it must be readable to sign, so it is stored as is; never logged.
CREATE TABLE wallet_endpoints (
    id          TEXT PRIMARY KEY,
    patient_id  TEXT NOT NULL REFERENCES patients(id),
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    disabled_at TEXT
);
CREATE INDEX wallet_endpoints_patient ON wallet_endpoints (patient_id);
