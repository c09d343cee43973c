//! Plain record types: what callers pass in (`New*`, `ApplyEvent`) and what they get back (rows
//! and outcomes). Independent of the `model` crate on purpose; the pipeline maps model → store.
//! Types holding PHI or secrets (identity, card artefact, SHL key) print redacted `Debug`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored text value matched no variant of its enum (schema drift or manual edits).
#[derive(Debug, Clone, Copy)]
pub struct UnknownValue(pub &'static str);

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} value", self.0)
    }
}

impl std::error::Error for UnknownValue {}

/// A closed set of values stored as kebab-case text (CHECK constraints in the migrations).
macro_rules! text_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $v),+ }

        impl $name {
            /// The stored text.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
            /// Parse the stored text.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($s => Some($name::$v),)+ _ => None }
            }
        }

        impl TryFrom<String> for $name {
            type Error = UnknownValue;
            fn try_from(s: String) -> Result<Self, UnknownValue> {
                Self::parse(&s).ok_or(UnknownValue(stringify!($name)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum! {
    /// FHIR `Immunization.status` as far as the store cares.
    pub enum DoseStatus {
        /// Given: issuable.
        Completed = "completed",
        /// Recorded by mistake: the dose no longer counts.
        EnteredInError = "entered-in-error",
        /// Not given: recorded, never issued.
        NotDone = "not-done",
    }
}

text_enum! {
    /// Lifecycle of a received message.
    pub enum EventStatus {
        /// Stored, not yet applied.
        Received = "received",
        /// Applied (its changes are committed).
        Processed = "processed",
        /// Refused with an error code (bad input).
        Rejected = "rejected",
        /// A transient failure happened; it will come back.
        Retrying = "retrying",
        /// Waiting for a person (review case).
        Held = "held",
    }
}

impl EventStatus {
    /// Finished events need no more work: a redelivery is just acked.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EventStatus::Processed | EventStatus::Rejected | EventStatus::Held
        )
    }
}

text_enum! {
    /// Credential artefact format.
    pub enum CredentialFormat {
        /// SMART Health Card (compact JWS).
        Shc = "shc",
        /// EU Digital COVID Certificate (`HC1:` text).
        Dcc = "dcc",
    }
}

text_enum! {
    /// Credential lifecycle.
    pub enum CredentialStatus {
        /// Signed but waiting for review before release.
        Held = "held",
        /// The patient's current card.
        Active = "active",
        /// Replaced by a newer card.
        Superseded = "superseded",
        /// Revoked (its `rid` is on the CRL when it has one).
        Revoked = "revoked",
    }
}

text_enum! {
    /// Signing key lifecycle.
    pub enum KeyStatus {
        /// Signs new cards; published in the JWKS.
        Active = "active",
        /// No longer signs; still published so old cards verify.
        Retired = "retired",
        /// Compromised or withdrawn: removed from the JWKS.
        Revoked = "revoked",
    }
}

text_enum! {
    /// Delivery job state.
    pub enum DeliveryStatus {
        /// Not yet delivered; `next_attempt_at` says when to try.
        Pending = "pending",
        /// Delivered.
        Succeeded = "succeeded",
        /// Given up (permanent error or retries exhausted).
        Failed = "failed",
    }
}

text_enum! {
    /// What a review case is about.
    pub enum ReviewKind {
        /// A credential signed with status `held`.
        HeldCredential = "held-credential",
        /// Identifiers of one event matched more than one patient.
        PossibleDuplicate = "possible-duplicate",
        /// Doses that contradict each other.
        ConflictingDoses = "conflicting-doses",
        /// A rejected event a person could fix.
        FixableReject = "fixable-reject",
        /// A patient's own declaration to check.
        PatientDeclaration = "patient-declaration",
    }
}

text_enum! {
    /// Review case state.
    pub enum ReviewStatus {
        /// Waiting for a person.
        Open = "open",
        /// Handled.
        Resolved = "resolved",
        /// Closed without action.
        Dismissed = "dismissed",
    }
}

// ---------------------------------------------------------------------------------------------
// Issuers and sources

/// An organisation that issues cards (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Issuer {
    /// Internal id (`iss_…`).
    pub id: String,
    /// The `iss` URL put in cards.
    pub iss: String,
    /// Path segment under `/issuers/{slug}`.
    pub slug: String,
    /// Name shown to people.
    pub display_name: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input for [`crate::Store::create_issuer`].
#[derive(Debug, Clone)]
pub struct NewIssuer {
    /// The `iss` URL.
    pub iss: String,
    /// Path segment.
    pub slug: String,
    /// Name shown to people.
    pub display_name: String,
}

/// An EHR feed; belongs to one issuer.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Source {
    /// Internal id (`src_…`).
    pub id: String,
    /// Owning issuer.
    pub issuer_id: String,
    /// The AMQP `source` header value / HTTP client name.
    pub name: String,
    /// FHIR base URL for fetching referenced Patients, if configured.
    pub fhir_base_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input for [`crate::Store::create_source`].
#[derive(Debug, Clone)]
pub struct NewSource {
    /// Owning issuer.
    pub issuer_id: String,
    /// The AMQP `source` header value / HTTP client name.
    pub name: String,
    /// FHIR base URL of the EHR.
    pub fhir_base_url: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Patients and doses

/// A source identifier of a patient (FHIR `Identifier` system + value, or the EHR's
/// Patient reference as system = FHIR base URL, value = id).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identifier {
    /// Namespace (URI).
    pub system: String,
    /// Value within the namespace (an MRN is PHI: redacted in `Debug`).
    pub value: String,
}

impl std::fmt::Debug for Identifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identifier")
            .field("system", &self.system)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A contact point kept for delivery only (never put in a card).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ContactPoint {
    /// `phone`, `email`, `sms`, ...
    pub system: String,
    /// The number or address.
    pub value: String,
}

/// Who the patient is: what the card shows (name, birth date) plus contacts for delivery.
/// Stored as one JSON column. `Debug` prints no values.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PatientIdentity {
    /// Family name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Given names in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    /// Name as free text when not split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// FHIR date (partial dates allowed: `1980`, `1980-02`, `1980-02-29`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    /// Phones and emails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
}

impl PatientIdentity {
    /// Whether the parts a card shows (name, birth date) are equal: a change re-issues the card.
    pub fn same_card_fields(&self, other: &PatientIdentity) -> bool {
        self.family == other.family
            && self.given == other.given
            && self.text == other.text
            && self.birth_date == other.birth_date
    }
}

impl std::fmt::Debug for PatientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatientIdentity")
            .field("has_family", &self.family.is_some())
            .field("given_count", &self.given.len())
            .field("has_birth_date", &self.birth_date.is_some())
            .field("telecom_count", &self.telecom.len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ContactPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContactPoint")
            .field("system", &self.system)
            .finish_non_exhaustive()
    }
}

/// A patient row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Patient {
    /// Internal id (`pat_…`): what logs carry.
    pub id: String,
    /// Owning issuer.
    pub issuer_id: String,
    /// Name, birth date, contacts.
    #[sqlx(json)]
    pub identity: PatientIdentity,
    /// Bumped each time the card content (issuable doses or card identity) changes.
    pub doses_version: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// A dose as received (one FHIR Immunization, already normalized).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDose {
    /// Namespace of `source_id` (the EHR's FHIR base URL or identifier system).
    pub source_system: String,
    /// The Immunization's id in the source.
    pub source_id: String,
    /// Monotonic version of the source record (numeric `meta.versionId`, or `meta.lastUpdated`
    /// as epoch milliseconds): newer replaces, equal is a replay, older is ignored.
    pub version: i64,
    /// Completed, entered-in-error or not-done.
    pub status: DoseStatus,
    /// Vaccine code system (CVX, SNOMED CT, ICD-11 URI).
    pub vaccine_system: String,
    /// Vaccine code.
    pub vaccine_code: String,
    /// FHIR date/dateTime of administration (absent for some not-done records).
    pub occurrence: Option<String>,
    /// Lot number.
    pub lot_number: Option<String>,
    /// Performer display (organisation).
    pub performer: Option<String>,
    /// `Immunization.isSubpotent`.
    pub is_subpotent: bool,
    /// Disease group the card is for (`covid-19`, ...).
    pub disease: String,
}

/// A stored dose.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Dose {
    /// Internal id (`dose_…`).
    pub id: String,
    /// Issuer the source belongs to.
    pub issuer_id: String,
    /// Patient it was given to.
    pub patient_id: String,
    /// Namespace of `source_id`.
    pub source_system: String,
    /// Id in the source.
    pub source_id: String,
    /// Source version (see [`NewDose::version`]).
    pub version: i64,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: DoseStatus,
    /// Vaccine code system.
    pub vaccine_system: String,
    /// Vaccine code.
    pub vaccine_code: String,
    /// Administration date.
    pub occurrence: Option<String>,
    /// Lot number.
    pub lot_number: Option<String>,
    /// Performer display.
    pub performer: Option<String>,
    /// Subpotent flag.
    pub is_subpotent: bool,
    /// Disease group.
    pub disease: String,
    /// Last event that changed this row.
    pub event_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// One event's changes for one patient, for [`crate::Store::apply_events`]. A Bundle for
/// several patients is passed as several `ApplyEvent`s with the same `event_id` in one batch.
#[derive(Debug, Clone)]
pub struct ApplyEvent {
    /// The event row (from [`crate::Store::record_events`]) to mark processed.
    pub event_id: String,
    /// Issuer of the source the event came from.
    pub issuer_id: String,
    /// The patient's source identifiers (at least one): find-or-create key.
    pub identifiers: Vec<Identifier>,
    /// New identity when the event carried a Patient; `None` keeps the stored one.
    pub identity: Option<PatientIdentity>,
    /// Dose changes, applied in order.
    pub doses: Vec<NewDose>,
}

/// What happened to one dose of an [`ApplyEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseOutcome {
    /// First time seen.
    Inserted,
    /// Same source id, newer version: replaced.
    Replaced,
    /// Same source id and version: a replay, nothing to do.
    Unchanged,
    /// Older version than stored: ignored.
    Outdated,
}

/// What [`crate::Store::apply_events`] did with one [`ApplyEvent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Applied to `patient_id`.
    Applied {
        /// Internal patient id.
        patient_id: String,
        /// The patient was created by this batch.
        created_patient: bool,
        /// This event changed the card content (issuable doses or card identity).
        changed: bool,
        /// The patient's `doses_version` after the batch (bumped at most once per batch).
        doses_version: i64,
        /// One outcome per input dose, same order.
        doses: Vec<DoseOutcome>,
    },
    /// The identifiers point to several patients: nothing applied, event `held`, review case open.
    Held {
        /// The review case (`possible-duplicate`).
        review_case_id: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Events

/// A received message, for [`crate::Store::record_events`].
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    /// AMQP `message_id` when present: the idempotency key.
    pub message_id: Option<String>,
    /// SHA-256 (hex) of the body: the idempotency key when there is no `message_id`.
    pub content_hash: String,
    /// The `source` header (which EHR/site).
    pub source: Option<String>,
}

impl IncomingEvent {
    /// Unique key: message id scoped by source, else the content hash.
    pub(crate) fn dedup_key(&self) -> String {
        match &self.message_id {
            Some(m) => format!("m:{}:{m}", self.source.as_deref().unwrap_or("")),
            None => format!("h:{}", self.content_hash),
        }
    }
}

/// What [`crate::Store::record_events`] found for one incoming message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time seen: process it.
    New {
        /// New event id (`evt_…`).
        event_id: String,
    },
    /// Seen before but not finished (crash before commit, or retrying): process it again.
    Unfinished {
        /// Existing event id.
        event_id: String,
        /// Its status.
        status: EventStatus,
    },
    /// Already finished (processed, rejected or held): ack it, do nothing.
    Finished {
        /// Existing event id.
        event_id: String,
        /// Its status.
        status: EventStatus,
    },
    /// Same key as an earlier message of the same batch: settle it like that one.
    DuplicateInBatch {
        /// Event id of the earlier message.
        event_id: String,
        /// Index of the earlier message in the batch.
        first_index: usize,
    },
}

/// An event row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Event {
    /// Internal id (`evt_…`).
    pub id: String,
    /// AMQP message id.
    pub message_id: Option<String>,
    /// SHA-256 (hex) of the body.
    pub content_hash: String,
    /// Source header.
    pub source: Option<String>,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: EventStatus,
    /// Stable error code when rejected or retrying.
    pub error_code: Option<String>,
    /// Times marked retrying.
    pub attempts: i64,
    /// First receipt.
    pub received_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

// ---------------------------------------------------------------------------------------------
// Credentials

/// Input for [`crate::Store::store_credential`].
#[derive(Clone)]
pub struct NewCredential {
    /// Issuer that signed it.
    pub issuer_id: String,
    /// Patient it is for.
    pub patient_id: String,
    /// Disease group.
    pub disease: String,
    /// The `doses_version` the card was built from (from [`crate::Store::issue_snapshot`]).
    pub doses_version: i64,
    /// SHC or DCC.
    pub format: CredentialFormat,
    /// Compact JWS or `HC1:` text.
    pub artefact: String,
    /// Signing key id.
    pub kid: String,
    /// Revocation id (or DCC UVCI).
    pub rid: Option<String>,
    /// Not-before, epoch seconds.
    pub nbf: i64,
    /// Expiry, epoch seconds.
    pub exp: Option<i64>,
    /// `Active` (supersedes the current card, queues delivery) or `Held` (for review: neither).
    pub status: CredentialStatus,
}

impl std::fmt::Debug for NewCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewCredential")
            .field("issuer_id", &self.issuer_id)
            .field("patient_id", &self.patient_id)
            .field("doses_version", &self.doses_version)
            .field("format", &self.format)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// A credential row. `Debug` omits the artefact (it encodes the card's PHI).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Credential {
    /// Internal id (`cred_…`).
    pub id: String,
    /// Issuer.
    pub issuer_id: String,
    /// Patient.
    pub patient_id: String,
    /// Disease group.
    pub disease: String,
    /// Doses version covered.
    pub doses_version: i64,
    /// Format.
    #[sqlx(try_from = "String")]
    pub format: CredentialFormat,
    /// Compact JWS or `HC1:` text.
    pub artefact: String,
    /// Signing key id.
    pub kid: String,
    /// Revocation id.
    pub rid: Option<String>,
    /// Not-before, epoch seconds.
    pub nbf: i64,
    /// Expiry, epoch seconds.
    pub exp: Option<i64>,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: CredentialStatus,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("id", &self.id)
            .field("issuer_id", &self.issuer_id)
            .field("patient_id", &self.patient_id)
            .field("doses_version", &self.doses_version)
            .field("format", &self.format)
            .field("kid", &self.kid)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// What [`crate::Store::store_credential`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreCredentialOutcome {
    /// Stored; older active cards superseded; delivery queued (active cards only).
    Stored {
        /// New credential id.
        credential_id: String,
        /// Credentials moved from `active` to `superseded`.
        superseded: Vec<String>,
        /// The `deliver` outbox row (None for held cards).
        outbox_id: Option<i64>,
    },
    /// The patient's doses changed since the snapshot: nothing written; a newer issue job exists.
    Stale {
        /// The patient's current version.
        current_doses_version: i64,
    },
    /// An active card for this very doses version exists (duplicate issue job): nothing written.
    AlreadyIssued {
        /// The existing credential.
        credential_id: String,
    },
}

/// What the issue worker needs, read in one consistent snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSnapshot {
    /// The patient (identity and current `doses_version`).
    pub patient: Patient,
    /// Current issuable doses (status completed), ordered by occurrence.
    pub doses: Vec<Dose>,
}

/// One patient of [`crate::Store::issue_snapshots`]: the snapshot and the patient's active
/// cards, read together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    /// Patient and current issuable doses.
    pub snapshot: IssueSnapshot,
    /// The patient's active cards (every issuer, disease group and format).
    pub active: Vec<Credential>,
}

/// What [`crate::Store::revoke_credential`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeOutcome {
    /// Revoked now; `crl_ctr` is the new CRL counter of its kid when it had a `rid`.
    Revoked {
        /// New CRL counter, if a CRL entry was added.
        crl_ctr: Option<i64>,
    },
    /// It was already revoked.
    AlreadyRevoked,
}

// ---------------------------------------------------------------------------------------------
// Outbox

/// Outbox kind: `issue` with an [`IssueMessage`] payload (a pack of [`IssueJob`]s, or one job
/// from older writers).
pub const OUTBOX_ISSUE: &str = "issue";
/// Most jobs in one outbox row and one message (`issue` and `deliver`): about a worker's batch.
pub const JOBS_PER_PACK: usize = 100;
/// Outbox kind: `deliver` with a [`DeliverMessage`] payload (a pack of [`DeliverJob`]s, or one
/// job from older writers).
pub const OUTBOX_DELIVER: &str = "deliver";

/// Payload of an `issue` outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueJob {
    /// Patient to (re-)issue for.
    pub patient_id: String,
    /// Version the card must cover.
    pub doses_version: i64,
}

/// A queue message body and outbox payload carrying jobs: one job, or several packed
/// (`{"jobs": [...]}`), one message per worker batch instead of one per patient or card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum JobPack<T> {
    /// Several jobs.
    Batch {
        /// The jobs, in outbox order.
        jobs: Vec<T>,
    },
    /// One job.
    One(T),
}

impl<T> JobPack<T> {
    /// The jobs it carries.
    pub fn into_jobs(self) -> Vec<T> {
        match self {
            JobPack::Batch { jobs } => jobs,
            JobPack::One(job) => vec![job],
        }
    }
}

/// Body of an `issue` queue message and payload of an `issue` outbox row.
pub type IssueMessage = JobPack<IssueJob>;

/// Body of a `deliver` queue message and payload of a `deliver` outbox row.
pub type DeliverMessage = JobPack<DeliverJob>;

/// Payload of a `deliver` outbox row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverJob {
    /// Credential to deliver.
    pub credential_id: String,
}

/// A claimed outbox row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OutboxMessage {
    /// Sequence id; publish it as the AMQP `message_id` (`outbox-{id}`) so consumers dedupe.
    pub id: i64,
    /// `issue`, `deliver`, ...
    pub kind: String,
    /// Job payload (ids only).
    #[sqlx(json)]
    pub payload: serde_json::Value,
    /// When the row was written.
    pub created_at: DateTime<Utc>,
    /// Claims so far, this one included.
    pub attempts: i64,
}

// ---------------------------------------------------------------------------------------------
// Keys and revocation

/// Input for [`crate::Store::add_signing_key`].
#[derive(Clone)]
pub struct NewSigningKey {
    /// Issuer.
    pub issuer_id: String,
    /// JWK thumbprint.
    pub kid: String,
    /// Public JWK.
    pub public_jwk: serde_json::Value,
    /// Where the private key lives: `file`, `pkcs11`, `database`.
    pub key_store: String,
    /// Encrypted private key, only when `key_store` is `database`.
    pub private_key_encrypted: Option<Vec<u8>>,
}

impl std::fmt::Debug for NewSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningKey")
            .field("issuer_id", &self.issuer_id)
            .field("kid", &self.kid)
            .field("key_store", &self.key_store)
            .finish_non_exhaustive()
    }
}

/// A signing key row (without private material; see [`crate::Store::signing_key_private`]).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct SigningKey {
    /// Issuer.
    pub issuer_id: String,
    /// JWK thumbprint.
    pub kid: String,
    /// Public JWK.
    #[sqlx(json)]
    pub public_jwk: serde_json::Value,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: KeyStatus,
    /// `file`, `pkcs11`, `database`.
    pub key_store: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it stopped signing.
    pub retired_at: Option<DateTime<Utc>>,
}

/// One CRL entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, Serialize, Deserialize)]
pub struct RevokedRid {
    /// Revocation id.
    pub rid: String,
    /// Revoked only for cards with `nbf` before this time (epoch seconds); `None` = all.
    pub revoked_before: Option<i64>,
}

/// A CRL for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crl {
    /// Issuer.
    pub issuer_id: String,
    /// Key id.
    pub kid: String,
    /// Counter: 1 at the first entry, +1 per change (`crlVersion` in the JWKS).
    pub ctr: i64,
    /// Entries, ordered by rid.
    pub rids: Vec<RevokedRid>,
}

// ---------------------------------------------------------------------------------------------
// SMART Health Links

/// Input for [`crate::Store::create_shl_link`].
#[derive(Clone)]
pub struct NewShlLink {
    /// Manifest id (43-char base64url of 32 random bytes), made by the caller.
    pub id: String,
    /// Credential served.
    pub credential_id: Option<String>,
    /// Patient it belongs to.
    pub patient_id: Option<String>,
    /// Encryption key (base64url), secret.
    pub key: String,
    /// SHL flags (`L`, `P`, `U`), alphabetical.
    pub flags: String,
    /// Label (≤ 80 chars).
    pub label: Option<String>,
    /// Slow hash of the passcode (never the passcode).
    pub passcode_hash: Option<String>,
    /// Lifetime failure limit.
    pub max_failures: i64,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for NewShlLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewShlLink")
            .field("credential_id", &self.credential_id)
            .field("flags", &self.flags)
            .finish_non_exhaustive()
    }
}

/// A link row. `Debug` omits id, key and passcode hash (they are capabilities).
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShlLink {
    /// Manifest id.
    pub id: String,
    /// Credential served.
    pub credential_id: Option<String>,
    /// Patient.
    pub patient_id: Option<String>,
    /// Encryption key.
    pub key: String,
    /// Flags.
    pub flags: String,
    /// Label.
    pub label: Option<String>,
    /// Slow passcode hash.
    pub passcode_hash: Option<String>,
    /// Failed passcode attempts so far (lifetime).
    pub failures: i64,
    /// Limit.
    pub max_failures: i64,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// False once deactivated or locked by failures.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl ShlLink {
    /// Whether the manifest may be served at `now`.
    pub fn is_usable(&self, now: DateTime<Utc>) -> bool {
        self.active && self.failures < self.max_failures && self.expires_at.is_none_or(|e| now < e)
    }
}

impl std::fmt::Debug for ShlLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShlLink")
            .field("credential_id", &self.credential_id)
            .field("flags", &self.flags)
            .field("failures", &self.failures)
            .field("active", &self.active)
            .finish_non_exhaustive()
    }
}

/// Result of [`crate::Store::register_passcode_failure`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasscodeFailure {
    /// Counted; `remaining` attempts left (0 = now locked).
    Counted {
        /// Attempts left.
        remaining: i64,
    },
    /// Not counted: link unknown, inactive or already at its limit (answer 404).
    Refused,
}

// ---------------------------------------------------------------------------------------------
// Deliveries

/// A delivery job row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    /// Internal id (`dlv_…`).
    pub id: String,
    /// Credential delivered.
    pub credential_id: String,
    /// `wallet`, `sms`, `email`, ...
    pub channel: String,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// When to try next (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Error code of the last failed attempt (no PHI).
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Outcome of one delivery attempt, for [`crate::Store::record_delivery_attempt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Delivered.
    Succeeded,
    /// Failed transiently; try again at `next_attempt_at`.
    Retry {
        /// Stable error code.
        error_code: String,
        /// When to try next.
        next_attempt_at: DateTime<Utc>,
    },
    /// Failed for good.
    Failed {
        /// Stable error code.
        error_code: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Review, staff, tokens, audit

/// A review case row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReviewCase {
    /// Internal id (`rev_…`).
    pub id: String,
    /// Kind.
    #[sqlx(try_from = "String")]
    pub kind: ReviewKind,
    /// Status.
    #[sqlx(try_from = "String")]
    pub status: ReviewStatus,
    /// Issuer concerned.
    pub issuer_id: Option<String>,
    /// Patient concerned.
    pub patient_id: Option<String>,
    /// Event concerned.
    pub event_id: Option<String>,
    /// Credential concerned.
    pub credential_id: Option<String>,
    /// Ids and codes only.
    #[sqlx(json)]
    pub details: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When closed.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Staff id who closed it.
    pub resolved_by: Option<String>,
}

/// Input for [`crate::Store::open_review_case`].
#[derive(Debug, Clone)]
pub struct NewReviewCase {
    /// Kind.
    pub kind: ReviewKind,
    /// Issuer concerned.
    pub issuer_id: Option<String>,
    /// Patient concerned.
    pub patient_id: Option<String>,
    /// Event concerned.
    pub event_id: Option<String>,
    /// Credential concerned.
    pub credential_id: Option<String>,
    /// Ids and codes only.
    pub details: serde_json::Value,
}

/// A staff member (clinician, reviewer, admin).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Staff {
    /// Internal id (`stf_…`).
    pub id: String,
    /// Issuer they work for (None = all).
    pub issuer_id: Option<String>,
    /// Login name.
    pub username: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// Role (`admin`, `reviewer`, `clinician`).
    pub role: String,
    /// When disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// Input for [`crate::Store::create_staff`].
#[derive(Clone)]
pub struct NewStaff {
    /// Issuer (None = all).
    pub issuer_id: Option<String>,
    /// Login name.
    pub username: String,
    /// Name shown.
    pub display_name: String,
    /// Role.
    pub role: String,
    /// Slow password hash (PHC string), if local login is used.
    pub password_hash: Option<String>,
}

impl std::fmt::Debug for NewStaff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// An API token row (the token itself is never stored, only its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiToken {
    /// Internal id (`tok_…`).
    pub id: String,
    /// Source it authenticates.
    pub source_id: Option<String>,
    /// Staff member it authenticates.
    pub staff_id: Option<String>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revocation time.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Input for [`crate::Store::create_api_token`].
#[derive(Debug, Clone, Default)]
pub struct NewApiToken {
    /// Source it authenticates.
    pub source_id: Option<String>,
    /// Staff member it authenticates.
    pub staff_id: Option<String>,
    /// Space-separated scopes.
    pub scopes: String,
    /// Expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// An audit entry: who did what to which object, ids only.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Sequence id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Staff id, service name or `system`.
    pub actor: String,
    /// Verb, e.g. `credential.revoke`.
    pub action: String,
    /// Object kind, e.g. `credential`.
    pub subject_kind: String,
    /// Object id.
    pub subject_id: String,
    /// Ids and codes only.
    #[sqlx(json)]
    pub details: serde_json::Value,
}

/// Input for [`crate::Store::append_audit`].
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    /// Staff id, service name or `system`.
    pub actor: String,
    /// Verb.
    pub action: String,
    /// Object kind.
    pub subject_kind: String,
    /// Object id.
    pub subject_id: String,
    /// Ids and codes only.
    pub details: serde_json::Value,
}

// ---------------------------------------------------------------------------------------------
// Wallet endpoints

/// Input for [`crate::Store::create_wallet_endpoint`].
#[derive(Clone)]
pub struct NewWalletEndpoint {
    /// Patient whose cards are pushed.
    pub patient_id: String,
    /// Target URL (vetted by the caller: https, no private addresses unless allow-listed).
    pub url: String,
    /// Standard Webhooks signing secret (`whsec_…`), secret.
    pub secret: String,
}

impl std::fmt::Debug for NewWalletEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewWalletEndpoint")
            .field("patient_id", &self.patient_id)
            .finish_non_exhaustive()
    }
}

/// A wallet endpoint row. `Debug` omits the URL (it may identify the patient) and the secret.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WalletEndpoint {
    /// Internal id (`wal_…`).
    pub id: String,
    /// Patient.
    pub patient_id: String,
    /// Target URL.
    pub url: String,
    /// Signing secret (`whsec_…`).
    pub secret: String,
    /// Registration time.
    pub created_at: DateTime<Utc>,
    /// When disabled (no more pushes).
    pub disabled_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for WalletEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalletEndpoint")
            .field("id", &self.id)
            .field("patient_id", &self.patient_id)
            .field("disabled_at", &self.disabled_at)
            .finish_non_exhaustive()
    }
}
