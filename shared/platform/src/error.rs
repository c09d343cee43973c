//! The platform crate's one error type: what can go wrong loading configuration, starting
//! telemetry or registering metrics. Messages name config keys and causes, never values (a value
//! may be a password, a token or a URL carrying credentials).

/// Everything `platform` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file named by `VAXCRED_CONFIG` could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigFile {
        /// The file's path (a path, not a secret).
        path: String,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
    /// The layers could not be merged or did not deserialize into the expected types
    /// (wrong type, unknown enum value, malformed TOML). The message names the key.
    #[error("invalid configuration: {0}")]
    ConfigParse(String),
    /// The configuration deserialized but breaks one or more rules; each entry names a key and
    /// the rule, e.g. `amqp.prefetch: must be at least 1`.
    #[error("invalid configuration: {}", .0.join("; "))]
    ConfigInvalid(Vec<String>),
    /// The tracing subscriber or the OpenTelemetry exporter could not be installed.
    #[error("telemetry setup failed: {0}")]
    Telemetry(String),
    /// A metric could not be created or registered (e.g. a name registered twice).
    #[error("metrics registration failed: {0}")]
    Metrics(#[from] prometheus::Error),
}

impl Error {
    /// A stable, low-cardinality code for logs, metric labels and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ConfigFile { .. } => "config-file",
            Self::ConfigParse(_) => "config-parse",
            Self::ConfigInvalid(_) => "config-invalid",
            Self::Telemetry(_) => "telemetry-setup",
            Self::Metrics(_) => "metrics-registration",
        }
    }

    /// Whether trying again without changing anything could succeed. Nothing here is: every
    /// variant is a setup mistake to fix.
    pub fn is_retryable(&self) -> bool {
        false
    }

    /// The individual rule violations, for `ConfigInvalid`; empty otherwise.
    pub fn problems(&self) -> &[String] {
        match self {
            Self::ConfigInvalid(p) => p,
            _ => &[],
        }
    }
}

impl From<figment::Error> for Error {
    fn from(err: figment::Error) -> Self {
        Self::ConfigParse(
            err.into_iter()
                .map(|e| describe(&e))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// One figment error as text that names the key, the source layer and what was expected, but
/// not the offending value: figment's own `Display` quotes it ("found string \"s3cr3t\"").
fn describe(e: &figment::Error) -> String {
    use figment::error::Kind;
    let what = match &e.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            format!("expected {expected}")
        }
        Kind::Unsupported(_) | Kind::UnsupportedKey(..) => "unsupported value type".to_owned(),
        other => other.to_string(),
    };
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", e.path.join("."))
    };
    let from = e
        .metadata
        .as_ref()
        .map(|m| format!(" (from {})", m.name))
        .unwrap_or_default();
    format!("{key}{what}{from}")
}
