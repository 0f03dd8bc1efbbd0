//! `NO_PROXY`: which hosts are reached directly although a proxy is set.
//! The one matcher of the runner: the link, `check` and the HTTP client
//! all route through [`super::ProxySettings`], which asks it.
//!
//! The conventions are curl's and Go's `httpproxy` (what users already
//! write for other tools), entries separated by commas:
//!
//! | entry              | matches                                              |
//! |--------------------|------------------------------------------------------|
//! | `*`                | every host                                           |
//! | `corp.example`     | `corp.example` and every name under it               |
//! | `.corp.example`    | the same (curl); `*.corp.example` too                |
//! | `corp.example:8443`| the same names, only on port 8443                    |
//! | `10.0.0.1`         | that address (`[::1]` or `::1` for IPv6)             |
//! | `10.0.0.1:8080`    | that address on port 8080 (`[::1]:8080`)             |
//! | `10.0.0.0/8`       | every address in the block (`fd00::/8`)              |
//!
//! Names compare case-insensitively and a trailing dot is ignored. A
//! name entry never matches an IP address and an address or block never
//! matches a name: the runner does not resolve names to decide, as curl
//! does not. Entries that fit none of the forms (`10.0.0.0/99`) match
//! nothing.

use std::net::IpAddr;

/// A parsed `NO_PROXY` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Entry {
    All,
    Name { name: String, port: Option<u16> },
    Ip { ip: IpAddr, port: Option<u16> },
    Block { net: IpAddr, prefix: u8 },
}

impl NoProxy {
    /// Parse a comma-separated list (the value of `NO_PROXY`).
    pub fn parse(list: &str) -> NoProxy {
        NoProxy {
            entries: list.split(',').filter_map(Entry::parse).collect(),
        }
    }

    /// Whether nothing is exempt.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a connection to `host:port` goes direct. `host` may carry
    /// IPv6 brackets.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        let host = normalise(host);
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match (e, ip) {
            (Entry::All, _) => true,
            (Entry::Name { name, port: p }, None) => {
                p.is_none_or(|p| p == port)
                    && (host == *name
                        || host
                            .strip_suffix(name.as_str())
                            .is_some_and(|head| head.ends_with('.')))
            }
            (Entry::Ip { ip: want, port: p }, Some(ip)) => {
                p.is_none_or(|p| p == port) && same_ip(*want, ip)
            }
            (Entry::Block { net, prefix }, Some(ip)) => in_block(*net, *prefix, ip),
            _ => false,
        })
    }
}

impl Entry {
    fn parse(raw: &str) -> Option<Entry> {
        let e = raw.trim().to_ascii_lowercase();
        if e.is_empty() {
            return None;
        }
        if e == "*" {
            return Some(Entry::All);
        }
        if let Some((net, prefix)) = e.split_once('/') {
            let net: IpAddr = net.trim_matches(['[', ']']).parse().ok()?;
            let prefix: u8 = prefix.parse().ok()?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return (prefix <= max).then_some(Entry::Block { net, prefix });
        }
        if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(Entry::Ip { ip, port: None });
        }
        // `host:port`, `[v6]:port`.
        let (host, port) = match e.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
            None => (e.as_str(), None),
        };
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Some(Entry::Ip { ip, port });
        }
        let name = normalise(host.trim_start_matches('*').trim_start_matches('.'));
        if name.is_empty() || name.contains([':', '[', ']', '/']) {
            return None;
        }
        Some(Entry::Name { name, port })
    }
}

/// Lower case, IPv6 brackets and a trailing dot dropped: the form names
/// and addresses compare in (the egress allowlist uses it too).
pub(crate) fn normalise(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Equal addresses, an IPv4-mapped IPv6 address counting as its IPv4 one.
pub(crate) fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Whether `ip` is in `net/prefix` (a prefix already checked to fit).
pub(crate) fn in_block(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    match (net.to_canonical(), ip.to_canonical()) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (NO_PROXY, host, port, goes direct)
    const TABLE: &[(&str, &str, u16, bool)] = &[
        // A bare domain is a suffix match (curl, Go), on a label boundary.
        ("corp.example", "corp.example", 443, true),
        ("corp.example", "api.corp.example", 443, true),
        ("corp.example", "API.Corp.Example.", 443, true),
        ("corp.example", "evilcorp.example", 443, false),
        ("corp.example", "corp.example.evil", 443, false),
        // A leading `.` or `*.` means the same.
        (".corp.example", "corp.example", 443, true),
        (".corp.example", "a.b.corp.example", 443, true),
        ("*.corp.example", "a.corp.example", 443, true),
        ("*.corp.example", "xcorp.example", 443, false),
        // `*` alone: everything.
        ("*", "anything", 1, true),
        ("*", "10.1.2.3", 1, true),
        // An optional port restricts the entry to that port.
        ("corp.example:8443", "api.corp.example", 8443, true),
        ("corp.example:8443", "api.corp.example", 443, false),
        ("10.0.0.1:8080", "10.0.0.1", 8080, true),
        ("10.0.0.1:8080", "10.0.0.1", 80, false),
        ("[::1]:8080", "[::1]", 8080, true),
        ("[::1]:8080", "::1", 80, false),
        // IP literals: the address, in any spelling, never a name suffix.
        ("10.0.0.1", "10.0.0.1", 443, true),
        ("10.0.0.1", "10.0.0.10", 443, false),
        ("::1", "[0:0::1]", 443, true),
        ("[::1]", "::1", 443, true),
        ("0.0.1", "127.0.0.1", 443, false),
        ("127.0.0.1", "::ffff:127.0.0.1", 443, true),
        // CIDR blocks.
        ("10.0.0.0/8", "10.200.3.4", 443, true),
        ("10.0.0.0/8", "11.0.0.1", 443, false),
        ("192.168.1.0/24", "192.168.1.255", 1, true),
        ("192.168.1.0/24", "192.168.2.1", 1, false),
        ("0.0.0.0/0", "8.8.8.8", 1, true),
        ("fd00::/8", "[fd12::1]", 1, true),
        ("fd00::/8", "fe80::1", 1, false),
        ("10.0.0.0/8", "ten.example", 1, false),
        ("10.0.0.0/99", "10.0.0.1", 1, false),
        // Lists, blanks and junk.
        (" a.example , ,b.example ", "x.b.example", 1, true),
        ("a.example,b.example", "c.example", 1, false),
        ("", "a.example", 1, false),
        ("host:notaport", "host", 1, false),
        (".", "example", 1, false),
    ];

    #[test]
    fn curl_and_go_conventions() {
        for (list, host, port, direct) in TABLE {
            assert_eq!(
                NoProxy::parse(list).matches(host, *port),
                *direct,
                "NO_PROXY={list:?} host {host} port {port}"
            );
        }
    }
}
