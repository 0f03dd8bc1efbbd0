//! The rules no allowlist entry can lift, and the one decision that
//! applies them: may a job reach `host:port`, and at which addresses.
//!
//! The decision is made on the addresses the name *resolves to*, by the
//! runner, and the proxy then connects to those very addresses: a name that
//! resolves to the metadata service or to loopback (`metadata.evil.example`
//! → 169.254.169.254), a decimal or hex spelling of an address (`2130706433`),
//! or a second answer that differs from the first (DNS rebinding) cannot
//! reach what the rules keep out.
//!
//! - **Never**: link-local addresses (169.254.0.0/16, where every cloud's
//!   metadata service and its credentials answer; fe80::/10) and AWS's IPv6
//!   metadata address fd00:ec2::254 — whatever the allowlist says, a
//!   wildcard or a CIDR block that covers them included.
//! - **Only when an entry names exactly that `host:port`**: the runner's
//!   own host — loopback, the unspecified address, and every address of its
//!   network interfaces (docker0 and the gateway the containers see, where
//!   the runner's health port, a Docker daemon on TCP and any service
//!   listening on 0.0.0.0 answer; for a runner in a container, the Docker
//!   host on its networks' gateways too) — and the Docker daemon the runner uses
//!   when `DOCKER_HOST` names one on another machine (`tcp://…`). A block
//!   or wildcard never reaches them.
//!
//! A name that resolves to several addresses is refused when any of them
//! is refused: a real API host has no reason to resolve to the metadata
//! service.

use super::allow::Allowlist;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Why a destination is refused. The text follows "egress refused:
/// host:port (…)".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No entry allows it.
    NotAllowed,
    /// It is (or resolves to) a link-local metadata address.
    Metadata(IpAddr),
    /// It is (or resolves to) the runner's own host, and no entry names it
    /// exactly.
    OwnHost(IpAddr),
    /// The name does not resolve.
    Unresolved,
    /// It is the Docker daemon the runner uses (`DOCKER_HOST`), and no
    /// entry names it exactly.
    DockerDaemon(std::net::SocketAddr),
    /// The job has as many connections open as it may.
    TooManyConnections(usize),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotAllowed => f.write_str("not on the allowlist"),
            Refusal::Metadata(ip) => write!(
                f,
                "{ip} is a link-local metadata address, never reachable from a job"
            ),
            Refusal::OwnHost(ip) => write!(
                f,
                "{ip} is the runner's own host; only an ADOS_EGRESS_ALLOW entry naming this exact host:port allows it"
            ),
            Refusal::DockerDaemon(addr) => write!(
                f,
                "{addr} is the Docker daemon of the runner (DOCKER_HOST); only an ADOS_EGRESS_ALLOW entry naming this exact host:port allows it"
            ),
            Refusal::Unresolved => f.write_str("the name does not resolve"),
            Refusal::TooManyConnections(n) => {
                write!(f, "the job already has {n} connections open")
            }
        }
    }
}

/// Whether `ip` is link-local (cloud metadata lives there) or AWS's IPv6
/// metadata address.
pub fn is_metadata(ip: IpAddr) -> bool {
    const AWS_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => v6 == AWS_V6 || (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// Whether `ip` is the runner's own host: loopback, unspecified, or one of
/// `own` (the addresses of its interfaces).
pub fn is_own_host(ip: IpAddr, own: &[IpAddr]) -> bool {
    let ip = ip.to_canonical();
    ip.is_loopback() || ip.is_unspecified() || own.iter().any(|o| o.to_canonical() == ip)
}

/// What the rules protect besides metadata: the runner host's addresses
/// and its Docker daemon's, when that is on TCP.
#[derive(Clone, Copy, Debug, Default)]
pub struct Protected<'a> {
    /// The addresses of this host's interfaces ([`own_addresses`]).
    pub own: &'a [IpAddr],
    /// The Docker daemon's addresses (`DOCKER_HOST=tcp://…`).
    pub docker: &'a [std::net::SocketAddr],
}

/// May the job whose allowlist is `allow` reach `host:port`, which resolved
/// to `addrs`? `Ok`: connect to `addrs`.
///
/// # Errors
/// The [`Refusal`].
pub fn decide(
    allow: &Allowlist,
    host: &str,
    port: u16,
    addrs: &[IpAddr],
    protected: Protected<'_>,
) -> Result<(), Refusal> {
    let own = protected.own;
    if let Some(ip) = addrs.iter().copied().find(|a| is_metadata(*a)) {
        return Err(Refusal::Metadata(ip));
    }
    if !allow.allows(host, port, addrs) {
        return Err(Refusal::NotAllowed);
    }
    if addrs.is_empty() {
        return Err(Refusal::Unresolved);
    }
    if allow.names_exactly(host, port) {
        return Ok(());
    }
    if let Some(ip) = addrs.iter().copied().find(|a| is_own_host(*a, own)) {
        return Err(Refusal::OwnHost(ip));
    }
    let docker = protected.docker.iter().find(|d| {
        d.port() == port
            && addrs
                .iter()
                .any(|a| a.to_canonical() == d.ip().to_canonical())
    });
    match docker {
        Some(d) => Err(Refusal::DockerDaemon(*d)),
        None => Ok(()),
    }
}

/// The addresses of this host's network interfaces (`getifaddrs`), read at
/// each decision: docker0 and a container network's gateway appear when
/// Docker creates them, after the runner started.
pub fn own_addresses() -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points to a sockaddr whose
            // family says which struct it is.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET: a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::from(
                    u32::from_be(sin.sin_addr.s_addr).to_be_bytes(),
                ));
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6: a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::from(sin6.sin6_addr.s6_addr));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `head` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn allow(list: &str) -> Allowlist {
        Allowlist::parse("ADOS_EGRESS_ALLOW", list).unwrap()
    }

    #[test]
    fn metadata_addresses_are_refused_whatever_covers_them() {
        for (list, host, addrs) in [
            ("169.254.0.0/16", "169.254.169.254", vec!["169.254.169.254"]),
            ("0.0.0.0/0", "169.254.169.254", vec!["169.254.169.254"]),
            (
                "169.254.169.254:80",
                "169.254.169.254",
                vec!["169.254.169.254"],
            ),
            ("*.example", "metadata.example", vec!["169.254.169.254"]),
            (
                "meta.example",
                "meta.example",
                vec!["1.2.3.4", "169.254.169.254"],
            ),
            ("::/0", "fd00:ec2::254", vec!["fd00:ec2::254"]),
            (
                "::/0",
                "::ffff:169.254.169.254",
                vec!["::ffff:169.254.169.254"],
            ),
            ("::/0", "fe80::1", vec!["fe80::1"]),
        ] {
            let got = decide(&allow(list), host, 80, &ips(&addrs), Protected::default());
            assert!(
                matches!(got, Err(Refusal::Metadata(_))),
                "{list} {host}: {got:?}"
            );
        }
        assert!(!is_metadata("fd00:ec2::253".parse().unwrap()));
        assert!(!is_metadata("fec0::1".parse().unwrap()));
        assert!(!is_metadata("169.255.0.1".parse().unwrap()));
    }

    #[test]
    fn the_runners_host_needs_an_entry_naming_that_exact_host_and_port() {
        let own = ips(&["172.17.0.1", "192.168.1.5"]);
        for (list, host, addrs, ok) in [
            // Loopback, however it is spelled or resolved.
            ("127.0.0.0/8", "127.0.0.1", vec!["127.0.0.1"], false),
            ("*.example", "local.example", vec!["127.0.0.1"], false),
            ("local.example", "local.example", vec!["127.0.0.1"], false),
            (
                "local.example:8080",
                "local.example",
                vec!["127.0.0.1"],
                true,
            ),
            ("127.0.0.1:8080", "127.0.0.1", vec!["127.0.0.1"], true),
            ("127.0.0.1", "127.0.0.1", vec!["127.0.0.1"], false),
            ("127.0.0.1:8081", "127.0.0.1", vec!["127.0.0.1"], false),
            ("::/0", "::1", vec!["::1"], false),
            ("0.0.0.0/0", "0.0.0.0", vec!["0.0.0.0"], false),
            // The host's own interfaces: docker0, the LAN address.
            ("172.16.0.0/12", "172.17.0.1", vec!["172.17.0.1"], false),
            ("192.168.1.0/24", "192.168.1.5", vec!["192.168.1.5"], false),
            ("192.168.1.5:8080", "192.168.1.5", vec!["192.168.1.5"], true),
            // Another machine in the same block is fine.
            ("192.168.1.0/24", "192.168.1.6", vec!["192.168.1.6"], true),
        ] {
            let p = Protected {
                own: &own,
                docker: &[],
            };
            let got = decide(&allow(list), host, 8080, &ips(&addrs), p);
            assert_eq!(got.is_ok(), ok, "{list} {host}: {got:?}");
            if !ok && list != "127.0.0.1:8081" {
                assert!(matches!(got, Err(Refusal::OwnHost(_))), "{got:?}");
            }
        }
    }

    #[test]
    fn a_docker_daemon_on_tcp_needs_an_exact_entry() {
        let docker = ["10.1.2.3:2376".parse().unwrap()];
        let p = Protected {
            own: &[],
            docker: &docker,
        };
        let addrs = ips(&["10.1.2.3"]);
        assert_eq!(
            decide(&allow("10.0.0.0/8"), "10.1.2.3", 2376, &addrs, p),
            Err(Refusal::DockerDaemon(docker[0]))
        );
        assert_eq!(
            decide(
                &allow("*.corp.example"),
                "dock.corp.example",
                2376,
                &addrs,
                p
            ),
            Err(Refusal::DockerDaemon(docker[0]))
        );
        // Another port of that machine, or an exact entry, is fine.
        assert_eq!(
            decide(&allow("10.0.0.0/8"), "10.1.2.3", 443, &addrs, p),
            Ok(())
        );
        assert_eq!(
            decide(&allow("10.1.2.3:2376"), "10.1.2.3", 2376, &addrs, p),
            Ok(())
        );
    }

    #[test]
    fn everything_else_follows_the_allowlist() {
        let a = allow("api.example");
        assert_eq!(
            decide(
                &a,
                "api.example",
                443,
                &ips(&["1.2.3.4"]),
                Protected::default()
            ),
            Ok(())
        );
        assert_eq!(
            decide(
                &a,
                "evil.example",
                443,
                &ips(&["1.2.3.4"]),
                Protected::default()
            ),
            Err(Refusal::NotAllowed)
        );
        assert_eq!(
            decide(&a, "api.example", 443, &[], Protected::default()),
            Err(Refusal::Unresolved)
        );
    }

    #[test]
    fn this_host_has_addresses_and_loopback_is_among_them() {
        let own = own_addresses();
        assert!(own.iter().any(IpAddr::is_loopback), "{own:?}");
    }

    #[test]
    fn refusals_read_as_a_reason() {
        assert_eq!(Refusal::NotAllowed.to_string(), "not on the allowlist");
        let m = Refusal::Metadata("169.254.169.254".parse().unwrap()).to_string();
        assert!(m.contains("metadata"), "{m}");
        let o = Refusal::OwnHost("127.0.0.1".parse().unwrap()).to_string();
        assert!(o.contains("ADOS_EGRESS_ALLOW"), "{o}");
    }
}
