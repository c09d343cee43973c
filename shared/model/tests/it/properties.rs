//! Property: any model the generator makes → card bundle → parse back → the same model, and
//! every card bundle passes the independent DM checker (`check_card_bundle`, written from the
//! profile rules, not from the builder).

use model::{
    card_bundle, CardOptions, Dose, FhirDate, HumanName, MetaSecurity, Patient, SourceKey,
    SourceVersion, VaccineCode, ValueSets,
};
use proptest::prelude::*;

use crate::helpers::{ready, shall_violations};

fn word() -> impl Strategy<Value = String> {
    "[A-Z][a-z]{1,8}"
}

fn name() -> impl Strategy<Value = HumanName> {
    prop_oneof![
        (
            word(),
            prop::collection::vec(word(), 1..3),
            prop::collection::vec(prop::sample::select(vec!["Jr.", "III"]), 0..2)
        )
            .prop_map(|(family, given, suffix)| HumanName::Parts {
                family,
                given,
                suffix: suffix.into_iter().map(String::from).collect()
            }),
        prop::collection::vec(word(), 1..4).prop_map(|w| HumanName::Text { text: w.join(" ") }),
    ]
}

fn date(full: bool) -> impl Strategy<Value = FhirDate> {
    (1900u16..2030, 1u8..=12, 1u8..=28, 0u8..3).prop_map(move |(y, m, d, precision)| {
        let p = if full { 2 } else { precision };
        FhirDate::from_parts(y, (p >= 1).then_some(m), (p >= 2).then_some(d)).unwrap()
    })
}

fn codes(group: &str) -> Vec<VaccineCode> {
    ValueSets::builtin()
        .unwrap()
        .codes_of(group)
        .into_iter()
        .map(|(system, code)| VaccineCode { system, code })
        .collect()
}

fn dose(group: &'static str) -> impl Strategy<Value = Dose> {
    (
        prop::sample::select(codes(group)),
        date(true),
        prop::option::of("[0-9][A-Z0-9]{0,18}"),
        prop::option::of(prop::collection::vec(word(), 1..4).prop_map(|w| w.join(" "))),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![
            "IAL1.2", "IAL1.4", "IAL2", "IAL3",
        ])),
        "[a-z0-9]{1,12}",
    )
        .prop_map(
            move |(vaccine, occurrence, lot_number, performer, is_subpotent, ial, id)| Dose {
                source: SourceKey {
                    system: "urn:test".into(),
                    id,
                },
                version: SourceVersion::default(),
                vaccine,
                disease: group.into(),
                occurrence,
                lot_number,
                performer,
                is_subpotent,
                ial: ial.map(String::from),
            },
        )
}

fn card_input() -> impl Strategy<Value = (Patient, Vec<Dose>)> {
    let doses = prop_oneof![
        3 => prop::collection::vec(dose("covid-19"), 1..6),
        1 => prop::collection::vec(dose("orthopoxvirus"), 1..3),
    ];
    (name(), date(false), doses).prop_map(|(name, birth, doses)| (Patient::new(name, birth), doses))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn model_to_card_and_back_is_the_same_model((patient, doses) in card_input()) {
        let opts = CardOptions { meta_security: MetaSecurity::FromDoses };
        let card = card_bundle(&patient, &doses, &opts).unwrap();
        let violations = shall_violations(&card);
        prop_assert!(violations.is_empty(), "{violations:?}");

        let back = ready(&serde_json::to_vec(&card).unwrap(), None);
        prop_assert_eq!(back.patient.identity(), patient.identity());
        prop_assert!(back.skipped.is_empty(), "{:?}", back.skipped);
        let got: Vec<&Dose> = back.doses().collect();
        prop_assert_eq!(got.len(), doses.len());
        for (g, want) in got.iter().zip(&doses) {
            prop_assert!(g.same_card_content(want), "{g:?} != {want:?}");
        }
        // And building again from the parsed-back model gives the same bytes.
        let again = card_bundle(&back.patient, &got.into_iter().cloned().collect::<Vec<_>>(), &opts).unwrap();
        prop_assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&card).unwrap());
    }
}
