//! The HTTP CONNECT tunnel for networks that only let traffic out through a
//! proxy: which proxy applies to a target (`HTTPS_PROXY` for wss,
//! `HTTP_PROXY` for ws, `NO_PROXY` exceptions), and the CONNECT exchange.
//!
//! Proxy credentials (`http://user:pass@host:port`) are sent as
//! `Proxy-Authorization: Basic` and never appear in a log line or an error:
//! [`Proxy`]'s `Debug` hides them and parse errors do not echo the URL.

use crate::config::ProxySettings;
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// A proxy to tunnel through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's host (brackets stripped for IPv6).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// Base64 of `user:pass`, when the URL had credentials (a secret).
    basic_auth: Option<String>,
    /// The variable it came from, for messages.
    pub var: &'static str,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "[set]"))
            .field("var", &self.var)
            .finish()
    }
}

/// Whether `host` is exempt from proxying by `no_proxy` entries: `*`, an
/// exact host, or `.suffix` (which also matches the bare domain). An entry
/// with a port (`host:8080`) matches on the host part.
pub fn is_no_proxy(no_proxy: &[String], host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    no_proxy.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        let entry = match entry.rsplit_once(':') {
            Some((h, port)) if !h.contains(':') && port.parse::<u16>().is_ok() => h.to_string(),
            _ => entry,
        };
        let entry = entry.trim_start_matches('[').trim_end_matches(']');
        if entry.is_empty() {
            false
        } else if entry == "*" {
            true
        } else if let Some(suffix) = entry.strip_prefix('.') {
            host == suffix || host.ends_with(&format!(".{suffix}"))
        } else {
            host == entry
        }
    })
}

/// The proxy to use for a `tls` (wss) or plain (ws) connection to `host`,
/// if any.
///
/// # Errors
/// The proxy variable is set but is not `http://[user:pass@]host:port`;
/// the message names the variable, never its value (it may hold a password).
pub fn select(settings: &ProxySettings, tls: bool, host: &str) -> Result<Option<Proxy>, String> {
    let (var, value) = if tls {
        ("HTTPS_PROXY", settings.https_proxy.as_deref())
    } else {
        ("HTTP_PROXY", settings.http_proxy.as_deref())
    };
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(_) if is_no_proxy(&settings.no_proxy, host) => Ok(None),
        Some(url) => parse(var, url).map(Some),
    }
}

/// Parse `http://[user:pass@]host[:port]` (port defaults to 80; a bare
/// `host:port` is taken as http).
fn parse(var: &'static str, url: &str) -> Result<Proxy, String> {
    let rest = match url.split_once("://") {
        None => url,
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{var}: only http:// proxies are supported (got a {scheme}:// URL); \
                 use e.g. http://proxy.example:3128"
            ))
        }
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| {
        format!("{var}: cannot read the proxy host and port; use http://[user:pass@]host:port")
    })?;
    let basic_auth = userinfo.map(|u| {
        let (user, pass) = u.split_once(':').unwrap_or((u, ""));
        crate::base64::encode(
            format!("{}:{}", percent_decode(user), percent_decode(pass)).as_bytes(),
        )
    });
    Ok(Proxy {
        host,
        port,
        basic_auth,
        var,
    })
}

fn split_host_port(hostport: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().ok()?),
            None => (hostport.to_string(), 80),
        }
    };
    if host.is_empty() {
        None
    } else {
        Some((host, port))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Ask `proxy` (already connected as `stream`) to open a tunnel to
/// `host:port`. The caller has set read/write timeouts on `stream`.
///
/// # Errors
/// I/O errors (a timeout is `WouldBlock`/`TimedOut`), or the proxy
/// answered something other than 2xx (the message has the status line).
pub fn tunnel(stream: &mut TcpStream, proxy: &Proxy, host: &str, port: u16) -> io::Result<()> {
    let target = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(auth) = &proxy.basic_auth {
        request.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;

    // Read the answer byte by byte up to the blank line: anything after it
    // already belongs to the tunnel (the TLS or WebSocket handshake).
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the proxy named by {} sent an over-long answer to CONNECT",
                    proxy.var
                ),
            ));
        }
        match stream.read(&mut byte)? {
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the proxy named by {} closed the connection during CONNECT",
                        proxy.var
                    ),
                ))
            }
            _ => head.push(byte[0]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default().trim().to_string();
    let status = status_line.split_whitespace().nth(1).unwrap_or_default();
    if status.len() == 3 && status.starts_with('2') {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!(
                "the proxy named by {} refused CONNECT {target}: {status_line}{}",
                proxy.var,
                if status == "407" {
                    " (check the user and password in the proxy URL)"
                } else {
                    ""
                }
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(https: Option<&str>, http: Option<&str>, no: &[&str]) -> ProxySettings {
        ProxySettings {
            https_proxy: https.map(str::to_string),
            http_proxy: http.map(str::to_string),
            no_proxy: no.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn https_proxy_for_wss_http_proxy_for_ws() {
        let s = settings(Some("http://p1:3128"), Some("http://p2:8080"), &[]);
        let p = select(&s, true, "api.ados.dev").unwrap().unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.var),
            ("p1", 3128, "HTTPS_PROXY")
        );
        let p = select(&s, false, "api.ados.dev").unwrap().unwrap();
        assert_eq!((p.host.as_str(), p.port, p.var), ("p2", 8080, "HTTP_PROXY"));
        assert_eq!(select(&settings(None, None, &[]), true, "h"), Ok(None));
    }

    #[test]
    fn no_proxy_exact_suffix_star_and_port() {
        let list: Vec<String> = ["internal.example", ".corp.example", "10.0.0.1:8080"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(is_no_proxy(&list, "internal.example"));
        assert!(is_no_proxy(&list, "INTERNAL.example"));
        assert!(!is_no_proxy(&list, "x.internal.example"));
        assert!(is_no_proxy(&list, "api.corp.example"));
        assert!(is_no_proxy(&list, "corp.example"));
        assert!(!is_no_proxy(&list, "evilcorp.example"));
        assert!(is_no_proxy(&list, "10.0.0.1"));
        assert!(!is_no_proxy(&list, "api.ados.dev"));
        assert!(is_no_proxy(&["*".to_string()], "anything"));
        let s = settings(Some("http://p:1"), None, &[".corp.example"]);
        assert_eq!(select(&s, true, "a.corp.example"), Ok(None));
    }

    #[test]
    fn credentials_become_basic_auth_and_stay_out_of_debug() {
        let s = settings(Some("http://us%40er:s3cr%3At@proxy:3128/"), None, &[]);
        let p = select(&s, true, "h").unwrap().unwrap();
        assert_eq!(
            p.basic_auth.as_deref(),
            Some(crate::base64::encode(b"us@er:s3cr:t").as_str())
        );
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("s3cr") && !dbg.contains(p.basic_auth.as_deref().unwrap()));
    }

    #[test]
    fn bad_proxy_urls_name_the_variable_not_the_value() {
        let s = settings(Some("https://user:hunter2@p:1"), None, &[]);
        let e = select(&s, true, "h").unwrap_err();
        assert!(e.contains("HTTPS_PROXY") && !e.contains("hunter2"), "{e}");
        let s = settings(None, Some("http://user:hunter2@p:notaport"), &[]);
        let e = select(&s, false, "h").unwrap_err();
        assert!(e.contains("HTTP_PROXY") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("p"), Some(("p".into(), 80)));
        assert_eq!(split_host_port("[::1]:3128"), Some(("::1".into(), 3128)));
        assert_eq!(split_host_port(":3128"), None);
    }
}
