//! Normalizations per second for a typical Epic-shaped message (contained Patient, several
//! codings, extensions): `cargo bench -p model`. Plain `Instant` loop, no harness, so it runs on
//! stable without extra dependencies.

use std::time::{Duration, Instant};

fn main() {
    let bytes = include_bytes!("../tests/fixtures/epic-immunization-contained-patient.json");
    let card_bytes = include_bytes!("../tests/fixtures/cerner-searchset.json");
    for (name, input) in [
        ("epic bare Immunization", &bytes[..]),
        ("cerner searchset (3 Immunizations)", &card_bytes[..]),
    ] {
        let run = || {
            let parsed = model::parse(input).map_err(|e| e.code())?;
            model::normalize(&parsed, None).map_err(|e| e.code())
        };
        // Warm up and check the input is one the pipeline accepts.
        if let Err(code) = run() {
            eprintln!("{name}: input rejected: {code}");
            std::process::exit(1);
        }
        let budget = Duration::from_secs(3);
        let start = Instant::now();
        let mut n: u64 = 0;
        while start.elapsed() < budget {
            for _ in 0..100 {
                let _ = std::hint::black_box(run());
            }
            n += 100;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{name}: {n} parse+normalize in {secs:.2}s = {:.0}/s ({:.1} µs each, {} bytes)",
            n as f64 / secs,
            secs * 1e6 / n as f64,
            input.len()
        );
    }
}
