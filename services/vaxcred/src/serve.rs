//! `vaxcred serve`: every service in one process — ingest consumers, issue workers, the outbox
//! relay, the delivery worker, and one HTTP server (health, readiness, metrics, JWKS, delivery
//! routes) — against the configured RabbitMQ and database (defaults: local RabbitMQ, SQLite in
//! `./data`, a file key generated on first start, `127.0.0.1:8080`).
//!
//! Shutdown on SIGTERM or Ctrl-C: consumers stop taking batches, the batch in hand is finished
//! and settled, prefetched messages go back to their queues when the bus closes, the HTTP server
//! drains, and the database pool closes. Nothing acked is unfinished; nothing unfinished is acked.
//!
//! Ingest settings (optional `[ingest]` section of the config file, `VAXCRED_INGEST__…`):
//! `workers`, `batch`, `linger_ms`, and `[[ingest.sources]]` with `name` (the AMQP `source`
//! header), `fhir_base_url`, and for SMART Backend Services `token_url`, `client_id`, `scope`,
//! `kid`, `private_jwk_file` (a P-384 private JWK). Sources belong to the default issuer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bus::{Bus, BusConfig};
use issuer::keystore::KeyStore;
use issuer::relay::{RelayConfig, RelayHandle};
use issuer::worker::{CardContext, IssueConfig, IssueContext};
use platform::{Config, ExposeSecret, Metrics, Readiness};
use serde::Deserialize;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Options of `vaxcred serve` (everything else comes from the configuration).
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Ingest consumers; overrides `ingest.workers`.
    #[arg(long)]
    ingest_workers: Option<usize>,
    /// Issue workers.
    #[arg(long, default_value_t = 2)]
    issue_workers: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct IngestSection {
    workers: Option<usize>,
    batch: Option<usize>,
    linger_ms: Option<u64>,
    sources: Vec<SourceSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceSection {
    name: String,
    fhir_base_url: Option<String>,
    token_url: Option<String>,
    client_id: Option<String>,
    scope: Option<String>,
    kid: Option<String>,
    private_jwk_file: Option<std::path::PathBuf>,
}

/// Loads the configuration, starts telemetry and a tokio runtime, and serves until a signal.
pub fn run(args: &ServeArgs) -> anyhow::Result<i32> {
    let config = Config::load().context("configuration")?;
    let _telemetry =
        platform::telemetry::init_telemetry("vaxcred", &config.telemetry).context("telemetry")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(serve(config, args))?;
    Ok(0)
}

/// The bus settings of the configuration (also used by `vaxcred dlq`).
pub(crate) fn bus_config(config: &Config) -> BusConfig {
    BusConfig {
        url: config.amqp.url.expose_secret().to_owned(),
        prefix: config.amqp.prefix.clone(),
        prefetch: config.amqp.prefetch,
        delivery_limit: config.amqp.delivery_limit,
        retry_delays: config
            .amqp
            .retry_delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect(),
        connection_name: "vaxcred-serve".to_owned(),
        ..BusConfig::default()
    }
}

fn sources(section: &IngestSection, issuer_id: &str) -> anyhow::Result<Vec<ingest::SourceConfig>> {
    let mut out = Vec::new();
    for s in &section.sources {
        let smart = match (&s.token_url, &s.client_id, &s.private_jwk_file) {
            (Some(token_url), Some(client_id), Some(file)) => Some(ingest::config::SmartConfig {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                scope: s
                    .scope
                    .clone()
                    .unwrap_or_else(|| "system/Patient.read".to_owned()),
                private_jwk: std::fs::read_to_string(file)
                    .with_context(|| format!("ingest source {}: private_jwk_file", s.name))?,
                kid: s.kid.clone().unwrap_or_default(),
            }),
            (None, None, None) => None,
            _ => anyhow::bail!(
                "ingest source {}: token_url, client_id and private_jwk_file go together",
                s.name
            ),
        };
        out.push(ingest::SourceConfig {
            name: s.name.clone(),
            issuer_id: issuer_id.to_owned(),
            fhir_base_url: s.fhir_base_url.clone(),
            smart,
        });
    }
    Ok(out)
}

async fn serve(config: Config, args: &ServeArgs) -> anyhow::Result<()> {
    let section: IngestSection = config.section("ingest").context("[ingest] section")?;
    // reqwest is built with rustls but no provider (delivery's choice); ingest's EHR client is
    // built before delivery's, so install the provider first.
    delivery::outbound::ensure_crypto_provider();
    let store = crate::issuers::open_store(&config).await?;
    let bus = Bus::connect(bus_config(&config)).await.context("broker")?;
    let iss = config.iss();
    let default_issuer =
        issuer::issuers::ensure_default_issuer(&store, &iss, &config.issuer.display_name)
            .await
            .context("default issuer")?;
    // Every issuer's `iss` must be https, without a trailing slash, and exactly where its JWKS is
    // served (spec-checklist §R.2). A loopback base URL is a developer's machine: plain http is
    // allowed there, as `platform` allows it, so the defaults alone run.
    let public_base_url = config.public_base_url();
    let allow_insecure = config.issuer.allow_insecure_iss || is_loopback(&public_base_url);
    issuer::http::startup::check_issuers(&store, &public_base_url, allow_insecure)
        .await
        .context("issuer URLs")?;
    // The configured key store (file by default, PKCS#11 for an HSM) over every issuer.
    let managed = crate::issuers::open_keys(&config, &store).await?;
    let rid_secret = issuer::keystore::rid_secret_at(&config.keys_dir()).context("rid secret")?;
    let keys: Arc<dyn KeyStore> = managed.as_key_store();
    let issuer_urls: HashMap<String, String> = store
        .list_issuers()
        .await
        .context("issuers")?
        .into_iter()
        .map(|i| (i.id, i.iss))
        .collect();
    let metrics = Metrics::new().context("metrics")?;
    let readiness = Readiness::new();
    let broker_flag = readiness.flag("amqp");
    {
        let mut watch = bus.readiness();
        let flag = broker_flag.clone();
        flag.set(*watch.borrow());
        tokio::spawn(async move {
            while watch.changed().await.is_ok() {
                flag.set(*watch.borrow_and_update());
            }
        });
    }
    {
        let (keys, issuer_id) = (keys.clone(), default_issuer.id.clone());
        readiness.probe("signing-key", move || {
            let ok = keys.active_signer(&issuer_id).is_ok();
            async move {
                if ok {
                    Ok(())
                } else {
                    Err("no active signing key")
                }
            }
        });
    }
    {
        let store = store.clone();
        readiness.probe("database", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|_| "database unreachable") }
        });
    }

    let shutdown = CancellationToken::new();
    let relay = RelayHandle::new();
    let mut tasks: JoinSet<(&'static str, anyhow::Result<()>)> = JoinSet::new();

    let mut ingest_config = ingest::IngestConfig::new(default_issuer.id.clone());
    if let Some(b) = section.batch {
        ingest_config.batch = b.max(1);
    }
    if let Some(ms) = section.linger_ms {
        ingest_config.linger = Duration::from_millis(ms);
    }
    ingest_config.sources = sources(&section, &default_issuer.id)?;
    let ingest_ctx = ingest::IngestContext::new(
        store.clone(),
        bus.clone(),
        ingest_config,
        relay.notifier(),
        Some(metrics.clone()),
    )
    .context("ingest")?;
    let ingest_workers = args.ingest_workers.or(section.workers).unwrap_or(2).max(1);
    for _ in 0..ingest_workers {
        let (ctx, token) = (ingest_ctx.clone(), shutdown.clone());
        tasks.spawn(async move { ("ingest", ingest::run(ctx, token).await.map_err(Into::into)) });
    }

    let issue_ctx = IssueContext {
        cards: CardContext {
            store: store.clone(),
            keys: keys.clone(),
            issuers: Arc::new(issuer_urls),
            relay: Some(relay.clone()),
        },
        bus: bus.clone(),
        metrics: Some(metrics.clone()),
    };
    let issue_config = IssueConfig {
        rid_secret: Some(rid_secret.clone()),
        allow_insecure_iss: allow_insecure,
        ..IssueConfig::default()
    };
    for _ in 0..args.issue_workers.max(1) {
        let (ctx, cfg, token) = (issue_ctx.clone(), issue_config.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "issue",
                issuer::worker::run(ctx, cfg, token)
                    .await
                    .map_err(Into::into),
            )
        });
    }
    {
        let (s, b, r, token) = (store.clone(), bus.clone(), relay.clone(), shutdown.clone());
        tasks.spawn(async move {
            (
                "outbox-relay",
                issuer::relay::run(s, b, r, RelayConfig::default(), token)
                    .await
                    .map_err(Into::into),
            )
        });
    }

    // Gauges read from the outside of the workers: DLQ depth (broker) and outbox lag (database).
    {
        let (s, b, m, token) = (
            store.clone(),
            bus.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            let dlq = b.topology().dlq();
            loop {
                if let Ok(depth) = b.message_count(&dlq).await {
                    m.set_dlq_depth(i64::from(depth));
                }
                if let Ok(age) = s.oldest_pending_outbox_age().await {
                    m.set_outbox_lag(age.unwrap_or_default());
                }
                tokio::select! {
                    () = token.cancelled() => return ("gauges", Ok(())),
                    () = tokio::time::sleep(Duration::from_secs(15)) => {}
                }
            }
        });
    }

    // Delivery (wallet push, SMS, SHL hosting): its worker consumes `{p}.deliver`.
    let delivery_settings =
        delivery::DeliverySettings::from_config(&config).context("delivery settings")?;
    let delivery_state = delivery::DeliveryState::new(store.clone(), delivery_settings)
        .context("delivery")?
        .with_metrics(metrics.clone());
    {
        let (state, b, token) = (delivery_state.clone(), bus.clone(), shutdown.clone());
        tasks.spawn(async move { ("delivery", delivery::run_worker(state, b, token).await) });
    }

    // HTTP: operational endpoints, the issuer's surface (JWKS, CRLs, $health-cards-issue, card
    // downloads, admin), delivery's routes (SMART Health Links, wallets, viewer) and, when the
    // `[launch]` section configures an EHR, the clinicians' launch app.
    let issuer_http = issuer::http::configure(issuer::http::HttpState::new(
        store.clone(),
        managed,
        issuer::http::HttpSettings {
            public_base_url,
            admin_tokens: config
                .admin
                .tokens
                .iter()
                .map(|t| t.expose_secret().to_owned())
                .collect(),
            // Patient access tokens (`issuer::http::auth`) are HMAC-signed with a key derived
            // from the deployment's rid secret: one secret file to back up, separate purposes.
            patient_token_secret: Some(patient_token_key(&rid_secret)),
            revocation: true,
            allow_insecure_iss: allow_insecure,
        },
    ));
    let launch_http = launch::LaunchState::from_config(
        &config,
        store.clone(),
        keys.clone(),
        &default_issuer,
        (issue_config.clone(), Some(relay.clone())),
        Some(delivery_state.clone()),
    )
    .context("launch app")?
    .map(launch::configure);
    let delivery_http = delivery::configure(delivery_state.clone());
    let server = actix_web::HttpServer::new(move || {
        let app = actix_web::App::new()
            .wrap(platform::http::request_tracing())
            .configure(platform::http::configure(
                readiness.clone(),
                metrics.clone(),
            ))
            .configure(issuer_http.clone())
            .configure(delivery_http.clone());
        match &launch_http {
            Some(launch) => app.configure(launch.clone()),
            None => app,
        }
    })
    .disable_signals()
    .shutdown_timeout(10)
    .bind(config.http.bind)
    .with_context(|| format!("bind {}", config.http.bind))?
    .run();
    let server_handle = server.handle();
    let http_task = tokio::spawn(server);
    info!(bind = %config.http.bind, iss = %iss, "vaxcred serve started");

    // Run until a signal or until a task stops on its own (then stop everything).
    tokio::select! {
        () = signal() => info!("shutdown signal received"),
        Some(joined) = tasks.join_next() => match joined {
            Ok((name, Ok(()))) => warn!(task = name, "task ended; shutting down"),
            Ok((name, Err(e))) => error!(task = name, error = %format!("{e:#}"), "task failed; shutting down"),
            Err(e) => error!(error = %e, "task panicked; shutting down"),
        },
    }
    shutdown.cancel();
    let drain = async {
        while let Some(joined) = tasks.join_next().await {
            if let Ok((name, Err(e))) = joined {
                warn!(task = name, error = %format!("{e:#}"), "task ended with an error");
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), drain)
        .await
        .is_err()
    {
        warn!("tasks did not finish within 30 s; their unacked messages return to the queues");
        tasks.abort_all();
    }
    server_handle.stop(true).await;
    let _ = http_task.await;
    // Unacked deliveries (prefetched, never processed) go back to their queues here.
    bus.close().await;
    store.close().await;
    info!("vaxcred serve stopped");
    Ok(())
}

async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The HMAC key of patient access tokens, derived from the rid secret with its own label.
fn patient_token_key(rid_secret: &str) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(format!("vaxcred patient-token v1\n{rid_secret}").as_bytes()).to_vec()
}

/// Whether a base URL points at this machine (a development setup).
fn is_loopback(base_url: &str) -> bool {
    let host = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}
