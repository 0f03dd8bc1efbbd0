//! The doctor (`check`) and the daemon's link reach the control plane the
//! same way: the same `NO_PROXY` reading, the same proxy, the same proxy
//! credentials. Each test runs both from one configuration against the
//! test control plane behind the test CONNECT proxy, and compares.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::fixtures::TempDir;
use ados_test_support::proxy::ConnectProxy;
use ados_work_runner::check::{run_checks_with, Check};
use ados_work_runner::config::{Config, Purpose, RawEnv};
use ados_work_runner::link::proto::HelloInfo;
use ados_work_runner::link::Outbox;
use ados_work_runner::link::{self, FromLink, LinkConfig, ToLink};
use ados_work_runner::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(10);

/// A host only the proxy can reach (`.invalid` never resolves).
const HOST: &str = "api.corp.invalid";

struct Setup {
    cp: ControlPlane,
    proxy: ConnectProxy,
    env: RawEnv,
    _ws: TempDir,
}

/// The control plane at `http://api.corp.invalid:PORT`, reachable only
/// through the proxy; `HTTP_PROXY` with `proxy_userinfo`, and `NO_PROXY`.
fn setup(no_proxy: &str, proxy_userinfo: &str) -> Setup {
    let cp = ControlPlane::start(Options::default());
    let proxy = ConnectProxy::start_to(SocketAddr::from(([127, 0, 0, 1], cp.port())));
    let ws = TempDir::new("net-check");
    let env = RawEnv::from_pairs([
        (
            "ADOS_API_URL".to_string(),
            format!("http://{HOST}:{}", cp.port()),
        ),
        ("ADOS_TOKEN".into(), cp.options().token.clone()),
        ("ADOS_RUNNER_ID".into(), "runner-net".into()),
        ("WORKSPACE_DIR".into(), ws.path().display().to_string()),
        ("ADOS_CPUS".into(), "1".into()),
        ("ADOS_MEMORY".into(), "4G".into()),
        ("ADOS_MIN_FREE_DISK".into(), "0".into()),
        (
            "HTTP_PROXY".into(),
            format!("http://{proxy_userinfo}127.0.0.1:{}", proxy.port()),
        ),
        ("NO_PROXY".into(), no_proxy.into()),
    ]);
    Setup {
        cp,
        proxy,
        env,
        _ws: ws,
    }
}

/// The WebSocket check of `check`, with fake program probes.
fn websocket_check(env: &RawEnv) -> Check {
    run_checks_with(env, &|p| match p {
        "git" => Ok("git version 2.43.0".into()),
        _ => Ok("1.0.0".into()),
    })
    .into_iter()
    .find(|c| c.name == "WebSocket handshake")
    .expect("the configuration is valid, so the WebSocket is checked")
}

/// Start the daemon's link with the configuration the daemon would give it.
fn start_link(
    env: &RawEnv,
) -> (
    link::Link,
    crossbeam_channel::Receiver<FromLink>,
    Arc<Metrics>,
) {
    let cfg = Config::from_raw(env, Purpose::Daemon).expect("valid configuration");
    let mut link_cfg = LinkConfig::from_config(
        &cfg,
        HelloInfo {
            runner_id: cfg.runner_id.clone(),
            group: "default".into(),
            mode: "all".into(),
            hostname: "test".into(),
            cpus: 1,
            memory: "4GB".into(),
            memory_bytes: 4 << 30,
            deploy_id: None,
            tenant_id: None,
            version: ados_work_runner::VERSION.into(),
            executor: "host".into(),
            agents: vec![],
            slots: 1,
        },
    );
    link_cfg.max_backoff = Duration::from_millis(50);
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = crossbeam_channel::unbounded();
    let (link, _thread) = link::start(link_cfg, Outbox::new(), metrics.clone(), tx).unwrap();
    (link, rx, metrics)
}

fn reconnects(m: &Metrics) -> u64 {
    m.render()
        .lines()
        .find_map(|l| l.strip_prefix("ados_reconnects_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Whether the link connects: `Some(true)` once welcomed, `Some(false)`
/// once a first attempt has failed without a connection.
fn link_connects(env: &RawEnv) -> bool {
    let (link, rx, metrics) = start_link(env);
    let deadline = Instant::now() + T;
    let connected = loop {
        if let Ok(FromLink::Connected) = rx.recv_timeout(Duration::from_millis(10)) {
            break true;
        }
        if reconnects(&metrics) > 0 {
            break false;
        }
        assert!(
            Instant::now() < deadline,
            "the link neither connected nor failed"
        );
    };
    link.send(ToLink::Close {
        deadline: Instant::now(),
    });
    connected
}

/// `check` and `run` used two `NO_PROXY` matchers: config's took a bare
/// `corp.invalid` as a domain suffix and ignored ports, the link's took it
/// as an exact host and dropped ports. So the doctor went direct where the
/// daemon used the proxy, and the other way round. Now one matcher (curl
/// and Go conventions) decides for both.
#[test]
fn check_and_the_link_route_a_host_the_same_way() {
    // (NO_PROXY, goes through the proxy)
    let table = [
        ("corp.invalid", false),
        (".corp.invalid", false),
        (&format!("{HOST}:1") as &str, true),
        ("other.invalid", true),
    ];
    for (no_proxy, proxied) in table {
        let s = setup(no_proxy, "");
        let ws = websocket_check(&s.env);
        let check_proxied = s.proxy.requests().len();
        assert_eq!(
            ws.ok,
            proxied,
            "NO_PROXY={no_proxy}: check went {} ({ws:?})",
            if ws.ok { "through the proxy" } else { "direct" }
        );
        let connected = link_connects(&s.env);
        assert_eq!(
            connected,
            proxied,
            "NO_PROXY={no_proxy}: check {} but the link {}",
            if proxied {
                "used the proxy"
            } else {
                "went direct"
            },
            if connected {
                "used the proxy"
            } else {
                "went direct"
            },
        );
        let link_requests = s.proxy.requests().len() - check_proxied;
        assert_eq!(link_requests > 0, proxied, "NO_PROXY={no_proxy}");
        drop(s.cp);
    }
}

/// The doctor's own CONNECT did not percent-decode the proxy credentials
/// (the link and curl do): with a `@` or `:` in the password, `check`
/// failed with 407 where the daemon got through, or the other way round.
/// Now both send the same `Proxy-Authorization`.
#[test]
fn check_sends_the_proxy_credentials_the_daemon_sends() {
    let s = setup("", "us%40er:p%3Ass@");
    let ws = websocket_check(&s.env);
    assert!(ws.ok, "{ws:?}");
    assert!(link_connects(&s.env));
    let want = format!("Basic {}", ados_work_runner::base64::encode(b"us@er:p:ss"));
    let requests = s.proxy.requests();
    assert!(
        requests.len() >= 3,
        "api, WebSocket check, link: {requests:?}"
    );
    for r in &requests {
        assert_eq!(r.target, format!("{HOST}:{}", s.cp.port()));
        assert_eq!(
            r.proxy_authorization.as_deref(),
            Some(want.as_str()),
            "{r:?}"
        );
    }
}
