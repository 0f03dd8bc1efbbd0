//! Connecting the link: from the control-plane URL to an open WebSocket.
//! TCP (through the HTTP CONNECT proxy when one applies, see
//! [`crate::net::dial`]), TLS for `wss` with the runner's one TLS
//! configuration, then the WebSocket handshake with protocol.md §1's
//! headers; every failure classified into a [`ConnectError`] that tells
//! the user what to fix. The running session is [`super::session`].
//!
//! `check` performs the same connection through [`open`], so the doctor
//! and the daemon cannot disagree about how to reach the control plane.

use crate::net::dial::{self, DialError};
use crate::net::url::{without_credentials, Url};
use crate::net::ProxySettings;
use rustls::ClientConfig;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::Response;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{header, HeaderValue, Request};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, WebSocket};

/// TCP connect timeout (per address).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of the proxy, TLS and WebSocket handshakes.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Inbound frames and messages larger than this are refused (close 1009).
pub const MAX_INBOUND: usize = 16 << 20;

/// The link's WebSocket.
pub type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// Why a connection attempt failed. Messages never contain the token or
/// proxy credentials.
#[derive(Debug)]
pub enum ConnectError {
    /// The configuration cannot work (bad URL, proxy variable, header).
    Config(String),
    /// DNS or TCP connect failed.
    Connect(String),
    /// The proxy refused or broke the tunnel.
    Proxy(String),
    /// A phase took longer than its timeout.
    Timeout(&'static str),
    /// TLS failed (e.g. `invalid peer certificate: UnknownIssuer`).
    Tls(String),
    /// The server answered the handshake with 401 or 403.
    Auth(u16),
    /// The server answered the handshake with another HTTP status.
    Http(u16),
    /// Any other WebSocket failure.
    WebSocket(String),
}

impl ConnectError {
    /// Whether the server refused our identity (retry with the maximum backoff).
    pub fn is_auth(&self) -> bool {
        matches!(self, ConnectError::Auth(_))
    }
}

impl From<DialError> for ConnectError {
    fn from(e: DialError) -> ConnectError {
        match e {
            DialError::Connect(m) => ConnectError::Connect(m),
            DialError::Proxy(m) => ConnectError::Proxy(m),
            DialError::Timeout(phase) => ConnectError::Timeout(phase),
        }
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Config(m) | ConnectError::Connect(m) | ConnectError::Proxy(m) => {
                f.write_str(m)
            }
            ConnectError::Timeout(phase) => write!(f, "{phase} timed out"),
            ConnectError::Tls(m) => write!(
                f,
                "TLS failed: {m} (for a private CA, set ADOS_CA_CERT to its PEM file)"
            ),
            ConnectError::Auth(401) => {
                f.write_str("the server refused the token (HTTP 401): check ADOS_TOKEN")
            }
            ConnectError::Auth(status) => write!(
                f,
                "the server refused this runner (HTTP {status}): check ADOS_TOKEN, \
                 ADOS_RUNNER_ID and ADOS_TENANT_ID"
            ),
            ConnectError::Http(status) => {
                write!(
                    f,
                    "the server answered the WebSocket handshake with HTTP {status}"
                )
            }
            ConnectError::WebSocket(m) => write!(f, "WebSocket handshake failed: {m}"),
        }
    }
}

impl std::error::Error for ConnectError {}

/// Where to connect, from [`super::LinkConfig::url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// `wss`.
    pub tls: bool,
    /// Host name or address (no brackets).
    pub host: String,
    /// Port (default 80/443).
    pub port: u16,
}

/// Parse and check the link URL.
///
/// # Errors
/// Not a `ws://` or `wss://` URL with a host.
pub fn target(url: &str) -> Result<Target, ConnectError> {
    let bad = |why: &str| {
        ConnectError::Config(format!(
            "the control-plane URL {} {why}; check ADOS_API_URL (e.g. https://api.ados.dev)",
            without_credentials(url)
        ))
    };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    let tls = match parsed.scheme() {
        "wss" => true,
        "ws" => false,
        _ => return Err(bad("is not a ws:// or wss:// URL")),
    };
    Ok(Target {
        tls,
        host: parsed.host().to_string(),
        port: parsed
            .port_or_default()
            .unwrap_or(if tls { 443 } else { 80 }),
    })
}

/// What [`open`] needs besides the target: who we are and how to reach it.
pub struct Dial<'a> {
    /// The `ws://`/`wss://` URL.
    pub url: &'a str,
    /// `ADOS_TOKEN` (sent as `Authorization: Bearer`, never logged).
    pub token: &'a str,
    /// `X-Ados-Runner-Id`.
    pub runner_id: &'a str,
    /// `X-Ados-Tenant-Id`, when set.
    pub tenant_id: Option<&'a str>,
    /// Proxy routing.
    pub proxy: &'a ProxySettings,
    /// The TLS client configuration.
    pub tls: &'a Arc<ClientConfig>,
}

/// One connection attempt, bounded by `budget` (the connect timeout and
/// every handshake read or write): TCP through the proxy when one
/// applies, TLS for wss, the WebSocket handshake with our headers. The
/// socket is still blocking (with `budget`-bounded timeouts) on return.
///
/// # Errors
/// See [`ConnectError`].
pub fn open(
    d: &Dial<'_>,
    target: &Target,
    budget: Duration,
) -> Result<(Ws, Response), ConnectError> {
    let io_timeout = budget.min(HANDSHAKE_TIMEOUT);
    let tcp = dial::open(
        d.proxy,
        target.tls,
        &target.host,
        target.port,
        budget.min(CONNECT_TIMEOUT),
        io_timeout,
    )?;
    let request = request(d)?;
    match tungstenite::client_tls_with_config(
        request,
        tcp,
        Some(ws_config()),
        Some(Connector::Rustls(d.tls.clone())),
    ) {
        Ok(opened) => Ok(opened),
        Err(HandshakeError::Interrupted(_)) => {
            Err(ConnectError::Timeout("the TLS/WebSocket handshake"))
        }
        Err(HandshakeError::Failure(e)) => Err(classify(e)),
    }
}

/// The handshake request with protocol.md §1's headers.
fn request(d: &Dial<'_>) -> Result<Request<()>, ConnectError> {
    let mut request = d.url.into_client_request().map_err(|e| {
        ConnectError::Config(format!(
            "bad control-plane URL {}: {e}",
            without_credentials(d.url)
        ))
    })?;
    let value = |var: &str, v: &str| {
        HeaderValue::from_str(v).map_err(|_| {
            ConnectError::Config(format!(
                "{var} contains characters that cannot be sent in an HTTP header"
            ))
        })
    };
    let mut auth = value("ADOS_TOKEN", &format!("Bearer {}", d.token))?;
    auth.set_sensitive(true);
    let headers = request.headers_mut();
    headers.insert(header::AUTHORIZATION, auth);
    headers.insert("x-ados-runner-id", value("ADOS_RUNNER_ID", d.runner_id)?);
    if let Some(tenant) = d.tenant_id {
        headers.insert("x-ados-tenant-id", value("ADOS_TENANT_ID", tenant)?);
    }
    headers.insert(
        header::USER_AGENT,
        value("version", &format!("ados-work-runner/{}", crate::VERSION))?,
    );
    Ok(request)
}

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_INBOUND))
        .max_frame_size(Some(MAX_INBOUND))
}

/// Turn a handshake error into a [`ConnectError`].
fn classify(e: tungstenite::Error) -> ConnectError {
    match e {
        tungstenite::Error::Http(resp) => match resp.status().as_u16() {
            s @ (401 | 403) => ConnectError::Auth(s),
            s => ConnectError::Http(s),
        },
        tungstenite::Error::Io(io) => {
            if let Some(tls) = io
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            {
                ConnectError::Tls(tls.to_string())
            } else if dial::would_block(&io) {
                ConnectError::Timeout("the TLS/WebSocket handshake")
            } else {
                ConnectError::WebSocket(io.to_string())
            }
        }
        tungstenite::Error::Tls(t) => ConnectError::Tls(t.to_string()),
        other => ConnectError::WebSocket(other.to_string()),
    }
}

/// The blocking socket under a WebSocket, for timeouts and the poller.
pub fn tcp_of(ws: &Ws) -> Option<&TcpStream> {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    }
}

/// Whether an I/O error only means "not now".
pub(super) fn would_block(e: &io::Error) -> bool {
    dial::would_block(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        assert_eq!(
            target("wss://api.ados.dev/api/v1/work/runners/ws").unwrap(),
            Target {
                tls: true,
                host: "api.ados.dev".into(),
                port: 443
            }
        );
        assert_eq!(
            target("ws://[::1]:9090/x").unwrap(),
            Target {
                tls: false,
                host: "::1".into(),
                port: 9090
            }
        );
        assert!(target("https://h/x").is_err());
        assert!(target("not a url").is_err());
        let e = target("ws://u:s3cret@h:0/").unwrap_err().to_string();
        assert!(e.contains("ADOS_API_URL") && !e.contains("s3cret"), "{e}");
    }

    #[test]
    fn auth_errors_name_the_variable() {
        assert!(ConnectError::Auth(401).to_string().contains("ADOS_TOKEN"));
        assert!(ConnectError::Auth(403)
            .to_string()
            .contains("ADOS_TENANT_ID"));
        assert!(ConnectError::Auth(401).is_auth());
        assert!(!ConnectError::Http(500).is_auth());
    }
}
