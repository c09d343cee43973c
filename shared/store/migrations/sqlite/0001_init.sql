-- vaxcred schema, SQLite. Keep in step with ../postgres/0001_init.sql: same tables, columns,
-- constraints and indexes; only types differ (TEXT timestamps and JSON, BLOB, INTEGER booleans and AUTOINCREMENT ids).
-- PHI lives only in patients.identity/birth_date (card and delivery need it); everything else is ids.

CREATE TABLE issuers (
    id            TEXT PRIMARY KEY,
    iss           TEXT NOT NULL UNIQUE,
    slug          TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE sources (
    id            TEXT PRIMARY KEY,
    issuer_id     TEXT NOT NULL REFERENCES issuers(id),
    name          TEXT NOT NULL UNIQUE,
    fhir_base_url TEXT,
    created_at    TEXT NOT NULL
);

CREATE TABLE patients (
    id            TEXT PRIMARY KEY,
    issuer_id     TEXT NOT NULL REFERENCES issuers(id),
    identity      TEXT NOT NULL,
    birth_date    TEXT,
    doses_version INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX patients_issuer_birth_date ON patients (issuer_id, birth_date);

CREATE TABLE patient_identifiers (
    issuer_id  TEXT NOT NULL,
    system     TEXT NOT NULL,
    value      TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    PRIMARY KEY (issuer_id, system, value)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_id);

CREATE TABLE doses (
    id             TEXT PRIMARY KEY,
    issuer_id      TEXT NOT NULL REFERENCES issuers(id),
    patient_id     TEXT NOT NULL REFERENCES patients(id),
    source_system  TEXT NOT NULL,
    source_id      TEXT NOT NULL,
    version        INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('completed', 'entered-in-error', 'not-done')),
    vaccine_system TEXT NOT NULL,
    vaccine_code   TEXT NOT NULL,
    occurrence     TEXT,
    lot_number     TEXT,
    performer      TEXT,
    is_subpotent   INTEGER NOT NULL DEFAULT 0,
    disease        TEXT NOT NULL,
    event_id       TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (issuer_id, source_system, source_id)
);
CREATE INDEX doses_patient ON doses (patient_id);

CREATE TABLE credentials (
    id            TEXT PRIMARY KEY,
    issuer_id     TEXT NOT NULL REFERENCES issuers(id),
    patient_id    TEXT NOT NULL REFERENCES patients(id),
    disease       TEXT NOT NULL,
    doses_version INTEGER NOT NULL,
    format        TEXT NOT NULL CHECK (format IN ('shc', 'dcc')),
    artefact      TEXT NOT NULL,
    kid           TEXT NOT NULL,
    rid           TEXT,
    nbf           INTEGER NOT NULL,
    exp           INTEGER,
    status        TEXT NOT NULL CHECK (status IN ('held', 'active', 'superseded', 'revoked')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX credentials_patient ON credentials (patient_id);
-- At most one current card per patient, issuer, disease group and format.
CREATE UNIQUE INDEX credentials_one_active ON credentials (patient_id, issuer_id, disease, format)
    WHERE status = 'active';

CREATE TABLE events (
    id           TEXT PRIMARY KEY,
    dedup_key    TEXT NOT NULL UNIQUE,
    message_id   TEXT,
    content_hash TEXT NOT NULL,
    source       TEXT,
    status       TEXT NOT NULL CHECK (status IN ('received', 'processed', 'rejected', 'retrying', 'held')),
    error_code   TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    received_at  TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX events_status ON events (status);

CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_until TEXT,
    sent_at       TEXT
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;

CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    credential_id   TEXT NOT NULL REFERENCES credentials(id),
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (credential_id, channel)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE shl_links (
    id            TEXT PRIMARY KEY,
    credential_id TEXT REFERENCES credentials(id),
    patient_id    TEXT REFERENCES patients(id),
    key           TEXT NOT NULL,
    flags         TEXT NOT NULL DEFAULT '',
    label         TEXT,
    passcode_hash TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    max_failures  INTEGER NOT NULL,
    expires_at    TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX shl_links_credential ON shl_links (credential_id);

CREATE TABLE signing_keys (
    issuer_id             TEXT NOT NULL REFERENCES issuers(id),
    kid                   TEXT NOT NULL,
    public_jwk            TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('active', 'retired', 'revoked')),
    key_store             TEXT NOT NULL,
    private_key_encrypted BLOB,
    created_at            TEXT NOT NULL,
    retired_at            TEXT,
    PRIMARY KEY (issuer_id, kid)
);

CREATE TABLE crls (
    issuer_id  TEXT NOT NULL REFERENCES issuers(id),
    kid        TEXT NOT NULL,
    ctr        INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (issuer_id, kid)
);

CREATE TABLE revocations (
    issuer_id      TEXT NOT NULL,
    kid            TEXT NOT NULL,
    rid            TEXT NOT NULL,
    revoked_before INTEGER,
    created_at     TEXT NOT NULL,
    PRIMARY KEY (issuer_id, kid, rid),
    FOREIGN KEY (issuer_id, kid) REFERENCES crls (issuer_id, kid)
);

CREATE TABLE review_cases (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('held-credential', 'possible-duplicate', 'conflicting-doses', 'fixable-reject', 'patient-declaration')),
    status        TEXT NOT NULL CHECK (status IN ('open', 'resolved', 'dismissed')),
    issuer_id     TEXT,
    patient_id    TEXT,
    event_id      TEXT,
    credential_id TEXT,
    details       TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    resolved_at   TEXT,
    resolved_by   TEXT
);
CREATE INDEX review_cases_open ON review_cases (created_at) WHERE status = 'open';

CREATE TABLE staff (
    id            TEXT PRIMARY KEY,
    issuer_id     TEXT REFERENCES issuers(id),
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    password_hash TEXT,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    source_id   TEXT REFERENCES sources(id),
    staff_id    TEXT REFERENCES staff(id),
    scopes      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    revoked_at  TEXT
);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    action       TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject_id   TEXT NOT NULL,
    details      TEXT NOT NULL
);
CREATE INDEX audit_subject ON audit (subject_kind, subject_id);
