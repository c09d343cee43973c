//! A patient's doses over time, with the amendment rules (DESIGN.md §4): a newer version of the
//! same source Immunization replaces it, a replay or an older version changes nothing,
//! `entered-in-error` removes, `not-done` is recorded but never issued.
//!
//! Every source key ever seen stays as a record (a tombstone after removal), so a late replay of
//! an old `completed` version cannot bring a removed dose back.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::model::{Dose, DoseEvent, NotDone, SourceKey, SourceVersion};

/// State of one source Immunization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum RecordState {
    /// A dose that goes on cards.
    Active(Dose),
    /// Recorded as not done.
    NotDone(NotDone),
    /// Withdrawn (`entered-in-error` or deleted).
    Removed,
}

/// One source Immunization and the version its state comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Source identity.
    pub source: SourceKey,
    /// Version of the last applied event.
    pub version: SourceVersion,
    /// Current state.
    pub state: RecordState,
}

/// Why an event changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoOpReason {
    /// Same version already applied (re-delivery).
    Replay,
    /// An older version than the one applied.
    Stale,
    /// A newer version whose card content is identical (no re-issue needed).
    SameContent,
    /// Removal of a dose that is not active.
    NothingToRemove,
}

/// Result of [`DoseSet::apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applied {
    /// A new active dose.
    Added,
    /// An active dose replaced by a newer version with different content.
    Replaced,
    /// An active dose left the card (removed, or amended to not-done).
    Removed,
    /// A not-done event was recorded; cards are unaffected.
    Recorded,
    /// Nothing changed.
    NoOp(NoOpReason),
}

impl Applied {
    /// Whether the patient's card must be re-issued (or revoked when no dose is left).
    pub fn changes_card(&self) -> bool {
        matches!(self, Self::Added | Self::Replaced | Self::Removed)
    }
}

/// All source Immunizations of one patient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoseSet {
    records: Vec<Record>,
}

impl DoseSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one event with the amendment rules.
    pub fn apply(&mut self, event: DoseEvent) -> Applied {
        let new_state = match event.clone() {
            DoseEvent::Upsert(d) => RecordState::Active(d),
            DoseEvent::NotDone(n) => RecordState::NotDone(n),
            DoseEvent::Remove(_) => RecordState::Removed,
        };
        let source = event.source().clone();
        let version = event.version().clone();
        let Some(rec) = self.records.iter_mut().find(|r| r.source == source) else {
            let applied = match &new_state {
                RecordState::Active(_) => Applied::Added,
                RecordState::NotDone(_) => Applied::Recorded,
                RecordState::Removed => Applied::NoOp(NoOpReason::NothingToRemove),
            };
            self.records.push(Record {
                source,
                version,
                state: new_state,
            });
            return applied;
        };
        match compare_versions(&version, &rec.version) {
            Some(Ordering::Equal) => return Applied::NoOp(NoOpReason::Replay),
            Some(Ordering::Less) => return Applied::NoOp(NoOpReason::Stale),
            // Unversioned on either side: identical content is a replay, anything else is taken
            // as the newer statement (last writer wins: sources without versions send current state).
            None if same_content(&rec.state, &new_state) => {
                return Applied::NoOp(NoOpReason::Replay)
            }
            Some(Ordering::Greater) | None => {}
        }
        let was_active = matches!(rec.state, RecordState::Active(_));
        let applied = match (&rec.state, &new_state) {
            (RecordState::Active(_), _) if same_content(&rec.state, &new_state) => {
                Applied::NoOp(NoOpReason::SameContent)
            }
            (RecordState::Active(_), RecordState::Active(_)) => Applied::Replaced,
            (_, RecordState::Active(_)) => Applied::Added,
            (_, RecordState::NotDone(_)) if was_active => Applied::Removed,
            (_, RecordState::NotDone(_)) => Applied::Recorded,
            (_, RecordState::Removed) if was_active => Applied::Removed,
            (_, RecordState::Removed) => Applied::NoOp(NoOpReason::NothingToRemove),
        };
        rec.version = version;
        rec.state = new_state;
        applied
    }

    /// Every record, in first-seen order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Active doses, in first-seen order.
    pub fn active(&self) -> impl Iterator<Item = &Dose> {
        self.records.iter().filter_map(|r| match &r.state {
            RecordState::Active(d) => Some(d),
            _ => None,
        })
    }

    /// The doses of one disease group for a card: active, ordered by date (ties in first-seen order).
    pub fn card_doses(&self, disease: &str) -> Vec<Dose> {
        let mut out: Vec<Dose> = self
            .active()
            .filter(|d| d.disease == disease)
            .cloned()
            .collect();
        out.sort_by_key(|d| d.occurrence);
        out
    }
}

fn same_content(a: &RecordState, b: &RecordState) -> bool {
    match (a, b) {
        (RecordState::Active(x), RecordState::Active(y)) => x.same_card_content(y),
        (RecordState::NotDone(x), RecordState::NotDone(y)) => x.vaccine == y.vaccine,
        (RecordState::Removed, RecordState::Removed) => true,
        _ => false,
    }
}

/// Orders two versions of one Immunization: numeric `versionId`s, then `lastUpdated` instants;
/// `None` when neither tells (opaque, differing ids without timestamps, or no meta at all).
pub fn compare_versions(a: &SourceVersion, b: &SourceVersion) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (&a.version_id, &b.version_id) {
        if x == y {
            return Some(Ordering::Equal);
        }
        if let (Ok(x), Ok(y)) = (x.parse::<u64>(), y.parse::<u64>()) {
            return Some(x.cmp(&y));
        }
    }
    if let (Some(x), Some(y)) = (&a.last_updated, &b.last_updated) {
        let rfc = time::format_description::well_known::Rfc3339;
        return match (
            time::OffsetDateTime::parse(x, &rfc),
            time::OffsetDateTime::parse(y, &rfc),
        ) {
            (Ok(x), Ok(y)) => Some(x.cmp(&y)),
            _ if x == y => Some(Ordering::Equal),
            _ => None,
        };
    }
    None
}

impl Dose {
    /// Whether two doses would look the same on a card (source identity and version ignored).
    pub fn same_card_content(&self, other: &Dose) -> bool {
        self.vaccine == other.vaccine
            && self.disease == other.disease
            && self.occurrence == other.occurrence
            && self.lot_number == other.lot_number
            && self.performer == other.performer
            && self.is_subpotent == other.is_subpotent
            && self.ial == other.ial
    }
}
