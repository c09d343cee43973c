//! [`Bus`]: one AMQP connection, its supervisor (reconnect with backoff, redeclare topology),
//! and readiness.
//!
//! lapin does not recover connections: when the connection dies every channel, consumer and
//! pending confirm on it is gone. The supervisor notices (lapin's error callback, plus a status
//! poll in case the callback is missed), marks the bus not ready, reconnects with exponential
//! backoff and jitter, redeclares the topology and publishes the new session; publishers and
//! consumers pick it up from a `watch` channel.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use lapin::uri::AMQPUri;
use lapin::{Connection, ConnectionProperties};
use rand_core::{OsRng, RngCore};
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::{BusConfig, Topology};
use crate::consumer::Consumer;
use crate::error::{BusError, Result};
use crate::publisher::{ChannelSlot, Publisher};
use crate::topology;

/// How often the supervisor double-checks the connection state, in case lapin's error
/// callback did not fire.
const STATUS_POLL: Duration = Duration::from_millis(250);

/// One live connection; replaced wholesale on reconnect.
pub(crate) struct Session {
    /// Increases by one per successful (re)connection.
    pub(crate) generation: u64,
    pub(crate) connection: Connection,
    lost: Arc<Notify>,
}

/// State shared by the bus handle, its supervisor, publishers, consumers and deliveries.
pub(crate) struct Shared {
    pub(crate) config: BusConfig,
    pub(crate) topology: Topology,
    /// `None` while disconnected.
    pub(crate) session: watch::Sender<Option<Arc<Session>>>,
    pub(crate) ready: watch::Sender<bool>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Confirm channel used to publish retry and dead-letter copies for deliveries.
    pub(crate) settle: ChannelSlot,
}

impl Shared {
    /// The current session, waiting for a reconnect until `deadline`.
    pub(crate) async fn session_until(&self, deadline: Instant) -> Result<Arc<Session>> {
        let mut sessions = self.session.subscribe();
        let mut shutdown = self.shutdown.subscribe();
        loop {
            if *shutdown.borrow_and_update() {
                return Err(BusError::Closed);
            }
            if let Some(session) = sessions.borrow_and_update().clone() {
                return Ok(session);
            }
            tokio::select! {
                _ = sessions.changed() => {}
                _ = shutdown.changed() => {}
                () = tokio::time::sleep_until(deadline) => return Err(BusError::NotReady),
            }
        }
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Handle to the broker. Cheap to clone; all clones share one connection.
///
/// Handlers built on it must be idempotent: deliveries not acked when a connection drops are
/// redelivered by the broker, and a publish whose confirm was lost is retried by the caller.
#[derive(Clone)]
pub struct Bus {
    shared: Arc<Shared>,
    supervisor: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("prefix", &self.shared.topology.prefix())
            .field("ready", &self.is_ready())
            .finish()
    }
}

impl Bus {
    /// Connects, declares the topology, and starts the reconnect supervisor. Fails (rather than
    /// retrying) when the first attempt fails, so bad credentials or a topology conflict are
    /// reported at start-up; must be called inside a tokio runtime.
    pub async fn connect(config: BusConfig) -> Result<Bus> {
        config.validate()?;
        let topology = Topology::new(&config);
        let session = open_session(&config, &topology, 1).await?;
        let (session_tx, _) = watch::channel(Some(session.clone()));
        let (ready, _) = watch::channel(true);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            topology,
            session: session_tx,
            ready,
            shutdown,
            settle: ChannelSlot::default(),
        });
        let handle = tokio::spawn(supervise(shared.clone(), session));
        Ok(Bus {
            shared,
            supervisor: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Names of every exchange and queue.
    pub fn topology(&self) -> &Topology {
        &self.shared.topology
    }

    /// The configuration this bus was started with.
    pub fn config(&self) -> &BusConfig {
        &self.shared.config
    }

    /// True while connected with the topology declared.
    pub fn is_ready(&self) -> bool {
        *self.shared.ready.borrow()
    }

    /// Readiness as a watch channel (for `/health/ready`, or to wait on changes).
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.shared.ready.subscribe()
    }

    /// Waits until ready, at most `timeout`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.shared
            .session_until(Instant::now() + timeout)
            .await
            .map(|_| ())
    }

    /// Number of connections made so far (1 after [`Bus::connect`], +1 per reconnect).
    pub fn connection_generation(&self) -> u64 {
        self.shared
            .session
            .borrow()
            .as_ref()
            .map_or(0, |s| s.generation)
    }

    /// A publisher with its own confirm channel.
    pub fn publisher(&self) -> Publisher {
        Publisher::new(self.shared.clone())
    }

    /// Starts consuming work queue `short` (e.g. `"ingest"`) with manual ack and prefetch
    /// `config.prefetch`; survives reconnects.
    pub fn consumer(&self, short: &str) -> Result<Consumer> {
        if !self.shared.topology.queues().iter().any(|q| q == short) {
            return Err(BusError::QueueNotFound(self.shared.topology.queue(short)));
        }
        Ok(Consumer::start(
            self.shared.clone(),
            short.to_owned(),
            self.shared.topology.queue(short),
        ))
    }

    /// Consumes any queue by full name (e.g. the DLQ); settlement by `retry` is not available
    /// for queues outside the topology.
    pub fn consumer_for_queue(&self, full_name: &str) -> Consumer {
        let short = self
            .shared
            .topology
            .short_name(full_name)
            .unwrap_or(full_name)
            .to_owned();
        Consumer::start(self.shared.clone(), short, full_name.to_owned())
    }

    /// A fresh raw lapin channel on the current connection (waits for readiness up to the
    /// publish timeout), for what this crate does not wrap. The caller closes it; it dies with
    /// the connection and is not recovered.
    pub async fn channel(&self) -> Result<lapin::Channel> {
        let deadline = Instant::now() + self.shared.config.publish_timeout;
        let session = self.shared.session_until(deadline).await?;
        match tokio::time::timeout_at(deadline, session.connection.create_channel()).await {
            Ok(result) => result.map_err(BusError::Channel),
            Err(_) => Err(BusError::NotReady),
        }
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops reconnecting, ends consumers (their `recv` returns `None`) and closes the
    /// connection. Unacked deliveries go back to their queues.
    pub async fn close(&self) {
        self.shared.shutdown.send_replace(true);
        let handle = self.supervisor.lock().await.take();
        if let Some(handle) = handle {
            // The supervisor bounds its own close; this only guards against a bug there.
            let _ = tokio::time::timeout(Duration::from_secs(10), handle).await;
        }
    }
}

/// Opens a connection and declares the topology on it.
async fn open_session(
    config: &BusConfig,
    topology: &Topology,
    generation: u64,
) -> Result<Arc<Session>> {
    let mut uri: AMQPUri = config
        .url
        .parse()
        .map_err(|_| BusError::Config("url is not a valid amqp:// URL"))?;
    if uri.query.heartbeat.is_none() {
        uri.query.heartbeat =
            Some(u16::try_from(config.heartbeat.as_secs().max(1)).unwrap_or(u16::MAX));
    }
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout =
            Some(u64::try_from(config.connect_timeout.as_millis()).unwrap_or(u64::MAX));
    }
    let properties = ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name(config.connection_name.clone().into());

    let connection = match tokio::time::timeout(
        config.connect_timeout,
        Connection::connect_uri(uri, properties),
    )
    .await
    {
        Ok(result) => result.map_err(BusError::Connect)?,
        Err(_) => {
            return Err(BusError::Connect(lapin::Error::IOError(Arc::new(
                io::Error::new(io::ErrorKind::TimedOut, "connection timed out"),
            ))))
        }
    };
    let lost = Arc::new(Notify::new());
    let notifier = lost.clone();
    connection.on_error(move |error| {
        warn!(%error, "AMQP connection error");
        notifier.notify_one();
    });

    let declared = tokio::time::timeout(config.connect_timeout, async {
        let channel = connection
            .create_channel()
            .await
            .map_err(BusError::Channel)?;
        topology::declare(&channel, topology).await?;
        // A failed close only leaks a channel on this connection; the declaration succeeded.
        let _ = channel.close(200, "topology declared").await;
        Ok::<_, BusError>(())
    })
    .await;
    let failure = match declared {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(BusError::Connect(lapin::Error::IOError(Arc::new(
            io::Error::new(io::ErrorKind::TimedOut, "topology declaration timed out"),
        )))),
    };
    if let Some(error) = failure {
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            connection.close(200, "declare failed"),
        )
        .await;
        return Err(error);
    }
    Ok(Arc::new(Session {
        generation,
        connection,
        lost,
    }))
}

/// Exponential backoff with ±20 % jitter, so replicas do not reconnect in lockstep.
fn backoff(config: &BusConfig, attempt: u32) -> Duration {
    let base = config
        .reconnect_min
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(config.reconnect_max);
    let unit = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    base.mul_f64(0.8 + 0.4 * unit)
}

async fn wait_shutdown(rx: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, i.e. the bus itself: treat as shutdown.
    let _ = rx.wait_for(|closing| *closing).await;
}

async fn supervise(shared: Arc<Shared>, mut current: Arc<Session>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        let mut poll = tokio::time::interval(STATUS_POLL);
        let stop = loop {
            tokio::select! {
                () = current.lost.notified() => break false,
                _ = poll.tick() => {
                    if !current.connection.status().connected() {
                        break false;
                    }
                }
                () = wait_shutdown(&mut shutdown) => break true,
            }
        };
        shared.ready.send_replace(false);
        shared.session.send_replace(None);
        if stop {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                current.connection.close(200, "shutdown"),
            )
            .await;
            info!(generation = current.generation, "AMQP connection closed");
            return;
        }
        warn!(
            generation = current.generation,
            "AMQP connection lost; reconnecting"
        );
        let next = current.generation + 1;
        let mut attempt = 0u32;
        current = loop {
            tokio::select! {
                () = tokio::time::sleep(backoff(&shared.config, attempt)) => {}
                () = wait_shutdown(&mut shutdown) => return,
            }
            match open_session(&shared.config, &shared.topology, next).await {
                Ok(session) => break session,
                Err(error) => {
                    warn!(code = error.code(), attempt, "AMQP reconnect failed");
                    attempt = attempt.saturating_add(1);
                }
            }
        };
        if shared.is_shut_down() {
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                current.connection.close(200, "shutdown"),
            )
            .await;
            return;
        }
        shared.session.send_replace(Some(current.clone()));
        shared.ready.send_replace(true);
        info!(
            generation = current.generation,
            "AMQP reconnected; topology redeclared"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let config = BusConfig {
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
            ..BusConfig::default()
        };
        for _ in 0..100 {
            let first = backoff(&config, 0);
            assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
            let third = backoff(&config, 2);
            assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
            let late = backoff(&config, 40);
            assert!(late >= Duration::from_millis(1600) && late <= Duration::from_millis(2400));
        }
    }
}
