//! Readiness: a registry of named checks that `GET /health/ready` evaluates. A check is either a
//! flag the owning task flips (broker connected, signing key loaded) or an async probe run on
//! each request (database reachable). Liveness needs no registry: the process answering is it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

/// What an async probe returns: `Err` carries a short, fixed reason code (e.g.
/// `"connect-failed"`), never an error message that could hold a host, a user or patient data.
pub type ProbeResult = Result<(), &'static str>;

type ProbeFn = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ProbeResult> + Send>> + Send + Sync>;

#[derive(Clone)]
enum Check {
    Flag(watch::Receiver<bool>),
    Probe(ProbeFn),
}

/// The registry. Cheap to clone; clones share the same checks.
#[derive(Clone)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, Check)>>>,
    probe_timeout: Duration,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

/// A readiness flag owned by whoever knows the state. Starts not ready.
#[derive(Clone, Debug)]
pub struct ReadyFlag {
    tx: Arc<watch::Sender<bool>>,
}

impl ReadyFlag {
    /// Sets the state.
    pub fn set(&self, ready: bool) {
        self.tx.send_replace(ready);
    }

    /// Marks ready.
    pub fn set_ready(&self) {
        self.set(true);
    }

    /// Marks not ready (e.g. the broker connection dropped; reconnecting).
    pub fn set_not_ready(&self) {
        self.set(false);
    }

    /// The current state.
    pub fn is_ready(&self) -> bool {
        *self.tx.borrow()
    }

    /// A receiver to await changes (e.g. a worker that waits for the key to load).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

/// The state of one check, as `/health/ready` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    /// The check's registered name.
    pub name: String,
    /// Whether it passed.
    pub ready: bool,
    /// Why not, as a short code; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// The body of `/health/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadinessReport {
    /// True when every check passed (and when none is registered).
    pub ready: bool,
    /// Each check in registration order.
    pub checks: Vec<CheckStatus>,
}

impl Readiness {
    /// An empty registry; probes time out after 2 s.
    pub fn new() -> Self {
        Self {
            checks: Arc::new(Mutex::new(Vec::new())),
            probe_timeout: Duration::from_secs(2),
        }
    }

    /// Sets how long one probe may take before it counts as failed (`reason: "timeout"`).
    #[must_use]
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    /// Registers a flag check named `name`, initially not ready, and returns its handle.
    pub fn flag(&self, name: impl Into<String>) -> ReadyFlag {
        let (tx, rx) = watch::channel(false);
        self.push(name.into(), Check::Flag(rx));
        ReadyFlag { tx: Arc::new(tx) }
    }

    /// Registers an async probe named `name`, run on every readiness request.
    pub fn probe<F, Fut>(&self, name: impl Into<String>, probe: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ProbeResult> + Send + 'static,
    {
        let probe: ProbeFn = Arc::new(move || Box::pin(probe()));
        self.push(name.into(), Check::Probe(probe));
    }

    fn push(&self, name: String, check: Check) {
        self.checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name, check));
    }

    /// Evaluates every check (probes concurrently, each bounded by the probe timeout).
    pub async fn report(&self) -> ReadinessReport {
        // Cloned out so the lock is never held across an await.
        let checks = self
            .checks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let timeout = self.probe_timeout;
        let statuses =
            futures_util::future::join_all(checks.into_iter().map(|(name, check)| async move {
                let outcome = match check {
                    Check::Flag(rx) => {
                        if *rx.borrow() {
                            Ok(())
                        } else {
                            Err("not-ready")
                        }
                    }
                    Check::Probe(probe) => tokio::time::timeout(timeout, probe())
                        .await
                        .unwrap_or(Err("timeout")),
                };
                CheckStatus {
                    name,
                    ready: outcome.is_ok(),
                    reason: outcome.err(),
                }
            }))
            .await;
        ReadinessReport {
            ready: statuses.iter().all(|s| s.ready),
            checks: statuses,
        }
    }

    /// Whether every check passes now.
    pub async fn is_ready(&self) -> bool {
        self.report().await.ready
    }
}
