//! A control plane speaking `protocol.md`, for tests and for trying the
//! daemon by hand (`ados-control-plane`).
//!
//! Blocking threads: one accepts on `127.0.0.1` (or [`Options::host`]; port 0 or a fixed port),
//! one serves each WebSocket connection (plain or TLS with the test-only
//! certificate of [`crate::tls`]). What the runner sends is recorded
//! ([`ControlPlane::received`], [`ControlPlane::handshakes`],
//! [`ControlPlane::pings`]); tests wait with a deadline
//! ([`ControlPlane::wait_for`]) instead of sleeping.
//!
//! Like a real server it checks the bearer token (HTTP 401 otherwise),
//! answers `hello` with `welcome` (its `acks` list what it has stored of the
//! jobs the runner holds), stores `job.event`/`job.result` per job (the
//! highest seq received contiguously) and, with `auto_ack`, acks them.
//! With `ack_every > 1` it acks in batches, as a real server writing in
//! batches does, so there is an unacknowledged window that
//! [`ControlPlane::drop_connection_forgetting_unacked`] can lose (a server
//! that crashed before committing). [`ControlPlane::stored_frames`] is the
//! server's stored view of a job: every frame once, in seq order.
//! The newest connection is the "current" one that [`ControlPlane::send`]
//! and friends talk to.

use crossbeam_channel::{Receiver, Sender};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// The WebSocket path of protocol.md §1.
pub const WS_PATH: &str = "/api/v1/work/runners/ws";

/// How often a connection thread looks at its commands while idle.
const TICK: Duration = Duration::from_millis(5);

/// How to run the control plane.
#[derive(Clone, Debug)]
pub struct Options {
    /// The bearer token the runner must present (401 otherwise).
    pub token: String,
    /// `welcome.heartbeat_s`.
    pub heartbeat_s: u64,
    /// Ack every `job.event`/`job.result` (cumulatively) as it arrives.
    pub auto_ack: bool,
    /// Answer `hello` with `welcome`.
    pub welcome: bool,
    /// Serve wss with the test-only certificate.
    pub tls: bool,
    /// The port (0: any free port).
    pub port: u16,
    /// The address to listen on and put in the URLs: `127.0.0.1`, or the
    /// Docker bridge's gateway for a runner in a container.
    pub host: String,
    /// With `auto_ack`: ack once this many new frames of a job are stored
    /// (and at once when its result is stored). 0 and 1 ack every frame.
    pub ack_every: u64,
    /// Keep every `job.event` in [`ControlPlane::received`]. With `false`
    /// events are only counted ([`ControlPlane::text_frames`]) and kept in
    /// the stored view, which keeps a flood of events cheap to wait on.
    pub record_events: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            token: "test-token".into(),
            heartbeat_s: 15,
            auto_ack: true,
            welcome: true,
            tls: false,
            port: 0,
            host: "127.0.0.1".into(),
            ack_every: 1,
            record_events: true,
        }
    }
}

/// One text frame the runner sent.
#[derive(Clone, Debug)]
pub struct Received {
    /// The connection it came on (1, 2, … in accept order).
    pub conn: usize,
    /// When it arrived.
    pub at: Instant,
    /// The frame as JSON (a JSON string holding the raw text if it was
    /// not JSON).
    pub value: Value,
}

/// One handshake attempt.
#[derive(Clone, Debug)]
pub struct Handshake {
    /// When it arrived.
    pub at: Instant,
    /// The request path.
    pub path: String,
    /// Request headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// 101 when accepted, else the refusal status.
    pub status: u16,
}

impl Handshake {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

enum Cmd {
    Text(String),
    Binary(Vec<u8>),
    Close(u16, String),
    Drop,
    DropForgetting,
    Silent(bool),
}

/// What the server stored of one job.
#[derive(Default)]
struct JobStore {
    /// The highest seq stored contiguously from 1.
    have: u64,
    /// The highest seq acknowledged (by `ack` or in `welcome`).
    acked: u64,
    /// The stored frames, seq 1 first (`frames[i]` has seq `i + 1`).
    frames: Vec<Value>,
}

impl JobStore {
    /// Returns how many stored frames were forgotten.
    fn forget_unacked(&mut self) -> usize {
        let lost = (self.have - self.acked) as usize;
        self.have = self.acked;
        self.frames.truncate(self.acked as usize);
        lost
    }
}

#[derive(Default)]
struct Shared {
    frames: Mutex<Vec<Received>>,
    pings: Mutex<Vec<(usize, Instant)>>,
    handshakes: Mutex<Vec<Handshake>>,
    /// Senders to every live connection, newest last.
    conns: Mutex<Vec<(usize, Sender<Cmd>)>>,
    /// Per job: what is stored (frames contiguous from seq 1).
    stored: Mutex<BTreeMap<String, JobStore>>,
    /// Text frames received (recorded or not).
    text_frames: AtomicUsize,
    /// `job.event`/`job.result` frames whose seq was already stored.
    duplicates: AtomicUsize,
    /// `job.event`/`job.result` frames whose seq skipped one not stored yet.
    gaps: AtomicUsize,
    /// Stored frames forgotten by `forget_unacked`.
    forgotten: AtomicUsize,
    /// WebSocket connections accepted so far.
    accepted: AtomicUsize,
    stopping: AtomicBool,
}

/// A running control plane. Dropping it stops it.
pub struct ControlPlane {
    opts: Options,
    port: u16,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl ControlPlane {
    /// Start listening.
    ///
    /// # Panics
    /// The port cannot be bound.
    pub fn start(opts: Options) -> ControlPlane {
        let mut cp = ControlPlane {
            port: opts.port,
            opts,
            shared: Arc::new(Shared::default()),
            accept: None,
            workers: Arc::new(Mutex::new(Vec::new())),
        };
        cp.listen();
        cp
    }

    fn listen(&mut self) {
        let host = self.opts.host.as_str();
        let listener = TcpListener::bind((host, self.port))
            .unwrap_or_else(|e| panic!("cannot bind {host}:{}: {e}", self.port));
        self.port = listener.local_addr().expect("bound").port();
        self.shared.stopping.store(false, Ordering::SeqCst);
        let shared = self.shared.clone();
        let opts = self.opts.clone();
        let workers = self.workers.clone();
        let tls = opts.tls.then(crate::tls::server_config);
        self.accept = Some(
            std::thread::Builder::new()
                .name("cp-accept".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if shared.stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        let (shared, opts, tls) = (shared.clone(), opts.clone(), tls.clone());
                        let h = std::thread::Builder::new()
                            .name("cp-conn".into())
                            .spawn(move || connection(stream, &shared, &opts, tls))
                            .expect("spawn");
                        workers.lock().unwrap().push(h);
                    }
                })
                .expect("spawn"),
        );
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What `ADOS_API_URL` gets: `http(s)://127.0.0.1:PORT` (or the host).
    pub fn url(&self) -> String {
        let scheme = if self.opts.tls { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.opts.host, self.port)
    }

    /// The WebSocket URL the runner connects to.
    pub fn ws_url(&self) -> String {
        let scheme = if self.opts.tls { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{WS_PATH}", self.opts.host, self.port)
    }

    /// The options it runs with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Every text frame received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.frames.lock().unwrap().clone()
    }

    /// Every text frame received so far, as JSON.
    pub fn frames(&self) -> Vec<Value> {
        self.received().into_iter().map(|r| r.value).collect()
    }

    /// How many text frames have been received.
    pub fn frame_count(&self) -> usize {
        self.shared.frames.lock().unwrap().len()
    }

    /// Every handshake attempt (accepted or refused).
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.shared.handshakes.lock().unwrap().clone()
    }

    /// Every WebSocket ping received: (connection, when).
    pub fn pings(&self) -> Vec<(usize, Instant)> {
        self.shared.pings.lock().unwrap().clone()
    }

    /// WebSocket connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// The highest seq stored contiguously for `job_id`.
    pub fn stored_seq(&self, job_id: &str) -> u64 {
        self.shared
            .stored
            .lock()
            .unwrap()
            .get(job_id)
            .map_or(0, |j| j.have)
    }

    /// The frames stored for `job_id`: seq 1, 2, … each once, as a server
    /// that deduplicates by seq keeps them.
    pub fn stored_frames(&self, job_id: &str) -> Vec<Value> {
        self.shared
            .stored
            .lock()
            .unwrap()
            .get(job_id)
            .map(|j| j.frames.clone())
            .unwrap_or_default()
    }

    /// The highest seq acknowledged for `job_id`.
    pub fn acked_seq(&self, job_id: &str) -> u64 {
        self.shared
            .stored
            .lock()
            .unwrap()
            .get(job_id)
            .map_or(0, |j| j.acked)
    }

    /// Forget every stored frame not acknowledged yet (a server that
    /// crashed before committing them). Only safe while no runner is
    /// connected; see [`ControlPlane::drop_connection_forgetting_unacked`].
    pub fn forget_unacked(&self) {
        forget_unacked(&self.shared);
    }

    /// Text frames received so far, also those not recorded
    /// (`record_events: false`).
    pub fn text_frames(&self) -> usize {
        self.shared.text_frames.load(Ordering::SeqCst)
    }

    /// `job.event`/`job.result` frames received again after being stored
    /// (a resend after a reconnect: allowed).
    pub fn duplicates(&self) -> usize {
        self.shared.duplicates.load(Ordering::SeqCst)
    }

    /// Stored frames forgotten so far by the `forget` knobs (the runner had
    /// to send them again).
    pub fn forgotten(&self) -> usize {
        self.shared.forgotten.load(Ordering::SeqCst)
    }

    /// `job.event`/`job.result` frames that arrived before the seq just
    /// above what was stored (the runner skipped a frame: never allowed).
    pub fn gaps(&self) -> usize {
        self.shared.gaps.load(Ordering::SeqCst)
    }

    /// Forget what was stored (a server that lost its data).
    pub fn forget_stored(&self) {
        self.shared.stored.lock().unwrap().clear();
    }

    /// Poll `cond` until it holds or `timeout` passes; whether it held.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&ControlPlane) -> bool,
    ) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The first frame (from index `from` on) matching `pred`, waiting up
    /// to `timeout`; `None` on timeout.
    pub fn find_after(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> Option<(usize, Received)> {
        let mut found = None;
        self.wait_until(timeout, |cp| {
            let frames = cp.shared.frames.lock().unwrap();
            found = frames
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, r)| pred(r))
                .map(|(i, r)| (i, r.clone()));
            found.is_some()
        });
        found
    }

    /// The first frame matching `pred`.
    ///
    /// # Panics
    /// None arrived within `timeout` (the message lists what did).
    pub fn wait_for(&self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        self.wait_for_after(0, pred, timeout)
    }

    /// The first frame from index `from` on matching `pred`.
    ///
    /// # Panics
    /// None arrived within `timeout`.
    pub fn wait_for_after(
        &self,
        from: usize,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        match self.find_after(from, timeout, |r| pred(&r.value)) {
            Some((_, r)) => r.value,
            None => panic!(
                "no matching frame within {timeout:?}; received: {:?}",
                self.frames()
            ),
        }
    }

    /// The first frame of type `kind` from index `from` on.
    ///
    /// # Panics
    /// None arrived within `timeout`.
    pub fn wait_for_type(&self, from: usize, kind: &str, timeout: Duration) -> Value {
        self.wait_for_after(from, |v| v["type"] == kind, timeout)
    }

    fn command(&self, cmd: Cmd) -> bool {
        let conns = self.shared.conns.lock().unwrap();
        match conns.last() {
            Some((_, tx)) => tx.send(cmd).is_ok(),
            None => false,
        }
    }

    /// Send a JSON frame on the current connection; whether there was one.
    pub fn send(&self, frame: Value) -> bool {
        self.command(Cmd::Text(frame.to_string()))
    }

    /// Send any text.
    pub fn send_raw(&self, text: &str) -> bool {
        self.command(Cmd::Text(text.to_string()))
    }

    /// Send a binary frame.
    pub fn send_binary(&self, data: Vec<u8>) -> bool {
        self.command(Cmd::Binary(data))
    }

    /// `job.assign` with `job` as the spec.
    pub fn assign(&self, job: Value) -> bool {
        self.send(json!({"type":"job.assign","job":job}))
    }

    /// The `job.result` of `job_id`, waiting up to `timeout` for it.
    pub fn result_of(&self, job_id: &str, timeout: Duration) -> Value {
        self.wait_for(
            |v| v["type"] == "job.result" && v["job_id"] == job_id,
            timeout,
        )
    }

    /// Every `job.event` of `job_id` received so far, as JSON text run
    /// together (to search for what a job printed, or must not have).
    pub fn events_text(&self, job_id: &str) -> String {
        self.frames()
            .into_iter()
            .filter(|v| v["type"] == "job.event" && v["job_id"] == job_id)
            .map(|v| v.to_string())
            .collect()
    }

    /// `job.assign` on connection `conn` rather than the newest: with
    /// several runners connected, to the one [`ControlPlane::conn_of`]
    /// names. Whether that connection is still open.
    pub fn assign_on(&self, conn: usize, job: Value) -> bool {
        let conns = self.shared.conns.lock().unwrap();
        conns
            .iter()
            .find(|(c, _)| *c == conn)
            .is_some_and(|(_, tx)| {
                tx.send(Cmd::Text(
                    json!({"type":"job.assign","job":job}).to_string(),
                ))
                .is_ok()
            })
    }

    /// The connection of the latest `hello` from `runner_id`.
    pub fn conn_of(&self, runner_id: &str) -> Option<usize> {
        self.received()
            .iter()
            .rev()
            .find(|r| r.value["type"] == "hello" && r.value["runner_id"] == runner_id)
            .map(|r| r.conn)
    }

    /// `job.cancel`.
    pub fn cancel(&self, job_id: &str) -> bool {
        self.send(json!({"type":"job.cancel","job_id":job_id,"reason":"user"}))
    }

    /// Close the current connection with a close frame.
    pub fn close_with(&self, code: u16, reason: &str) -> bool {
        self.command(Cmd::Close(code, reason.to_string()))
    }

    /// Close the current connection's TCP socket abruptly (no close frame).
    pub fn drop_connection(&self) -> bool {
        self.command(Cmd::Drop)
    }

    /// Drop the current connection like [`ControlPlane::drop_connection`]
    /// and, in the same step (before the runner can reconnect), forget what
    /// was stored but not acknowledged.
    pub fn drop_connection_forgetting_unacked(&self) -> bool {
        self.command(Cmd::DropForgetting)
    }

    /// Make the current connection stop answering anything (no frames, no
    /// pongs) while keeping the socket open; or answer again.
    pub fn go_silent(&self, silent: bool) -> bool {
        self.command(Cmd::Silent(silent))
    }

    /// Stop listening and drop every connection (the port is freed).
    pub fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            // Unblock `accept()`.
            let host = self
                .opts
                .host
                .parse()
                .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
            let _ = TcpStream::connect_timeout(
                &SocketAddr::new(host, self.port),
                Duration::from_secs(1),
            );
            let _ = accept.join();
        }
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock().unwrap());
        for w in workers {
            let _ = w.join();
        }
        self.shared.conns.lock().unwrap().clear();
    }

    /// Listen again on the same port (after [`ControlPlane::stop`]).
    pub fn restart_same_port(&mut self) {
        self.stop();
        self.listen();
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serve one TCP connection: TLS if configured, the handshake, then frames.
fn connection(
    tcp: TcpStream,
    shared: &Shared,
    opts: &Options,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = tcp.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(control) = tcp.try_clone() else { return };
    match tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            serve(rustls::StreamOwned::new(conn, tcp), control, shared, opts);
        }
        None => {
            // `ados-work-runner check` probes `GET /api/v1/health` before the
            // WebSocket: answer it like the real API (plain HTTP only).
            let mut head = [0u8; 19];
            if let Ok(n) = tcp.peek(&mut head) {
                if head[..n].starts_with(b"GET /api/v1/health") {
                    let mut tcp = tcp;
                    let body = r#"{"status":"ok"}"#;
                    let _ = write!(
                        tcp,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
            }
            serve(tcp, control, shared, opts)
        }
    }
}

#[expect(
    clippy::result_large_err,
    reason = "the callback's error type is tungstenite's ErrorResponse"
)]
fn serve<S: Read + Write>(stream: S, control: TcpStream, shared: &Shared, opts: &Options) {
    let token = opts.token.clone();
    let callback = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let auth_ok = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            == Some(format!("Bearer {token}").as_str());
        let path_ok = req.uri().path() == WS_PATH;
        let status = match (path_ok, auth_ok) {
            (false, _) => 404,
            (true, false) => 401,
            (true, true) => 101,
        };
        shared.handshakes.lock().unwrap().push(Handshake {
            at: Instant::now(),
            path: req.uri().path().to_string(),
            headers,
            status,
        });
        if status == 101 {
            Ok(resp)
        } else {
            let mut refusal = ErrorResponse::new(Some(format!("refused: {status}")));
            *refusal.status_mut() =
                tungstenite::http::StatusCode::from_u16(status).expect("valid status");
            Err(refusal)
        }
    };
    // A server must accept what it sends us plus a margin; the runner
    // never sends more than 1 MiB.
    let config = WebSocketConfig::default();
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(stream, callback, Some(config)) else {
        return;
    };
    let _ = control.set_read_timeout(Some(TICK));
    let id = shared.accepted.fetch_add(1, Ordering::SeqCst) + 1;
    let (tx, rx) = crossbeam_channel::unbounded();
    shared.conns.lock().unwrap().push((id, tx));
    run_connection(&mut ws, &rx, id, shared, opts);
    let _ = control.shutdown(Shutdown::Both);
    shared.conns.lock().unwrap().retain(|(c, _)| *c != id);
}

/// What a command asks of the connection loop.
enum Next {
    Go,
    End,
}

fn run_connection<S: Read + Write>(
    ws: &mut WebSocket<S>,
    rx: &Receiver<Cmd>,
    id: usize,
    shared: &Shared,
    opts: &Options,
) {
    let mut silent = false;
    let handle = |ws: &mut WebSocket<S>, cmd: Cmd, silent: &mut bool| -> Next {
        let sent = match cmd {
            Cmd::Text(t) => ws.send(Message::text(t)),
            Cmd::Binary(b) => ws.send(Message::binary(b)),
            Cmd::Close(code, reason) => ws.close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            })),
            Cmd::Drop => return Next::End,
            Cmd::DropForgetting => {
                forget_unacked(shared);
                return Next::End;
            }
            Cmd::Silent(s) => {
                *silent = s;
                Ok(())
            }
        };
        match sent {
            Ok(()) => Next::Go,
            Err(tungstenite::Error::Io(e)) if is_tick(&e) => Next::Go,
            Err(_) => Next::End,
        }
    };
    loop {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        if silent {
            match rx.recv_timeout(TICK) {
                Ok(cmd) => {
                    if let Next::End = handle(ws, cmd, &mut silent) {
                        return;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
            }
            continue;
        }
        while let Ok(cmd) = rx.try_recv() {
            if let Next::End = handle(ws, cmd, &mut silent) {
                return;
            }
        }
        if silent {
            continue;
        }
        match ws.read() {
            Ok(Message::Text(text)) => {
                let value = serde_json::from_str::<Value>(text.as_str())
                    .unwrap_or_else(|_| Value::String(text.as_str().to_string()));
                let replies = respond(&value, shared, opts);
                shared.text_frames.fetch_add(1, Ordering::SeqCst);
                if opts.record_events || value["type"] != "job.event" {
                    shared.frames.lock().unwrap().push(Received {
                        conn: id,
                        at: Instant::now(),
                        value,
                    });
                }
                for reply in replies {
                    if ws.send(Message::text(reply.to_string())).is_err() {
                        return;
                    }
                }
            }
            Ok(Message::Ping(_)) => shared.pings.lock().unwrap().push((id, Instant::now())),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if is_tick(&e) => {}
            Err(_) => return,
        }
    }
}

fn forget_unacked(shared: &Shared) {
    let lost: usize = shared
        .stored
        .lock()
        .unwrap()
        .values_mut()
        .map(JobStore::forget_unacked)
        .sum();
    shared.forgotten.fetch_add(lost, Ordering::SeqCst);
}

fn is_tick(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// What a real server would answer to `frame`.
fn respond(frame: &Value, shared: &Shared, opts: &Options) -> Vec<Value> {
    match frame["type"].as_str() {
        Some("hello") if opts.welcome => {
            let mut stored = shared.stored.lock().unwrap();
            // What `welcome` lists counts as acknowledged.
            let acks: Vec<Value> = frame["jobs"]
                .as_array()
                .map(|jobs| {
                    jobs.iter()
                        .filter_map(|j| j["job_id"].as_str())
                        .filter_map(|id| {
                            stored.get_mut(id).map(|j| {
                                j.acked = j.have;
                                json!({"job_id":id,"seq":j.have})
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            vec![json!({"type":"welcome","heartbeat_s":opts.heartbeat_s,"acks":acks})]
        }
        Some("job.event" | "job.result") => {
            let (Some(job), Some(seq)) = (frame["job_id"].as_str(), frame["seq"].as_u64()) else {
                return Vec::new();
            };
            let mut stored = shared.stored.lock().unwrap();
            let j = stored.entry(job.to_string()).or_default();
            if seq == j.have + 1 {
                j.have = seq;
                j.frames.push(frame.clone());
            } else if seq <= j.have {
                shared.duplicates.fetch_add(1, Ordering::SeqCst);
            } else {
                shared.gaps.fetch_add(1, Ordering::SeqCst);
            }
            let result_stored = j.frames.last().is_some_and(|f| f["type"] == "job.result");
            let due = if opts.ack_every <= 1 {
                j.have > 0
            } else {
                j.have > j.acked && (j.have - j.acked >= opts.ack_every || result_stored)
            };
            if opts.auto_ack && due {
                j.acked = j.have;
                vec![json!({"type":"ack","job_id":job,"seq":j.have})]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}
