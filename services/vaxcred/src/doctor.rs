//! `vaxcred doctor ISS`: checks a running issuer from the outside, the way the VCI directory's
//! daily audit and the verifier apps see it (spec-checklist §R): `iss` https without a trailing
//! slash, JWKS reachable at exactly `iss + /.well-known/jwks.json` with a CORS header, every key
//! a conforming P-256 signing JWK (`use`/`alg` present, `kid` = RFC 7638 thumbprint, no `d`), the
//! CRL of every key announcing `crlVersion` reachable (with CORS) and at that version, and the
//! SMART configuration listing `health-cards`. Prints every check; exits 1 if one fails.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

/// `vaxcred doctor …`
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The issuer's `iss` (base URL), exactly as in its cards.
    iss: String,
    /// Accept a plain-http `iss` (a development server): reported, not failed.
    #[arg(long)]
    allow_http: bool,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub what: String,
    /// Passed.
    pub ok: bool,
    /// Why not, or a note.
    pub detail: String,
}

fn check(out: &mut Vec<Check>, what: impl Into<String>, ok: bool, detail: impl Into<String>) {
    out.push(Check {
        what: what.into(),
        ok,
        detail: detail.into(),
    });
}

/// Runs the checks against `iss`.
pub async fn examine(client: &reqwest::Client, iss: &str, allow_http: bool) -> Vec<Check> {
    let mut out = Vec::new();
    let https = iss.starts_with("https://");
    check(
        &mut out,
        "iss uses https",
        https || allow_http,
        if https {
            ""
        } else {
            "plain http: verifiers reject such cards"
        },
    );
    check(
        &mut out,
        "iss has no trailing slash",
        !iss.ends_with('/'),
        "verifiers append /.well-known/jwks.json to iss as is",
    );
    let jwks_url = format!("{iss}/.well-known/jwks.json");
    let jwks = match fetch(client, &jwks_url).await {
        Ok((cors, body)) => {
            check(&mut out, "JWKS reachable", true, jwks_url.clone());
            check(
                &mut out,
                "JWKS has Access-Control-Allow-Origin",
                cors,
                "browser verifiers cannot fetch keys without CORS",
            );
            body
        }
        Err(e) => {
            check(
                &mut out,
                "JWKS reachable",
                false,
                format!("{jwks_url}: {e}"),
            );
            return out;
        }
    };
    let keys = jwks.get("keys").and_then(Value::as_array);
    check(
        &mut out,
        "JWKS has a non-empty keys array",
        keys.is_some_and(|k| !k.is_empty()),
        "",
    );
    for key in keys.into_iter().flatten() {
        let kid = key.get("kid").and_then(Value::as_str).unwrap_or("(no kid)");
        let problems = shc::keys::check_jwk(key);
        let thumb = match (
            key.get("x").and_then(Value::as_str),
            key.get("y").and_then(Value::as_str),
        ) {
            (Some(x), Some(y)) => shc::keys::thumbprint(x, y),
            _ => String::new(),
        };
        check(
            &mut out,
            format!("key {kid}: kid is its RFC 7638 thumbprint"),
            thumb == kid,
            "",
        );
        check(
            &mut out,
            format!("key {kid}: use and alg present"),
            key.get("use").and_then(Value::as_str) == Some("sig")
                && key.get("alg").and_then(Value::as_str) == Some("ES256"),
            "use must be sig and alg ES256 (keys without them were dropped by verifiers)",
        );
        check(
            &mut out,
            format!("key {kid}: conforming P-256 public JWK"),
            problems.is_empty(),
            problems
                .iter()
                .map(|p| p.detail.clone())
                .collect::<Vec<_>>()
                .join("; "),
        );
        if let Some(version) = key.get("crlVersion") {
            let url = format!("{iss}/.well-known/crl/{kid}.json");
            match fetch(client, &url).await {
                Ok((cors, crl)) => {
                    let parsed = shc::crl::Crl::parse(&crl);
                    let (ok, detail) = match &parsed {
                        Ok((c, p)) if p.is_empty() && c.kid == kid => (
                            Some(c.ctr) == version.as_u64(),
                            format!("ctr {} vs crlVersion {version}", c.ctr),
                        ),
                        Ok(_) => (false, "CRL has defects or another kid".to_owned()),
                        Err(p) => (false, p.detail.clone()),
                    };
                    check(
                        &mut out,
                        format!("key {kid}: CRL reachable and current"),
                        ok,
                        detail,
                    );
                    check(
                        &mut out,
                        format!("key {kid}: CRL has Access-Control-Allow-Origin"),
                        cors,
                        "",
                    );
                }
                Err(e) => check(
                    &mut out,
                    format!("key {kid}: CRL reachable and current"),
                    false,
                    format!("{url}: {e}"),
                ),
            }
        }
    }
    let conf_url = format!("{iss}/.well-known/smart-configuration");
    let listed = match fetch(client, &conf_url).await {
        Ok((_, conf)) => conf
            .get("capabilities")
            .and_then(Value::as_array)
            .is_some_and(|c| c.iter().any(|v| v == "health-cards")),
        Err(_) => false,
    };
    check(
        &mut out,
        "smart-configuration lists health-cards",
        listed,
        "needed for $health-cards-issue discovery (FHIR issuers)",
    );
    out
}

async fn fetch(client: &reqwest::Client, url: &str) -> anyhow::Result<(bool, Value)> {
    let r = client
        .get(url)
        .header("Origin", "https://verifier.example")
        .send()
        .await
        .context("request failed")?;
    if !r.status().is_success() {
        anyhow::bail!("HTTP {}", r.status().as_u16());
    }
    let cors = r.headers().contains_key("access-control-allow-origin");
    let body = r.json().await.context("not JSON")?;
    Ok((cors, body))
}

/// Runs `doctor`.
pub fn run(args: &DoctorArgs) -> anyhow::Result<i32> {
    delivery::outbound::ensure_crypto_provider();
    let runtime = crate::issuers::runtime()?;
    let checks = runtime.block_on(async {
        // No redirects: a verifier needs the keys at exactly this URL.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("HTTP client")?;
        anyhow::Ok(examine(&client, &args.iss, args.allow_http).await)
    })?;
    let mut failed = 0;
    for c in &checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        if c.ok || c.detail.is_empty() {
            println!("{mark} {}", c.what);
        } else {
            println!("{mark} {} — {}", c.what, c.detail);
        }
        failed += usize::from(!c.ok);
    }
    println!("{} checks, {failed} failed", checks.len());
    Ok(if failed == 0 { 0 } else { 1 })
}
