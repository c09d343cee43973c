//! SMS: E.164 normalization of phone numbers (libphonenumber metadata through the `phonenumber`
//! crate, default region from the config) and a gateway adapter speaking Twilio's Messages API
//! (`POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form-encoded `To`/`From`/`Body`, HTTP
//! basic auth `sid:token`, JSON answer with `sid` and `status`). Any gateway with that API
//! (Twilio, or a compatible one behind a different base URL) works.
//!
//! The passcode of a `P` link is never sent by SMS: the message carries the viewer link only and
//! the passcode reaches the patient by another channel (the clinician tells it, or the launch
//! app shows it), so a stolen phone or a leaked SMS log alone does not open the card.

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::error::{DeliveryError, Result};
use crate::outbound::OutboundClient;

/// A phone number normalized to E.164 (`+` and digits). `Debug` hides it (PHI).
#[derive(Clone, PartialEq, Eq)]
pub struct E164(String);

impl std::fmt::Debug for E164 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("E164(<redacted>)")
    }
}

impl E164 {
    /// Parses a number as typed by a person (spaces, dashes, national format with the default
    /// region, `+` international format) and keeps it only if it is a valid number.
    pub fn parse(text: &str, default_region: &str) -> Result<Self> {
        let text = text.trim();
        if text.is_empty() {
            return Err(DeliveryError::BadPhone { reason: "empty" });
        }
        if text.len() > 40 {
            return Err(DeliveryError::BadPhone { reason: "too long" });
        }
        let region = phonenumber::country::Id::from_str(&default_region.to_ascii_uppercase())
            .map_err(|_| DeliveryError::BadPhone {
                reason: "unknown default region",
            })?;
        let number =
            phonenumber::parse(Some(region), text).map_err(|_| DeliveryError::BadPhone {
                reason: "not a phone number",
            })?;
        if !phonenumber::is_valid(&number) {
            return Err(DeliveryError::BadPhone {
                reason: "not a valid number for its region",
            });
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }

    /// The `+…` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Gateway settings.
#[derive(Clone)]
pub struct SmsSettings {
    /// API base URL, e.g. `https://api.twilio.com`.
    pub base_url: Url,
    /// Account SID (the basic-auth user and part of the path).
    pub account: String,
    /// Auth token.
    pub token: SecretString,
    /// Sender: an E.164 number or a messaging-service id accepted by the gateway as `From`.
    pub from: String,
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("base_url", &self.base_url.as_str())
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

/// What the gateway said about an accepted message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SmsReceipt {
    /// The gateway's message id (`SM…`).
    pub sid: String,
    /// `queued`, `accepted`, `sending`, `sent`, ...
    pub status: String,
}

/// The Twilio-compatible gateway client.
#[derive(Debug, Clone)]
pub struct SmsGateway {
    settings: SmsSettings,
    client: OutboundClient,
}

impl SmsGateway {
    /// A gateway client going through the guarded outbound client.
    pub fn new(settings: SmsSettings, client: OutboundClient) -> Self {
        Self { settings, client }
    }

    /// The Messages endpoint.
    fn messages_url(&self) -> Result<Url> {
        let base = self.settings.base_url.as_str().trim_end_matches('/');
        Url::parse(&format!(
            "{base}/2010-04-01/Accounts/{}/Messages.json",
            self.settings.account
        ))
        .map_err(|_| DeliveryError::UrlRefused {
            reason: "bad SMS gateway URL",
        })
    }

    /// Sends one message (one attempt). Errors say whether a retry may help.
    pub async fn send(&self, to: &E164, body: &str) -> Result<SmsReceipt> {
        let url = self.messages_url()?;
        let form = [
            ("To", to.as_str()),
            ("From", self.settings.from.as_str()),
            ("Body", body),
        ];
        let account = self.settings.account.clone();
        let token = self.settings.token.clone();
        let response = self
            .client
            .send(url, |client, url| {
                client
                    .post(url)
                    .basic_auth(&account, Some(token.expose_secret()))
                    .form(&form)
            })
            .await?;
        if !response.status().is_success() {
            return Err(DeliveryError::from_response(&response));
        }
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                DeliveryError::Timeout
            } else {
                DeliveryError::GatewayResponse
            }
        })?;
        serde_json::from_slice::<SmsReceipt>(&bytes).map_err(|_| DeliveryError::GatewayResponse)
    }
}

/// The message text: the viewer link only (never the passcode).
pub fn message_text(viewer_link: &str) -> String {
    format!("Your vaccination record: {viewer_link}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_to_e164() {
        assert_eq!(
            E164::parse("(201) 555-0123", "US").unwrap().as_str(),
            "+12015550123"
        );
        assert_eq!(
            E164::parse("+44 20 7946 0958", "US").unwrap().as_str(),
            "+442079460958"
        );
        assert_eq!(
            E164::parse("020 7946 0958", "gb").unwrap().as_str(),
            "+442079460958"
        );
    }

    #[test]
    fn rejects_bad_numbers_without_echoing_them() {
        for bad in ["", "hello", "123", "+1 555", "+999 1234 5678"] {
            let err = E164::parse(bad, "US").unwrap_err();
            assert_eq!(err.code(), "phone-invalid", "{bad}");
            assert!(!bad.is_empty() && !err.to_string().contains(bad) || bad.is_empty());
        }
        assert!(!format!("{:?}", E164::parse("+12015550123", "US").unwrap()).contains("555"));
    }
}
