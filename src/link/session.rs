//! One connection of the link thread ([`super::worker`]), from `hello` to
//! its end (protocol.md §1–3): say `hello`, wait for `welcome`, then
//! deliver the outbox, send heartbeats, hand server messages to the
//! dispatcher, until the connection is lost or closed for shutdown.
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
//! # Extras beyond protocol.md
//!
//! A `heartbeat` is sent right after `welcome` (the server learns the
//! runner's state at once), and at once whenever [`ToLink::State`] brings a
//! new state.
use super::backoff::Failure;
use super::connect::{tcp_of, would_block, Ws, MAX_INBOUND};
use super::proto::{self, ServerMessage};
use super::worker::{End, Worker};
use super::{FromLink, ToLink};
use crossbeam_channel::TryRecvError;
use polling::{Event, Poller};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

/// The runner never sends a frame larger than this (protocol.md §1).
pub const MAX_OUTBOUND: usize = 1 << 20;
/// Heartbeat interval until `welcome` says otherwise.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(proto::HEARTBEAT_DEFAULT_S);
/// The longest heartbeat interval accepted from `welcome` (already clamped
/// by [`proto`]; kept here so the deadline arithmetic never overflows).
const MAX_HEARTBEAT: Duration = Duration::from_secs(proto::HEARTBEAT_MAX_S);
/// How long to wait for the server's answer to our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Close codes after which retrying fast is pointless (protocol.md §1).
const AUTH_CLOSE_CODES: [u16; 3] = [4001, 4003, 4009];
/// Messages read per turn of the loop before other work gets a go.
const READS_PER_TURN: usize = 256;
/// The poller key of the socket.
const SOCKET_KEY: usize = 0;

/// The per-connection state.
pub(super) struct Session {
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

impl Worker {
    /// Serve one connection until it is lost or we close it.
    pub(super) fn session(&mut self, mut ws: Ws) -> End {
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
