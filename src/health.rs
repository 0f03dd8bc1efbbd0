//! `/health` and `/metrics` over HTTP (`ADOS_HEALTH_ADDR`), for container
//! health checks, orchestrators and Prometheus; plus the client side used
//! by `ados-work-runner healthcheck` (a HEALTHCHECK in a FROM-scratch image
//! has no curl).
//!
//! The decision what `/health` says is a pure function of a
//! [`HealthSnapshot`] and the time ([`health_response`]); the server thread
//! only reads the shared [`Metrics`] and never blocks a job or the link.

use crate::metrics::{HealthSnapshot, Metrics};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long the runner may be disconnected before `/health` answers 503.
/// Short outages (a control-plane deploy, a network blip) are normal and
/// must not make an orchestrator restart a runner with jobs in flight.
pub const DISCONNECTED_GRACE_MS: u64 = 2 * 60 * 1000;

/// The running health server. Dropping it shuts it down too.
pub struct HealthServer {
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl HealthServer {
    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop serving: unblocks the server thread and joins it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.server.unblock();
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

/// Serve `/health` and `/metrics` on `addr` from a thread named
/// `ados-health`.
///
/// # Errors
///
/// The address cannot be bound (in use, not local, no permission).
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<HealthServer> {
    let server = tiny_http::Server::http(addr).map_err(|e| {
        io::Error::other(format!("cannot listen on {addr} (ADOS_HEALTH_ADDR): {e}"))
    })?;
    let local_addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| io::Error::other("health server is not on an IP address"))?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new()
        .name("ados-health".into())
        .spawn({
            let server = Arc::clone(&server);
            let stop = Arc::clone(&stop);
            move || serve_loop(&server, &stop, &metrics)
        })?;
    Ok(HealthServer {
        server,
        stop,
        thread: Some(thread),
        local_addr,
    })
}

fn serve_loop(server: &tiny_http::Server, stop: &AtomicBool, metrics: &Metrics) {
    loop {
        match server.recv() {
            Ok(request) => respond(request, metrics),
            Err(_) if stop.load(Ordering::SeqCst) => return,
            Err(e) => log::warn!("health server: accepting a connection failed: {e}"),
        }
    }
}

fn respond(request: tiny_http::Request, metrics: &Metrics) {
    let path = request.url().split('?').next().unwrap_or("");
    let is_get = matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let (status, body, content_type) = match (is_get, path) {
        (true, "/health") => {
            let (status, body) = health_response(&metrics.health(), now_ms());
            (status, body, "application/json")
        }
        (true, "/metrics") => (200, metrics.render(), "text/plain; version=0.0.4"),
        (false, "/health" | "/metrics") => (405, "method not allowed\n".to_string(), "text/plain"),
        _ => (404, "not found\n".to_string(), "text/plain"),
    };
    let mut response = tiny_http::Response::from_string(body).with_status_code(status);
    if let Ok(h) = tiny_http::Header::from_bytes("Content-Type", content_type) {
        response = response.with_header(h);
    }
    if let Err(e) = request.respond(response) {
        log::debug!("health server: writing a response failed: {e}");
    }
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
