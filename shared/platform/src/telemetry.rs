//! Telemetry setup: a `tracing` subscriber (env filter, JSON or pretty lines on stdout), an
//! OpenTelemetry OTLP/HTTP trace exporter when an endpoint is configured, and (feature
//! `testing`) an in-memory span exporter so tests can assert what spans carry — in particular
//! that no patient data ends up in them.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};
use crate::error::Error;

/// Keeps the trace pipeline alive; dropping it flushes and shuts the exporter down. Hold it in
/// `main` until the process exits.
#[must_use = "dropping the guard shuts the trace exporter down"]
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Best effort: at exit there is nowhere left to report a failed flush.
            let _ = provider.shutdown();
        }
    }
}

fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attribute(KeyValue::new("service.namespace", "vaxcred"))
        .build()
}

/// The filter: `RUST_LOG` when set (an operator's quick override), else the configured one.
fn env_filter(config: &TelemetryConfig) -> Result<EnvFilter, Error> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&config.log_filter),
    }
    .map_err(|_| Error::Telemetry("invalid log filter directives".to_owned()))
}

/// Installs the global subscriber for `service_name`: filter, formatted output, and the OTLP
/// layer when `config.otlp_endpoint` (from `OTEL_EXPORTER_OTLP_ENDPOINT`) is set. Also installs
/// the W3C trace-context propagator so incoming `traceparent` headers continue traces. Call once.
pub fn init_telemetry(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, Error> {
    // The OTLP exporter builds a reqwest client: the TLS provider must exist before it.
    crate::tls::ensure_crypto_provider();
    let filter = env_filter(config)?;
    let fmt_layer: Box<dyn Layer<Registry> + Send + Sync> = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().boxed(),
    };

    let mut layers: Vec<Box<dyn Layer<Registry> + Send + Sync>> = vec![fmt_layer];
    let mut provider = None;
    if let Some(endpoint) = &config.otlp_endpoint {
        // OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base; the traces path is appended as
        // the OTLP spec says for the generic variable.
        let traces_url = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
        let exporter = {
            use opentelemetry_otlp::WithExportConfig as _;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(traces_url)
                .build()
                .map_err(|e| Error::Telemetry(format!("OTLP exporter: {e}")))?
        };
        let sdk = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource(service_name))
            .build();
        let tracer = sdk.tracer(service_name.to_owned());
        layers.push(tracing_opentelemetry::layer().with_tracer(tracer).boxed());
        opentelemetry::global::set_tracer_provider(sdk.clone());
        provider = Some(sdk);
    }
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    tracing_subscriber::registry()
        .with(layers)
        .with(filter)
        .try_init()
        .map_err(|e| Error::Telemetry(format!("subscriber: {e}")))?;
    Ok(TelemetryGuard { provider })
}

#[cfg(feature = "testing")]
pub use capture::{capture_spans, CapturedSpans};

#[cfg(feature = "testing")]
mod capture {
    use super::*;
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};

    /// Spans captured by [`capture_spans`].
    #[derive(Debug, Clone)]
    pub struct CapturedSpans {
        exporter: InMemorySpanExporter,
        provider: SdkTracerProvider,
    }

    impl CapturedSpans {
        /// Every span that has ended so far.
        pub fn spans(&self) -> Vec<SpanData> {
            // The simple processor exports on span end; the flush is for safety.
            let _ = self.provider.force_flush();
            self.exporter.get_finished_spans().unwrap_or_default()
        }

        /// The names of the ended spans.
        pub fn names(&self) -> Vec<String> {
            self.spans().iter().map(|s| s.name.to_string()).collect()
        }

        /// Everything the spans carry as one text — names, attribute keys and values, event
        /// names and fields — so a test can assert a canary value appears nowhere.
        pub fn all_text(&self) -> String {
            let mut out = String::new();
            for span in self.spans() {
                out.push_str(&span.name);
                out.push('\n');
                for kv in &span.attributes {
                    out.push_str(&format!("{}={}\n", kv.key, kv.value));
                }
                for event in span.events.iter() {
                    out.push_str(&event.name);
                    out.push('\n');
                    for kv in &event.attributes {
                        out.push_str(&format!("{}={}\n", kv.key, kv.value));
                    }
                }
                out.push_str(&format!("status={:?}\n", span.status));
            }
            out
        }
    }

    /// A subscriber that sends every span (all levels) to an in-memory exporter, and the handle
    /// to read them back. Use it per test, e.g. `fut.with_subscriber(sub)` or
    /// `tracing::subscriber::with_default(sub, || …)`; nothing global is touched.
    pub fn capture_spans(
        service_name: &str,
    ) -> (
        CapturedSpans,
        impl tracing::Subscriber + Send + Sync + 'static,
    ) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .with_resource(resource(service_name))
            .build();
        let tracer = provider.tracer(service_name.to_owned());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer))
            .with(EnvFilter::new("trace"));
        (CapturedSpans { exporter, provider }, subscriber)
    }
}
