//! The delivery service's settings, read from the `[delivery]`, `[admin]` and `[http]` sections
//! of the platform config (see `docs/configuration.md`), with the defaults applied. Tests build
//! it directly with millisecond schedules.

use std::time::Duration;

use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};

use crate::backoff::RetrySchedule;
use crate::sms::SmsSettings;

/// Everything the worker and the HTTP routes need to know.
#[derive(Clone)]
pub struct DeliverySettings {
    /// External base URL (no trailing slash): manifest URLs and viewer links are built on it.
    pub public_base_url: String,
    /// Bearer tokens accepted on the admin routes; empty disables them.
    pub admin_tokens: Vec<SecretString>,
    /// `host` / `host:port` entries that may be reached on internal addresses and over http.
    pub outbound_allowlist: Vec<String>,
    /// Timeout of one outbound request.
    pub request_timeout: Duration,
    /// Wallet push retries.
    pub wallet_retry: RetrySchedule,
    /// SMS retries.
    pub sms_retry: RetrySchedule,
    /// How often the worker looks for due retries.
    pub poll_interval: Duration,
    /// SMS gateway; `None` disables SMS.
    pub sms: Option<SmsSettings>,
    /// Region for phone numbers without `+country`.
    pub phone_default_region: String,
    /// Lifetime wrong-passcode budget of a link.
    pub shl_max_failures: u32,
    /// Lifetime of new links (`exp`); `None` = no expiry.
    pub shl_link_ttl: Option<Duration>,
    /// Lifetime of file `location` URLs (clamped to one hour, O.84).
    pub location_lifetime: Duration,
    /// HMAC key of location tokens.
    pub location_secret: SecretString,
    /// Embedding default when a manifest request has no `embeddedLengthMax`.
    pub embed_default_max: Option<u64>,
    /// Argon2id cost for passcode hashes: (memory KiB, passes, lanes).
    pub passcode_cost: (u32, u32, u32),
}

impl std::fmt::Debug for DeliverySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySettings")
            .field("public_base_url", &self.public_base_url)
            .field("outbound_allowlist", &self.outbound_allowlist)
            .field("request_timeout", &self.request_timeout)
            .field("sms", &self.sms)
            .finish_non_exhaustive()
    }
}

fn random_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn millis(list: &[u64]) -> Vec<Duration> {
    list.iter().copied().map(Duration::from_millis).collect()
}

impl DeliverySettings {
    /// Defaults for a given public base URL (no admin tokens, SMS off).
    pub fn new(public_base_url: impl Into<String>) -> Self {
        Self {
            public_base_url: public_base_url.into().trim_end_matches('/').to_owned(),
            admin_tokens: Vec::new(),
            outbound_allowlist: Vec::new(),
            request_timeout: Duration::from_secs(10),
            wallet_retry: RetrySchedule::wallet_default(),
            sms_retry: RetrySchedule::sms_default(),
            poll_interval: Duration::from_secs(1),
            sms: None,
            phone_default_region: "US".to_owned(),
            shl_max_failures: 10,
            shl_link_ttl: Some(Duration::from_secs(365 * 24 * 3600)),
            location_lifetime: shl::manifest::MAX_LOCATION_LIFETIME,
            location_secret: random_secret(),
            embed_default_max: None,
            passcode_cost: (19 * 1024, 2, 1),
        }
    }

    /// Reads the platform config. Fails if SMS is configured without a sender.
    pub fn from_config(config: &platform::Config) -> anyhow::Result<Self> {
        let d = &config.delivery;
        let mut s = Self::new(config.public_base_url());
        s.admin_tokens = config.admin.tokens.clone();
        s.outbound_allowlist = d.outbound_allowlist.clone();
        if let Some(ms) = d.request_timeout_ms {
            s.request_timeout = Duration::from_millis(ms.max(1));
        }
        if !d.wallet_retry_delays_ms.is_empty() {
            s.wallet_retry = RetrySchedule::new(millis(&d.wallet_retry_delays_ms));
        }
        if !d.sms_retry_delays_ms.is_empty() {
            s.sms_retry = RetrySchedule::new(millis(&d.sms_retry_delays_ms));
        }
        if let Some(region) = &d.phone_default_region {
            s.phone_default_region = region.clone();
        }
        if let Some(n) = d.shl_max_passcode_failures {
            s.shl_max_failures = n.max(1);
        }
        if let Some(days) = d.shl_link_ttl_days {
            s.shl_link_ttl = Some(Duration::from_secs(u64::from(days) * 24 * 3600));
        }
        if let Some(secret) = &d.shl_location_secret {
            anyhow::ensure!(
                secret.expose_secret().len() >= 32,
                "delivery.shl_location_secret must be at least 32 characters"
            );
            s.location_secret = secret.clone();
        }
        if let (Some(url), Some(token)) = (&d.sms_gateway_url, &d.sms_token) {
            let from = d
                .sms_from
                .clone()
                .ok_or_else(|| anyhow::anyhow!("delivery.sms_from is required for SMS"))?;
            s.sms = Some(SmsSettings {
                base_url: url.clone(),
                account: d.sms_account.clone().unwrap_or_default(),
                token: token.clone(),
                from,
            });
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_delivery_section_with_defaults() {
        let config = platform::Config::from_env_vars([
            ("VAXCRED_HTTP__PUBLIC_BASE_URL", "https://vax.example.org/"),
            ("VAXCRED_ADMIN__TOKENS", "admintoken-0123456789"),
            (
                "VAXCRED_DELIVERY__SMS_GATEWAY_URL",
                "https://api.twilio.com",
            ),
            ("VAXCRED_DELIVERY__SMS_ACCOUNT", "AC123"),
            ("VAXCRED_DELIVERY__SMS_TOKEN", "smstoken-abcdef"),
            ("VAXCRED_DELIVERY__SMS_FROM", "+15005550006"),
            ("VAXCRED_DELIVERY__WALLET_RETRY_DELAYS_MS", "100,200"),
            ("VAXCRED_DELIVERY__SHL_MAX_PASSCODE_FAILURES", "5"),
            ("VAXCRED_DELIVERY__PHONE_DEFAULT_REGION", "GB"),
        ])
        .unwrap();
        let s = DeliverySettings::from_config(&config).unwrap();
        assert_eq!(s.public_base_url, "https://vax.example.org");
        assert_eq!(s.admin_tokens.len(), 1);
        assert_eq!(
            s.wallet_retry.delays(),
            [Duration::from_millis(100), Duration::from_millis(200)]
        );
        assert_eq!(s.sms_retry, RetrySchedule::sms_default());
        assert_eq!(s.shl_max_failures, 5);
        assert_eq!(s.phone_default_region, "GB");
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        let sms = s.sms.unwrap();
        assert_eq!(
            (sms.account.as_str(), sms.from.as_str()),
            ("AC123", "+15005550006")
        );
        assert!(!format!("{sms:?}").contains("smstoken"));
    }

    #[test]
    fn sms_without_a_sender_is_refused() {
        let config = platform::Config::from_env_vars([
            (
                "VAXCRED_DELIVERY__SMS_GATEWAY_URL",
                "https://api.twilio.com",
            ),
            ("VAXCRED_DELIVERY__SMS_TOKEN", "smstoken-abcdef"),
        ])
        .unwrap();
        let err = DeliverySettings::from_config(&config).unwrap_err();
        assert!(err.to_string().contains("delivery.sms_from"), "{err}");
        let plain = platform::Config::from_env_vars::<[(&str, &str); 0], &str, &str>([]).unwrap();
        assert!(DeliverySettings::from_config(&plain).unwrap().sms.is_none());
    }
}
