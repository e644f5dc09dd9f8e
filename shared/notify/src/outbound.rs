//! The outbound guard: where Quper may send a request on a tenant's behalf.
//!
//! Webhook and Slack incoming-webhook URLs are typed in by tenants. Without a
//! guard, a tenant could point a webhook at `http://169.254.169.254/` and make
//! the Lambda fetch its own instance credentials, or probe the VPC (server-side
//! request forgery). So before a request to a tenant's URL:
//!
//! - the URL must be `http` or `https` and carry no user info;
//! - its host is resolved, and the request is refused when ANY of the
//!   addresses is internal (see [`is_forbidden`]): checking only the first
//!   would let a name that resolves to a public and a private address through.
//!
//! `QUPER_OUTBOUND_ALLOW` lists exceptions, comma-separated: host names
//! (`stub.local`, matched exactly, case-insensitively) and addresses or CIDR
//! blocks (`127.0.0.1/32`, `10.1.0.0/16`, `fd00::1`). Local runs and tests use
//! it to reach stub servers on loopback; production leaves it empty.
//!
//! Checking the URL and then letting the HTTP client resolve the name again
//! leaves a gap: a name with a short TTL can resolve to a public address for the
//! check and to `127.0.0.1` for the connection (DNS rebinding). The guard also
//! implements [`reqwest::dns::Resolve`], and the HTTP client of
//! [`crate::Providers`] resolves every name through it, so the addresses
//! connected to are the checked ones.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

/// The environment variable with the allow list.
pub const OUTBOUND_ALLOW_ENV: &str = "QUPER_OUTBOUND_ALLOW";

/// How long a name may take to resolve: a hung resolver must not hold a
/// delivery past the Lambda's budget.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Cloud instance-metadata addresses (AWS IMDS over IPv4 and IPv6, the ECS task
/// metadata endpoint). Covered by the link-local and unique-local ranges too,
/// listed on their own so the intent survives edits to the ranges.
const METADATA_ADDRESSES: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// Why a destination was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    #[error("URL scheme `{0}` is not allowed (http or https only)")]
    Scheme(String),
    #[error("URLs with user info (user:password@) are not allowed")]
    UserInfo,
    #[error("URL has no host")]
    NoHost,
    /// The name did not resolve (or not in time). May be temporary.
    #[error("cannot resolve {host}: {reason}")]
    Resolve { host: String, reason: String },
    #[error("destination {host} resolves to {addr}, an internal address (allow it with QUPER_OUTBOUND_ALLOW)")]
    Forbidden { host: String, addr: IpAddr },
}

impl OutboundError {
    /// True when the same URL may pass later (a resolver failure); a refused
    /// scheme or address will not.
    pub fn is_temporary(&self) -> bool {
        matches!(self, OutboundError::Resolve { .. })
    }
}

/// One exception of the allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    /// A host name, lower case, without a trailing dot.
    Host(String),
    /// An address block; a single address is a /32 or /128.
    Net { network: IpAddr, prefix: u8 },
}

/// Checks destinations against the internal ranges and the allow list. Cheap
/// to clone (the list is shared).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct OutboundGuard {
    allowed: Arc<[Allowed]>,
}

impl fmt::Debug for OutboundGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundGuard").field("allowed", &self.allowed).finish()
    }
}

impl OutboundGuard {
    /// A guard with the exceptions of `QUPER_OUTBOUND_ALLOW` (none when unset).
    /// Entries that do not parse are logged and skipped: that only makes the
    /// guard stricter.
    pub fn from_env() -> Self {
        let list = std::env::var(OUTBOUND_ALLOW_ENV).unwrap_or_default();
        let (guard, rejected) = Self::parse(&list);
        for entry in rejected {
            tracing::warn!(
                entry,
                "{OUTBOUND_ALLOW_ENV}: ignoring an entry that is neither a host name nor an address/CIDR"
            );
        }
        guard
    }

    /// A guard from an allow list (`127.0.0.1/32,stub.local`); ignores entries
    /// that do not parse. See [`OutboundGuard::parse`] to see them.
    pub fn new(allow_list: &str) -> Self {
        Self::parse(allow_list).0
    }

    /// A guard with no exceptions: every internal address is refused.
    pub fn strict() -> Self {
        Self::default()
    }

    /// Parses an allow list; returns the guard and the entries that did not
    /// parse.
    pub fn parse(allow_list: &str) -> (Self, Vec<String>) {
        let mut allowed = Vec::new();
        let mut rejected = Vec::new();
        for entry in allow_list.split(',').map(str::trim).filter(|entry| !entry.is_empty()) {
            match parse_entry(entry) {
                Some(parsed) => allowed.push(parsed),
                None => rejected.push(entry.to_owned()),
            }
        }
        (
            OutboundGuard {
                allowed: allowed.into(),
            },
            rejected,
        )
    }

    /// True when the host name is on the allow list.
    pub fn allows_host(&self, host: &str) -> bool {
        let host = normalise_host(host);
        self.allowed
            .iter()
            .any(|allowed| matches!(allowed, Allowed::Host(name) if *name == host))
    }

    /// True when the address is inside one of the allowed blocks.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|allowed| match allowed {
            Allowed::Net { network, prefix } => in_block(ip, *network, *prefix),
            Allowed::Host(_) => false,
        })
    }

    /// Checks a URL before a request: http/https, no user info, and every
    /// address its host resolves to is public or allowed. Returns the parsed
    /// URL to send the request to.
    pub async fn check(&self, url: &str) -> Result<Url, OutboundError> {
        let url = Url::parse(url.trim()).map_err(|err| OutboundError::InvalidUrl(err.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(OutboundError::Scheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(OutboundError::UserInfo);
        }
        match url.host() {
            None => return Err(OutboundError::NoHost),
            Some(Host::Ipv4(ip)) => self.check_addresses(&ip.to_string(), &[IpAddr::V4(ip)])?,
            Some(Host::Ipv6(ip)) => self.check_addresses(&ip.to_string(), &[IpAddr::V6(ip)])?,
            Some(Host::Domain(name)) => {
                let port = url.port_or_known_default().unwrap_or(443);
                self.resolve(name, port).await?;
            }
        }
        Ok(url)
    }

    /// Resolves a host name and returns its addresses when the name is allowed,
    /// or when every address is public or allowed.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, OutboundError> {
        let host = host.trim_end_matches('.');
        let resolve_error = |reason: String| OutboundError::Resolve {
            host: host.to_owned(),
            reason,
        };
        let lookup = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| resolve_error(format!("no answer within {} s", RESOLVE_TIMEOUT.as_secs())))?
            .map_err(|err| resolve_error(err.to_string()))?;
        let addrs: Vec<SocketAddr> = lookup.collect();
        if addrs.is_empty() {
            return Err(resolve_error("no addresses".to_owned()));
        }
        if !self.allows_host(host) {
            let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
            self.check_addresses(host, &ips)?;
        }
        Ok(addrs)
    }

    /// Refuses when any address is internal and not allowed.
    fn check_addresses(&self, host: &str, ips: &[IpAddr]) -> Result<(), OutboundError> {
        if self.allows_host(host) {
            return Ok(());
        }
        match ips.iter().find(|ip| is_forbidden(**ip) && !self.allows_ip(**ip)) {
            Some(ip) => Err(OutboundError::Forbidden {
                host: host.to_owned(),
                addr: *ip,
            }),
            None => Ok(()),
        }
    }
}

/// Name resolution for the HTTP client: the connection goes only to addresses
/// that passed the guard, whatever the name resolves to by then.
impl reqwest::dns::Resolve for OutboundGuard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port in.
            let addrs = OutboundGuard::resolve(&guard, &host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// True for addresses a tenant's URL must not reach: loopback, private
/// (RFC 1918, fc00::/7), link-local (169.254/16, fe80::/10), unspecified
/// ("this network" 0/8, `::`), broadcast and the reserved 240/4, CGNAT
/// 100.64/10, multicast, the IETF protocol block 192.0.0/24, the benchmarking
/// block 198.18/15, the metadata addresses (169.254.169.254, 169.254.170.2,
/// fd00:ec2::254), and IPv6 addresses that embed one of these (IPv4-mapped,
/// IPv4-compatible, NAT64 64:ff9b::/96), plus the site-local fec0::/10 and the
/// local-use NAT64 block 64:ff9b:1::/48.
pub fn is_forbidden(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    if METADATA_ADDRESSES.contains(&ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, _, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0 // "this network"
        || a >= 240 // reserved, with the broadcast address
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18/15
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(embedded) = embedded_v4(ip) {
        return is_forbidden_v4(embedded);
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated, still routed by some)
        || (segments[0] == 0x0064 && segments[1] == 0xff9b && segments[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
}

/// The IPv4 address inside an IPv4-compatible (`::a.b.c.d`, not `::` or `::1`)
/// or NAT64 (`64:ff9b::a.b.c.d`) address. IPv4-mapped ones are handled by
/// [`canonical`].
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    let compatible = s[..6].iter().all(|segment| *segment == 0) && s[6] != 0;
    let nat64 = s[0] == 0x0064 && s[1] == 0xff9b && s[2..6].iter().all(|segment| *segment == 0);
    (compatible || nat64).then_some(low)
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        IpAddr::V4(_) => ip,
    }
}

fn in_block(ip: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

fn parse_entry(entry: &str) -> Option<Allowed> {
    if let Some((network, prefix)) = entry.split_once('/') {
        let network = canonical(network.trim().parse::<IpAddr>().ok()?);
        let prefix: u8 = prefix.trim().parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        return (prefix <= max).then_some(Allowed::Net { network, prefix });
    }
    if let Ok(ip) = entry.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        let ip = canonical(ip);
        let prefix = if ip.is_ipv4() { 32 } else { 128 };
        return Some(Allowed::Net { network: ip, prefix });
    }
    let host = normalise_host(entry);
    let valid = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    valid.then_some(Allowed::Host(host))
}

fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `request` with the W3C trace headers of the request being served, when
/// there is one: `traceparent` (naming this request's span as the parent,
/// [`quper_core::context::outbound_traceparent`]) and the caller's
/// `tracestate`.
pub fn traced(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let Some(traceparent) = quper_core::context::outbound_traceparent() else {
        return request;
    };
    let request = request.header("traceparent", traceparent);
    match quper_core::context::current().and_then(|context| context.trace_state) {
        Some(state) => request.header("tracestate", state),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for text in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.170.2",
            "169.254.1.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "240.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fd00:ec2::254",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b:1::1",
        ] {
            assert!(is_forbidden(ip(text)), "{text} should be forbidden");
        }
    }

    #[test]
    fn public_addresses_are_not_forbidden() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "172.15.255.255",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.1.1",
            "192.0.2.1",
            "198.20.0.1",
            "52.94.236.248",
            "2600:1f18::1",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert!(!is_forbidden(ip(text)), "{text} should be allowed");
        }
    }

    #[test]
    fn the_allow_list_parses_hosts_addresses_and_cidrs() {
        let (guard, rejected) =
            OutboundGuard::parse(" 127.0.0.1/32, Stub.Local. ,10.1.0.0/16,fd00::1,[::1],bad host,1.2.3.4/33,");
        assert_eq!(rejected, vec!["bad host".to_owned(), "1.2.3.4/33".to_owned()]);
        assert!(guard.allows_host("stub.local"));
        assert!(guard.allows_host("STUB.LOCAL."));
        assert!(!guard.allows_host("other.local"));
        assert!(guard.allows_ip(ip("127.0.0.1")));
        assert!(guard.allows_ip(ip("::ffff:127.0.0.1")));
        assert!(!guard.allows_ip(ip("127.0.0.2")));
        assert!(guard.allows_ip(ip("10.1.200.3")));
        assert!(!guard.allows_ip(ip("10.2.0.1")));
        assert!(guard.allows_ip(ip("fd00::1")));
        assert!(guard.allows_ip(ip("::1")));
        assert!(!guard.allows_ip(ip("fd00::2")));
        assert!(OutboundGuard::new("0.0.0.0/0").allows_ip(ip("169.254.169.254")));
        assert!(!OutboundGuard::new("0.0.0.0/0").allows_ip(ip("::1")));
    }

    #[tokio::test]
    async fn check_refuses_internal_destinations() {
        let guard = OutboundGuard::strict();
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://2130706433/hook", // 127.0.0.1 as a number
            "http://0x7f.1/hook",
            "http://[::1]/hook",
            "http://[::ffff:7f00:1]/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/latest/meta-data/",
            "https://10.0.0.5/",
            "http://100.64.1.1/",
            "http://localhost:9/hook",
        ] {
            let refused = guard.check(url).await;
            assert!(
                matches!(refused, Err(OutboundError::Forbidden { .. })),
                "{url} should be refused, got {refused:?}"
            );
        }
    }

    #[tokio::test]
    async fn check_refuses_other_schemes_user_info_and_garbage() {
        let guard = OutboundGuard::new("0.0.0.0/0,::/0");
        assert_eq!(
            guard.check("ftp://8.8.8.8/x").await,
            Err(OutboundError::Scheme("ftp".to_owned()))
        );
        assert_eq!(
            guard.check("file:///etc/passwd").await,
            Err(OutboundError::Scheme("file".to_owned()))
        );
        assert_eq!(
            guard.check("https://user:pw@8.8.8.8/").await,
            Err(OutboundError::UserInfo)
        );
        assert_eq!(guard.check("https://user@8.8.8.8/").await, Err(OutboundError::UserInfo));
        assert!(matches!(
            guard.check("not a url").await,
            Err(OutboundError::InvalidUrl(_))
        ));
        assert!(matches!(
            guard.check("https://").await,
            Err(OutboundError::InvalidUrl(_))
        ));
    }

    #[tokio::test]
    async fn check_passes_public_and_allowed_destinations() {
        let guard = OutboundGuard::new("127.0.0.1/32,localhost,10.0.0.0/8");
        let url = guard
            .check("http://127.0.0.1:4000/hook?x=1")
            .await
            .expect("allowed CIDR");
        assert_eq!(url.as_str(), "http://127.0.0.1:4000/hook?x=1");
        guard.check("http://10.20.30.40/").await.expect("allowed CIDR");
        guard.check("http://localhost:4000/").await.expect("allowed host name");
        guard.check("https://8.8.8.8/").await.expect("public address");
        guard
            .check("https://[2600:1f18::1]/")
            .await
            .expect("public IPv6 address");
        assert!(guard.check("http://127.0.0.2/").await.is_err());
        assert!(guard.check("http://192.168.0.1/").await.is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        let strict = OutboundGuard::strict();
        assert!(matches!(
            strict.resolve("localhost", 0).await,
            Err(OutboundError::Forbidden { .. })
        ));
        let by_name = OutboundGuard::new("localhost");
        assert!(!by_name.resolve("localhost", 80).await.expect("allowed host").is_empty());
        let unresolvable = strict.resolve("does-not-exist.invalid", 80).await;
        assert!(
            matches!(&unresolvable, Err(err) if err.is_temporary()),
            "{unresolvable:?}"
        );
    }
}
