//! The SSRF guard and the one HTTP client every outbound call (wallet pushes, the SMS gateway)
//! goes through. Rules: https only; the host is resolved through an injectable
//! [`HostResolver`] and every address is vetted before connecting — private, loopback,
//! link-local (169.254/16, fe80::/10), unique-local, CGNAT, multicast, unspecified, reserved and
//! documentation ranges are refused; the connection goes to the vetted addresses only (the same
//! resolver is installed in reqwest, so there is no second, unvetted lookup); redirects are
//! followed by hand, each hop vetted again. Hosts on the config's allowlist (`host` or
//! `host:port`) skip the address check and may use plain http — that is how tests reach their
//! servers on 127.0.0.1.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{DeliveryError, Result};

/// Boxed future returned by [`HostResolver::resolve`].
pub type ResolveFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// Name resolution, injectable so tests decide what a host "is" without touching DNS.
pub trait HostResolver: Send + Sync + 'static {
    /// All addresses of `host`.
    fn resolve(&self, host: &str) -> ResolveFuture;
}

/// The system resolver (`getaddrinfo` through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn resolve(&self, host: &str) -> ResolveFuture {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// A fixed table host → addresses, for tests and pinned deployments. Unknown hosts fail.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    table: std::collections::HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a host's addresses.
    pub fn with(mut self, host: &str, addrs: &[IpAddr]) -> Self {
        self.table.insert(host.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl HostResolver for StaticResolver {
    fn resolve(&self, host: &str) -> ResolveFuture {
        let found = self.table.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "host not in table"))
        })
    }
}

/// Hosts (optionally with a port) that may be reached on internal addresses and over http.
#[derive(Debug, Clone, Default)]
pub struct Allowlist {
    entries: Vec<(String, Option<u16>)>,
}

impl Allowlist {
    /// Parses `host` / `host:port` entries (IPv6 literals in brackets: `[::1]:8443`).
    pub fn new<I, S>(entries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let entries = entries
            .into_iter()
            .filter_map(|e| {
                let e = e.as_ref().trim().to_ascii_lowercase();
                if e.is_empty() {
                    return None;
                }
                // Reuse the URL parser for host[:port] splitting, IPv6 brackets included.
                let url = Url::parse(&format!("http://{e}/")).ok()?;
                Some((host_key(&url.host()?), url.port()))
            })
            .collect();
        Self { entries }
    }

    /// Whether `host` on `port` is allow-listed.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries
            .iter()
            .any(|(h, p)| *h == host && p.is_none_or(|p| p == port))
    }

    /// Whether `host` is allow-listed on some port (the resolver sees no port).
    fn allows_host(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|(h, _)| *h == host)
    }
}

/// A host as the allowlist compares it: lower-case names, IP literals without brackets.
fn host_key<S: AsRef<str>>(host: &url::Host<S>) -> String {
    match host {
        url::Host::Domain(d) => d.as_ref().to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    }
}

/// Whether an address must never be contacted unless allow-listed.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments 192.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
        || a >= 240 // reserved 240/4
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4);
    }
    let seg = ip.segments();
    let first = seg.first().copied().unwrap_or(0);
    let second = seg.get(1).copied().unwrap_or(0);
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
        || (first & 0xfe00) == 0xfc00 // unique-local fc00::/7
        || (first == 0x2001 && second == 0x0db8) // documentation
        // NAT64 64:ff9b::/96 would reach any IPv4 address, internal ones included.
        || (first == 0x0064 && second == 0xff9b)
        // IPv4-compatible ::a.b.c.d (deprecated) — vet the embedded address.
        || (seg.iter().take(6).all(|s| *s == 0) && is_forbidden_v4(ipv4_tail(&ip)))
}

fn ipv4_tail(ip: &Ipv6Addr) -> Ipv4Addr {
    let o = ip.octets();
    Ipv4Addr::new(
        o.get(12).copied().unwrap_or(0),
        o.get(13).copied().unwrap_or(0),
        o.get(14).copied().unwrap_or(0),
        o.get(15).copied().unwrap_or(0),
    )
}

/// Marker error from the reqwest resolver, recognised in the error chain.
#[derive(Debug)]
struct RefusedAddress;

impl std::fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("address refused by the outbound guard")
    }
}

impl std::error::Error for RefusedAddress {}

/// reqwest's resolver: the injected resolver plus the address check, so the connection can only
/// go to addresses that passed it.
struct GuardedDns {
    inner: Arc<dyn HostResolver>,
    allowlist: Arc<Allowlist>,
}

impl reqwest::dns::Resolve for GuardedDns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.allowlist.allows_host(&host);
        let lookup = self.inner.resolve(&host);
        Box::pin(async move {
            let ips = lookup.await?;
            if ips.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no addresses").into());
            }
            if !allowed && ips.iter().any(|ip| is_forbidden(*ip)) {
                return Err(Box::new(RefusedAddress) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Vec<SocketAddr> = ips.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The guarded HTTP client. Cheap to clone.
#[derive(Clone)]
pub struct OutboundClient {
    client: reqwest::Client,
    resolver: Arc<dyn HostResolver>,
    allowlist: Arc<Allowlist>,
    timeout: Duration,
    max_redirects: usize,
}

impl std::fmt::Debug for OutboundClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundClient")
            .field("allowlist", &self.allowlist)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Installs ring as the process-wide rustls provider if none is set (reqwest is built without
/// one; see Cargo.toml). Idempotent.
pub fn ensure_crypto_provider() {
    platform::tls::ensure_crypto_provider();
}

impl OutboundClient {
    /// A client resolving through `resolver`, allowing `allowlist`, with a per-request timeout
    /// (connect + send + response headers and body).
    pub fn new(
        resolver: Arc<dyn HostResolver>,
        allowlist: Allowlist,
        timeout: Duration,
    ) -> Result<Self> {
        ensure_crypto_provider();
        let allowlist = Arc::new(allowlist);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedDns {
                inner: resolver.clone(),
                allowlist: allowlist.clone(),
            }))
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("vaxcred-delivery/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(DeliveryError::Connect)?;
        Ok(Self {
            client,
            resolver,
            allowlist,
            timeout,
            max_redirects: 3,
        })
    }

    /// The configured per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Checks a URL without sending anything: scheme, host, and every address it resolves to.
    pub async fn vet(&self, url: &Url) -> Result<()> {
        let host = url
            .host()
            .ok_or(DeliveryError::UrlRefused { reason: "no host" })?;
        let port = url
            .port_or_known_default()
            .ok_or(DeliveryError::UrlRefused { reason: "no port" })?;
        let host_str = host_key(&host);
        let allowed = self.allowlist.allows(&host_str, port);
        match url.scheme() {
            "https" => {}
            "http" if allowed => {}
            _ => {
                return Err(DeliveryError::UrlRefused {
                    reason: "scheme must be https",
                })
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DeliveryError::UrlRefused {
                reason: "credentials in URL",
            });
        }
        if allowed {
            return Ok(());
        }
        let ips = match host {
            url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
            url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
            url::Host::Domain(d) => self
                .resolver
                .resolve(d)
                .await
                .map_err(|_| DeliveryError::Resolve)?,
        };
        if ips.is_empty() {
            return Err(DeliveryError::Resolve);
        }
        if ips.into_iter().any(is_forbidden) {
            return Err(DeliveryError::AddressRefused);
        }
        Ok(())
    }

    /// Sends the request built by `build` for `url`, vetting it first; 3xx answers with a
    /// `Location` are followed (the same request re-built for the new URL) after vetting the
    /// target, up to 3 hops. Returns the final response, whatever its status.
    pub async fn send<F>(&self, url: Url, build: F) -> Result<reqwest::Response>
    where
        F: Fn(&reqwest::Client, Url) -> reqwest::RequestBuilder,
    {
        let mut url = url;
        for _hop in 0..=self.max_redirects {
            self.vet(&url).await?;
            let request = build(&self.client, url.clone());
            let response = tokio::time::timeout(self.timeout, request.send())
                .await
                .map_err(|_| DeliveryError::Timeout)?
                .map_err(classify)?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or(DeliveryError::Redirect {
                    reason: "no location",
                })?;
            url = url.join(location).map_err(|_| DeliveryError::Redirect {
                reason: "bad location",
            })?;
        }
        Err(DeliveryError::Redirect {
            reason: "too many redirects",
        })
    }
}

/// Maps a reqwest error to ours, recognising the guard's refusal in the source chain.
fn classify(err: reqwest::Error) -> DeliveryError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        if e.is::<RefusedAddress>() || e.to_string() == RefusedAddress.to_string() {
            return DeliveryError::AddressRefused;
        }
        source = e.source();
    }
    if err.is_timeout() {
        DeliveryError::Timeout
    } else {
        DeliveryError::Connect(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip} must be allowed");
        }
    }

    #[test]
    fn allowlist_matches_host_and_optional_port() {
        let list = Allowlist::new(["127.0.0.1", "wallet.local:8443", "[::1]:9000"]);
        assert!(list.allows("127.0.0.1", 1234));
        assert!(list.allows("WALLET.local", 8443));
        assert!(!list.allows("wallet.local", 443));
        assert!(list.allows("::1", 9000));
        assert!(!list.allows("169.254.169.254", 80));
    }
}
