//! `/health` and `/metrics` over HTTP (`ADOS_HEALTH_ADDR`), for container
//! health checks, orchestrators and Prometheus; plus the client side used
//! by `ados-work-runner healthcheck` (a HEALTHCHECK in a FROM-scratch image
//! has no curl).
//!
//! The decision what `/health` says is a pure function of a
//! [`HealthSnapshot`] and the time ([`health_response`]); the server only
//! reads the shared [`Metrics`] and never blocks a job or the link.
//!
//! # The server
//!
//! Anyone who can reach the port can talk to it, so every resource it
//! spends on a client is bounded:
//!
//! - **One thread** (`ados-health`) serves every connection from an epoll
//!   loop over non-blocking sockets: an idle or slow client costs a socket
//!   and a small buffer, never a thread, and cannot hold up another client.
//! - **One request per connection** (HTTP/1.1, `GET`/`HEAD`, answered with
//!   `Connection: close`): pipelined requests after the first are never
//!   read, so a client that sends many and reads nothing gets one answer
//!   and a closed connection.
//! - **A request head of at most [`MAX_HEAD_BYTES`]**: past that the
//!   client gets 431 and the connection is closed; nothing more is read.
//! - **[`CONNECTION_TIMEOUT`]** for the whole exchange (reading the request
//!   and writing the answer): a connection that has not finished by then
//!   is closed.
//! - **At most [`MAX_CONNECTIONS`] open**: a new connection past that
//!   closes the oldest one, so a flood of idle connections cannot lock out
//!   the health check that comes after it.

use crate::metrics::{HealthSnapshot, Metrics};
use polling::{Event, Events, Poller};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the runner may be disconnected before `/health` answers 503.
/// Short outages (a control-plane deploy, a network blip) are normal and
/// must not make an orchestrator restart a runner with jobs in flight.
pub const DISCONNECTED_GRACE_MS: u64 = 2 * 60 * 1000;

/// Bytes of request line and headers read at most; a longer head is
/// answered 431. A health probe or a Prometheus scrape sends a few hundred.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;

/// Connections open at once; one more closes the oldest.
pub const MAX_CONNECTIONS: usize = 64;

/// Time a connection gets to send its request and take the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The poller key of the listening socket; connections count up from 1.
const LISTENER_KEY: usize = 0;

/// The running health server. Dropping it shuts it down too.
pub struct HealthServer {
    poller: Arc<Poller>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl HealthServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop serving: wakes the server thread and joins it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Err(e) = self.poller.notify() {
            log::warn!("waking the health server to stop: {e}");
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the health server thread panicked");
            }
        }
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Serve `/health` and `/metrics` on `addr` from one thread named
/// `ados-health` (see the module docs for its bounds).
///
/// # Errors
///
/// The address cannot be bound (in use, not local, no permission).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<HealthServer> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {addr} (ADOS_HEALTH_ADDR): {e}"),
        )
    })?;
    listener.set_nonblocking(true)?;
    let local_addr = listener.local_addr()?;
    let poller = Arc::new(Poller::new()?);
    // SAFETY: the listener is deleted from the poller before it is dropped
    // (`Connections::close_all` at the end of `serve_loop`).
    unsafe { poller.add(&listener, Event::readable(LISTENER_KEY))? };
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("ados-health".into())
        .spawn({
            let poller = Arc::clone(&poller);
            let stop = Arc::clone(&stop);
            move || serve_loop(&listener, &poller, &stop, &metrics)
        })?;
    Ok(HealthServer {
        poller,
        stop,
        thread: Some(thread),
        local_addr,
    })
}

/// Where one connection stands.
enum Stage {
    /// Reading the request head.
    Reading(Vec<u8>),
    /// Writing the answer; `usize` bytes are written.
    Writing(Vec<u8>, usize),
}

struct Conn {
    stream: TcpStream,
    stage: Stage,
    deadline: Instant,
    /// Accept order, to find the oldest connection.
    serial: u64,
}

/// What a connection needs next.
enum Next {
    Readable,
    Writable,
    Close,
}

/// The open connections, each registered in the poller under its key.
struct Connections<'p> {
    poller: &'p Poller,
    open: HashMap<usize, Conn>,
    next_key: usize,
    next_serial: u64,
}

impl Connections<'_> {
    fn accept_all(&mut self, listener: &TcpListener) {
        loop {
            match listener.accept() {
                Ok((stream, _)) => self.add(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // EMFILE and the like: try again on the next event.
                    log::warn!("health server: accepting a connection failed: {e}");
                    break;
                }
            }
        }
        if let Err(e) = self.poller.modify(listener, Event::readable(LISTENER_KEY)) {
            log::error!("health server: cannot watch the listening socket: {e}");
        }
    }

    fn add(&mut self, stream: TcpStream) {
        if self.open.len() >= MAX_CONNECTIONS {
            let oldest = self
                .open
                .iter()
                .min_by_key(|(_, c)| c.serial)
                .map(|(k, _)| *k);
            if let Some(key) = oldest {
                self.close(key);
            }
        }
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1).max(LISTENER_KEY + 1);
        // SAFETY: every connection is deleted from the poller before its
        // stream is dropped (`close`).
        if let Err(e) = unsafe { self.poller.add(&stream, Event::readable(key)) } {
            log::warn!("health server: cannot watch a connection: {e}");
            return;
        }
        self.next_serial += 1;
        self.open.insert(
            key,
            Conn {
                stream,
                stage: Stage::Reading(Vec::new()),
                deadline: Instant::now() + CONNECTION_TIMEOUT,
                serial: self.next_serial,
            },
        );
    }

    fn ready(&mut self, key: usize, metrics: &Metrics) {
        let Some(conn) = self.open.get_mut(&key) else {
            return;
        };
        let interest = match advance(conn, metrics) {
            Next::Readable => Event::readable(key),
            Next::Writable => Event::writable(key),
            Next::Close => return self.close(key),
        };
        if self.poller.modify(&conn.stream, interest).is_err() {
            self.close(key);
        }
    }

    fn close_expired(&mut self, now: Instant) {
        let expired: Vec<usize> = self
            .open
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.close(key);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.open.values().map(|c| c.deadline).min()
    }

    fn close(&mut self, key: usize) {
        if let Some(conn) = self.open.remove(&key) {
            let _ = self.poller.delete(&conn.stream);
        }
    }

    fn close_all(&mut self) {
        let keys: Vec<usize> = self.open.keys().copied().collect();
        for key in keys {
            self.close(key);
        }
    }
}

fn serve_loop(listener: &TcpListener, poller: &Poller, stop: &AtomicBool, metrics: &Metrics) {
    let mut conns = Connections {
        poller,
        open: HashMap::new(),
        next_key: LISTENER_KEY + 1,
        next_serial: 0,
    };
    let mut events = Events::new();
    while !stop.load(Ordering::SeqCst) {
        events.clear();
        let timeout = conns
            .next_deadline()
            .map(|d| d.saturating_duration_since(Instant::now()));
        if let Err(e) = poller.wait(&mut events, timeout) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::error!("health server: waiting for connections failed: {e}");
                break;
            }
        }
        for ev in events.iter() {
            if ev.key == LISTENER_KEY {
                conns.accept_all(listener);
            } else {
                conns.ready(ev.key, metrics);
            }
        }
        conns.close_expired(Instant::now());
    }
    conns.close_all();
    let _ = poller.delete(listener);
}

/// Move one connection on as far as its socket allows.
fn advance(conn: &mut Conn, metrics: &Metrics) -> Next {
    if let Stage::Reading(head) = &mut conn.stage {
        let mut chunk = [0u8; 4096];
        loop {
            match conn.stream.read(&mut chunk) {
                // The client gave up before its request was complete.
                Ok(0) => return Next::Close,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Readable,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Next::Close,
            }
            if let Some(end) = head_end(head) {
                let answer = answer(&head[..end], metrics);
                conn.stage = Stage::Writing(answer, 0);
                break;
            }
            if head.len() > MAX_HEAD_BYTES {
                conn.stage = Stage::Writing(
                    response(431, "request head too large\n", "text/plain", true),
                    0,
                );
                break;
            }
        }
    }
    if let Stage::Writing(out, written) = &mut conn.stage {
        while *written < out.len() {
            match conn.stream.write(&out[*written..]) {
                Ok(0) => return Next::Close,
                Ok(n) => *written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Writable,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        }
        let _ = conn.stream.shutdown(Shutdown::Write);
    }
    Next::Close
}

/// Where the request head ends (after its blank line) within the first
/// [`MAX_HEAD_BYTES`], if it does.
fn head_end(buf: &[u8]) -> Option<usize> {
    let window = &buf[..buf.len().min(MAX_HEAD_BYTES)];
    window
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| window.windows(2).position(|w| w == b"\n\n").map(|i| i + 2))
}

/// The whole answer to one request head.
fn answer(head: &[u8], metrics: &Metrics) -> Vec<u8> {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return response(400, "bad request\n", "text/plain", true);
    };
    if !version.starts_with("HTTP/1.") {
        return response(400, "bad request\n", "text/plain", true);
    }
    let path = target.split('?').next().unwrap_or("");
    let is_get = matches!(method, "GET" | "HEAD");
    let with_body = method != "HEAD";
    match (is_get, path) {
        (true, "/health") => {
            let (status, body) = health_response(&metrics.health(), now_ms());
            response(status, &body, "application/json", with_body)
        }
        (true, "/metrics") => response(
            200,
            &metrics.render(),
            "text/plain; version=0.0.4",
            with_body,
        ),
        (false, "/health" | "/metrics") => {
            response(405, "method not allowed\n", "text/plain", true)
        }
        _ => response(404, "not found\n", "text/plain", with_body),
    }
}

/// An HTTP/1.1 response that closes the connection. `HEAD` gets the
/// headers only (`with_body` false), with the length the body would have.
fn response(status: u16, body: &str, content_type: &str, with_body: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What `/health` answers for `snapshot` at `now_ms`: the HTTP status and
/// the JSON body.
///
/// - connected: `"ok"`, or `"disk-low"` when new jobs are refused for lack
///   of disk (still 200: the runner is alive and finishes its jobs);
/// - disconnected for less than [`DISCONNECTED_GRACE_MS`]: `"reconnecting"`,
///   200;
/// - disconnected for that long or longer: `"disconnected"`, 503;
/// - a worker thread died (whatever else holds): `"degraded"`, 503.
pub fn health_response(snapshot: &HealthSnapshot, now_ms: u64) -> (u16, String) {
    let down_for = now_ms.saturating_sub(snapshot.since_ms);
    let (status, code) = if snapshot.degraded.is_some() {
        ("degraded", 503)
    } else if snapshot.connected {
        if snapshot.disk_problem.is_some() {
            ("disk-low", 200)
        } else {
            ("ok", 200)
        }
    } else if down_for < DISCONNECTED_GRACE_MS {
        ("reconnecting", 200)
    } else {
        ("disconnected", 503)
    };
    let since = crate::job::reporter::rfc3339(
        (snapshot.since_ms / 1000) as i64,
        (snapshot.since_ms % 1000) as u32,
    );
    let mut body = serde_json::json!({
        "status": status,
        "connected": snapshot.connected,
        "since": since,
        "running_jobs": snapshot.running_jobs,
        "free_slots": snapshot.free_slots,
        "draining": snapshot.draining,
        "version": crate::VERSION,
    });
    if let Some(problem) = &snapshot.disk_problem {
        body["disk"] = serde_json::Value::String(problem.clone());
    }
    if let Some(why) = &snapshot.degraded {
        body["degraded"] = serde_json::Value::String(why.clone());
    }
    (code, body.to_string())
}

/// `ados-work-runner healthcheck`: GET `http://<addr>/health`; exit code 0
/// on HTTP 200, else 1. A wildcard listen address (`0.0.0.0`, `[::]`) is
/// reached on loopback. No proxy is used: the server is local.
pub fn healthcheck(addr: &str) -> i32 {
    let target = match addr.parse::<SocketAddr>() {
        Ok(mut a) => {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            a.to_string()
        }
        // A host:port name such as `localhost:8080` is used as given.
        Err(_) => addr.to_string(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(format!("http://{target}/health")).call() {
        Ok(r) if r.status() == 200 => 0,
        Ok(r) => {
            eprintln!(
                "healthcheck: http://{target}/health answered {}",
                r.status()
            );
            1
        }
        Err(e) => {
            eprintln!("healthcheck: http://{target}/health failed: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn snap(connected: bool, since_ms: u64) -> HealthSnapshot {
        HealthSnapshot {
            connected,
            since_ms,
            running_jobs: 2,
            free_slots: 1,
            draining: false,
            disk_problem: None,
            degraded: None,
        }
    }

    fn json(body: &str) -> serde_json::Value {
        serde_json::from_str(body).unwrap()
    }

    #[test]
    fn connected_is_ok() {
        let (code, body) = health_response(&snap(true, 1_700_000_000_123), 1_800_000_000_000);
        assert_eq!(code, 200);
        let v = json(&body);
        assert_eq!(v["status"], "ok");
        assert_eq!(v["connected"], true);
        assert_eq!(v["since"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["running_jobs"], 2);
        assert_eq!(v["free_slots"], 1);
        assert_eq!(v["draining"], false);
        assert_eq!(v["version"], crate::VERSION);
        assert!(v.get("disk").is_none());
    }

    #[test]
    fn two_minute_boundary() {
        let since = 1_000_000;
        let (code, body) = health_response(&snap(false, since), since + DISCONNECTED_GRACE_MS - 1);
        assert_eq!(
            (code, json(&body)["status"].clone()),
            (200, "reconnecting".into())
        );
        let (code, body) = health_response(&snap(false, since), since + DISCONNECTED_GRACE_MS);
        assert_eq!(
            (code, json(&body)["status"].clone()),
            (503, "disconnected".into())
        );
        // A clock that went backwards is not an outage.
        assert_eq!(health_response(&snap(false, since), since - 5).0, 200);
    }

    #[test]
    fn disk_problem_is_reported_but_still_200() {
        let mut s = snap(true, 0);
        s.disk_problem = Some("1.2GB free in /work, need 2GB".into());
        let (code, body) = health_response(&s, 10);
        let v = json(&body);
        assert_eq!(code, 200);
        assert_eq!(v["status"], "disk-low");
        assert_eq!(v["disk"], "1.2GB free in /work, need 2GB");
        // Disconnected too long wins over disk-low, and the disk is still named.
        s.connected = false;
        let (code, body) = health_response(&s, DISCONNECTED_GRACE_MS + 1);
        assert_eq!(code, 503);
        assert_eq!(json(&body)["disk"], "1.2GB free in /work, need 2GB");
    }

    #[test]
    fn a_degraded_runner_answers_503_and_says_why() {
        let mut s = snap(true, 0);
        s.degraded = Some("worker 0 died".into());
        let (code, body) = health_response(&s, 10);
        let v = json(&body);
        assert_eq!(code, 503);
        assert_eq!(v["status"], "degraded");
        assert_eq!(v["degraded"], "worker 0 died");
    }

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_health_metrics_and_404_then_shuts_down() {
        let metrics = Arc::new(Metrics::new());
        metrics.set_connected(true);
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::clone(&metrics)).unwrap();
        let addr = server.local_addr();

        let health = get(addr, "/health");
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        assert!(health.contains("\"status\":\"ok\""), "{health}");

        let m = get(addr, "/metrics");
        assert!(m.starts_with("HTTP/1.1 200"), "{m}");
        assert!(m.contains("Content-Type: text/plain; version=0.0.4"), "{m}");
        assert!(m.contains("ados_connected 1"), "{m}");

        assert!(get(addr, "/nope").starts_with("HTTP/1.1 404"));
        assert_eq!(healthcheck(&addr.to_string()), 0);
        let wildcard = format!("0.0.0.0:{}", addr.port());
        assert_eq!(healthcheck(&wildcard), 0, "0.0.0.0 maps to loopback");

        server.shutdown();
        assert_eq!(
            healthcheck(&addr.to_string()),
            1,
            "nothing listens after shutdown"
        );
    }

    fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn head_post_garbage_and_bare_newlines() {
        let server = serve("127.0.0.1:0".parse().unwrap(), Arc::new(Metrics::new())).unwrap();
        let addr = server.local_addr();
        let head = exchange(addr, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
        assert!(!head.contains("Content-Length: 0\r\n"), "{head}");
        let post = exchange(addr, "POST /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(post.starts_with("HTTP/1.1 405"), "{post}");
        assert!(exchange(addr, "hello\r\n\r\n").starts_with("HTTP/1.1 400"));
        let bare = exchange(addr, "GET /health?x=1 HTTP/1.0\n\n");
        assert!(bare.starts_with("HTTP/1.1 200"), "{bare}");
        assert!(bare.contains("Connection: close"), "{bare}");
    }

    #[test]
    fn healthcheck_fails_on_503() {
        // A stand-in server that answers 503, as /health does after two
        // minutes without the control plane.
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let t = std::thread::spawn(move || {
            let rq = server.recv().unwrap();
            assert_eq!(rq.url(), "/health");
            rq.respond(tiny_http::Response::empty(503)).unwrap();
        });
        assert_eq!(healthcheck(&addr.to_string()), 1);
        t.join().unwrap();
    }
}
