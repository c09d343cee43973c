//! [`DeliveryState`]: what the worker and the HTTP routes share — the store, the settings, the
//! guarded outbound client, the SMS gateway, the passcode hasher and the per-link file cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::Result;
use crate::outbound::{Allowlist, HostResolver, OutboundClient, SystemResolver};
use crate::settings::DeliverySettings;
use crate::sms::SmsGateway;

/// Cached encrypted file of a link: the credential it was made from and the JWE.
pub(crate) type CachedFile = (String, Arc<String>);

/// Shared state; cheap to clone.
#[derive(Clone)]
pub struct DeliveryState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) store: store::Store,
    pub(crate) settings: DeliverySettings,
    pub(crate) outbound: OutboundClient,
    pub(crate) sms: Option<SmsGateway>,
    pub(crate) hasher: shl::PasscodeHasher,
    pub(crate) metrics: OnceLock<platform::Metrics>,
    /// Files encrypted once per (link, credential): re-encrypted (same key, fresh IV) only when
    /// the credential behind the link changes. Bounded: cleared when it reaches `FILE_CACHE_MAX`.
    pub(crate) files: Mutex<HashMap<String, CachedFile>>,
}

pub(crate) const FILE_CACHE_MAX: usize = 10_000;

impl std::fmt::Debug for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryState")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl DeliveryState {
    /// State with the system DNS resolver.
    pub fn new(store: store::Store, settings: DeliverySettings) -> Result<Self> {
        Self::with_resolver(store, settings, Arc::new(SystemResolver))
    }

    /// State with an injected resolver (tests decide what each host resolves to).
    pub fn with_resolver(
        store: store::Store,
        settings: DeliverySettings,
        resolver: Arc<dyn HostResolver>,
    ) -> Result<Self> {
        let outbound = OutboundClient::new(
            resolver,
            Allowlist::new(&settings.outbound_allowlist),
            settings.request_timeout,
        )?;
        let sms = settings
            .sms
            .clone()
            .map(|s| SmsGateway::new(s, outbound.clone()));
        let (m, t, p) = settings.passcode_cost;
        let hasher = shl::PasscodeHasher::with_cost(m, t, p)?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                settings,
                outbound,
                sms,
                hasher,
                metrics: OnceLock::new(),
                files: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Counts attempts in `vaxcred_delivery_attempts_total` from now on. The first call wins;
    /// later calls are ignored.
    pub fn with_metrics(self, metrics: platform::Metrics) -> Self {
        let _ = self.inner.metrics.set(metrics);
        self
    }

    /// The store.
    pub fn store(&self) -> &store::Store {
        &self.inner.store
    }

    /// The settings.
    pub fn settings(&self) -> &DeliverySettings {
        &self.inner.settings
    }

    /// The guarded outbound client.
    pub fn outbound(&self) -> &OutboundClient {
        &self.inner.outbound
    }
}
