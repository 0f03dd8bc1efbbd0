//! The one URL type of the runner: `scheme://[userinfo@]host[:port][rest]`
//! read the way curl and git read it (RFC 3986 §3.2).
//!
//! Every place that needs the host of a URL (spec validation, git's
//! credential scope, the link, `check`, the proxy and `NO_PROXY`) asks this
//! parser, so they cannot disagree about where a URL goes. The rule that
//! matters for security: the authority ends at the first `/`, `?` or `#`,
//! and the host follows the *last* `@` inside it. Reading only up to `/`
//! would take `http://evil.com?@127.0.0.1/` for a loopback URL while git
//! (curl) connects to `evil.com`.
//!
//! Why not `http::Uri` (already in the tree): it has no user info accessor,
//! keeps IPv6 brackets in `host()`, refuses characters git accepts in a
//! path, and knows nothing of default ports for `ws`/`ssh`. Why not the
//! `url` crate: it brings `idna` and its ICU4X normalisation data into a
//! static binary that has a 5 MB budget, for host names the runner never
//! needs to convert (git and the control plane take ASCII hosts), and its
//! WHATWG parsing is not how git and curl read a URL.

use std::fmt;
use std::net::IpAddr;

/// Which kinds of remotes and schemes this runner accepts (protocol §5),
/// from `ADOS_ALLOW_HTTP` and `ADOS_ALLOW_FILE_REMOTES`: the job spec's
/// validation and git's protocol allowlist read the same policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemotePolicy {
    /// `http://` remotes on non-loopback hosts.
    pub allow_http: bool,
    /// `file://` remotes and plain local paths.
    pub allow_file: bool,
}

/// A parsed hierarchical URL (one with `://`).
#[derive(Clone, PartialEq, Eq)]
pub struct Url {
    scheme: String,
    userinfo: Option<String>,
    host: String,
    bracketed: bool,
    port: Option<u16>,
    rest: String,
}

/// Why a string is not a usable URL. The messages never echo the URL (it
/// may hold a password); callers add the variable or field name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    /// No `scheme://` in front.
    NoScheme,
    /// The authority has no host.
    NoHost,
    /// The port is not a number from 1 to 65535.
    BadPort,
    /// A `[` without its `]`, or brackets around something that is not an
    /// IPv6 address.
    BadIpv6,
    /// Whitespace or a control character in the host.
    BadHost,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::NoScheme => "is not a URL (scheme://host…)",
            UrlError::NoHost => "has no host",
            UrlError::BadPort => "has a port that is not a number from 1 to 65535",
            UrlError::BadIpv6 => "has a bad IPv6 address in brackets",
            UrlError::BadHost => "has whitespace or control characters in its host",
        })
    }
}

impl std::error::Error for UrlError {}

impl Url {
    /// Parse `scheme://[userinfo@]host[:port][/path][?query][#fragment]`.
    ///
    /// # Errors
    /// See [`UrlError`].
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        let (scheme, after) = split_scheme(s).ok_or(UrlError::NoScheme)?;
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        let (authority, rest) = after.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, bracketed, port) = split_host_port(hostport)?;
        Ok(Url {
            scheme: scheme.to_ascii_lowercase(),
            userinfo,
            host,
            bracketed,
            port,
            rest: rest.to_string(),
        })
    }

    /// The scheme, lower case.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// `user[:password]` before the host, as written (a secret).
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The host, lower case, IPv6 without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The explicit port, else the scheme's default (`None` for a scheme
    /// without one).
    pub fn port_or_default(&self) -> Option<u16> {
        self.port.or(match self.scheme.as_str() {
            "https" | "wss" => Some(443),
            "http" | "ws" => Some(80),
            "ssh" => Some(22),
            "git" => Some(9418),
            _ => None,
        })
    }

    /// Everything after the authority: path, query and fragment.
    pub fn rest(&self) -> &str {
        &self.rest
    }

    /// Whether the scheme is one that runs over TLS (`https`, `wss`).
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme.as_str(), "https" | "wss")
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// `localhost` or a loopback address.
    pub fn is_loopback(&self) -> bool {
        self.host == "localhost" || self.ip().is_some_and(|ip| ip.is_loopback())
    }

    /// `host[:port]` with brackets around IPv6, as it appears in a URL.
    pub fn host_port(&self) -> String {
        let host = self.host_for_url();
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    /// `scheme://host[:port]/`: the origin, as git's `http.<url>.*` keys
    /// and messages want it. No user info.
    pub fn origin(&self) -> String {
        format!("{}://{}/", self.scheme, self.host_port())
    }

    fn host_for_url(&self) -> String {
        if self.bracketed {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

/// The URL as written but without its user info: what may be logged.
impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.host_port(), self.rest)
    }
}

/// `Debug` is `Display`: the user info (a password) never reaches a log.
impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Url({self})")
    }
}

/// `url` without the `user[:password]@` of its authority, for messages,
/// logs and file names; anything that is not a `scheme://` URL (an
/// scp-like `git@host:o/r`, a path) is returned unchanged. Unlike
/// [`Url`]'s `Display`, the rest of the text is kept exactly as written
/// (scheme and host case included), so names derived from it stay stable.
pub fn without_credentials(url: &str) -> String {
    let Some((scheme, after)) = split_scheme(url) else {
        return url.to_string();
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{hostport}{rest}")
}

/// `(scheme, after "://")` when `s` starts with an RFC 3986 scheme.
fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let (scheme, after) = s.split_once("://")?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (first_ok && rest_ok).then_some((scheme, after))
}

/// `host[:port]` → (host lower case without brackets, bracketed, port).
fn split_host_port(hostport: &str) -> Result<(String, bool, Option<u16>), UrlError> {
    let (host, bracketed, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or(UrlError::BadIpv6)?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(UrlError::BadIpv6);
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlError::BadPort)?),
        };
        (h, true, port)
    } else {
        match hostport.rsplit_once(':') {
            // An unbracketed IPv6 address is not a host:port.
            Some((h, _)) if h.contains(':') => return Err(UrlError::BadIpv6),
            Some((h, p)) => (h, false, Some(p)),
            None => (hostport, false, None),
        }
    };
    if host.is_empty() {
        return Err(UrlError::NoHost);
    }
    if host
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '[' | ']' | '@'))
    {
        return Err(UrlError::BadHost);
    }
    let port = match port {
        // RFC 3986 allows an empty port: the scheme's default.
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or(UrlError::BadPort)?,
        ),
        Some(_) => return Err(UrlError::BadPort),
    };
    Ok((host.to_ascii_lowercase(), bracketed, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, Option<String>, String, Option<u16>, String) {
        let u = Url::parse(s).unwrap();
        (
            u.scheme().into(),
            u.userinfo().map(String::from),
            u.host().into(),
            u.port(),
            u.rest().into(),
        )
    }

    #[test]
    fn the_authority_ends_at_slash_query_or_fragment() {
        // (url, host, userinfo, rest)
        let table: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "http://evil.com?@127.0.0.1/",
                "evil.com",
                None,
                "?@127.0.0.1/",
            ),
            (
                "http://evil.com#@127.0.0.1/",
                "evil.com",
                None,
                "#@127.0.0.1/",
            ),
            (
                "http://127.0.0.1?@evil.com/",
                "127.0.0.1",
                None,
                "?@evil.com/",
            ),
            ("https://u:p@h.x/o/r.git", "h.x", Some("u:p"), "/o/r.git"),
            ("https://a@b@h.x/", "h.x", Some("a@b"), "/"),
            ("HTTPS://GitHub.COM", "github.com", None, ""),
            ("ssh://git@h:2222/o/r", "h", Some("git"), "/o/r"),
        ];
        for (url, host, user, rest) in table {
            let (_, u, h, _, r) = parts(url);
            assert_eq!(
                (h.as_str(), u.as_deref(), r.as_str()),
                (*host, *user, *rest),
                "{url}"
            );
        }
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(parts("ws://[::1]:9090/x").2, "::1");
        assert_eq!(parts("ws://[::1]:9090/x").3, Some(9090));
        assert_eq!(
            Url::parse("wss://h/x").unwrap().port_or_default(),
            Some(443)
        );
        assert_eq!(
            Url::parse("http://h:/x").unwrap().port_or_default(),
            Some(80)
        );
        assert_eq!(Url::parse("http://[::1]/").unwrap().host_port(), "[::1]");
        for (bad, why) in [
            ("http://h:0/", UrlError::BadPort),
            ("http://h:99999/", UrlError::BadPort),
            ("http://h:8x/", UrlError::BadPort),
            ("http://[::1/", UrlError::BadIpv6),
            ("http://[nope]/", UrlError::BadIpv6),
            ("http://::1/", UrlError::BadIpv6),
            ("http://[::1]x/", UrlError::BadPort),
            ("https://", UrlError::NoHost),
            ("https://:80/", UrlError::NoHost),
            ("https://u@/", UrlError::NoHost),
            ("https://a b/", UrlError::BadHost),
            ("git@h:o/r", UrlError::NoScheme),
            ("1http://h/", UrlError::NoScheme),
        ] {
            assert_eq!(Url::parse(bad), Err(why), "{bad}");
        }
    }

    #[test]
    fn loopback_is_read_from_the_real_host() {
        assert!(Url::parse("http://127.0.0.1:9/o/r").unwrap().is_loopback());
        assert!(Url::parse("http://[::1]/").unwrap().is_loopback());
        assert!(Url::parse("http://LOCALHOST/").unwrap().is_loopback());
        assert!(Url::parse("http://u@127.0.0.1/").unwrap().is_loopback());
        assert!(!Url::parse("http://evil.com?@127.0.0.1/")
            .unwrap()
            .is_loopback());
        assert!(!Url::parse("http://127.0.0.1.evil.com/")
            .unwrap()
            .is_loopback());
    }

    #[test]
    fn credentials_never_shown() {
        let u = Url::parse("https://user:s3cret@h.x:8443/o/r.git?x#y").unwrap();
        assert_eq!(u.to_string(), "https://h.x:8443/o/r.git?x#y");
        assert_eq!(u.origin(), "https://h.x:8443/");
        assert!(!format!("{u:?}").contains("s3cret"));
        assert_eq!(
            without_credentials("https://u:p@H.example:8443/o/r.git"),
            "https://H.example:8443/o/r.git"
        );
        assert_eq!(
            without_credentials("wss://u:secret@h:1/p?q"),
            "wss://h:1/p?q"
        );
        assert_eq!(without_credentials("git@h:o/r.git"), "git@h:o/r.git");
        // `?` ends the authority: nothing here is user info.
        assert_eq!(
            without_credentials("http://evil.com?@127.0.0.1/x"),
            "http://evil.com?@127.0.0.1/x"
        );
    }
}
