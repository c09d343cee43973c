//! Fuzzing the parser with proptest (stable Rust, no cargo-fuzz toolchain): arbitrary bytes and
//! mutated valid messages through parse → normalize → DoseSet → card. The property is "no panic";
//! the results must also be well-formed (a stable code on errors, DM-conformant cards).

use model::{DoseSet, Outcome};
use proptest::prelude::*;
use serde_json::Value;

use crate::helpers::{fixture, shall_violations};

/// Runs the whole ingest path; panics only on a bug.
fn exercise(bytes: &[u8]) {
    match model::parse(bytes) {
        Err(e) => assert!(!e.code().is_empty()),
        Ok(parsed) => match model::normalize(&parsed, None) {
            Err(e) => assert!(!e.code().is_empty()),
            Ok(Outcome::PatientNeeded(p)) => assert!(!p.reference.is_empty()),
            Ok(Outcome::Ready(n)) => {
                let mut set = DoseSet::new();
                for ev in n.events.iter().cloned() {
                    set.apply(ev);
                }
                for g in model::ValueSets::builtin().unwrap().groups() {
                    let doses = set.card_doses(&g.id);
                    if !doses.is_empty() {
                        let card =
                            model::card_bundle(&n.patient, &doses, &Default::default()).unwrap();
                        assert!(shall_violations(&card).is_empty(), "{card}");
                    }
                }
            }
        },
    }
    let _ = model::card_bundle_from_fhir(bytes, Some(bytes));
}

fn seeds() -> Vec<Vec<u8>> {
    [
        "epic-immunization-contained-patient.json",
        "cerner-searchset.json",
        "backport-notification.json",
        "transaction-urn-uuid.json",
        "referenced-only.json",
    ]
    .iter()
    .map(|f| fixture(f))
    .collect()
}

/// Replaces the node at a pseudo-random position (depth-first index) with `with`.
fn replace_nth(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Object(m) => m.values_mut().any(|c| replace_nth(c, n, with)),
        Value::Array(a) => a.iter_mut().any(|c| replace_nth(c, n, with)),
        _ => false,
    }
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "Patient",
            "Immunization",
            "Bundle",
            "#p",
            "Patient/1",
            "completed",
            "not-done",
            "entered-in-error",
            "2021-02-30",
            "1980",
            "207",
            "213",
            "http://hl7.org/fhir/sid/cvx",
            "resource:0",
            "urn:uuid:x",
            "Lot #",
        ])
        .prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        exercise(&bytes);
    }

    #[test]
    fn byte_mutations_of_valid_messages_never_panic(
        seed in 0usize..5,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = seeds().swap_remove(seed);
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => { bytes.remove(i); }
            }
        }
        exercise(&bytes);
    }

    #[test]
    fn structural_mutations_of_valid_messages_never_panic(
        seed in 0usize..5,
        edits in prop::collection::vec((0usize..400, json_value()), 1..6),
    ) {
        let mut v: Value = serde_json::from_slice(&seeds()[seed]).unwrap();
        for (mut at, with) in edits {
            replace_nth(&mut v, &mut at, &with);
        }
        exercise(&serde_json::to_vec(&v).unwrap());
    }
}
