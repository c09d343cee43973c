//! Configuration every service shares, loaded in layers: built-in defaults → an optional TOML
//! file (`VAXCRED_CONFIG=path`) → environment variables, then validated as a whole so a
//! misconfigured deployment stops at start with every problem listed at once.
//!
//! Environment names: `VAXCRED_<SECTION>__<KEY>` (double underscore between path parts, e.g.
//! `VAXCRED_AMQP__PREFETCH=32`, `VAXCRED_DATA_DIR=/var/lib/vaxcred`), plus the conventional
//! `DATABASE_URL`, `AMQP_URL`, `AMQP_PREFIX` and `OTEL_EXPORTER_OTLP_ENDPOINT` (a `VAXCRED_` name
//! for the same key wins over them). Lists are comma-separated in the environment and TOML arrays
//! in the file. Empty variables count as unset, as compose files often leave them.
//!
//! Services own their private settings: put them under a section of your own (`[ingest]`,
//! `VAXCRED_INGEST__...`) and read it with [`Config::section`]; it sees the same layers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use crate::error::Error;

/// The environment variable that names the optional TOML config file.
pub const CONFIG_FILE_VAR: &str = "VAXCRED_CONFIG";
/// Prefix of all vaxcred-specific environment variables.
pub const ENV_PREFIX: &str = "VAXCRED_";

/// Conventional variable names honoured as aliases of config keys.
const ALIASES: &[(&str, &[&str])] = &[
    ("DATABASE_URL", &["database_url"]),
    ("AMQP_URL", &["amqp", "url"]),
    ("AMQP_PREFIX", &["amqp", "prefix"]),
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        &["telemetry", "otlp_endpoint"],
    ),
];

/// The whole configuration. Fields are public so services read them directly; construct it with
/// [`Config::load`] or [`Config::from_env_vars`] so it is always validated.
#[derive(Debug, Deserialize)]
#[serde(default)]
pub struct Config {
    /// HTTP listener and public address.
    pub http: HttpConfig,
    /// Where local state lives: the SQLite file, file key store, caches. Default `./data`.
    pub data_dir: PathBuf,
    /// `postgres://…`, `postgresql://…` or `sqlite:…`; unset means a SQLite file in `data_dir`.
    /// A secret because it may carry a password.
    pub database_url: Option<SecretString>,
    /// RabbitMQ connection and topology.
    pub amqp: AmqpConfig,
    /// The default issuer this deployment signs for.
    pub issuer: IssuerConfig,
    /// Signing-key storage.
    pub keys: KeysConfig,
    /// Admin API access.
    pub admin: AdminConfig,
    /// Outbound delivery (SMS gateway, wallet webhooks).
    pub delivery: DeliveryConfig,
    /// SMART-on-FHIR clinician launch.
    pub launch: LaunchConfig,
    /// Logs, traces.
    pub telemetry: TelemetryConfig,
    #[serde(skip)]
    layers: Layers,
}

/// `[http]`: where the HTTP server listens and how it is reached from outside.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address. Default `127.0.0.1:8080` (containers set `0.0.0.0:8080`).
    pub bind: SocketAddr,
    /// The externally visible base URL (scheme, host, optional path, no trailing slash), used in
    /// links, SHLs and as the default `iss`. Default `http://{bind}`.
    pub public_base_url: Option<Url>,
}

/// `[amqp]`: RabbitMQ.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AmqpConfig {
    /// `amqp://` or `amqps://` URL. Default `amqp://guest:guest@127.0.0.1:5672/%2f`. Secret: it
    /// usually carries the password.
    pub url: SecretString,
    /// Prefix of every exchange and queue name (`{prefix}.ingest`, …). Default `vaxcred`.
    pub prefix: String,
    /// Unacknowledged messages per consumer. Default 16.
    pub prefetch: u16,
    /// `x-delivery-limit` of the work queues: deliveries before a message is dead-lettered. Default 5.
    pub delivery_limit: u32,
    /// Delays of the retry queues in milliseconds, one queue per delay, tried in order.
    /// Default `1000, 10000, 60000, 600000`.
    #[serde(deserialize_with = "de_u64_list")]
    pub retry_delays_ms: Vec<u64>,
}

/// `[issuer]`: the default issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuerConfig {
    /// The `iss` claim and the base of `/.well-known/jwks.json`; https, no trailing slash.
    /// Default: `http.public_base_url`.
    pub iss: Option<Url>,
    /// Name shown to people (pages, print). Default `vaxcred`.
    pub display_name: String,
    /// Development only: accept an `http://` `iss` (verifiers reject such cards). A loopback
    /// `iss` (`localhost`, `127.0.0.1`, `[::1]`) is accepted without it.
    pub allow_insecure_iss: bool,
}

/// Where private signing keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStoreKind {
    /// P-256 keys as files (mode 0600) in `keys.dir`.
    File,
    /// A PKCS#11 token (HSM); the private key never leaves it.
    Pkcs11,
}

/// `[keys]`: signing-key storage.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeysConfig {
    /// `file` (default) or `pkcs11`.
    pub store: KeyStoreKind,
    /// Directory of the file key store. Default `{data_dir}/keys`.
    pub dir: Option<PathBuf>,
    /// PKCS#11 module (shared library) path; required when `store = "pkcs11"`.
    pub pkcs11_module: Option<PathBuf>,
    /// PKCS#11 token label; required when `store = "pkcs11"`.
    pub pkcs11_token_label: Option<String>,
    /// PKCS#11 user PIN; required when `store = "pkcs11"`.
    pub pkcs11_pin: Option<SecretString>,
}

/// `[admin]`: admin API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer tokens accepted by the admin endpoints (each at least 16 characters). Empty
    /// disables the admin API. Several allow rotation without downtime.
    #[serde(deserialize_with = "de_secret_list")]
    pub tokens: Vec<SecretString>,
}

/// `[delivery]`: outbound channels.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// SMS gateway API base URL; unset disables SMS.
    pub sms_gateway_url: Option<Url>,
    /// SMS gateway account id.
    pub sms_account: Option<String>,
    /// SMS gateway API token; required with `sms_gateway_url`.
    pub sms_token: Option<SecretString>,
    /// Hosts (or `host:port`) outbound webhooks may reach even if they resolve to private or
    /// loopback addresses, which are refused otherwise.
    #[serde(deserialize_with = "de_string_list")]
    pub outbound_allowlist: Vec<String>,
    /// SMS sender (`From`): an E.164 number or a messaging-service id; the delivery service
    /// refuses to start SMS without it.
    pub sms_from: Option<String>,
    /// Region (ISO 3166 alpha-2) for phone numbers typed without `+country`. Default `US`.
    pub phone_default_region: Option<String>,
    /// Timeout of one outbound request (wallet push, SMS), milliseconds. Default 10000.
    pub request_timeout_ms: Option<u64>,
    /// Wallet push retry delays in milliseconds (±20 % jitter each); empty means the default
    /// `30000, 120000, 600000, 1800000, 3600000, 7200000, 14400000, 28800000, 28800000` (~16 h).
    #[serde(deserialize_with = "de_u64_list")]
    pub wallet_retry_delays_ms: Vec<u64>,
    /// SMS retry delays in milliseconds; empty means `10000, 30000, 60000, 300000, 600000`.
    #[serde(deserialize_with = "de_u64_list")]
    pub sms_retry_delays_ms: Vec<u64>,
    /// Wrong passcodes a SMART Health Link takes over its life before it is disabled. Default 10.
    pub shl_max_passcode_failures: Option<u32>,
    /// Lifetime of a new SMART Health Link in days (its `exp`). Default 365.
    pub shl_link_ttl_days: Option<u32>,
    /// HMAC key for SHL file `location` tokens (≥ 32 chars). Unset: a random key per process,
    /// so locations minted by one replica fail on another — set it when running several.
    pub shl_location_secret: Option<SecretString>,
}

/// `[launch]`: SMART-on-FHIR launch app.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LaunchConfig {
    /// FHIR base URLs (`iss` values) of EHRs allowed to launch the app; launches from others are
    /// refused. Empty disables launch.
    #[serde(deserialize_with = "de_url_list")]
    pub ehr_allowlist: Vec<Url>,
    /// OAuth client id registered with the EHRs.
    pub client_id: Option<String>,
    /// `private_key_jwt` (default: confidential client, ES384 client assertions, the app's JWKS
    /// at `{public_base_url}/launch/jwks.json`) or `public` (PKCE only).
    pub client_auth: Option<String>,
    /// Private P-384 JWK file of the client key. Default `{data_dir}/launch-client-key.jwk.json`,
    /// generated (mode 0600) on first start.
    pub client_key_file: Option<PathBuf>,
    /// Life of a clinician's session without use, seconds. Default 28800 (a shift).
    pub session_ttl_secs: Option<u64>,
    /// Timeout of one request to an EHR, milliseconds. Default 10000.
    pub ehr_timeout_ms: Option<u64>,
    /// Paper of the printable card: `letter` (default) or `a4`.
    pub print_paper: Option<String>,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line (default; for log shippers).
    Json,
    /// Human-readable, for a terminal.
    Pretty,
}

/// `[telemetry]`: logs and traces.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `tracing` filter directives (`RUST_LOG` syntax). Default `info`.
    pub log_filter: String,
    /// `json` (default) or `pretty`.
    pub log_format: LogFormat,
    /// OTLP/HTTP collector endpoint (e.g. `http://otel-collector:4318`); unset disables export.
    pub otlp_endpoint: Option<Url>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http: HttpConfig::default(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            amqp: AmqpConfig::default(),
            issuer: IssuerConfig::default(),
            keys: KeysConfig::default(),
            admin: AdminConfig::default(),
            delivery: DeliveryConfig::default(),
            launch: LaunchConfig::default(),
            telemetry: TelemetryConfig::default(),
            layers: Layers::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: None,
        }
    }
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: SecretString::from("amqp://guest:guest@127.0.0.1:5672/%2f"),
            prefix: "vaxcred".to_owned(),
            prefetch: 16,
            delivery_limit: 5,
            retry_delays_ms: vec![1_000, 10_000, 60_000, 600_000],
        }
    }
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            iss: None,
            display_name: "vaxcred".to_owned(),
            allow_insecure_iss: false,
        }
    }
}

impl Default for KeysConfig {
    fn default() -> Self {
        Self {
            store: KeyStoreKind::File,
            dir: None,
            pkcs11_module: None,
            pkcs11_token_label: None,
            pkcs11_pin: None,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_filter: "info".to_owned(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
        }
    }
}

/// The merged layers, kept so services can extract their own sections. Its `Debug` prints
/// nothing: the layers hold secrets in the clear.
#[derive(Clone, Default)]
struct Layers(Figment);

impl std::fmt::Debug for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Layers(..)")
    }
}

impl Config {
    /// Loads from the process environment (and the file it names), then validates.
    pub fn load() -> Result<Self, Error> {
        Self::from_env_vars(std::env::vars())
    }

    /// Loads from the given variables instead of the process environment: what tests use to run
    /// in parallel without touching global state. `VAXCRED_CONFIG` among them names the file.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let file = vars
            .iter()
            .find(|(k, _)| k == CONFIG_FILE_VAR)
            .map(|(_, v)| PathBuf::from(v));
        Self::from_layers(file.as_deref(), EnvLayer::new(vars))
    }

    fn from_layers(file: Option<&Path>, env: EnvLayer) -> Result<Self, Error> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            // Check it ourselves: figment treats a missing file as empty, which would hide a
            // typo in VAXCRED_CONFIG.
            std::fs::metadata(path).map_err(|source| Error::ConfigFile {
                path: path.display().to_string(),
                source,
            })?;
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(env);
        // Lossy: environment values are strings; numbers and booleans are read from them.
        let mut config: Config = figment.extract_lossy()?;
        config.layers = Layers(figment);
        config.validate()?;
        Ok(config)
    }

    /// Extracts a service-owned section (`[ingest]`, `VAXCRED_INGEST__…`) from the same layers.
    /// A missing section deserializes from an empty table, so `#[serde(default)]` types work.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, Error> {
        let figment = &self.layers.0;
        if figment.find_value(key).is_ok() {
            Ok(figment.extract_inner_lossy(key)?)
        } else {
            Ok(
                Figment::from(figment::providers::Serialized::defaults(Dict::new()))
                    .extract_lossy()?,
            )
        }
    }

    /// The public base URL without a trailing slash: configured, or derived from the bind address.
    pub fn public_base_url(&self) -> String {
        match &self.http.public_base_url {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http.bind),
        }
    }

    /// The default issuer's `iss`: configured, or the public base URL.
    pub fn iss(&self) -> String {
        match &self.issuer.iss {
            Some(url) => url.as_str().trim_end_matches('/').to_owned(),
            None => self.public_base_url(),
        }
    }

    /// The file key store's directory: configured, or `{data_dir}/keys`.
    pub fn keys_dir(&self) -> PathBuf {
        self.keys
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("keys"))
    }

    /// The database URL to connect to: configured, or a SQLite file in the data dir.
    pub fn database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("vaxcred.sqlite3").display()
            )),
        }
    }

    /// Checks the rules types cannot express. Every broken rule is reported, naming the key and
    /// never the value.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, rule: &str| problems.push(format!("{key}: {rule}"));

        if self.data_dir.as_os_str().is_empty() {
            bad("data_dir", "must not be empty");
        }
        if let Some(url) = &self.http.public_base_url {
            check_base_url(url, "http.public_base_url", &mut bad);
        }
        if let Some(db) = &self.database_url {
            match Url::parse(db.expose_secret()) {
                Ok(u) if matches!(u.scheme(), "postgres" | "postgresql" | "sqlite") => {}
                Ok(_) => bad(
                    "database_url",
                    "scheme must be postgres, postgresql or sqlite",
                ),
                Err(_) => bad("database_url", "not a valid URL"),
            }
        }
        match Url::parse(self.amqp.url.expose_secret()) {
            Ok(u) if matches!(u.scheme(), "amqp" | "amqps") => {}
            Ok(_) => bad("amqp.url", "scheme must be amqp or amqps"),
            Err(_) => bad("amqp.url", "not a valid URL"),
        }
        let prefix_ok = !self.amqp.prefix.is_empty()
            && self.amqp.prefix.len() <= 64
            && self
                .amqp
                .prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !prefix_ok {
            bad(
                "amqp.prefix",
                "must be 1-64 characters of letters, digits, '.', '-' or '_'",
            );
        }
        if self.amqp.prefetch == 0 {
            bad("amqp.prefetch", "must be at least 1");
        }
        if self.amqp.delivery_limit == 0 {
            bad("amqp.delivery_limit", "must be at least 1");
        }
        if self.amqp.retry_delays_ms.contains(&0) {
            bad("amqp.retry_delays_ms", "every delay must be at least 1 ms");
        }
        if self
            .amqp
            .retry_delays_ms
            .windows(2)
            .any(|w| w.first() >= w.get(1))
        {
            bad("amqp.retry_delays_ms", "delays must be strictly increasing");
        }

        let iss = self.iss();
        match Url::parse(&iss) {
            Ok(u) => {
                // Loopback is allowed too: no verifier can fetch keys from it, so it can only
                // be a developer's machine, and it lets the defaults alone run `serve`.
                let loopback = matches!(u.host(), Some(url::Host::Domain("localhost")))
                    || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
                if u.scheme() != "https" && !self.issuer.allow_insecure_iss && !loopback {
                    bad(
                        if self.issuer.iss.is_some() { "issuer.iss" } else { "issuer.iss (defaulted from http.public_base_url)" },
                        "must use https (set issuer.allow_insecure_iss = true for development only)",
                    );
                }
                if u.query().is_some() || u.fragment().is_some() {
                    bad("issuer.iss", "must not have a query or fragment");
                }
            }
            Err(_) => bad("issuer.iss", "not a valid URL"),
        }
        if let Some(url) = &self.issuer.iss {
            if url.as_str().ends_with('/') && url.path() != "/" {
                bad("issuer.iss", "must not end with '/'");
            }
        }
        if self.issuer.display_name.trim().is_empty() {
            bad("issuer.display_name", "must not be empty");
        }

        if self.keys.store == KeyStoreKind::Pkcs11 {
            if self.keys.pkcs11_module.is_none() {
                bad(
                    "keys.pkcs11_module",
                    "required when keys.store = \"pkcs11\"",
                );
            }
            if self.keys.pkcs11_token_label.is_none() {
                bad(
                    "keys.pkcs11_token_label",
                    "required when keys.store = \"pkcs11\"",
                );
            }
            if self.keys.pkcs11_pin.is_none() {
                bad("keys.pkcs11_pin", "required when keys.store = \"pkcs11\"");
            }
        }

        for (i, token) in self.admin.tokens.iter().enumerate() {
            if token.expose_secret().chars().count() < 16 {
                bad(
                    &format!("admin.tokens[{i}]"),
                    "must be at least 16 characters",
                );
            }
        }

        if let Some(url) = &self.delivery.sms_gateway_url {
            if !matches!(url.scheme(), "http" | "https") {
                bad("delivery.sms_gateway_url", "scheme must be http or https");
            }
            if self.delivery.sms_token.is_none() {
                bad(
                    "delivery.sms_token",
                    "required when delivery.sms_gateway_url is set",
                );
            }
        }
        if self
            .delivery
            .outbound_allowlist
            .iter()
            .any(|h| h.trim().is_empty() || h.contains('/'))
        {
            bad(
                "delivery.outbound_allowlist",
                "entries must be host or host:port, without scheme or path",
            );
        }

        for (i, url) in self.launch.ehr_allowlist.iter().enumerate() {
            if !matches!(url.scheme(), "http" | "https") {
                bad(
                    &format!("launch.ehr_allowlist[{i}]"),
                    "scheme must be http or https",
                );
            }
        }
        if !self.launch.ehr_allowlist.is_empty() && self.launch.client_id.is_none() {
            bad(
                "launch.client_id",
                "required when launch.ehr_allowlist is set",
            );
        }
        if let Some(auth) = &self.launch.client_auth {
            if !matches!(auth.as_str(), "private_key_jwt" | "public") {
                bad("launch.client_auth", "must be private_key_jwt or public");
            }
        }
        if let Some(paper) = &self.launch.print_paper {
            if !matches!(paper.to_ascii_lowercase().as_str(), "letter" | "a4") {
                bad("launch.print_paper", "must be letter or a4");
            }
        }

        if let Some(url) = &self.telemetry.otlp_endpoint {
            if !matches!(url.scheme(), "http" | "https") {
                bad("telemetry.otlp_endpoint", "scheme must be http or https");
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.telemetry.log_filter).is_err() {
            bad("telemetry.log_filter", "not a valid filter directive list");
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::ConfigInvalid(problems))
        }
    }
}

fn check_base_url(url: &Url, key: &str, bad: &mut impl FnMut(&str, &str)) {
    if !matches!(url.scheme(), "http" | "https") {
        bad(key, "scheme must be http or https");
    }
    if url.query().is_some() || url.fragment().is_some() {
        bad(key, "must not have a query or fragment");
    }
}

/// The environment as a figment layer: `VAXCRED_A__B=v` → `a.b = "v"`, aliases mapped, values
/// kept as strings (read lossily at extraction).
struct EnvLayer {
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    fn new(vars: Vec<(String, String)>) -> Self {
        Self { vars }
    }

    fn paths(&self) -> Vec<(Vec<String>, &str)> {
        let mut out = Vec::new();
        // Aliases first so that a VAXCRED_ name for the same key, inserted later, wins.
        for (name, path) in ALIASES {
            if let Some((_, v)) = self.vars.iter().find(|(k, _)| k == name) {
                out.push((path.iter().map(|s| (*s).to_owned()).collect(), v.as_str()));
            }
        }
        for (k, v) in &self.vars {
            let Some(rest) = k.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if k == CONFIG_FILE_VAR || rest.is_empty() {
                continue;
            }
            let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            if path.iter().any(String::is_empty) {
                continue;
            }
            out.push((path, v.as_str()));
        }
        out
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut root = Dict::new();
        for (path, value) in self.paths() {
            insert_path(&mut root, &path, value);
        }
        Ok(Profile::Default.collect(root))
    }
}

fn insert_path(dict: &mut Dict, path: &[String], value: &str) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), Value::from(value.to_owned()));
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                // A scalar and a nested key for the same name: the nested one wins.
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// A list given either as a sequence (TOML) or as one comma-separated string (environment).
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrCsv<T> {
    List(Vec<T>),
    Csv(String),
}

fn csv_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn de_string_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrCsv::<String>::deserialize(d)? {
        ListOrCsv::List(v) => v,
        ListOrCsv::Csv(s) => csv_items(&s).map(str::to_owned).collect(),
    })
}

fn de_secret_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SecretString>, D::Error> {
    Ok(de_string_list(d)?
        .into_iter()
        .map(SecretString::from)
        .collect())
}

fn de_url_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Url>, D::Error> {
    de_string_list(d)?
        .iter()
        .map(|s| Url::parse(s).map_err(|_| serde::de::Error::custom("a list of absolute URLs")))
        .collect()
}

fn de_u64_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    match ListOrCsv::<u64>::deserialize(d)? {
        ListOrCsv::List(v) => Ok(v),
        ListOrCsv::Csv(s) => csv_items(&s)
            .map(|item| {
                item.parse::<u64>().map_err(|_| {
                    serde::de::Error::custom("a list of whole numbers of milliseconds")
                })
            })
            .collect(),
    }
}
