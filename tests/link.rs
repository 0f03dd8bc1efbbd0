//! The link thread against a real (test) control plane on 127.0.0.1:
//! handshake, hello, heartbeats, reconnects, auth failures, garbage and
//! oversized frames, wss with a private CA, and the CONNECT proxy.
//!
//! Job-event delivery is tested with the journal in tests/journal.rs; here
//! only `welcome`'s acks meet a real journal.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::proxy::ConnectProxy;
use ados_work_runner::config::ProxySettings;
use ados_work_runner::link::proto::{self, HelloInfo, RunnerState, ServerMessage};
use ados_work_runner::link::Outbox;
use ados_work_runner::link::{self, FromLink, Link, LinkConfig, ToLink};
use ados_work_runner::metrics::Metrics;
use ados_work_runner::net::{NoProxy, Proxy};
use crossbeam_channel::Receiver;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- logs

/// (level, target, message) of every record.
static LOGS: Mutex<Vec<(log::Level, String, String)>> = Mutex::new(Vec::new());

struct CaptureLogger;

impl log::Log for CaptureLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, record: &log::Record) {
        LOGS.lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn capture_logs() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        log::set_logger(&CaptureLogger).unwrap();
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Log lines at `level` or more severe that contain `needle`.
fn logs_with(level: log::Level, needle: &str) -> Vec<String> {
    LOGS.lock()
        .unwrap()
        .iter()
        .filter(|(l, _, m)| *l <= level && m.contains(needle))
        .map(|(_, _, m)| m.clone())
        .collect()
}

/// Records containing `needle`, except tungstenite's trace of the raw
/// handshake request: it holds the Authorization header, which is why the
/// daemon must never let `tungstenite` log at trace
/// (`link::SECRET_TRACE_TARGETS`).
fn logs_containing(needle: &str) -> Vec<String> {
    LOGS.lock()
        .unwrap()
        .iter()
        .filter(|(l, target, m)| {
            let tungstenite_trace = *l == log::Level::Trace
                && link::SECRET_TRACE_TARGETS
                    .iter()
                    .any(|t| target.starts_with(t));
            !tungstenite_trace && m.contains(needle)
        })
        .map(|(_, _, m)| m.clone())
        .collect()
}

fn wait_for_log(level: log::Level, needle: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = logs_with(level, needle);
        if !found.is_empty() || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

// -------------------------------------------------------------- runner

fn hello_info() -> HelloInfo {
    HelloInfo {
        runner_id: "runner-test".into(),
        group: "default".into(),
        mode: "all".into(),
        hostname: "test-host".into(),
        cpus: 4,
        memory: "8GB".into(),
        memory_bytes: 8 << 30,
        deploy_id: None,
        tenant_id: Some("tenant-1".into()),
        version: ados_work_runner::VERSION.into(),
        executor: "host".into(),
        agents: vec!["claude".into(), "codex".into()],
        slots: 4,
    }
}

fn config(cp: &ControlPlane) -> LinkConfig {
    LinkConfig {
        url: cp.ws_url(),
        token: cp.options().token.clone(),
        runner_id: "runner-test".into(),
        tenant_id: Some("tenant-1".into()),
        ca_cert: None,
        proxy: ProxySettings::default(),
        hello: hello_info(),
        max_backoff: Duration::from_millis(300),
    }
}

struct Runner {
    link: Link,
    handle: Option<JoinHandle<()>>,
    from: Receiver<FromLink>,
    metrics: Arc<Metrics>,
}

impl Runner {
    fn start(cfg: LinkConfig) -> Runner {
        capture_logs();
        let metrics = Arc::new(Metrics::new());
        let (tx, from) = crossbeam_channel::unbounded();
        let (link, handle) = link::start(cfg, Outbox::new(), metrics.clone(), tx).unwrap();
        Runner {
            link,
            handle: Some(handle),
            from,
            metrics,
        }
    }

    /// The next lifecycle message (Connected/Disconnected), skipping others.
    fn next_state(&self, timeout: Duration) -> Option<&'static str> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.from.recv_deadline(deadline) {
                Ok(FromLink::Connected) => return Some("connected"),
                Ok(FromLink::Disconnected) => return Some("disconnected"),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    fn expect_state(&self, want: &str, timeout: Duration) {
        assert_eq!(self.next_state(timeout), Some(want), "waiting for {want}");
    }

    fn next_message(&self, timeout: Duration) -> Option<ServerMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.from.recv_deadline(deadline) {
                Ok(FromLink::Message(m)) => return Some(m),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Ask the thread to close and wait (bounded) for it to end.
    fn close(&mut self, deadline: Duration) -> Duration {
        let start = Instant::now();
        self.link.send(ToLink::Close {
            deadline: start + deadline,
        });
        let handle = self.handle.take().expect("not closed yet");
        while !handle.is_finished() {
            assert!(start.elapsed() < deadline + T, "link thread did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.join().unwrap();
        start.elapsed()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.handle.is_some() && !std::thread::panicking() {
            self.close(Duration::from_millis(500));
        }
    }
}

fn cp_with(f: impl FnOnce(&mut Options)) -> ControlPlane {
    let mut opts = Options::default();
    f(&mut opts);
    ControlPlane::start(opts)
}

fn reconnects(m: &Metrics) -> u64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix("ados_reconnects_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

// --------------------------------------------------------------- tests

#[test]
fn hello_first_with_every_field_and_the_handshake_headers() {
    let cp = cp_with(|_| {});
    let mut runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    assert!(runner.metrics.health().connected);

    let frames = cp.frames();
    let hello = &frames[0];
    assert_eq!(hello["type"], "hello", "first frame: {hello}");
    assert_eq!(hello["protocol"], 1);
    for (field, check) in [
        ("runner_id", Value::is_string as fn(&Value) -> bool),
        ("group", Value::is_string),
        ("mode", Value::is_string),
        ("hostname", Value::is_string),
        ("cpus", Value::is_u64),
        ("memory", Value::is_string),
        ("memory_bytes", Value::is_u64),
        ("deploy_id", Value::is_null),
        ("tenant_id", Value::is_string),
        ("version", Value::is_string),
        ("executor", Value::is_string),
        ("agents", Value::is_array),
        ("slots", Value::is_u64),
        ("jobs", Value::is_array),
    ] {
        assert!(check(&hello[field]), "hello.{field} wrongly typed: {hello}");
    }
    assert_eq!(hello["runner_id"], "runner-test");
    assert_eq!(hello["memory_bytes"], 8u64 << 30);
    assert_eq!(hello["version"], ados_work_runner::VERSION);
    assert_eq!(hello["agents"], json!(["claude", "codex"]));

    let hs = &cp.handshakes()[0];
    assert_eq!(hs.status, 101);
    assert_eq!(hs.path, "/api/v1/work/runners/ws");
    assert_eq!(hs.header("authorization"), Some("Bearer test-token"));
    assert_eq!(hs.header("x-ados-runner-id"), Some("runner-test"));
    assert_eq!(hs.header("x-ados-tenant-id"), Some("tenant-1"));
    let ua = format!("ados-work-runner/{}", ados_work_runner::VERSION);
    assert_eq!(hs.header("user-agent"), Some(ua.as_str()));

    // A heartbeat follows welcome at once; a new state is sent at once.
    cp.wait_for_type(1, "heartbeat", T);
    let mark = cp.frame_count();
    runner.link.send(ToLink::State(RunnerState {
        free_slots: 2,
        running: vec!["j-1".into()],
        draining: true,
    }));
    let beat = cp.wait_for_type(mark, "heartbeat", T);
    assert_eq!(
        beat,
        json!({"type":"heartbeat","free_slots":2,"running":["j-1"],"draining":true})
    );

    // Control frames are sent in order while connected.
    runner.link.send(ToLink::Frame(proto::accepted("j-1")));
    runner
        .link
        .send(ToLink::Frame(proto::rejected(Some("j-2"), "busy", true)));
    let rejected = cp.wait_for_type(mark, "job.rejected", T);
    assert_eq!(rejected["job_id"], "j-2");
    let kinds: Vec<Value> = cp.frames()[mark..]
        .iter()
        .map(|f| f["type"].clone())
        .collect();
    let acc = kinds.iter().position(|k| k == "job.accepted").unwrap();
    let rej = kinds.iter().position(|k| k == "job.rejected").unwrap();
    assert!(acc < rej, "{kinds:?}");

    // Server messages reach the dispatcher; welcome and ack do not.
    cp.cancel("j-1");
    assert_eq!(
        runner.next_message(T),
        Some(ServerMessage::Cancel {
            job_id: "j-1".into(),
            reason: Some("user".into())
        })
    );

    // A clean close ends the thread quickly (nothing to flush).
    let took = runner.close(Duration::from_secs(3));
    assert!(took < Duration::from_secs(2), "close took {took:?}");
    assert!(!runner.metrics.health().connected);
}

#[test]
fn heartbeats_and_pings_every_heartbeat_s() {
    let cp = cp_with(|o| o.heartbeat_s = 1);
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    assert!(cp.wait_until(T, |cp| cp.pings().len() >= 2));
    let pings = cp.pings();
    let gap = pings[1].1 - pings[0].1;
    // Not a timing test: the lower bound says pings are paced, not sent
    // back to back; the upper one only that they keep coming (a loaded CI
    // machine may delay a turn of the loop).
    assert!(
        gap >= Duration::from_millis(800) && gap <= Duration::from_secs(10),
        "ping gap {gap:?}"
    );
    // The welcome heartbeat plus one per ping (the second ping's may still
    // be on its way when the ping is seen).
    let heartbeats = |cp: &ControlPlane| {
        cp.frames()
            .iter()
            .filter(|f| f["type"] == "heartbeat")
            .count()
    };
    assert!(
        cp.wait_until(T, |cp| heartbeats(cp) >= 3),
        "{} heartbeats",
        heartbeats(&cp)
    );
    assert_eq!(cp.connections(), 1);
}

#[test]
fn reconnects_after_a_dropped_connection_and_a_restarted_server() {
    let mut cp = cp_with(|_| {});
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    assert_eq!(reconnects(&runner.metrics), 0);

    let t0 = Instant::now();
    assert!(cp.drop_connection());
    runner.expect_state("disconnected", T);
    runner.expect_state("connected", Duration::from_secs(3));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert_eq!(cp.connections(), 2);
    let hellos: Vec<usize> = cp
        .received()
        .iter()
        .filter(|r| r.value["type"] == "hello")
        .map(|r| r.conn)
        .collect();
    assert_eq!(hellos, vec![1, 2], "one hello per connection");

    cp.stop();
    runner.expect_state("disconnected", T);
    assert!(!runner.metrics.health().connected);
    // A control frame queued while disconnected is dropped.
    runner.link.send(ToLink::Frame(proto::accepted("dropped")));
    let t1 = Instant::now();
    cp.restart_same_port();
    runner.expect_state("connected", Duration::from_secs(3));
    assert!(t1.elapsed() < Duration::from_secs(3));
    runner.link.send(ToLink::Frame(proto::accepted("kept")));
    cp.wait_for(|f| f["job_id"] == "kept", T);
    assert!(
        !cp.frames().iter().any(|f| f["job_id"] == "dropped"),
        "a frame queued while disconnected was sent"
    );
    assert!(reconnects(&runner.metrics) >= 2);
}

#[test]
fn auth_failure_logs_the_url_not_the_token_and_waits_the_max_backoff() {
    let token = "wrong-SECRET-token-1234";
    let cp = cp_with(|o| o.token = "right-token".into());
    let mut cfg = config(&cp);
    cfg.token = token.into();
    cfg.max_backoff = Duration::from_secs(1);
    let runner = Runner::start(cfg);

    assert!(cp.wait_until(Duration::from_secs(3), |cp| cp.handshakes().len() >= 2));
    let hs = cp.handshakes();
    assert!(hs.iter().all(|h| h.status == 401));
    let gap = hs[1].at - hs[0].at;
    assert!(gap >= Duration::from_millis(800), "retried after {gap:?}");
    assert_eq!(runner.next_state(Duration::ZERO), None, "never connected");

    let port = format!("127.0.0.1:{}/", cp.port());
    let errors = wait_for_log(log::Level::Error, &port, T);
    assert!(!errors.is_empty(), "no error log naming the URL");
    assert!(
        errors[0].contains("401") && errors[0].contains("ADOS_TOKEN"),
        "{errors:?}"
    );
    let leaks = logs_containing(token);
    assert!(leaks.is_empty(), "the token was logged: {leaks:?}");
}

#[test]
fn close_code_4009_waits_the_max_backoff() {
    let cp = cp_with(|_| {});
    let mut cfg = config(&cp);
    cfg.max_backoff = Duration::from_secs(1);
    let runner = Runner::start(cfg);
    runner.expect_state("connected", T);
    let t0 = Instant::now();
    assert!(cp.close_with(4009, "another runner"));
    runner.expect_state("disconnected", T);
    runner.expect_state("connected", Duration::from_secs(3));
    let gap = cp.handshakes()[1].at - t0;
    assert!(gap >= Duration::from_millis(800), "retried after {gap:?}");
    let port = format!("127.0.0.1:{}/", cp.port());
    let errors = logs_with(log::Level::Error, &port);
    assert!(errors.iter().any(|e| e.contains("4009")), "{errors:?}");
}

#[test]
fn a_silent_server_is_dead_after_three_heartbeats() {
    let cp = cp_with(|o| o.heartbeat_s = 1);
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    let t0 = Instant::now();
    assert!(cp.go_silent(true));
    runner.expect_state("disconnected", Duration::from_secs(5));
    let took = t0.elapsed();
    // The last frame (a pong) came at most ~1 s before going silent.
    assert!(
        took >= Duration::from_millis(1900) && took <= Duration::from_millis(4500),
        "declared dead after {took:?}"
    );
    runner.expect_state("connected", Duration::from_secs(3));
    assert_eq!(cp.connections(), 2);
}

#[test]
fn garbage_frames_are_ignored_and_the_connection_stays_up() {
    let cp = cp_with(|o| o.heartbeat_s = 1);
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    assert!(cp.send_raw("this is not json"));
    assert!(cp.send_raw("[1,2,3]"));
    assert!(cp.send(json!({"no":"type"})));
    assert!(cp.send(json!({"type":"x.future.thing","a":1})));
    assert!(cp.send(json!({"type":"ack","job_id":"j-1"})));
    assert!(cp.send_binary(vec![0, 1, 2, 3]));
    // A burst longer than one turn's read budget.
    for i in 0..600 {
        assert!(cp.send(json!({"type":"x.flood","i":i})));
    }
    assert!(cp.send(json!({"type":"drain"})));
    // Nothing before `drain` reached the dispatcher, and it still flows.
    assert_eq!(runner.next_message(T), Some(ServerMessage::Drain));
    let pings_before = cp.pings().len();
    let mark = cp.frame_count();
    assert!(
        cp.wait_until(Duration::from_millis(2500), |cp| cp.pings().len()
            > pings_before)
    );
    cp.wait_for_type(mark, "heartbeat", T);
    assert_eq!(cp.connections(), 1);
    assert_eq!(runner.next_state(Duration::ZERO), None, "no reconnect");
}

#[test]
fn an_oversized_frame_makes_the_runner_reconnect() {
    let cp = cp_with(|_| {});
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    let big = "x".repeat((16 << 20) + 1);
    cp.send_raw(&big);
    runner.expect_state("disconnected", T);
    runner.expect_state("connected", Duration::from_secs(3));
    assert_eq!(cp.connections(), 2);
    let port = format!("127.0.0.1:{}/", cp.port());
    assert!(!logs_with(log::Level::Warn, &port)
        .iter()
        .filter(|l| l.contains("1009"))
        .collect::<Vec<_>>()
        .is_empty());
}

#[test]
fn wss_with_the_private_ca_and_without_it() {
    let cp = cp_with(|o| o.tls = true);
    let mut cfg = config(&cp);
    assert!(cfg.url.starts_with("wss://"));
    cfg.ca_cert = Some(ados_test_support::tls::ca_cert_path());
    let runner = Runner::start(cfg.clone());
    runner.expect_state("connected", T);
    drop(runner);

    let before = cp.handshakes().len();
    cfg.ca_cert = None;
    let runner = Runner::start(cfg);
    let port = format!("127.0.0.1:{}/", cp.port());
    let warnings = wait_for_log(log::Level::Warn, "UnknownIssuer", T);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(&port) && w.contains("ADOS_CA_CERT")),
        "{warnings:?}"
    );
    assert_eq!(runner.next_state(Duration::ZERO), None);
    assert_eq!(
        cp.handshakes().len(),
        before,
        "no WebSocket handshake without trust"
    );
}

#[test]
fn wss_through_an_http_connect_proxy_with_credentials() {
    let cp = cp_with(|o| o.tls = true);
    let proxy = ConnectProxy::start();
    let mut cfg = config(&cp);
    cfg.ca_cert = Some(ados_test_support::tls::ca_cert_path());
    cfg.proxy = ProxySettings {
        https_proxy: Some(
            Proxy::parse(
                "HTTPS_PROXY",
                &format!("http://proxy-user:pr0xy%3Apass@127.0.0.1:{}", proxy.port()),
            )
            .unwrap(),
        ),
        // Not for wss: must not be used.
        http_proxy: Some(Proxy::parse("HTTP_PROXY", "http://127.0.0.1:1").unwrap()),
        no_proxy: NoProxy::parse("example.internal"),
    };
    let runner = Runner::start(cfg);
    runner.expect_state("connected", T);
    let requests = proxy.requests();
    assert_eq!(requests[0].target, format!("127.0.0.1:{}", cp.port()));
    assert_eq!(
        requests[0].proxy_authorization.as_deref(),
        Some(
            format!(
                "Basic {}",
                ados_work_runner::base64::encode(b"proxy-user:pr0xy:pass")
            )
            .as_str()
        )
    );
    let leaks = logs_containing("pr0xy");
    assert!(leaks.is_empty(), "proxy password logged: {leaks:?}");
}

#[test]
fn an_absurd_heartbeat_from_welcome_is_clamped_not_fatal() {
    let cp = cp_with(|o| o.heartbeat_s = u64::MAX);
    let runner = Runner::start(config(&cp));
    runner.expect_state("connected", T);
    runner
        .link
        .send(ToLink::Frame(proto::accepted("still-alive")));
    cp.wait_for(|f| f["job_id"] == "still-alive", T);
}

/// A `welcome` whose `heartbeat_s` is a float, zero, negative, a string
/// or huge was discarded whole, acks included: the runner ran jobs but
/// never saw itself welcomed (so never reported them) and reconnected
/// every 45 s forever. Now the field is read on its own and the acks
/// still release the job the server already stored.
#[test]
fn a_welcome_with_an_odd_heartbeat_still_welcomes_and_acks() {
    use ados_work_runner::job::event::JobResult;
    use ados_work_runner::job::{JobId, Reporter};
    use ados_work_runner::journal::{Journal, JournalSink};
    use ados_work_runner::redact::Redactor;

    for raw in ["15.0", "0", "-1", "\"15\"", "1e30"] {
        let tmp = ados_test_support::fixtures::TempDir::new("welcome-heartbeat");
        let journal = Journal::open(tmp.path()).unwrap();
        let job = JobId::parse("stored").unwrap();
        let stream = journal.create(&job).unwrap();
        let mut reporter = Reporter::resume(
            job.clone(),
            stream.next_seq(),
            Box::new(JournalSink::new(stream.clone(), link::Waker::noop())),
            Arc::new(Redactor::empty()),
        );
        reporter.finish(JobResult::failed("x"));
        let last = stream.last_written();

        let cp = cp_with(|o| o.welcome = false);
        let runner = Runner::start(config(&cp));
        runner.link.send(ToLink::Track(stream.clone()));
        cp.wait_for_type(0, "hello", T);
        let welcome = format!(
            r#"{{"type":"welcome","heartbeat_s":{raw},"acks":[{{"job_id":"stored","seq":{last}}}]}}"#
        );
        assert!(cp.send_raw(&welcome));
        // `Released` (the welcome's ack) comes first, then `Connected`.
        let (mut released, mut connected) = (None, false);
        let deadline = Instant::now() + T;
        while !(connected && released.is_some()) {
            match runner.from.recv_deadline(deadline) {
                Ok(FromLink::Released(id)) => released = Some(id),
                Ok(FromLink::Connected) => connected = true,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        assert!(connected, "heartbeat_s {raw}: the welcome was discarded");
        assert_eq!(released, Some(job), "heartbeat_s {raw}: the acks were lost");
        // Still connected and heartbeating after the welcome.
        cp.wait_for(|f| f["type"] == "heartbeat", T);
    }
}

#[test]
fn close_while_disconnected_with_nothing_to_deliver_ends_at_once() {
    let mut cp = cp_with(|_| {});
    cp.stop();
    let mut runner = Runner::start(config(&cp));
    let took = runner.close(Duration::from_secs(5));
    assert!(took < Duration::from_secs(1), "close took {took:?}");
    assert_eq!(runner.next_state(Duration::ZERO), None);
}
