//! Config layering (defaults → file → env), aliases, lists, sections and validation messages.

use std::io::Write;

use platform::config::{KeyStoreKind, LogFormat};
use platform::{Config, ExposeSecret};

fn toml_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn path_of(f: &tempfile::NamedTempFile) -> String {
    f.path().display().to_string()
}

const NO_VARS: [(&str, &str); 0] = [];

#[test]
fn defaults_alone_load_and_validate() {
    let c = Config::from_env_vars(NO_VARS).unwrap();
    assert_eq!(c.http.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(c.public_base_url(), "http://127.0.0.1:8080");
    assert_eq!(c.iss(), "http://127.0.0.1:8080");
    assert_eq!(c.data_dir, std::path::PathBuf::from("./data"));
    assert_eq!(c.keys_dir(), std::path::PathBuf::from("./data/keys"));
    assert!(c.database_url.is_none());
    assert!(c
        .database_url()
        .expose_secret()
        .starts_with("sqlite://./data/"));
    assert_eq!(c.amqp.prefix, "vaxcred");
    assert_eq!(c.amqp.prefetch, 16);
    assert_eq!(c.amqp.delivery_limit, 5);
    assert_eq!(c.amqp.retry_delays_ms, vec![1_000, 10_000, 60_000, 600_000]);
    assert_eq!(c.keys.store, KeyStoreKind::File);
    assert!(c.admin.tokens.is_empty());
    assert_eq!(c.telemetry.log_format, LogFormat::Json);
    assert!(c.telemetry.otlp_endpoint.is_none());
}

#[test]
fn env_overrides_file_which_overrides_defaults() {
    let f = toml_file(
        r#"
data_dir = "/var/lib/vaxcred"
[amqp]
prefix = "fromfile"
prefetch = 8
retry_delays_ms = [500, 5000]
[issuer]
display_name = "County Health"
"#,
    );
    let c = Config::from_env_vars([
        ("VAXCRED_CONFIG", path_of(&f).as_str()),
        ("VAXCRED_AMQP__PREFETCH", "32"),
        ("VAXCRED_HTTP__BIND", "0.0.0.0:9090"),
        ("VAXCRED_ISSUER__ALLOW_INSECURE_ISS", "true"),
        ("UNRELATED", "ignored"),
    ])
    .unwrap();
    assert_eq!(c.amqp.prefix, "fromfile", "file beats default");
    assert_eq!(c.amqp.prefetch, 32, "env beats file");
    assert_eq!(c.amqp.retry_delays_ms, vec![500, 5000]);
    assert_eq!(c.amqp.delivery_limit, 5, "default kept");
    assert_eq!(c.http.bind.to_string(), "0.0.0.0:9090");
    assert_eq!(c.data_dir, std::path::PathBuf::from("/var/lib/vaxcred"));
    assert_eq!(
        c.keys_dir(),
        std::path::PathBuf::from("/var/lib/vaxcred/keys")
    );
    assert_eq!(c.issuer.display_name, "County Health");
    assert!(c.issuer.allow_insecure_iss);
}

#[test]
fn conventional_variables_are_aliases_and_vaxcred_names_win() {
    let c = Config::from_env_vars([
        ("DATABASE_URL", "postgres://u:pw@db:5432/vax"),
        ("AMQP_URL", "amqp://u:pw@mq:5672/%2f"),
        ("AMQP_PREFIX", "t42"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
    ])
    .unwrap();
    assert_eq!(
        c.database_url.as_ref().unwrap().expose_secret(),
        "postgres://u:pw@db:5432/vax"
    );
    assert_eq!(c.amqp.url.expose_secret(), "amqp://u:pw@mq:5672/%2f");
    assert_eq!(c.amqp.prefix, "t42");
    assert_eq!(
        c.telemetry.otlp_endpoint.as_ref().unwrap().as_str(),
        "http://collector:4318/"
    );

    let c = Config::from_env_vars([
        ("DATABASE_URL", "postgres://generic/db"),
        ("VAXCRED_DATABASE_URL", "postgres://specific/db"),
    ])
    .unwrap();
    assert_eq!(
        c.database_url.as_ref().unwrap().expose_secret(),
        "postgres://specific/db"
    );
}

#[test]
fn empty_variables_count_as_unset() {
    let c = Config::from_env_vars([("DATABASE_URL", ""), ("VAXCRED_AMQP__PREFIX", "")]).unwrap();
    assert!(c.database_url.is_none());
    assert_eq!(c.amqp.prefix, "vaxcred");
}

#[test]
fn lists_come_comma_separated_from_env() {
    let c = Config::from_env_vars([
        (
            "VAXCRED_ADMIN__TOKENS",
            "aaaaaaaaaaaaaaaa1, bbbbbbbbbbbbbbbb2",
        ),
        ("VAXCRED_AMQP__RETRY_DELAYS_MS", "100,200, 300"),
        (
            "VAXCRED_DELIVERY__OUTBOUND_ALLOWLIST",
            "127.0.0.1:9000,wallet.internal",
        ),
        (
            "VAXCRED_LAUNCH__EHR_ALLOWLIST",
            "https://ehr.example.org/fhir",
        ),
        ("VAXCRED_LAUNCH__CLIENT_ID", "vaxcred-launch"),
        // Numeric-looking strings stay strings.
        ("VAXCRED_DELIVERY__SMS_ACCOUNT", "0012345"),
    ])
    .unwrap();
    let tokens: Vec<&str> = c.admin.tokens.iter().map(|t| t.expose_secret()).collect();
    assert_eq!(tokens, ["aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2"]);
    assert_eq!(c.amqp.retry_delays_ms, vec![100, 200, 300]);
    assert_eq!(
        c.delivery.outbound_allowlist,
        ["127.0.0.1:9000", "wallet.internal"]
    );
    assert_eq!(c.launch.ehr_allowlist.len(), 1);
    assert_eq!(c.launch.client_id.as_deref(), Some("vaxcred-launch"));
    assert_eq!(c.delivery.sms_account.as_deref(), Some("0012345"));
}

#[test]
fn validation_reports_every_broken_rule_by_key() {
    let err = Config::from_env_vars([
        ("VAXCRED_AMQP__PREFETCH", "0"),
        ("VAXCRED_AMQP__PREFIX", "bad prefix!"),
        ("VAXCRED_AMQP__RETRY_DELAYS_MS", "500,100"),
        (
            "VAXCRED_DELIVERY__SMS_GATEWAY_URL",
            "https://sms.example.org/api",
        ),
        ("VAXCRED_KEYS__STORE", "pkcs11"),
        ("VAXCRED_ADMIN__TOKENS", "short"),
        ("AMQP_URL", "http://not-amqp"),
    ])
    .unwrap_err();
    assert_eq!(err.code(), "config-invalid");
    assert!(!err.is_retryable());
    let text = err.to_string();
    for needle in [
        "amqp.prefetch: must be at least 1",
        "amqp.prefix: must be 1-64 characters",
        "amqp.retry_delays_ms: delays must be strictly increasing",
        "delivery.sms_token: required when delivery.sms_gateway_url is set",
        "keys.pkcs11_module: required",
        "keys.pkcs11_token_label: required",
        "keys.pkcs11_pin: required",
        "admin.tokens[0]: must be at least 16 characters",
        "amqp.url: scheme must be amqp or amqps",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in {text}");
    }
    assert_eq!(err.problems().len(), 9, "{text}");
    assert!(!text.contains("short"), "a token value leaked: {text}");
}

#[test]
fn launch_settings_load_and_their_choices_are_checked() {
    let c = Config::from_env_vars([
        ("VAXCRED_LAUNCH__CLIENT_AUTH", "public"),
        ("VAXCRED_LAUNCH__SESSION_TTL_SECS", "600"),
        ("VAXCRED_LAUNCH__PRINT_PAPER", "A4"),
    ])
    .unwrap();
    assert_eq!(c.launch.client_auth.as_deref(), Some("public"));
    assert_eq!(c.launch.session_ttl_secs, Some(600));
    let err = Config::from_env_vars([
        ("VAXCRED_LAUNCH__CLIENT_AUTH", "client_secret_basic"),
        ("VAXCRED_LAUNCH__PRINT_PAPER", "legal"),
    ])
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("launch.client_auth: must be private_key_jwt or public"),
        "{text}"
    );
    assert!(
        text.contains("launch.print_paper: must be letter or a4"),
        "{text}"
    );
}

#[test]
fn type_errors_name_the_key_but_not_the_value() {
    let err = Config::from_env_vars([("VAXCRED_AMQP__PREFETCH", "s3cr3t-value")]).unwrap_err();
    assert_eq!(err.code(), "config-parse");
    let text = err.to_string();
    assert!(text.contains("amqp.prefetch"), "{text}");
    assert!(text.contains("environment"), "{text}");
    assert!(!text.contains("s3cr3t"), "value echoed: {text}");
}

#[test]
fn typos_inside_known_sections_are_rejected() {
    let err = Config::from_env_vars([("VAXCRED_AMQP__PREFECH", "4")]).unwrap_err();
    assert_eq!(err.code(), "config-parse");
    assert!(err.to_string().contains("prefech"), "{err}");

    let err = Config::from_env_vars([("VAXCRED_KEYS__STORE", "vault")]).unwrap_err();
    assert!(err.to_string().contains("keys.store"), "{err}");
}

#[test]
fn a_named_config_file_must_exist() {
    let err = Config::from_env_vars([("VAXCRED_CONFIG", "/nonexistent/vaxcred.toml")]).unwrap_err();
    assert_eq!(err.code(), "config-file");
    assert!(
        err.to_string().contains("/nonexistent/vaxcred.toml"),
        "{err}"
    );
}

#[test]
fn malformed_toml_is_a_parse_error() {
    let f = toml_file("[amqp\nprefix = ");
    let err = Config::from_env_vars([("VAXCRED_CONFIG", path_of(&f).as_str())]).unwrap_err();
    assert_eq!(err.code(), "config-parse");
}

#[test]
fn public_iss_must_be_https_unless_allowed() {
    let err = Config::from_env_vars([("VAXCRED_HTTP__PUBLIC_BASE_URL", "http://vax.example.org")])
        .unwrap_err();
    assert!(err.to_string().contains("must use https"), "{err}");

    let c = Config::from_env_vars([
        ("VAXCRED_HTTP__PUBLIC_BASE_URL", "http://vax.example.org"),
        ("VAXCRED_ISSUER__ALLOW_INSECURE_ISS", "true"),
    ])
    .unwrap();
    assert_eq!(c.iss(), "http://vax.example.org");

    let c = Config::from_env_vars([
        ("VAXCRED_HTTP__PUBLIC_BASE_URL", "https://vax.example.org/"),
        (
            "VAXCRED_ISSUER__ISS",
            "https://vax.example.org/issuers/county",
        ),
    ])
    .unwrap();
    assert_eq!(c.public_base_url(), "https://vax.example.org");
    assert_eq!(c.iss(), "https://vax.example.org/issuers/county");

    let err =
        Config::from_env_vars([("VAXCRED_ISSUER__ISS", "https://vax.example.org/x/")]).unwrap_err();
    assert!(
        err.to_string()
            .contains("issuer.iss: must not end with '/'"),
        "{err}"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let c = Config::from_env_vars([
        ("DATABASE_URL", "postgres://u:dbpassw0rd@db/vax"),
        ("AMQP_URL", "amqp://u:mqpassw0rd@mq/%2f"),
        ("VAXCRED_ADMIN__TOKENS", "admintoken-0123456789"),
        (
            "VAXCRED_DELIVERY__SMS_GATEWAY_URL",
            "https://sms.example.org",
        ),
        ("VAXCRED_DELIVERY__SMS_TOKEN", "smstoken-abcdef"),
    ])
    .unwrap();
    let debug = format!("{c:?}");
    for secret in ["dbpassw0rd", "mqpassw0rd", "admintoken", "smstoken"] {
        assert!(!debug.contains(secret), "{secret} leaked in Debug");
    }
}

#[derive(Debug, serde::Deserialize, Default)]
#[serde(default)]
struct IngestSection {
    fhir_base: Option<String>,
    batch: u32,
}

#[test]
fn services_extract_their_own_sections_from_the_same_layers() {
    let f = toml_file("[ingest]\nfhir_base = \"https://ehr.example.org/fhir\"\nbatch = 10\n");
    let c = Config::from_env_vars([
        ("VAXCRED_CONFIG", path_of(&f).as_str()),
        ("VAXCRED_INGEST__BATCH", "50"),
    ])
    .unwrap();
    let s: IngestSection = c.section("ingest").unwrap();
    assert_eq!(s.fhir_base.as_deref(), Some("https://ehr.example.org/fhir"));
    assert_eq!(s.batch, 50);

    let none: IngestSection = c.section("portal").unwrap();
    assert_eq!(none.batch, 0);
}
