//! Opening a TCP connection to a target: straight, or through the HTTP
//! CONNECT tunnel of the proxy [`ProxySettings::route`] picks. The link's
//! WebSocket, `check` and the HTTP client all connect here.

use super::proxy::{self, ProxySettings};
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Why a connection could not be opened. Messages never hold proxy
/// credentials.
#[derive(Debug)]
pub enum DialError {
    /// DNS or TCP connect failed.
    Connect(String),
    /// The proxy refused or broke the tunnel.
    Proxy(String),
    /// A phase took longer than its timeout.
    Timeout(&'static str),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Connect(m) | DialError::Proxy(m) => f.write_str(m),
            DialError::Timeout(phase) => write!(f, "{phase} timed out"),
        }
    }
}

impl std::error::Error for DialError {}

/// Whether an I/O error is a timeout (or an interrupted wait).
pub fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Connect to `host:port` (`tls`: an https/wss target, which decides the
/// proxy variable), through the proxy when one applies. `connect_timeout`
/// bounds each TCP connect; the returned stream has `io_timeout` as its
/// read and write timeout, and `TCP_NODELAY` (small frames, sent at once).
///
/// # Errors
/// See [`DialError`].
pub fn open(
    settings: &ProxySettings,
    tls: bool,
    host: &str,
    port: u16,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> Result<TcpStream, DialError> {
    let via = settings.route(tls, host, port);
    let (dial_host, dial_port) = match via {
        Some(p) => (p.host.as_str(), p.port),
        None => (host, port),
    };
    let mut tcp = connect(dial_host, dial_port, connect_timeout)?;
    let setup = |e: io::Error| DialError::Connect(format!("socket setup failed: {e}"));
    tcp.set_nodelay(true).map_err(setup)?;
    tcp.set_read_timeout(Some(io_timeout)).map_err(setup)?;
    tcp.set_write_timeout(Some(io_timeout)).map_err(setup)?;
    if let Some(p) = via {
        proxy::tunnel(&mut tcp, p, host, port).map_err(|e| {
            if would_block(&e) {
                DialError::Timeout("the proxy CONNECT")
            } else {
                DialError::Proxy(format!(
                    "through the proxy {}:{} ({}): {e}",
                    p.host, p.port, p.var
                ))
            }
        })?;
    }
    Ok(tcp)
}

/// Resolve and connect with a timeout per address.
fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, DialError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| DialError::Connect(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if would_block(&e) => DialError::Connect(format!(
            "connecting to {addr} timed out after {}",
            crate::words::duration(timeout)
        )),
        Some((addr, e)) => DialError::Connect(format!("cannot connect to {addr}: {e}")),
        None => DialError::Connect(format!("{host} resolved to no address")),
    })
}
