//! The egress proxy against real local TCP servers (no Docker): what a job
//! may reach through it, what it refuses and how a refusal is reported,
//! per-job tokens and bounds, plain-HTTP forwarding, the runner's own
//! upstream proxy, and the in-container forwarder over a unix socket.

use ados_test_support::proxy::ConnectProxy;
use ados_work_runner::egress::{forward, Allowlist, EgressProxy, JobEgress, Limits};
use ados_work_runner::job::spec::RegistrySpec;
use ados_work_runner::metrics::Metrics;
use ados_work_runner::net::{NoProxy, Proxy, ProxySettings};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// An echo server on loopback: every connection gets its bytes back.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut r = c.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut c);
                let _ = c.shutdown(Shutdown::Write);
            });
        }
    });
    addr
}

/// A one-request HTTP server: sends each request head it reads on the
/// channel and answers `200 hello`.
fn http_server() -> (SocketAddr, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let head = read_head(&mut c);
            let _ = tx.send(head);
            let _ = c.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
            );
        }
    });
    (addr, rx)
}

fn read_head(c: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

fn start(limits: Limits, upstream: ProxySettings) -> (EgressProxy, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let p = EgressProxy::start(
        "127.0.0.1:0".parse().unwrap(),
        upstream,
        Arc::clone(&metrics),
        limits,
    )
    .unwrap();
    (p, metrics)
}

fn allow(list: &str) -> Allowlist {
    Allowlist::parse("ADOS_EGRESS_ALLOW", list).unwrap()
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        ados_work_runner::base64::encode(format!("{token}:").as_bytes())
    )
}

/// Send `CONNECT target` with `token` over `conn`; the status code and
/// the whole answer head (and body, for a refusal).
fn connect_over(
    mut conn: TcpStream,
    target: &str,
    token: Option<&str>,
) -> (u16, String, TcpStream) {
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let auth = token
        .map(|t| format!("Proxy-Authorization: {}\r\n", basic(t)))
        .unwrap_or_default();
    write!(
        conn,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth}\r\n"
    )
    .unwrap();
    let head = read_head(&mut conn);
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut text = head;
    if code != 200 {
        let mut body = String::new();
        let _ = conn.read_to_string(&mut body);
        text.push_str(&body);
    }
    (code, text, conn)
}

fn connect(p: &EgressProxy, target: &str, job: &JobEgress) -> (u16, String, TcpStream) {
    connect_over(
        TcpStream::connect(p.addr()).unwrap(),
        target,
        Some(job.token()),
    )
}

fn echo_round_trip(mut s: TcpStream) {
    s.write_all(b"ping through the fence").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    s.read_to_string(&mut back).unwrap();
    assert_eq!(back, "ping through the fence");
}

#[test]
fn an_allowed_destination_is_tunnelled_and_a_refused_one_is_reported_to_the_job() {
    let echo = echo_server();
    let (p, metrics) = start(Limits::default(), ProxySettings::default());
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", echo.port())));
    let (code, _, s) = connect(&p, &format!("127.0.0.1:{}", echo.port()), &job);
    assert_eq!(code, 200);
    echo_round_trip(s);
    assert!(job.take_refusals().is_empty());

    let (code, answer, _) = connect(&p, "evil.example:443", &job);
    assert_eq!(code, 403, "{answer}");
    assert!(
        answer.contains("egress refused: evil.example:443 (not on the allowlist)"),
        "{answer}"
    );
    assert_eq!(
        job.take_refusals(),
        vec!["egress refused: evil.example:443 (not on the allowlist)\n".to_string()]
    );
    assert_eq!(metrics.egress_denied(), 1);
    assert!(metrics.render().contains("ados_egress_denied_total 1\n"));
    p.stop();
}

#[test]
fn the_runners_own_host_needs_an_exact_entry_and_metadata_is_never_reached() {
    let echo = echo_server();
    let (p, metrics) = start(Limits::default(), ProxySettings::default());
    // Blocks and wildcards that cover loopback and the metadata service.
    let job = p.register("job-a", allow("127.0.0.0/8,0.0.0.0/0,::/0,localhost"));
    let target = format!("127.0.0.1:{}", echo.port());
    let (code, answer, _) = connect(&p, &target, &job);
    assert_eq!(code, 403, "{answer}");
    assert!(answer.contains("the runner's own host"), "{answer}");
    // A name that resolves to loopback is no way around it.
    let (code, _, _) = connect(&p, &format!("localhost:{}", echo.port()), &job);
    assert_eq!(code, 403);
    for meta in ["169.254.169.254:80", "[fd00:ec2::254]:80"] {
        let (code, answer, _) = connect(&p, meta, &job);
        assert_eq!(code, 403, "{answer}");
        assert!(answer.contains("link-local metadata address"), "{answer}");
    }
    let lines = job.take_refusals();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(metrics.egress_denied(), 4);
    p.stop();
}

#[test]
fn only_the_jobs_own_token_opens_anything() {
    let echo = echo_server();
    let (p, _) = start(Limits::default(), ProxySettings::default());
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", echo.port())));
    let target = format!("127.0.0.1:{}", echo.port());
    for token in [None, Some("not-a-token")] {
        let (code, answer, _) = connect_over(TcpStream::connect(p.addr()).unwrap(), &target, token);
        assert_eq!(code, 407, "{answer}");
        assert!(answer.contains("Proxy-Authenticate: Basic"), "{answer}");
    }
    let token = job.token().to_string();
    drop(job);
    let (code, _, _) = connect_over(TcpStream::connect(p.addr()).unwrap(), &target, Some(&token));
    assert_eq!(code, 407, "a finished job's token opens nothing");
    p.stop();
}

#[test]
fn a_jobs_registries_are_allowed_for_that_job_only() {
    let echo = echo_server();
    let (p, _) = start(Limits::default(), ProxySettings::default());
    let reg = RegistrySpec {
        kind: "npm".into(),
        url: format!("http://127.0.0.1:{}/npm/", echo.port()),
        scope: None,
        token: "reg-secret".into(),
    };
    let global = Allowlist::default();
    let with = p.register(
        "job-a",
        ados_work_runner::egress::agents::job_allowlist(&global, ["claude"], &[reg]),
    );
    let without = p.register(
        "job-b",
        ados_work_runner::egress::agents::job_allowlist(&global, ["claude"], &[]),
    );
    let target = format!("127.0.0.1:{}", echo.port());
    let (code, _, s) = connect(&p, &target, &with);
    assert_eq!(code, 200);
    echo_round_trip(s);
    let (code, _, _) = connect(&p, &target, &without);
    assert_eq!(code, 403);
    assert_eq!(without.take_refusals().len(), 1);
    assert!(with.take_refusals().is_empty());
    p.stop();
}

#[test]
fn plain_http_is_forwarded_in_origin_form_without_the_proxy_credentials() {
    let (http, heads) = http_server();
    let (p, _) = start(Limits::default(), ProxySettings::default());
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", http.port())));
    let mut c = TcpStream::connect(p.addr()).unwrap();
    write!(
        c,
        "GET http://127.0.0.1:{}/pkg/x?y=1 HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nProxy-Authorization: {}\r\nConnection: keep-alive\r\n\r\n",
        http.port(),
        http.port(),
        basic(job.token())
    )
    .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200 OK") && answer.ends_with("hello"),
        "{answer}"
    );
    let head = heads.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(head.starts_with("GET /pkg/x?y=1 HTTP/1.1\r\n"), "{head}");
    assert!(head.contains("Connection: close\r\n"), "{head}");
    assert!(
        !head.contains("Proxy-Authorization") && !head.contains(job.token()),
        "{head}"
    );
    p.stop();
}

#[test]
fn a_job_has_a_bounded_number_of_connections() {
    let echo = echo_server();
    let limits = Limits {
        per_job: 1,
        ..Limits::default()
    };
    let (p, _) = start(limits, ProxySettings::default());
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", echo.port())));
    let target = format!("127.0.0.1:{}", echo.port());
    let (code, _, held) = connect(&p, &target, &job);
    assert_eq!(code, 200);
    let (code, answer, _) = connect(&p, &target, &job);
    assert_eq!(code, 503, "{answer}");
    assert!(
        answer.contains("already has 1 connections open"),
        "{answer}"
    );
    echo_round_trip(held);
    p.stop();
}

#[test]
fn a_job_holding_connections_open_without_a_request_cannot_starve_another() {
    let echo = echo_server();
    let limits = Limits {
        per_job: 2,
        total: 4,
        ..Limits::default()
    };
    let (p, metrics) = start(limits, ProxySettings::default());
    let dir = std::env::temp_dir().join(format!("ados-egress-hold-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = format!("127.0.0.1:{}", echo.port());
    let a = p.register("job-a", allow(&target));
    a.listen_unix(&dir.join("a.sock")).unwrap();
    let b = p.register("job-b", allow(&target));
    b.listen_unix(&dir.join("b.sock")).unwrap();
    // Job a opens as many connections as the whole proxy serves and sends
    // nothing on them: those past its own bound are answered at once.
    let held: Vec<UnixStream> = (0..4)
        .map(|_| UnixStream::connect(dir.join("a.sock")).unwrap())
        .collect();
    for extra in &held[2..] {
        let mut extra = extra;
        extra
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answer = String::new();
        let _ = extra.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
        assert!(
            answer.contains("the job already has 2 connections open"),
            "{answer}"
        );
    }
    assert_eq!(
        a.take_refusals(),
        vec![
            "egress refused: another connection (the job already has 2 connections open)\n"
                .to_string();
            2
        ]
    );
    assert_eq!(metrics.egress_denied(), 2);
    // Job b is still served.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fwd = listener.local_addr().unwrap();
    let sock_b = dir.join("b.sock");
    std::thread::spawn(move || forward::serve(listener, &sock_b));
    let (code, answer, s) =
        connect_over(TcpStream::connect(fwd).unwrap(), &target, Some(b.token()));
    assert_eq!(code, 200, "{answer}");
    echo_round_trip(s);
    drop(held);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
    p.stop();
}

#[test]
fn an_idle_tunnel_is_closed() {
    let echo = echo_server();
    let limits = Limits {
        idle: Duration::from_millis(100),
        ..Limits::default()
    };
    let (p, _) = start(limits, ProxySettings::default());
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", echo.port())));
    let (code, _, mut s) = connect(&p, &format!("127.0.0.1:{}", echo.port()), &job);
    assert_eq!(code, 200);
    // Nothing sent: the proxy ends the tunnel, the read sees end of file.
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    p.stop();
}

#[test]
fn upstream_goes_through_the_runners_own_proxy_which_resolves_what_the_runner_cannot() {
    let echo = echo_server();
    let corp = ConnectProxy::start_to(echo);
    let upstream = ProxySettings {
        https_proxy: Some(Proxy::parse("HTTPS_PROXY", &corp.url()).unwrap()),
        http_proxy: None,
        no_proxy: NoProxy::parse(""),
    };
    let (p, _) = start(Limits::default(), upstream);
    let job = p.register("job-a", allow("api.corp.invalid:443"));
    let (code, answer, s) = connect(&p, "api.corp.invalid:443", &job);
    assert_eq!(code, 200, "{answer}");
    echo_round_trip(s);
    assert_eq!(corp.requests()[0].target, "api.corp.invalid:443");
    // Still only what the allowlist says.
    let (code, _, _) = connect(&p, "other.corp.invalid:443", &job);
    assert_eq!(code, 403);
    assert_eq!(corp.requests().len(), 1);
    p.stop();
}

#[test]
fn the_forwarder_relays_a_containers_loopback_to_its_jobs_socket_only() {
    let echo = echo_server();
    let (p, _) = start(Limits::default(), ProxySettings::default());
    let dir = std::env::temp_dir().join(format!("ados-egress-fwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("proxy.sock");
    let job = p.register("job-a", allow(&format!("127.0.0.1:{}", echo.port())));
    job.listen_unix(&sock).unwrap();
    let other = p.register("job-b", allow(&format!("127.0.0.1:{}", echo.port())));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let fwd = listener.local_addr().unwrap();
    let sock2 = sock.clone();
    std::thread::spawn(move || forward::serve(listener, &sock2));

    let target = format!("127.0.0.1:{}", echo.port());
    let (code, _, s) = connect_over(TcpStream::connect(fwd).unwrap(), &target, Some(job.token()));
    assert_eq!(code, 200);
    echo_round_trip(s);
    // Another job's token is no good on this job's socket.
    let (code, _, _) = connect_over(
        TcpStream::connect(fwd).unwrap(),
        &target,
        Some(other.token()),
    );
    assert_eq!(code, 407);
    // Listening again (a fallback agent's fresh container) keeps the one
    // socket; it goes with the job, even when the job's directory (where
    // it lives) was removed first, which leaves no path to wake it by.
    job.listen_unix(&sock).unwrap();
    drop(job);
    assert!(!sock.exists());
    let other_sock = dir.join("other.sock");
    other.listen_unix(&other_sock).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    drop(other);
    p.stop();
}
