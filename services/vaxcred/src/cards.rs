//! `vaxcred issue` and `vaxcred verify`: SMART Health Cards from the command line, with no broker
//! and no database — the first thing a newcomer runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use shc::file::HealthCardFile;
use shc::keys::Jwks;
use shc::{qr, CardIssuer, Claims, LocalSigner, NumericDate, TrustStore, Verifier};

/// Arguments of `vaxcred issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// FHIR JSON: a raw EHR message (Immunization, Bundle, subscription notification) — normalized
    /// into a vaccination card — or, with `--as-is`, any FHIR bundle to minimize and sign.
    pub bundle: PathBuf,
    /// Private signing key: a private JWK, or a private JWKS (then `--kid` picks the key).
    #[arg(long)]
    pub key: PathBuf,
    /// Key id to pick from a private JWKS.
    #[arg(long)]
    pub kid: Option<String>,
    /// Issuer URL (`iss`): https, no trailing slash; its JWKS must be served at `<iss>/.well-known/jwks.json`.
    #[arg(long)]
    pub iss: String,
    /// Output directory (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The Patient, when the message only references it.
    #[arg(long)]
    pub patient: Option<PathBuf>,
    /// Sign the bundle as given (minimized), without normalizing it as a vaccination record.
    #[arg(long)]
    pub as_is: bool,
    /// Revocation id to embed (`vc.rid`).
    #[arg(long)]
    pub rid: Option<String>,
    /// Expiry, in days from now (cards usually do not expire).
    #[arg(long)]
    pub expires_in_days: Option<u64>,
    /// Output file name stem.
    #[arg(long, default_value = "card")]
    pub name: String,
}

/// Issues a card and writes its artefacts.
pub fn issue(args: &IssueArgs) -> anyhow::Result<i32> {
    let key_text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("reading {}", args.key.display()))?;
    let signer = LocalSigner::from_json(&key_text, args.kid.as_deref())
        .context("loading the signing key")?;
    let input = std::fs::read(&args.bundle)
        .with_context(|| format!("reading {}", args.bundle.display()))?;

    let bundle: serde_json::Value = if args.as_is {
        let mut b: serde_json::Value =
            serde_json::from_slice(&input).context("the bundle is not JSON")?;
        shc::minimize::minimize_bundle(&mut b)?;
        b
    } else {
        let patient = match &args.patient {
            Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
            None => None,
        };
        match model::card_bundle_from_fhir(&input, patient.as_deref()) {
            Ok(b) => b,
            Err(reject) => {
                eprintln!("{}: {reject}", reject.code());
                return Ok(2);
            }
        }
    };

    let mut claims = Claims::new(&args.iss);
    claims.rid = args.rid.clone();
    if let Some(days) = args.expires_in_days {
        claims.exp = Some(NumericDate::from_secs(
            shc::payload::now_secs() + days * 86_400,
        ));
    }
    let mut issuer = CardIssuer::new(Arc::new(signer));
    let card = issuer.issue_minimized(&bundle, &claims)?;
    let code = qr::matrix(&card.qr_text)?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let path = |ext: &str| args.out.join(format!("{}.{ext}", args.name));
    write(
        &path(shc::file::EXTENSION),
        HealthCardFile::single(&card.jws).to_json().as_bytes(),
    )?;
    write(&path("jws"), card.jws.as_bytes())?;
    write(&path("qr.txt"), card.qr_text.as_bytes())?;
    write(&path("qr.svg"), qr::to_svg(&code).as_bytes())?;
    write(&path("qr.png"), &qr::to_png(&code, 8)?)?;
    println!(
        "issued card signed by kid {} ({} characters, QR version {})",
        card.kid,
        card.jws.len(),
        code.version().value()
    );
    for ext in [shc::file::EXTENSION, "jws", "qr.txt", "qr.svg", "qr.png"] {
        println!("  {}", path(ext).display());
    }
    Ok(0)
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Arguments of `vaxcred verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The card: `.smart-health-card` file, compact JWS, `shc:/` text (one chunk per line) or a
    /// QR image (PNG/JPEG). Several files are chunks of one card.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The issuer's public JWKS (as served at `<iss>/.well-known/jwks.json`).
    #[arg(long)]
    pub jwks: PathBuf,
    /// The issuer the JWKS belongs to; by default it is trusted for the card's own `iss`.
    #[arg(long)]
    pub iss: Option<String>,
    /// Revocation list(s) for keys that announce `crlVersion`.
    #[arg(long)]
    pub crl: Vec<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Verifies a card; exit 0 when valid, 1 when not.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<i32> {
    let jwks_text = std::fs::read_to_string(&args.jwks)
        .with_context(|| format!("reading {}", args.jwks.display()))?;
    let jwks = Jwks::parse(&jwks_text)?;
    let mut inputs = Vec::new();
    for f in &args.files {
        inputs.push(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?);
    }
    let first_name = args
        .files
        .first()
        .and_then(|f| f.file_name())
        .map(|n| n.to_string_lossy().into_owned());

    // Find the card's `iss` with an empty trust store, then trust the JWKS for it (or `--iss`).
    let probe = verify_inputs(
        &Verifier::new(TrustStore::new()),
        &inputs,
        first_name.as_deref(),
    );
    let mut trust = TrustStore::new();
    let card_iss = probe.cards.iter().find_map(|c| c.issuer.clone());
    match (args.iss.clone(), card_iss) {
        (Some(iss), _) | (None, Some(iss)) => {
            trust.add_issuer(iss, jwks);
        }
        (None, None) => {}
    }
    for crl in &args.crl {
        let value: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(crl).with_context(|| format!("reading {}", crl.display()))?,
        )
        .with_context(|| format!("{} is not JSON", crl.display()))?;
        if let Err(p) = trust.add_crl(&value) {
            bail!("{}: {p}", crl.display());
        }
    }
    let v = verify_inputs(&Verifier::new(trust), &inputs, first_name.as_deref());

    if args.json {
        let text = serde_json::json!({ "valid": v.is_valid(), "report": v }).to_string() + "\n";
        let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
    } else {
        print_report(&v);
    }
    Ok(if v.is_valid() { 0 } else { 1 })
}

fn verify_inputs(verifier: &Verifier, inputs: &[Vec<u8>], name: Option<&str>) -> shc::Verification {
    match inputs {
        [one] => verifier.verify_bytes(one, name),
        many if many
            .iter()
            .all(|b| b.starts_with(&[0x89, b'P']) || b.starts_with(&[0xff, 0xd8])) =>
        {
            let refs: Vec<&[u8]> = many.iter().map(Vec::as_slice).collect();
            verifier.verify_qr_images(&refs)
        }
        many => {
            let texts: Vec<&str> = many
                .iter()
                .filter_map(|b| std::str::from_utf8(b).ok())
                .collect();
            verifier.verify_qr_texts(&texts)
        }
    }
}

/// The human report. Built as one string and written once: a closed pipe (`| head`) must not
/// panic the process, as `println!` would.
fn print_report(v: &shc::Verification) {
    let mut o = String::new();
    let _ = writeln!(o, "{}", if v.is_valid() { "VALID" } else { "NOT VALID" });
    for p in &v.problems {
        let _ = writeln!(o, "  {p}");
    }
    for (i, card) in v.cards.iter().enumerate() {
        let _ = writeln!(
            o,
            "card {}: {}",
            i + 1,
            if card.is_valid() {
                "valid"
            } else {
                "not valid"
            }
        );
        let _ = writeln!(
            o,
            "  issuer: {}",
            card.issuer.as_deref().unwrap_or("(unreadable)")
        );
        let _ = writeln!(o, "  key:    {}", card.kid.as_deref().unwrap_or("(none)"));
        let _ = writeln!(
            o,
            "  signature: {}",
            if card.signature_verified {
                "verified"
            } else {
                "not verified"
            }
        );
        if card.revoked {
            let _ = writeln!(o, "  REVOKED by its issuer");
        }
        if let Some(c) = &card.contents {
            let _ = writeln!(
                o,
                "  patient: {} (born {})",
                c.patient_name.as_deref().unwrap_or("?"),
                c.birth_date.as_deref().unwrap_or("?")
            );
            for (n, d) in c.immunizations.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "  dose {}: {} {} on {}{}{}{}",
                    n + 1,
                    short_system(d.system.as_deref()),
                    d.code.as_deref().unwrap_or("?"),
                    d.date.as_deref().unwrap_or("?"),
                    d.lot_number
                        .as_deref()
                        .map(|l| format!(", lot {l}"))
                        .unwrap_or_default(),
                    d.performer
                        .as_deref()
                        .map(|p| format!(", by {p}"))
                        .unwrap_or_default(),
                    if d.subpotent { " (subpotent)" } else { "" },
                );
            }
            if c.other_entries > 0 {
                let _ = writeln!(o, "  {} other FHIR entries", c.other_entries);
            }
        }
        for p in &card.problems {
            let _ = writeln!(o, "  {p}");
        }
    }
    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), o.as_bytes());
}

fn short_system(system: Option<&str>) -> &str {
    match system {
        Some("http://hl7.org/fhir/sid/cvx") => "CVX",
        Some("http://snomed.info/sct") => "SNOMED CT",
        Some("http://id.who.int/icd/release/11/mms" | "http://id.who.int/icd11/mms") => "ICD-11",
        Some(other) => other,
        None => "?",
    }
}
