//! An egress allowlist: which destinations a job's container may reach
//! through the runner's proxy. The same entries come from three places
//! (`ADOS_EGRESS_ALLOW`, the running agent's API hosts, the job's
//! `registries`); one parser and one matcher serve them all.
//!
//! | entry               | allows                                              |
//! |---------------------|-----------------------------------------------------|
//! | `api.example`       | that name, any port                                 |
//! | `*.example`         | every name under `example` (not `example` itself)   |
//! | `api.example:8443`  | that name on that port only (`*.example:443` too)   |
//! | `10.0.0.7`          | that address, any port (`[fd00::7]`, `fd00::7`)     |
//! | `10.0.0.7:8080`     | that address on that port (`[fd00::7]:8080`)        |
//! | `10.0.0.0/8`        | every address in the block (`fd00::/8`)             |
//!
//! Unlike `NO_PROXY` (where a bad entry silently matches nothing, as curl
//! does), an allowlist entry that fits none of these forms is an error:
//! a typo must not quietly shut an agent out, nor open more than meant.
//! The fixed rules that no entry can lift live in [`super::rules`].

use crate::net::no_proxy::{in_block, normalise, same_ip};
use std::net::IpAddr;

/// One allowlist entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A host name, compared case-insensitively, without a trailing dot.
    Name {
        /// The name, lower case.
        name: String,
        /// Only this port, when given.
        port: Option<u16>,
    },
    /// Every name strictly under `domain` (`*.domain`).
    Under {
        /// The domain, lower case, without `*.`.
        domain: String,
        /// Only this port, when given.
        port: Option<u16>,
    },
    /// One address.
    Ip {
        /// The address.
        ip: IpAddr,
        /// Only this port, when given.
        port: Option<u16>,
    },
    /// A CIDR block.
    Block {
        /// The block's address.
        net: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
}

/// A parsed allowlist.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: Vec<Entry>,
}

impl Allowlist {
    /// Parse a comma-separated list; `var` names where it came from.
    ///
    /// # Errors
    /// One message per bad entry, naming `var` and the entry.
    pub fn parse(var: &str, list: &str) -> Result<Allowlist, Vec<String>> {
        let mut entries = Vec::new();
        let mut errors = Vec::new();
        for raw in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match Entry::parse(raw) {
                Ok(e) => entries.push(e),
                Err(why) => errors.push(format!("{var}: entry `{raw}` {why}")),
            }
        }
        if errors.is_empty() {
            Ok(Allowlist { entries })
        } else {
            Err(errors)
        }
    }

    /// An allowlist of the given entries.
    pub fn of(entries: Vec<Entry>) -> Allowlist {
        Allowlist { entries }
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// This list followed by `other`'s entries.
    pub fn merged(&self, other: &Allowlist) -> Allowlist {
        let mut entries = self.entries.clone();
        entries.extend(other.entries.iter().cloned());
        Allowlist { entries }
    }

    /// Whether `host:port` is allowed, `addrs` being what `host` resolved
    /// to (the address itself for an IP literal). A name entry matches the
    /// name asked for; an address or block entry matches an IP literal, or
    /// a name all of whose addresses it covers.
    pub fn allows(&self, host: &str, port: u16, addrs: &[IpAddr]) -> bool {
        let host = normalise(host);
        let literal = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match e {
            Entry::Name { name, port: p } => {
                literal.is_none() && p.is_none_or(|p| p == port) && host == *name
            }
            Entry::Under { domain, port: p } => {
                literal.is_none()
                    && p.is_none_or(|p| p == port)
                    && host
                        .strip_suffix(domain.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
            }
            Entry::Ip { ip, port: p } => {
                p.is_none_or(|p| p == port)
                    && !addrs.is_empty()
                    && addrs.iter().all(|a| same_ip(*a, *ip))
            }
            Entry::Block { net, prefix } => {
                !addrs.is_empty() && addrs.iter().all(|a| in_block(*net, *prefix, *a))
            }
        })
    }

    /// Whether an entry names exactly `host:port` (the one way to reach a
    /// protected address: loopback, the runner's host).
    pub fn names_exactly(&self, host: &str, port: u16) -> bool {
        let host = normalise(host);
        let literal = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| match (e, literal) {
            (
                Entry::Name {
                    name,
                    port: Some(p),
                },
                None,
            ) => *p == port && host == *name,
            (Entry::Ip { ip, port: Some(p) }, Some(l)) => *p == port && same_ip(*ip, l),
            _ => false,
        })
    }
}

impl Entry {
    /// Parse one entry (already trimmed, not empty).
    ///
    /// # Errors
    /// What is wrong with it, in words.
    pub fn parse(raw: &str) -> Result<Entry, String> {
        let e = raw.to_ascii_lowercase();
        if e.contains("://") || e.contains('@') {
            return Err("must be a host, *.domain, host:port or CIDR block, not a URL".into());
        }
        if let Some((net, prefix)) = e.split_once('/') {
            let net: IpAddr = net
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| "is not a CIDR block (10.0.0.0/8, fd00::/8)".to_string())?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            return match prefix.parse::<u8>() {
                Ok(prefix) if prefix <= max => Ok(Entry::Block { net, prefix }),
                _ => Err(format!("has a prefix length that is not 0 to {max}")),
            };
        }
        if let Ok(ip) = e.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(Entry::Ip { ip, port: None });
        }
        let (host, port) = match e.rsplit_once(':') {
            Some((h, p)) => match p.parse::<u16>() {
                Ok(p) if p > 0 => (h, Some(p)),
                _ => return Err("has a port that is not 1 to 65535".into()),
            },
            None => (e.as_str(), None),
        };
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(Entry::Ip { ip, port });
        }
        let (wild, name) = match host.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host),
        };
        let name = normalise(name);
        if !valid_name(&name) {
            return Err(
                "is not a host name (letters, digits, `-` and `.`; a wildcard only as a leading `*.`)"
                    .into(),
            );
        }
        Ok(if wild {
            Entry::Under { domain: name, port }
        } else {
            Entry::Name { name, port }
        })
    }
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let port = |p: &Option<u16>| p.map(|p| format!(":{p}")).unwrap_or_default();
        match self {
            Entry::Name { name, port: p } => write!(f, "{name}{}", port(p)),
            Entry::Under { domain, port: p } => write!(f, "*.{domain}{}", port(p)),
            Entry::Ip {
                ip: IpAddr::V6(ip),
                port: Some(p),
            } => write!(f, "[{ip}]:{p}"),
            Entry::Ip { ip, port: p } => write!(f, "{ip}{}", port(p)),
            Entry::Block { net, prefix } => write!(f, "{net}/{prefix}"),
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// `host:port`, IPv6 in brackets: how a destination is written in an
/// entry, a CONNECT line and a refusal.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{}]:{port}", host.trim_matches(['[', ']']))
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// (allowlist, host, port, resolved addresses, allowed)
    const TABLE: &[(&str, &str, u16, &[&str], bool)] = &[
        // A name: that name, any port, any case, trailing dot ignored.
        ("api.example", "api.example", 443, &["1.2.3.4"], true),
        ("api.example", "API.Example.", 80, &["1.2.3.4"], true),
        ("api.example", "x.api.example", 443, &["1.2.3.4"], false),
        ("api.example", "evilapi.example", 443, &["1.2.3.4"], false),
        // A name never matches an address literal.
        ("api.example", "1.2.3.4", 443, &["1.2.3.4"], false),
        // `*.domain`: names strictly under it.
        ("*.example", "a.example", 443, &["1.2.3.4"], true),
        ("*.example", "a.b.example", 443, &["1.2.3.4"], true),
        ("*.example", "example", 443, &["1.2.3.4"], false),
        ("*.example", "badexample", 443, &["1.2.3.4"], false),
        ("*.example", ".example", 443, &["1.2.3.4"], false),
        // host:port.
        ("api.example:8443", "api.example", 8443, &["1.2.3.4"], true),
        ("api.example:8443", "api.example", 443, &["1.2.3.4"], false),
        ("*.example:443", "a.example", 443, &["1.2.3.4"], true),
        ("*.example:443", "a.example", 80, &["1.2.3.4"], false),
        // Addresses, any spelling, with or without a port.
        ("10.0.0.7", "10.0.0.7", 1, &["10.0.0.7"], true),
        ("10.0.0.7", "10.0.0.70", 1, &["10.0.0.70"], false),
        ("10.0.0.7:8080", "10.0.0.7", 8080, &["10.0.0.7"], true),
        ("10.0.0.7:8080", "10.0.0.7", 80, &["10.0.0.7"], false),
        ("[fd00::7]:8080", "[fd00::7]", 8080, &["fd00::7"], true),
        ("fd00::7", "fd00:0::7", 1, &["fd00::7"], true),
        ("10.0.0.7", "::ffff:10.0.0.7", 1, &["::ffff:10.0.0.7"], true),
        // Blocks: an address in it, or a name all of whose addresses are.
        ("10.0.0.0/8", "10.200.0.1", 1, &["10.200.0.1"], true),
        ("10.0.0.0/8", "11.0.0.1", 1, &["11.0.0.1"], false),
        ("10.0.0.0/8", "intra.example", 1, &["10.1.1.1"], true),
        (
            "10.0.0.0/8",
            "intra.example",
            1,
            &["10.1.1.1", "8.8.8.8"],
            false,
        ),
        ("10.0.0.0/8", "unresolved.example", 1, &[], false),
        ("fd00::/8", "[fd12::1]", 1, &["fd12::1"], true),
        // Lists.
        ("a.example, b.example", "b.example", 1, &["1.2.3.4"], true),
        ("", "a.example", 1, &["1.2.3.4"], false),
    ];

    #[test]
    fn every_form_allows_what_it_names_and_nothing_else() {
        for (list, host, port, addrs, want) in TABLE {
            let a = Allowlist::parse("ADOS_EGRESS_ALLOW", list).unwrap();
            let addrs: Vec<IpAddr> = addrs.iter().map(|s| ip(s)).collect();
            assert_eq!(
                a.allows(host, *port, &addrs),
                *want,
                "allow {list:?}: {host}:{port} {addrs:?}"
            );
        }
    }

    #[test]
    fn bad_entries_are_errors_naming_the_variable_and_the_entry() {
        for bad in [
            "*",
            "a.*.example",
            "https://api.example",
            "user@api.example",
            "api.example:0",
            "api.example:99999",
            "api.example:x",
            "10.0.0.0/33",
            "fd00::/129",
            "nonsense/8",
            "spa ce.example",
            "*.",
        ] {
            let errs =
                Allowlist::parse("ADOS_EGRESS_ALLOW", &format!("ok.example,{bad}")).expect_err(bad);
            assert_eq!(errs.len(), 1, "{bad}: {errs:?}");
            assert!(
                errs[0].starts_with("ADOS_EGRESS_ALLOW: entry `") && errs[0].contains(bad),
                "{errs:?}"
            );
        }
    }

    #[test]
    fn only_host_and_port_entries_name_a_destination_exactly() {
        let a = Allowlist::parse(
            "X",
            "localhost:8080,127.0.0.1:9000,*.example:80,10.0.0.0/8,[::1]:7",
        )
        .unwrap();
        assert!(a.names_exactly("LOCALHOST.", 8080));
        assert!(!a.names_exactly("localhost", 8081));
        assert!(a.names_exactly("127.0.0.1", 9000));
        assert!(a.names_exactly("::ffff:127.0.0.1", 9000));
        assert!(a.names_exactly("[::1]", 7));
        assert!(!a.names_exactly("a.example", 80));
        assert!(!a.names_exactly("10.0.0.1", 80));
    }

    #[test]
    fn entries_print_as_written() {
        let list = "api.example,*.example:443,10.0.0.7:80,[fd00::7]:8080,fd00::/8";
        let a = Allowlist::parse("X", list).unwrap();
        let shown: Vec<String> = a.entries().iter().map(ToString::to_string).collect();
        assert_eq!(shown.join(","), list);
    }
}
