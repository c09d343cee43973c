//! `vaxcred normalize FILE.json [--patient PATIENT.json]`: shows what vaxcred makes of a FHIR
//! message — the normalized model (doses kept, each skipped Immunization with its reason) — so an
//! integrator can check an EHR feed before connecting it.
//!
//! Exit codes: 0 when at least one dose can go on a card; 2 when the input is rejected or yields
//! no dose (code and message on stderr); 3 when the Patient is only referenced and must be
//! fetched first (the reference on stdout; pass the fetched Patient with `--patient`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use model::{FetchedPatient, Outcome, Reject};

/// Arguments of `vaxcred normalize`.
#[derive(Debug, clap::Args)]
pub struct NormalizeArgs {
    /// FHIR JSON: an Immunization or a Bundle (transaction, batch, collection, history, searchset,
    /// subscription notification).
    pub file: PathBuf,
    /// The fetched Patient (a Patient, or a search Bundle holding one) for a message that only
    /// references its Patient.
    #[arg(long)]
    pub patient: Option<PathBuf>,
}

/// Exit code: at least one dose for a card.
pub const EXIT_OK: i32 = 0;
/// Exit code: rejected, or no dose.
pub const EXIT_REJECTED: i32 = 2;
/// Exit code: the Patient must be fetched first.
pub const EXIT_PATIENT_NEEDED: i32 = 3;

/// Runs the subcommand and returns the process exit code. I/O failures (unreadable file) are
/// errors; everything about the content is an exit code.
pub fn run(args: &NormalizeArgs) -> anyhow::Result<i32> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let patient_bytes = match &args.patient {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr().lock();
    let code = normalize_to(&bytes, patient_bytes.as_deref(), &mut stdout, &mut stderr)?;
    stdout.flush()?;
    Ok(code)
}

/// The testable core of [`run`]: writes the model (or the reference) to `out`, the reject to `err`.
pub fn normalize_to(
    bytes: &[u8],
    patient: Option<&[u8]>,
    out: &mut impl Write,
    err: &mut impl Write,
) -> anyhow::Result<i32> {
    let rejected = |err: &mut dyn Write, r: &Reject| -> anyhow::Result<i32> {
        writeln!(err, "{}: {r}", r.code())?;
        Ok(EXIT_REJECTED)
    };
    let parsed = match model::parse(bytes) {
        Ok(p) => p,
        Err(r) => return rejected(err, &r),
    };
    let fetched = match patient.map(FetchedPatient::parse).transpose() {
        Ok(f) => f,
        Err(r) => return rejected(err, &r),
    };
    match model::normalize(&parsed, fetched.as_ref()) {
        Err(r) => rejected(err, &r),
        Ok(Outcome::PatientNeeded(p)) => {
            writeln!(out, "patient must be fetched: {}", p.reference)?;
            Ok(EXIT_PATIENT_NEEDED)
        }
        Ok(Outcome::Ready(n)) => {
            serde_json::to_writer_pretty(&mut *out, &n)?;
            writeln!(out)?;
            if n.doses().next().is_some() {
                return Ok(EXIT_OK);
            }
            let reason = n
                .skipped
                .first()
                .map(|s| s.reason.clone())
                .unwrap_or(Reject::NoDoses);
            rejected(err, &reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/model/tests/fixtures"
    );

    fn run_on(file: &str, patient: Option<&str>) -> (i32, String, String) {
        let read = |f: &str| std::fs::read(format!("{FIXTURES}/{f}")).unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = normalize_to(
            &read(file),
            patient.map(read).as_deref(),
            &mut out,
            &mut err,
        )
        .unwrap();
        (
            code,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn exit_codes() {
        let (code, out, _) = run_on("cerner-searchset.json", None);
        assert_eq!(code, EXIT_OK);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["events"].as_array().unwrap().len(), 2);
        assert_eq!(v["skipped"][0]["reason"]["code"], "vaccine-code-unknown");

        let (code, out, _) = run_on("referenced-only.json", None);
        assert_eq!(
            (code, out.trim()),
            (
                EXIT_PATIENT_NEEDED,
                "patient must be fetched: Patient/pt-1001"
            )
        );
        assert_eq!(
            run_on("referenced-only.json", Some("patient-pt-1001.json")).0,
            EXIT_OK
        );

        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = normalize_to(
            br#"{"resourceType":"Observation"}"#,
            None,
            &mut out,
            &mut err,
        )
        .unwrap();
        assert_eq!(code, EXIT_REJECTED);
        assert!(String::from_utf8(err)
            .unwrap()
            .starts_with("wrong-resource-type: "));
    }
}
