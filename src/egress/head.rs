//! The head of a request a job's client sends the proxy: `CONNECT
//! host:port` (a tunnel, for https and anything else) or an absolute-form
//! plain-HTTP request (`GET http://host/path`). Read bounded (16 KiB, as
//! the runner reads every answer head), parsed strictly: what cannot be
//! read is answered `400`, never guessed at.

use super::allow::authority;
use crate::net::Url;
use std::io::{self, Read};

/// The most a request head may be.
pub const MAX_HEAD: usize = 16 * 1024;

/// What the client asked for.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The method (`CONNECT`, `GET`, …).
    pub method: String,
    /// The destination host (IPv6 without brackets).
    pub host: String,
    /// The destination port.
    pub port: u16,
    /// For plain HTTP: the request line and headers to send upstream, in
    /// origin form, the proxy's own headers dropped and `Connection:
    /// close` set, so one connection carries one request to one host.
    pub forward: Option<Vec<u8>>,
    /// The `Proxy-Authorization` value, if any (a secret).
    pub proxy_auth: Option<String>,
}

impl Request {
    /// `host:port`, for messages.
    pub fn target(&self) -> String {
        authority(&self.host, self.port)
    }
}

/// Why a head could not be read.
#[derive(Debug)]
pub enum HeadError {
    /// The connection failed or timed out, or closed before a head.
    Io(io::Error),
    /// The head is not a request the proxy serves (answered `400`).
    Bad(String),
}

/// Read a head from `conn`. Returns the request and the bytes read past
/// the head (the start of a body or of the tunnel), which belong upstream.
///
/// # Errors
/// See [`HeadError`].
pub fn read(conn: &mut impl Read) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        match find_blank_line(&buf) {
            Some(i) if i <= MAX_HEAD => break i,
            _ => {}
        }
        if buf.len() > MAX_HEAD {
            return Err(HeadError::Bad("the request head is over 16 KiB".into()));
        }
        match conn.read(&mut chunk) {
            Ok(0) => {
                return Err(HeadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed before a request",
                )))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    };
    let rest = buf.split_off(end + 4);
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| HeadError::Bad("the request head is not text".into()))?;
    Ok((parse(text).map_err(HeadError::Bad)?, rest))
}

fn find_blank_line(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parse a head (without its final blank line).
fn parse(text: &str) -> Result<Request, String> {
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the request line is not `METHOD target HTTP/1.x`".into());
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") || method.is_empty() {
        return Err("the request line is not `METHOD target HTTP/1.x`".into());
    }
    let mut headers = Vec::new();
    for h in lines {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| "a header line has no `:`".to_string())?;
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err("a header name is malformed".into());
        }
        headers.push((name, value.trim()));
    }
    let proxy_auth = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, v)| v.to_string());
    if method == "CONNECT" {
        let (host, port) = split_authority(target)
            .ok_or_else(|| "CONNECT needs host:port as its target".to_string())?;
        return Ok(Request {
            method: method.into(),
            host,
            port,
            forward: None,
            proxy_auth,
        });
    }
    let url = Url::parse(target)
        .map_err(|_| "a proxied request needs an absolute http:// URL as its target".to_string())?;
    if url.scheme() != "http" || url.userinfo().is_some() {
        return Err(
            "only http:// URLs without credentials are forwarded; use CONNECT for https".into(),
        );
    }
    if !clean_host(url.host()) {
        return Err("the URL's host is not a host name or address".into());
    }
    let port = url.port_or_default().unwrap_or(80);
    let path = if url.rest().is_empty() {
        "/"
    } else {
        url.rest()
    };
    let mut forward = format!("{method} {path} {version}\r\n");
    let mut has_host = false;
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        if matches!(
            lower.as_str(),
            "proxy-authorization" | "proxy-connection" | "connection" | "keep-alive"
        ) {
            continue;
        }
        has_host |= lower == "host";
        forward.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_host {
        forward.push_str(&format!("Host: {}\r\n", url.host_port()));
    }
    forward.push_str("Connection: close\r\n\r\n");
    Ok(Request {
        method: method.into(),
        host: url.host().to_string(),
        port,
        forward: Some(forward.into_bytes()),
        proxy_auth,
    })
}

/// `host:port` or `[v6]:port`.
fn split_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = target.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.strip_suffix(']')?.to_string()
    } else if host.contains(':') {
        return None;
    } else {
        host.to_string()
    };
    clean_host(&host).then(|| (host.to_ascii_lowercase(), port))
}

/// A host a refusal line may name: letters, digits, `.`, `-`, `_` and the
/// `:` of an IPv6 address, nothing else (a newline in a CONNECT target
/// must not forge a line of the job's `runner` stream).
fn clean_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_str(s: &str) -> Result<(Request, Vec<u8>), HeadError> {
        read(&mut s.as_bytes())
    }

    #[test]
    fn connect_names_a_host_and_port_and_keeps_what_followed() {
        let (r, rest) = read_str(
            "CONNECT Api.Example:443 HTTP/1.1\r\nHost: api.example:443\r\nProxy-Authorization: Basic dG9rOg==\r\n\r\n\x16\x03",
        )
        .unwrap();
        assert_eq!(
            (r.method.as_str(), r.host.as_str(), r.port),
            ("CONNECT", "api.example", 443)
        );
        assert_eq!(r.proxy_auth.as_deref(), Some("Basic dG9rOg=="));
        assert_eq!(r.forward, None);
        assert_eq!(rest, b"\x16\x03");
        let (r, _) = read_str("CONNECT [::1]:8080 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 8080));
        assert_eq!(r.target(), "[::1]:8080");
    }

    #[test]
    fn plain_http_is_rewritten_to_origin_form_one_request_per_connection() {
        let (r, rest) = read_str(
            "POST http://pkg.example:8081/a/b?c=d HTTP/1.1\r\nHost: pkg.example:8081\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi",
        )
        .unwrap();
        assert_eq!((r.host.as_str(), r.port), ("pkg.example", 8081));
        let fwd = String::from_utf8(r.forward.unwrap()).unwrap();
        assert_eq!(
            fwd,
            "POST /a/b?c=d HTTP/1.1\r\nHost: pkg.example:8081\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(rest, b"hi");
        let (r, _) = read_str("GET http://h.example HTTP/1.0\r\n\r\n").unwrap();
        let fwd = String::from_utf8(r.forward.unwrap()).unwrap();
        assert!(
            fwd.starts_with("GET / HTTP/1.0\r\nHost: h.example\r\n"),
            "{fwd}"
        );
    }

    #[test]
    fn what_is_not_a_proxy_request_is_bad() {
        for bad in [
            "GET /local HTTP/1.1\r\n\r\n",
            "GET https://h.example/ HTTP/1.1\r\n\r\n",
            "GET http://u:p@h.example/ HTTP/1.1\r\n\r\n",
            "CONNECT h.example HTTP/1.1\r\n\r\n",
            "CONNECT h.example:0 HTTP/1.1\r\n\r\n",
            "CONNECT ::1:80 HTTP/1.1\r\n\r\n",
            "CONNECT a@h.example:443 HTTP/1.1\r\n\r\n",
            "CONNECT evil\nforged line:443 HTTP/1.1\r\n\r\n",
            "CONNECT evil\x1b[2J:443 HTTP/1.1\r\n\r\n",
            "GET http://evil\x07.example/ HTTP/1.1\r\n\r\n",
            "CONNECT h.example:443 HTTP/2\r\n\r\n",
            "CONNECT  h.example:443 HTTP/1.1\r\n\r\n",
            "CONNECT h.example:443 HTTP/1.1\r\nno colon\r\n\r\n",
        ] {
            assert!(matches!(read_str(bad), Err(HeadError::Bad(_))), "{bad:?}");
        }
        let huge = format!(
            "CONNECT h:1 HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_HEAD)
        );
        assert!(matches!(read_str(&huge), Err(HeadError::Bad(_))));
        assert!(matches!(
            read_str("CONNECT h:1 HTTP/1.1\r\n"),
            Err(HeadError::Io(_))
        ));
    }
}
