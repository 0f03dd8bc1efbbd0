//! The link thread: the one thread that owns the control-plane WebSocket
//! (protocol.md §1–3). It connects (through an HTTP CONNECT proxy and TLS
//! when they apply), says `hello`, waits for `welcome`, then delivers the
//! outbox, sends heartbeats, hands server messages to the dispatcher, and
//! reconnects with backoff whenever the connection is lost.
//!
//! # How it waits
//!
//! After the handshake the socket is nonblocking and registered (oneshot)
//! in a [`polling::Poller`] (epoll). [`super::Waker`] is
//! [`Poller::notify`], so a control frame, a new state or a journal write
//! wakes the thread at once; `notify` is latched, so a wake while the
//! thread is busy is not lost. After every wake-up the thread:
//!
//! 1. takes every [`ToLink`] message from its channel;
//! 2. reads until `WouldBlock` (rustls may hold decrypted bytes that epoll
//!    cannot see, so "readable" is not the only reason to read);
//! 3. flushes, pulls outbox frames until none are left or the socket is
//!    full (then it stops pulling, so memory does not grow with a slow
//!    server: the journal on disk is the buffer);
//! 4. sends the heartbeat if due, checks the dead-connection and close
//!    deadlines, and re-arms the oneshot interest: readable, plus writable
//!    only while a flush returned `WouldBlock`.
//!
//! The wait's timeout is the nearest deadline: the next heartbeat, the
//! dead-connection limit (3 × `heartbeat_s` without any frame from the
//! server), or the shutdown deadline. While disconnected the thread waits
//! out the reconnect backoff on the same poller.
//!
//! Expected cost (rust-stack.md §3 measured this design: ~75 µs round trip
//! on loopback against several ms for a read-timeout loop): a frame from
//! another thread reaches the socket within tens of µs of the wake-up; an
//! idle link wakes only for heartbeats (every `heartbeat_s`, default 15 s)
//! and the server's frames, so its idle CPU is ~0.
//!
//! # What is dropped
//!
//! Control frames ([`ToLink::Frame`]: `job.accepted`, `job.rejected`) that
//! arrive while no connection is up (from [`FromLink::Disconnected`] to
//! the next `welcome`, i.e. [`FromLink::Connected`]) are dropped: on
//! reconnect the server re-assigns what it has not seen accepted. Job
//! events are never dropped: they live in the journal until acknowledged.
//!
//! # Shutdown
//!
//! [`ToLink::Close`] makes the thread deliver the outbox until everything
//! is sent and acknowledged (or the deadline passes), close with a proper
//! close handshake, and end. While disconnected it keeps trying to connect
//! until the deadline, but only if something is left to deliver. A
//! connection attempt already under way is not interrupted: it is bounded
//! by its own timeouts (10 s connect, 10 s per handshake read or write),
//! and no attempt starts after the deadline.
//!
//! # Extras beyond protocol.md
//!
//! A `heartbeat` is sent right after `welcome` (the server learns the
//! runner's state at once), and at once whenever [`ToLink::State`] brings a
//! new state.

use super::backoff::{Backoff, Failure, XorShift};
use super::proto::{self, RunnerState, ServerMessage};
use super::{proxy, FromLink, LinkConfig, ToLink};
use crate::link::Outbox;
use crate::metrics::Metrics;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use polling::{Event, Events, Poller};
use rustls::ClientConfig;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::http::{header, HeaderValue, Request, Uri};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

/// TCP connect timeout (per address).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read/write timeout of the proxy, TLS and WebSocket handshakes.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Inbound frames and messages larger than this are refused (close 1009).
pub const MAX_INBOUND: usize = 16 << 20;
/// The runner never sends a frame larger than this (protocol.md §1).
pub const MAX_OUTBOUND: usize = 1 << 20;
/// Heartbeat interval until `welcome` says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// The longest heartbeat interval accepted from `welcome` (a bigger value
/// is clamped: a dead connection must still be noticed, and the deadline
/// arithmetic must not overflow).
const MAX_HEARTBEAT: Duration = Duration::from_secs(3600);
/// How long to wait for the server's answer to our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Close codes after which retrying fast is pointless (protocol.md §1).
const AUTH_CLOSE_CODES: [u16; 3] = [4001, 4003, 4009];
/// Messages read per turn of the loop before other work gets a go.
const READS_PER_TURN: usize = 256;
/// The poller key of the socket.
const SOCKET_KEY: usize = 0;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

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

/// The URL without any `user:pass@`, for messages.
pub fn display_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            format!("{scheme}://{host}{path}")
        }
        None => url.to_string(),
    }
}

/// Where to connect, from [`LinkConfig::url`].
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
            display_url(url)
        ))
    };
    let uri: Uri = url.parse().map_err(|_| bad("is not a valid URL"))?;
    let tls = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        _ => return Err(bad("is not a ws:// or wss:// URL")),
    };
    let host = uri
        .host()
        .ok_or_else(|| bad("has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok(Target { tls, host, port })
}

/// Why a session (one connection) ended.
enum End {
    /// We closed for shutdown: the thread ends.
    Shutdown,
    /// Lost or refused: reconnect after a backoff.
    Lost {
        /// How to back off.
        failure: Failure,
        /// How long the connection was up after `welcome` (zero if never).
        up: Duration,
    },
}

/// The per-connection state.
struct Session {
    welcomed: bool,
    welcomed_at: Option<Instant>,
    heartbeat: Duration,
    last_rx: Instant,
    next_beat: Option<Instant>,
    /// A flush returned `WouldBlock`: watch for writability and pull no
    /// more outbox frames until it drains.
    want_write: bool,
    /// The last outbox pull returned `None`.
    outbox_drained: bool,
    /// When we sent our close frame (shutdown), the latest moment to wait
    /// for the server's answer.
    close_by: Option<Instant>,
    /// The server's close frame, if it sent one.
    server_close: Option<(u16, String)>,
    /// The read budget ran out: turn again without waiting.
    read_more: bool,
}

impl Session {
    fn up(&self) -> Duration {
        self.welcomed_at.map_or(Duration::ZERO, |t| t.elapsed())
    }

    fn lost(&self, failure: Failure) -> End {
        End::Lost {
            failure,
            up: self.up(),
        }
    }
}

/// The state of the link thread.
pub(crate) struct Worker {
    cfg: LinkConfig,
    url: String,
    target: Target,
    tls: Arc<ClientConfig>,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    from_link: Sender<FromLink>,
    rx: Receiver<ToLink>,
    poller: Arc<Poller>,
    events: Events,
    state: RunnerState,
    backoff: Backoff,
    /// Shutdown requested: flush until this deadline, then exit.
    closing: Option<Instant>,
}

/// A socket registered in the poller; removed on drop, before the socket
/// can be closed (the `Poller::add` contract).
struct Registration {
    poller: Arc<Poller>,
    fd: RawFd,
}

impl Registration {
    fn interest(&self, writable: bool) -> io::Result<()> {
        let ev = if writable {
            Event::all(SOCKET_KEY)
        } else {
            Event::readable(SOCKET_KEY)
        };
        // SAFETY: `fd` stays open while `self` exists (see `session`).
        self.poller
            .modify(unsafe { BorrowedFd::borrow_raw(self.fd) }, ev)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // SAFETY: the socket is still open: the registration is dropped
        // before the WebSocket that owns it.
        let fd = unsafe { BorrowedFd::borrow_raw(self.fd) };
        if let Err(e) = self.poller.delete(fd) {
            log::debug!("removing the socket from the poller: {e}");
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn tcp_of(ws: &Ws) -> Option<&TcpStream> {
    match ws.get_ref() {
        MaybeTlsStream::Plain(s) => Some(s),
        MaybeTlsStream::Rustls(s) => Some(s.get_ref()),
        _ => None,
    }
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
            } else if would_block(&io) {
                ConnectError::Timeout("the TLS/WebSocket handshake")
            } else {
                ConnectError::WebSocket(io.to_string())
            }
        }
        tungstenite::Error::Tls(t) => ConnectError::Tls(t.to_string()),
        other => ConnectError::WebSocket(other.to_string()),
    }
}

impl Worker {
    /// A worker for `cfg`; `target` was checked by the caller.
    #[expect(clippy::too_many_arguments, reason = "one call site, in `start`")]
    pub(crate) fn new(
        cfg: LinkConfig,
        target: Target,
        tls: Arc<ClientConfig>,
        outbox: Outbox,
        metrics: Arc<Metrics>,
        from_link: Sender<FromLink>,
        rx: Receiver<ToLink>,
        poller: Arc<Poller>,
    ) -> Worker {
        let backoff = Backoff::new(cfg.max_backoff, XorShift::from_time());
        Worker {
            url: display_url(&cfg.url),
            cfg,
            target,
            tls,
            outbox,
            metrics,
            from_link,
            rx,
            poller,
            events: Events::new(),
            state: RunnerState::default(),
            backoff,
            closing: None,
        }
    }

    /// The thread body: connect, serve, reconnect, until shut down.
    pub(crate) fn run(mut self) {
        let mut after_failure = false;
        loop {
            self.take_messages_offline();
            if self.should_exit_offline() {
                break;
            }
            if after_failure {
                self.metrics.inc_reconnects();
            }
            let end = match self.connect() {
                Ok(ws) => self.session(ws),
                Err(e) => {
                    let failure = if e.is_auth() {
                        Failure::Auth
                    } else {
                        Failure::Ordinary
                    };
                    let delay = self.backoff.next_delay(failure);
                    if e.is_auth() {
                        log::error!(
                            "cannot connect to the control plane at {}: {e}; retrying in {:.1}s",
                            self.url,
                            delay.as_secs_f64()
                        );
                    } else {
                        log::warn!(
                            "cannot connect to the control plane at {}: {e}; retrying in {:.1}s",
                            self.url,
                            delay.as_secs_f64()
                        );
                    }
                    after_failure = true;
                    self.wait_offline(delay);
                    continue;
                }
            };
            match end {
                End::Shutdown => break,
                End::Lost { failure, up } => {
                    if Backoff::should_reset(up) {
                        self.backoff.reset();
                    }
                    let delay = self.backoff.next_delay(failure);
                    log::info!(
                        "reconnecting to {} in {:.1}s",
                        self.url,
                        delay.as_secs_f64()
                    );
                    after_failure = true;
                    self.wait_offline(delay);
                }
            }
        }
        log::info!("control-plane link closed");
    }

    /// Whether the thread may end while disconnected: shutdown requested
    /// and its deadline passed, or nothing left to deliver.
    fn should_exit_offline(&self) -> bool {
        match self.closing {
            None => false,
            Some(deadline) => {
                Instant::now() >= deadline
                    || (self.outbox.unacked() == 0 && self.outbox.held_jobs().is_empty())
            }
        }
    }

    /// Note a shutdown request (the earliest deadline wins).
    fn close_by(&mut self, deadline: Instant) {
        self.closing = Some(self.closing.map_or(deadline, |d| d.min(deadline)));
    }

    /// Take every waiting message while no connection is up: control
    /// frames are dropped (the server re-assigns on reconnect).
    fn take_messages_offline(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(ToLink::Frame(frame)) => {
                    log::debug!(
                        "not connected: dropping a control frame of {} bytes",
                        frame.len()
                    );
                }
                Ok(ToLink::Track(stream)) => self.outbox.track(stream),
                Ok(ToLink::State(state)) => self.state = state,
                Ok(ToLink::Close { deadline }) => self.close_by(deadline),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // Every `Link` is gone: nobody can ask us to close any more.
                    self.close_by(Instant::now());
                    break;
                }
            }
        }
    }

    /// Wait `delay` (or until shutdown makes waiting pointless) while
    /// still taking messages.
    fn wait_offline(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        loop {
            let until = self.closing.map_or(until, |d| d.min(until));
            let now = Instant::now();
            if now >= until || self.should_exit_offline() {
                return;
            }
            self.events.clear();
            if let Err(e) = self.poller.wait(&mut self.events, Some(until - now)) {
                log::debug!("poller wait: {e}");
            }
            self.take_messages_offline();
        }
    }

    /// One connection attempt: TCP (through the proxy when one applies),
    /// TLS for wss, the WebSocket handshake with our headers.
    fn connect(&self) -> Result<Ws, ConnectError> {
        let budget = match self.closing {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(CONNECT_TIMEOUT),
            None => CONNECT_TIMEOUT,
        };
        if budget.is_zero() {
            return Err(ConnectError::Timeout(
                "connecting before the shutdown deadline",
            ));
        }
        let t = &self.target;
        let proxy = proxy::select(&self.cfg.proxy, t.tls, &t.host).map_err(ConnectError::Config)?;
        let (dial_host, dial_port) = match &proxy {
            Some(p) => (p.host.as_str(), p.port),
            None => (t.host.as_str(), t.port),
        };
        let mut tcp = dial(dial_host, dial_port, budget)?;
        let handshake_timeout = Some(budget.min(HANDSHAKE_TIMEOUT));
        let setup = |e: io::Error| ConnectError::Connect(format!("socket setup failed: {e}"));
        tcp.set_nodelay(true).map_err(setup)?;
        tcp.set_read_timeout(handshake_timeout).map_err(setup)?;
        tcp.set_write_timeout(handshake_timeout).map_err(setup)?;
        if let Some(p) = &proxy {
            proxy::tunnel(&mut tcp, p, &t.host, t.port).map_err(|e| {
                if would_block(&e) {
                    ConnectError::Timeout("the proxy CONNECT")
                } else {
                    ConnectError::Proxy(format!(
                        "through the proxy {}:{} ({}): {e}",
                        p.host, p.port, p.var
                    ))
                }
            })?;
        }
        let request = self.request()?;
        match tungstenite::client_tls_with_config(
            request,
            tcp,
            Some(ws_config()),
            Some(Connector::Rustls(self.tls.clone())),
        ) {
            Ok((ws, _response)) => Ok(ws),
            Err(HandshakeError::Interrupted(_)) => {
                Err(ConnectError::Timeout("the TLS/WebSocket handshake"))
            }
            Err(HandshakeError::Failure(e)) => Err(classify(e)),
        }
    }

    /// The handshake request with protocol.md §1's headers.
    fn request(&self) -> Result<Request<()>, ConnectError> {
        let mut request = self.cfg.url.as_str().into_client_request().map_err(|e| {
            ConnectError::Config(format!("bad control-plane URL {}: {e}", self.url))
        })?;
        let value = |var: &str, v: &str| {
            HeaderValue::from_str(v).map_err(|_| {
                ConnectError::Config(format!(
                    "{var} contains characters that cannot be sent in an HTTP header"
                ))
            })
        };
        let mut auth = value("ADOS_TOKEN", &format!("Bearer {}", self.cfg.token))?;
        auth.set_sensitive(true);
        let headers = request.headers_mut();
        headers.insert(header::AUTHORIZATION, auth);
        headers.insert(
            "x-ados-runner-id",
            value("ADOS_RUNNER_ID", &self.cfg.runner_id)?,
        );
        if let Some(tenant) = &self.cfg.tenant_id {
            headers.insert("x-ados-tenant-id", value("ADOS_TENANT_ID", tenant)?);
        }
        headers.insert(
            header::USER_AGENT,
            value("version", &format!("ados-work-runner/{}", crate::VERSION))?,
        );
        Ok(request)
    }

    /// Serve one connection until it is lost or we close it.
    fn session(&mut self, mut ws: Ws) -> End {
        let now = Instant::now();
        let mut s = Session {
            welcomed: false,
            welcomed_at: None,
            heartbeat: DEFAULT_HEARTBEAT,
            last_rx: now,
            next_beat: None,
            want_write: false,
            outbox_drained: false,
            close_by: None,
            server_close: None,
            read_more: false,
        };
        log::debug!("WebSocket to {} open; sending hello", self.url);
        // `hello` first, on the still-blocking socket (the write timeout
        // bounds it): nothing else may precede it.
        let hello = proto::hello(&self.cfg.hello, &self.outbox.held_jobs());
        if let Err(e) = ws.send(Message::text(hello)) {
            log::warn!("connection to {} lost while sending hello: {e}", self.url);
            return s.lost(Failure::Ordinary);
        }
        let registration = match self.register(&ws) {
            Ok(r) => r,
            Err(e) => {
                log::error!("cannot watch the control-plane socket: {e}");
                return s.lost(Failure::Ordinary);
            }
        };
        let end = self.serve(&mut ws, &mut s, &registration);
        drop(registration);
        self.outbox.on_disconnect();
        if s.welcomed {
            self.metrics.set_connected(false);
            self.metrics.set_events_unacked(self.outbox.unacked());
            self.notify(FromLink::Disconnected);
        }
        end
    }

    /// Make the socket nonblocking and watch it.
    fn register(&self, ws: &Ws) -> io::Result<Registration> {
        let tcp = tcp_of(ws).ok_or_else(|| io::Error::other("unexpected stream type"))?;
        tcp.set_nonblocking(true)?;
        tcp.set_read_timeout(None)?;
        tcp.set_write_timeout(None)?;
        let fd = tcp.as_raw_fd();
        // SAFETY: the registration is dropped (deleting the fd from the
        // poller) before `ws`, which owns the fd, in `session`.
        unsafe { self.poller.add(fd, Event::readable(SOCKET_KEY))? };
        Ok(Registration {
            poller: self.poller.clone(),
            fd,
        })
    }

    fn notify(&self, msg: FromLink) {
        if self.from_link.send(msg).is_err() {
            log::debug!("dispatcher gone; link message dropped");
        }
    }

    /// Queue a message; `WouldBlock` means "buffered, wait for writable".
    fn write(&self, ws: &mut Ws, s: &mut Session, msg: Message) -> Result<(), End> {
        if s.close_by.is_some() {
            return Ok(());
        }
        match ws.write(msg) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if would_block(&e) => {
                s.want_write = true;
                Ok(())
            }
            Err(e) => {
                log::warn!("connection to {} lost while sending: {e}", self.url);
                Err(s.lost(Failure::Ordinary))
            }
        }
    }

    fn flush(&self, ws: &mut Ws, s: &mut Session) -> Result<(), End> {
        match ws.flush() {
            Ok(()) => {
                s.want_write = false;
                Ok(())
            }
            Err(tungstenite::Error::Io(e)) if would_block(&e) => {
                s.want_write = true;
                Ok(())
            }
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed)
                if s.close_by.is_some() =>
            {
                Err(End::Shutdown)
            }
            Err(e) => {
                log::warn!("connection to {} lost while sending: {e}", self.url);
                Err(s.lost(Failure::Ordinary))
            }
        }
    }

    fn send_heartbeat(&self, ws: &mut Ws, s: &mut Session) -> Result<(), End> {
        self.write(ws, s, Message::text(proto::heartbeat(&self.state)))
    }

    /// The event loop of one connection.
    fn serve(&mut self, ws: &mut Ws, s: &mut Session, reg: &Registration) -> End {
        loop {
            if let Err(end) = self.turn(ws, s) {
                return end;
            }
            if s.read_more {
                continue;
            }
            if let Err(e) = reg.interest(s.want_write) {
                log::warn!("cannot re-arm the control-plane socket: {e}");
                return s.lost(Failure::Ordinary);
            }
            let now = Instant::now();
            let mut wake = s.last_rx + 3 * s.heartbeat;
            if let Some(t) = s.next_beat {
                wake = wake.min(t);
            }
            if let Some(t) = s.close_by {
                wake = wake.min(t);
            } else if let Some(t) = self.closing {
                wake = wake.min(t);
            }
            self.events.clear();
            if let Err(e) = self
                .poller
                .wait(&mut self.events, Some(wake.saturating_duration_since(now)))
            {
                if e.kind() != io::ErrorKind::Interrupted {
                    log::warn!("poller wait failed: {e}");
                    return s.lost(Failure::Ordinary);
                }
            }
        }
    }

    /// One pass over everything that may need doing; `Err` ends the session.
    fn turn(&mut self, ws: &mut Ws, s: &mut Session) -> Result<(), End> {
        // 1. Messages from other threads.
        loop {
            match self.rx.try_recv() {
                Ok(ToLink::Frame(frame)) => {
                    if !s.welcomed {
                        // "Connected" means welcomed, for the dispatcher too.
                        log::debug!(
                            "not welcomed yet: dropping a control frame of {} bytes",
                            frame.len()
                        );
                    } else if frame.len() > MAX_OUTBOUND {
                        log::error!(
                            "refusing to send a control frame of {} bytes (limit {MAX_OUTBOUND})",
                            frame.len()
                        );
                    } else {
                        self.write(ws, s, Message::text(frame))?;
                    }
                }
                Ok(ToLink::Track(stream)) => {
                    self.outbox.track(stream);
                    s.outbox_drained = false;
                }
                Ok(ToLink::State(state)) => {
                    self.state = state;
                    if s.welcomed {
                        self.send_heartbeat(ws, s)?;
                    }
                }
                Ok(ToLink::Close { deadline }) => self.close_by(deadline),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if self.closing.is_none() {
                        self.close_by(Instant::now());
                    }
                    break;
                }
            }
        }

        // 2. Read until WouldBlock, but not forever: a flooding server must
        // not starve heartbeats and the outbox. When the budget runs out,
        // the next turn comes at once (rustls may hold decrypted bytes that
        // epoll would never report).
        s.read_more = false;
        let mut budget = READS_PER_TURN;
        loop {
            if budget == 0 {
                s.read_more = true;
                break;
            }
            budget -= 1;
            match ws.read() {
                Ok(msg) => {
                    s.last_rx = Instant::now();
                    self.on_message(ws, s, msg)?;
                }
                Err(tungstenite::Error::Io(e)) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(self.closed(s));
                }
                Err(tungstenite::Error::Capacity(e)) => {
                    log::warn!(
                        "the control plane at {} sent a frame over the {} MiB limit ({e}); \
                         closing with 1009 and reconnecting",
                        self.url,
                        MAX_INBOUND >> 20
                    );
                    let _ = ws.close(Some(CloseFrame {
                        code: CloseCode::Size,
                        reason: "frame larger than 16 MiB".into(),
                    }));
                    let _ = ws.flush();
                    return Err(s.lost(Failure::Ordinary));
                }
                Err(e) => {
                    if s.close_by.is_some() {
                        // Shutting down: the server may drop the TCP
                        // connection instead of answering our close.
                        return Err(End::Shutdown);
                    }
                    log::warn!("connection to {} lost: {e}", self.url);
                    return Err(s.lost(Failure::Ordinary));
                }
            }
        }

        // 3. Flush what is pending, then deliver the outbox while the
        // socket takes it. Nothing from the journal before `welcome`.
        self.flush(ws, s)?;
        if s.welcomed && !s.want_write && s.close_by.is_none() {
            s.outbox_drained = false;
            loop {
                if s.want_write {
                    break;
                }
                let Some(frame) = self.outbox.next_frame() else {
                    s.outbox_drained = true;
                    break;
                };
                if frame.len() > MAX_OUTBOUND {
                    log::error!(
                        "skipping a journal frame of {} bytes (limit {MAX_OUTBOUND}): \
                         events are split before they are journaled, so this is a bug",
                        frame.len()
                    );
                    continue;
                }
                self.write(ws, s, Message::text(frame))?;
            }
        }

        // 4. Heartbeat: a WebSocket ping and a `heartbeat` frame.
        let now = Instant::now();
        if let Some(t) = s.next_beat {
            if now >= t {
                self.write(ws, s, Message::Ping(Default::default()))?;
                self.send_heartbeat(ws, s)?;
                s.next_beat = Some(if now >= t + s.heartbeat {
                    now + s.heartbeat
                } else {
                    t + s.heartbeat
                });
            }
        }

        // 5. Dead connection: no frame of any kind for 3 × heartbeat.
        if s.close_by.is_none() && now.duration_since(s.last_rx) >= 3 * s.heartbeat {
            log::warn!(
                "no frame from the control plane at {} for {}s; reconnecting",
                self.url,
                now.duration_since(s.last_rx).as_secs()
            );
            return Err(s.lost(Failure::Ordinary));
        }

        // 6. Shutdown: close once everything is delivered and acknowledged,
        // or at the deadline; then wait a little for the server's answer.
        if let Some(deadline) = self.closing {
            match s.close_by {
                None => {
                    let delivered = s.welcomed
                        && s.outbox_drained
                        && !s.want_write
                        && self.outbox.unacked() == 0;
                    let nothing_held =
                        self.outbox.unacked() == 0 && self.outbox.held_jobs().is_empty();
                    if now >= deadline || delivered || (!s.welcomed && nothing_held) {
                        log::debug!("closing the connection to {}", self.url);
                        match ws.close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "runner shutting down".into(),
                        })) {
                            Ok(()) => {}
                            Err(tungstenite::Error::Io(e)) if would_block(&e) => {}
                            Err(_) => return Err(End::Shutdown),
                        }
                        // Past the deadline the server still gets a moment
                        // to answer; the close handshake is cheap.
                        let left = deadline.saturating_duration_since(now);
                        s.close_by =
                            Some(now + CLOSE_GRACE.min(left.max(Duration::from_millis(200))));
                        self.flush(ws, s)?;
                    }
                }
                Some(t) if now >= t => return Err(End::Shutdown),
                Some(_) => {}
            }
        }
        self.flush(ws, s)?;
        Ok(())
    }

    /// The connection closed (after a close frame or not).
    fn closed(&self, s: &Session) -> End {
        if s.close_by.is_some() {
            return End::Shutdown;
        }
        match &s.server_close {
            Some((code, _)) if AUTH_CLOSE_CODES.contains(code) => s.lost(Failure::Auth),
            Some(_) => s.lost(Failure::Ordinary),
            None => {
                log::warn!("the control plane at {} closed the connection", self.url);
                s.lost(Failure::Ordinary)
            }
        }
    }

    fn on_message(&mut self, ws: &mut Ws, s: &mut Session, msg: Message) -> Result<(), End> {
        match msg {
            Message::Text(text) => match proto::parse_server_message(text.as_str()) {
                Ok(ServerMessage::Welcome { heartbeat_s, acks }) => {
                    s.heartbeat = Duration::from_secs(heartbeat_s).min(MAX_HEARTBEAT);
                    if s.welcomed {
                        log::debug!("second welcome: only its heartbeat_s is applied");
                        return Ok(());
                    }
                    log::info!(
                        "connected to the control plane at {} (heartbeat {heartbeat_s}s)",
                        self.url
                    );
                    self.outbox.on_welcome(&acks);
                    // A result the server stored but whose ack was lost is
                    // acknowledged here: the dispatcher must forget the job
                    // too, as after an `ack`.
                    for released in self.outbox.take_released() {
                        self.notify(FromLink::Released(released));
                    }
                    s.welcomed = true;
                    s.welcomed_at = Some(Instant::now());
                    s.outbox_drained = false;
                    self.metrics.set_connected(true);
                    self.metrics.set_events_unacked(self.outbox.unacked());
                    self.notify(FromLink::Connected);
                    // The server learns our state at once, not a period later.
                    self.send_heartbeat(ws, s)?;
                    s.next_beat = Some(Instant::now() + s.heartbeat);
                }
                Ok(ServerMessage::Ack { job_id, seq }) => {
                    if let Some(released) = self.outbox.on_ack(&job_id, seq) {
                        self.notify(FromLink::Released(released));
                    }
                    self.metrics.set_events_unacked(self.outbox.unacked());
                }
                Ok(ServerMessage::Unknown(kind)) => {
                    log::debug!("ignoring a frame of unknown type `{kind}`");
                }
                Ok(other) => self.notify(FromLink::Message(other)),
                Err(e) => log::warn!(
                    "ignoring a frame from the control plane ({} bytes): {e}",
                    text.len()
                ),
            },
            Message::Binary(data) => log::warn!(
                "ignoring a binary frame of {} bytes from the control plane",
                data.len()
            ),
            Message::Close(frame) => {
                let (code, reason) = frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.as_str().to_string())
                });
                let what = match code {
                    4001 => "unauthorized: check ADOS_TOKEN",
                    4003 => "forbidden (tenant mismatch): check ADOS_TENANT_ID",
                    4009 => "another runner is connected with this ADOS_RUNNER_ID",
                    4000 => "protocol error",
                    _ => "closed",
                };
                if AUTH_CLOSE_CODES.contains(&code) {
                    log::error!(
                        "the control plane at {} closed the connection with {code} ({what}): {reason}",
                        self.url
                    );
                } else if s.close_by.is_none() {
                    log::warn!(
                        "the control plane at {} closed the connection with {code} ({what}): {reason}",
                        self.url
                    );
                }
                s.server_close = Some((code, reason));
            }
            // tungstenite answers pings itself; a pong only proves liveness.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
        Ok(())
    }
}

/// Resolve and connect with a timeout per address.
fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConnectError::Connect(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((addr, e)),
        }
    }
    Err(match last {
        Some((addr, e)) if would_block(&e) => {
            ConnectError::Connect(format!("connecting to {addr} timed out after {timeout:?}"))
        }
        Some((addr, e)) => ConnectError::Connect(format!("cannot connect to {addr}: {e}")),
        None => ConnectError::Connect(format!("{host} resolved to no address")),
    })
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
    }

    #[test]
    fn display_url_hides_userinfo() {
        assert_eq!(display_url("wss://u:secret@h:1/p?q"), "wss://h:1/p?q");
        assert_eq!(display_url("ws://h/p"), "ws://h/p");
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
