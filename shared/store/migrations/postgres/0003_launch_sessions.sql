-- Clinician launch sessions of the SMART-on-FHIR app (services/launch). Keep in step with
-- ../sqlite/0003_launch_sessions.sql. The id is the SHA-256 of the browser's cookie value, so
-- a copy of this table does not let anyone take a session over. `data` holds the launch state
-- (state, PKCE verifier, the EHR's tokens): tokens stay on the server, never in the browser.
CREATE TABLE launch_sessions (
    id          TEXT PRIMARY KEY,
    data        JSONB NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX launch_sessions_expires ON launch_sessions (expires_at);
