//! The `.smart-health-card` file (rules 39–40): `{"verifiableCredential":["<jws>", …]}`.

use serde::{Deserialize, Serialize};

use crate::error::{Problem, ProblemKind};

/// File extension (rule 39).
pub const EXTENSION: &str = "smart-health-card";

/// The body of a `.smart-health-card` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCardFile {
    /// One or more compact JWS.
    #[serde(rename = "verifiableCredential")]
    pub verifiable_credential: Vec<String>,
}

impl HealthCardFile {
    /// A file holding one card.
    pub fn single(jws: impl Into<String>) -> Self {
        HealthCardFile {
            verifiable_credential: vec![jws.into()],
        }
    }

    /// The file's JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a file, reporting trailing characters after the JSON (dev-tools `trailing_chars`).
    pub fn parse(text: &str) -> Result<(Self, Vec<Problem>), Problem> {
        let (value, problems) = parse_json_strict(text)?;
        let file: HealthCardFile = serde_json::from_value(value).map_err(|_| {
            Problem::error(
                ProblemKind::Schema,
                "file must be an object with a `verifiableCredential` array of strings (rule 40)",
            )
        })?;
        if file.verifiable_credential.is_empty() {
            return Err(Problem::error(
                ProblemKind::Schema,
                "`verifiableCredential` is empty (rule 40)",
            ));
        }
        Ok((file, problems))
    }
}

/// Parses one JSON value; a single final newline is tolerated, any other trailing text is a
/// problem (and a UTF-8 BOM before the value is one too).
pub fn parse_json_strict(text: &str) -> Result<(serde_json::Value, Vec<Problem>), Problem> {
    let mut problems = Vec::new();
    let body = match text.strip_prefix('\u{feff}') {
        Some(rest) => {
            problems.push(Problem::error(
                ProblemKind::TrailingCharacters,
                "text starts with a UTF-8 byte-order mark",
            ));
            rest
        }
        None => text,
    };
    let mut stream = serde_json::Deserializer::from_str(body).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        _ => return Err(Problem::error(ProblemKind::JsonParse, "not JSON")),
    };
    let rest = body.get(stream.byte_offset()..).unwrap_or_default();
    let rest = rest
        .strip_suffix("\r\n")
        .or_else(|| rest.strip_suffix('\n'))
        .unwrap_or(rest);
    if !rest.is_empty() {
        problems.push(Problem::error(
            ProblemKind::TrailingCharacters,
            format!("{} character(s) after the JSON value", rest.chars().count()),
        ));
    }
    Ok((value, problems))
}
