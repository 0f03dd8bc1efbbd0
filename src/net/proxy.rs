//! Proxies: which one applies to a target (`HTTPS_PROXY` for https/wss,
//! `HTTP_PROXY` for http/ws, [`NoProxy`] exceptions) and the HTTP CONNECT
//! exchange that opens a tunnel through it. The link, `check` and the HTTP
//! client all go through [`ProxySettings::route`] and [`tunnel`]: one
//! routing decision, one CONNECT.
//!
//! Proxy credentials (`http://user:pass@host:port`, percent-encoded as in
//! curl) are sent as `Proxy-Authorization: Basic` and never appear in a log
//! line or an error: [`Proxy`]'s `Debug` hides them and parse errors do not
//! echo the URL.

use super::no_proxy::NoProxy;
use super::url::Url;
use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, either case),
/// parsed once by the configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for https/wss targets.
    pub https_proxy: Option<Proxy>,
    /// Proxy for http/ws targets.
    pub http_proxy: Option<Proxy>,
    /// Hosts reached directly.
    pub no_proxy: NoProxy,
}

impl ProxySettings {
    /// The proxy to use for a connection to `host:port`, where `tls` means
    /// an https/wss target; `None` for a direct connection.
    pub fn route(&self, tls: bool, host: &str, port: u16) -> Option<&Proxy> {
        let proxy = if tls {
            self.https_proxy.as_ref()
        } else {
            self.http_proxy.as_ref()
        }?;
        (!self.no_proxy.matches(host, port)).then_some(proxy)
    }

    /// [`ProxySettings::route`] for a URL.
    pub fn route_url(&self, url: &Url) -> Option<&Proxy> {
        self.route(url.is_tls(), url.host(), url.port_or_default().unwrap_or(0))
    }
}

/// A proxy to tunnel through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The proxy's host (brackets stripped for IPv6).
    pub host: String,
    /// The proxy's port.
    pub port: u16,
    /// The decoded user name, when the URL had credentials.
    user: Option<String>,
    /// The decoded password (a secret).
    password: Option<String>,
    /// The variable it came from, for messages.
    pub var: &'static str,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("credentials", &self.user.as_ref().map(|_| "[set]"))
            .field("var", &self.var)
            .finish()
    }
}

impl Proxy {
    /// Parse the value of `var`: `http://[user:password@]host:port[/]`.
    /// User and password are percent-decoded, as curl does.
    ///
    /// # Errors
    /// What is wrong, never the value (it may hold a password); the caller
    /// adds the variable's name.
    pub fn parse(var: &'static str, value: &str) -> Result<Proxy, String> {
        let url = Url::parse(value.trim()).map_err(|e| match e {
            super::url::UrlError::NoScheme => "must be an http:// proxy URL".to_string(),
            e => e.to_string(),
        })?;
        if url.scheme() != "http" {
            return Err(format!(
                "only http:// proxies are supported (got a {}:// URL)",
                url.scheme()
            ));
        }
        if !matches!(url.rest(), "" | "/") {
            return Err("must be only http://host:port, without a path".into());
        }
        let port = url.port().ok_or("must include a port (http://host:port)")?;
        let (user, password) = match url.userinfo() {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                (Some(percent_decode(user)), Some(percent_decode(pass)))
            }
        };
        Ok(Proxy {
            host: url.host().to_string(),
            port,
            user,
            password,
            var,
        })
    }

    /// The decoded user name.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The decoded password (a secret: for the header only).
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The `Proxy-Authorization` value, when the URL had credentials.
    fn basic_auth(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let pass = self.password.as_deref().unwrap_or_default();
        Some(crate::base64::encode(format!("{user}:{pass}").as_bytes()))
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
    if let Some(auth) = proxy.basic_auth() {
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

    fn settings(https: Option<&str>, http: Option<&str>, no: &str) -> ProxySettings {
        ProxySettings {
            https_proxy: https.map(|u| Proxy::parse("HTTPS_PROXY", u).unwrap()),
            http_proxy: http.map(|u| Proxy::parse("HTTP_PROXY", u).unwrap()),
            no_proxy: NoProxy::parse(no),
        }
    }

    #[test]
    fn https_proxy_for_tls_http_proxy_for_plain() {
        let s = settings(Some("http://p1:3128"), Some("http://p2:8080"), "");
        let p = s.route(true, "api.ados.dev", 443).unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.var),
            ("p1", 3128, "HTTPS_PROXY")
        );
        let p = s.route(false, "api.ados.dev", 80).unwrap();
        assert_eq!((p.host.as_str(), p.port, p.var), ("p2", 8080, "HTTP_PROXY"));
        assert_eq!(settings(None, None, "").route(true, "h", 443), None);
        let s = settings(Some("http://p:1"), None, ".corp.example");
        assert_eq!(s.route(true, "a.corp.example", 443), None);
        let url = Url::parse("wss://a.corp.example/x").unwrap();
        assert_eq!(s.route_url(&url), None);
    }

    #[test]
    fn credentials_are_decoded_and_stay_out_of_debug() {
        let p = Proxy::parse("HTTPS_PROXY", "http://us%40er:s3cr%3At@proxy:3128/").unwrap();
        assert_eq!(
            p.basic_auth().as_deref(),
            Some(crate::base64::encode(b"us@er:s3cr:t").as_str())
        );
        assert_eq!((p.host.as_str(), p.port), ("proxy", 3128));
        assert_eq!((p.user(), p.password()), (Some("us@er"), Some("s3cr:t")));
        let dbg = format!("{p:?}");
        assert!(!dbg.contains("s3cr") && !dbg.contains("us@er"), "{dbg}");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    #[test]
    fn bad_proxy_urls_never_echo_the_value() {
        for bad in [
            "https://user:hunter2@p:1",
            "http://user:hunter2@p:notaport",
            "http://user:hunter2@p",
            "http://user:hunter2@p:1/path",
            "user:hunter2@p:1",
            "socks5://user:hunter2@p:1",
        ] {
            let e = Proxy::parse("HTTPS_PROXY", bad).unwrap_err();
            assert!(!e.contains("hunter2"), "{e}");
        }
        assert!(Proxy::parse("HTTP_PROXY", "http://[::1]:3128").is_ok());
    }
}
