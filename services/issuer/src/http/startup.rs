//! Refusing to run an issuer whose cards could never verify (spec-checklist §R.2: the most common
//! way real issuers broke). Every issuer's `iss` must be https (plain http only with the explicit
//! development flag `issuer.allow_insecure_iss`), have no trailing `/`, query or fragment, and be
//! exactly where this server publishes that issuer's JWKS: `iss + /.well-known/jwks.json` must
//! be the URL we serve, compared as the exact, case-sensitive string verifiers compare.

use store::Store;

use super::expected_iss;

/// Why the issuer refuses to start. The message names the issuer by slug and says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// An `iss` breaks a rule.
    #[error("issuer `{slug}`: iss {problem}")]
    BadIss {
        /// The issuer's slug.
        slug: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The issuers cannot be read.
    #[error("cannot read the issuers")]
    Store(#[from] store::Error),
}

impl StartupError {
    /// Stable, low-cardinality kebab-case code.
    pub fn code(&self) -> &'static str {
        match self {
            StartupError::BadIss { .. } => "issuer-iss-invalid",
            StartupError::Store(e) => e.code(),
        }
    }
}

/// Checks one `iss` against the URL this server publishes its JWKS under (`expected`, from
/// [`expected_iss`]). Returns what is wrong, in words an operator can act on.
pub fn check_iss(iss: &str, expected: &str, allow_insecure: bool) -> Result<(), String> {
    let url = url::Url::parse(iss).map_err(|_| "is not a valid URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => {
            return Err("must use https: verifiers refuse http issuers (set \
                        issuer.allow_insecure_iss = true for development only)"
                .to_owned())
        }
        _ => return Err("must be an https URL".to_owned()),
    }
    if iss.ends_with('/') {
        return Err("must not end with '/': verifiers append /.well-known/jwks.json".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".to_owned());
    }
    if iss != expected {
        return Err(format!(
            "does not match where this server publishes its keys: the JWKS is served at \
             {expected}/.well-known/jwks.json, so iss must be exactly {expected} (check \
             http.public_base_url)"
        ));
    }
    Ok(())
}

/// Checks every issuer in the store against `public_base_url`; the first failure stops the start.
pub async fn check_issuers(
    store: &Store,
    public_base_url: &str,
    allow_insecure: bool,
) -> Result<(), StartupError> {
    for issuer in store.list_issuers().await? {
        let expected = expected_iss(public_base_url, &issuer.slug);
        check_iss(&issuer.iss, &expected, allow_insecure).map_err(|problem| {
            StartupError::BadIss {
                slug: issuer.slug.clone(),
                problem,
            }
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iss_rules() {
        let base = "https://vax.example.org";
        assert!(check_iss(base, base, false).is_ok());
        assert!(check_iss("https://vax.example.org/", base, false)
            .unwrap_err()
            .contains("'/'"));
        assert!(
            check_iss("http://vax.example.org", "http://vax.example.org", false)
                .unwrap_err()
                .contains("https")
        );
        assert!(check_iss("http://vax.example.org", "http://vax.example.org", true).is_ok());
        assert!(check_iss("https://VAX.example.org/x", base, false)
            .unwrap_err()
            .contains("exactly"));
        assert!(check_iss("https://vax.example.org?a=1", base, false).is_err());
        assert!(check_iss("ftp://vax.example.org", base, true).is_err());
        assert_eq!(
            expected_iss("https://vax.example.org/", "north"),
            "https://vax.example.org/issuers/north"
        );
    }
}
