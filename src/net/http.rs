//! The blocking HTTP client of the runner: one `ureq::Agent`, built once
//! by [`super::Network::new`], whose connections are opened by the
//! runner's own code ([`super::dial::open`]: `NO_PROXY`, the CONNECT
//! tunnel) and secured by the runner's own TLS configuration
//! ([`super::tls::client_config`]: Mozilla roots *and* `ADOS_CA_CERT`).
//! ureq's own proxy handling, its third `NO_PROXY` reading and its
//! either-or root store are not used, so an HTTP call goes exactly where
//! and as the WebSocket goes.

use super::dial;
use super::proxy::ProxySettings;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

/// Connect timeout when the request sets none.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Whole-request timeout when the request sets none.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Build the agent.
pub(super) fn agent(proxy: ProxySettings, tls: Arc<ClientConfig>) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        // Routing is ours (see the module docs): never ureq's env proxy.
        .proxy(None)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(format!("ados-work-runner/{}", crate::VERSION))
        .build();
    ureq::Agent::with_parts(config, NetConnector { proxy, tls }, DeferredResolver)
}

/// Leaves name resolution to [`dial::open`]: a target behind a proxy may
/// not resolve here at all (the proxy resolves it).
#[derive(Debug)]
struct DeferredResolver;

impl Resolver for DeferredResolver {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(SocketAddr::from(([0, 0, 0, 0], 0)));
        Ok(addrs)
    }
}

struct NetConnector {
    proxy: ProxySettings,
    tls: Arc<ClientConfig>,
}

impl std::fmt::Debug for NetConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetConnector").finish_non_exhaustive()
    }
}

fn io_error(e: impl std::fmt::Display) -> ureq::Error {
    ureq::Error::Io(io::Error::other(e.to_string()))
}

impl<In: Transport> Connector<In> for NetConnector {
    type Out = StreamTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<In>,
    ) -> Result<Option<StreamTransport>, ureq::Error> {
        let uri = details.uri;
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(io_error("only http:// and https:// URLs can be fetched")),
        };
        let host = uri
            .host()
            .ok_or_else(|| io_error("the URL has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let timeout = details.timeout.not_zero().map_or(CONNECT_TIMEOUT, |t| *t);
        let tcp = dial::open(&self.proxy, tls, &host, port, timeout, timeout).map_err(io_error)?;
        let socket = tcp.try_clone().map_err(ureq::Error::Io)?;
        let stream = if tls {
            let name = ServerName::try_from(host)
                .map_err(|_| io_error("the host is not a valid TLS server name"))?;
            let conn = ClientConnection::new(self.tls.clone(), name).map_err(io_error)?;
            Stream::Tls(Box::new(StreamOwned::new(conn, tcp)))
        } else {
            Stream::Plain(tcp)
        };
        let config = details.config;
        Ok(Some(StreamTransport {
            stream,
            socket,
            buffers: LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size()),
        }))
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

/// A plain or TLS stream as a ureq transport.
pub(super) struct StreamTransport {
    stream: Stream,
    /// The same socket, for its timeouts.
    socket: TcpStream,
    buffers: LazyBuffers,
}

impl std::fmt::Debug for StreamTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTransport")
            .field("tls", &matches!(self.stream, Stream::Tls(_)))
            .finish_non_exhaustive()
    }
}

fn timed(e: io::Error, timeout: NextTimeout) -> ureq::Error {
    if dial::would_block(&e) {
        ureq::Error::Timeout(timeout.reason)
    } else {
        ureq::Error::Io(e)
    }
}

impl Transport for StreamTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        self.socket
            .set_write_timeout(timeout.not_zero().map(|t| *t))?;
        let output = self
            .buffers
            .output()
            .get(..amount)
            .ok_or_else(|| io_error("ureq asked to send more than its buffer"))?;
        let written = match &mut self.stream {
            Stream::Plain(s) => s.write_all(output).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(output).and_then(|()| s.flush()),
        };
        written.map_err(|e| timed(e, timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.socket
            .set_read_timeout(timeout.not_zero().map(|t| *t))?;
        let input = self.buffers.input_append_buf();
        let read = match &mut self.stream {
            Stream::Plain(s) => s.read(input),
            Stream::Tls(s) => s.read(input),
        };
        let n = read.map_err(|e| timed(e, timeout))?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    /// Never reuse a connection: the runner's HTTP calls are few, and a
    /// pooled socket the server closed meanwhile would fail the next one.
    fn is_open(&mut self) -> bool {
        false
    }

    fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }
}
