//! Egress control with real Docker (`ADOS_JOB_EGRESS=allowlist`): the real
//! binary, the test control plane, and a fake agent in the job image that
//! tries to reach things from inside its container (with Python's urllib,
//! which honours the proxy variables, and raw sockets, which do not).
//!
//! The servers the agent tries to reach run on this host, on one of its
//! non-loopback addresses: the runner's own host, which only an entry
//! naming that exact `host:port` opens through the proxy, and which the
//! fence must keep unreachable directly.

use ados_test_support::control_plane::ControlPlane;
use ados_test_support::docker;
use ados_test_support::docker_runner::{DockerRunner, T};
use ados_test_support::fixtures::try_git;
use ados_test_support::runner::{free_port, http_get};
use ados_test_support::runner_container::{full_scene, RunnerSpec};
use ados_work_runner::egress::Allowlist;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");

/// An HTTP server answering every request `200 <word>` on `addr`.
fn http_server(ip: IpAddr, word: &'static str) -> SocketAddr {
    let l = TcpListener::bind((ip, 0)).expect("bind a test server");
    let addr = l.local_addr().expect("bound");
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            let mut c = c;
            let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{word}",
                word.len()
            );
        }
    });
    addr
}

/// This host's first non-loopback IPv4 address (where the test servers
/// listen), and docker0's (the default bridge's gateway).
fn host_addresses() -> (IpAddr, IpAddr) {
    let subnet = docker::docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
    ]);
    let bridge = Allowlist::parse("subnet", subnet.split_whitespace().next().unwrap_or(""))
        .expect("the default bridge's subnet");
    let own = ados_work_runner::egress::rules::own_addresses();
    let gateway = own
        .iter()
        .copied()
        .find(|a| bridge.allows(&a.to_string(), 1, &[*a]))
        .expect("docker0's address");
    let host = own
        .into_iter()
        .find(|a| a.is_ipv4() && !a.is_loopback() && *a != gateway)
        .unwrap_or(gateway);
    (host, gateway)
}

/// A fenced runner (the shared Docker harness) whose `ADOS_EGRESS_ALLOW`
/// is `allow`; `None` when Docker is not available (the test is skipped).
fn fenced(test: &str, allow: &str) -> Option<DockerRunner> {
    fenced_with(test, allow, Vec::new())
}

/// [`fenced`], with `more` variables.
fn fenced_with(test: &str, allow: &str, more: Vec<(&'static str, String)>) -> Option<DockerRunner> {
    if !docker::available_or_skip(test) {
        return None;
    }
    let mut extra = vec![
        ("ADOS_MAX_JOBS", "2".into()),
        ("ADOS_JOB_EGRESS", "allowlist".into()),
        ("ADOS_EGRESS_ALLOW", allow.to_string()),
        (
            "ANTHROPIC_API_KEY",
            "sk-ant-egress-test-0123456789abcdef".into(),
        ),
    ];
    extra.extend(more);
    Some(DockerRunner::start(
        BIN,
        "eg",
        test,
        docker::job_image(),
        extra,
    ))
}

/// The `runner` stream of job `id`, all its lines.
fn runner_log(s: &DockerRunner, id: &str) -> String {
    runner_stream(&s.cp, id)
}

/// The `runner` stream of job `id` on `cp`, all its lines.
fn runner_stream(cp: &ControlPlane, id: &str) -> String {
    cp.frames()
        .into_iter()
        .filter(|v| v["type"] == "job.event" && v["job_id"] == id)
        .filter(|v| v["event"]["kind"] == "log" && v["event"]["stream"] == "runner")
        .filter_map(|v| v["event"]["text"].as_str().map(str::to_string))
        .collect()
}

/// `file` on main, which must be there.
fn on_main(s: &DockerRunner, file: &str) -> String {
    s.file_on_main(file)
        .unwrap_or_else(|| panic!("{file} is not on main"))
}

/// A prompt line: fetch `url` with urllib (proxy variables honoured) into
/// `file`, the body or the error.
fn fetch(url: &str, file: &str) -> String {
    format!(
        "FAKE: sh python3 -c \"exec('import urllib.request as u\\ntry: print(u.urlopen(\\'{url}\\', timeout=20).read().decode())\\nexcept Exception as e: print(\\'failed\\', e)')\" > {file} 2>&1"
    )
}

/// A prompt line: a raw TCP connection to `addr` (no proxy) into `file`.
fn direct(addr: SocketAddr, file: &str) -> String {
    format!(
        "FAKE: sh python3 -c \"exec('import socket\\ntry: socket.create_connection((\\'{}\\', {}), timeout=5); print(\\'connected\\')\\nexcept Exception as e: print(\\'failed\\', e)')\" > {file} 2>&1",
        addr.ip(),
        addr.port()
    )
}

#[test]
fn a_fenced_agent_reaches_what_is_allowed_through_the_proxy_and_nothing_else() {
    if !docker::available_or_skip("a_fenced_agent_reaches") {
        return;
    }
    let (own, gateway) = host_addresses();
    let allowed = http_server(own, "allowed-body");
    // A host service on every address (0.0.0.0): the fence must keep it
    // out of reach on the host's address and on docker0's.
    let open = http_server(IpAddr::from([0, 0, 0, 0]), "host-service");
    let allow = format!("{own}:{},169.254.0.0/16,0.0.0.0/0", allowed.port());
    let Some(s) = fenced("a_fenced_agent_reaches", &allow) else {
        return;
    };
    let prompt = [
        fetch(&format!("http://{allowed}/"), "allowed.txt"),
        fetch("https://evil.example/", "refused.txt"),
        fetch("http://169.254.169.254/latest/meta-data/", "metadata.txt"),
        direct(allowed, "direct.txt"),
        direct(SocketAddr::new(own, open.port()), "host-direct.txt"),
        direct(SocketAddr::new(gateway, open.port()), "gateway-direct.txt"),
        "FAKE: sh env | grep -i _proxy | sed 's/:[^:@]*@/:TOKEN@/' | sort > proxy-env.txt".into(),
        "FAKE: sh echo \"proxy is $HTTPS_PROXY\"".into(),
    ]
    .join("\n");
    s.cp.assign(s.spec("eg-1", &prompt, ""));
    let res = s.result("eg-1");
    assert_eq!(res["status"], "completed", "{res}");

    assert_eq!(on_main(&s, "allowed.txt"), "allowed-body");
    let refused = on_main(&s, "refused.txt");
    assert!(
        refused.starts_with("failed") && refused.contains("403"),
        "{refused}"
    );
    let meta = on_main(&s, "metadata.txt");
    assert!(meta.starts_with("failed") && meta.contains("403"), "{meta}");
    for f in ["direct.txt", "host-direct.txt", "gateway-direct.txt"] {
        let got = on_main(&s, f);
        assert!(got.starts_with("failed"), "{f}: {got}");
    }
    let env = on_main(&s, "proxy-env.txt");
    assert!(
        env.contains("HTTPS_PROXY=http://ados:TOKEN@127.0.0.1:3128"),
        "{env}"
    );
    assert!(
        env.contains("https_proxy=http://ados:TOKEN@127.0.0.1:3128"),
        "{env}"
    );
    assert!(env.contains("NO_PROXY=localhost,127.0.0.1,::1"), "{env}");

    // The job's proxy token is a secret: masked in the job's stream.
    let events = s.events("eg-1");
    assert!(
        events.contains("proxy is http://ados:[REDACTED]@127.0.0.1:3128"),
        "{events}"
    );
    let log = runner_log(&s, "eg-1");
    assert!(
        log.contains("egress refused: evil.example:443 (not on the allowlist)\n"),
        "{log}"
    );
    assert!(
        log.contains(
            "egress refused: 169.254.169.254:80 (169.254.169.254 is a link-local metadata address"
        ),
        "{log}"
    );
    // The container is gone, and so is the job's socket.
    assert!(s.containers().is_empty(), "{:?}", s.containers());
    assert!(!s.ws.path().join("jobs/eg-1").exists());
}

#[test]
fn a_jobs_registries_are_reachable_by_that_job_only() {
    if !docker::available_or_skip("a_jobs_registries_are") {
        return;
    }
    let (own, _) = host_addresses();
    let registry = http_server(own, "registry-index");
    let Some(s) = fenced("a_jobs_registries_are", "") else {
        return;
    };
    let url = format!("http://{registry}/npm/");
    let prompt = fetch(&url, "registry.txt");
    let mut with = s.spec("eg-reg", &prompt, "");
    with["registries"] =
        json!([{"type": "npm", "url": url, "token": "npm-egress-token-0123456789"}]);
    s.cp.assign(with);
    assert_eq!(s.result("eg-reg")["status"], "completed");
    assert_eq!(on_main(&s, "registry.txt"), "registry-index");
    assert!(!runner_log(&s, "eg-reg").contains("egress refused"));

    s.cp.assign(s.spec("eg-noreg", &prompt, ""));
    assert_eq!(s.result("eg-noreg")["status"], "completed");
    let got = on_main(&s, "registry.txt");
    assert!(got.starts_with("failed") && got.contains("403"), "{got}");
    let log = runner_log(&s, "eg-noreg");
    assert!(
        log.contains(&format!(
            "egress refused: {registry} (not on the allowlist)\n"
        )),
        "{log}"
    );
}

#[test]
fn what_a_fenced_job_leaves_is_swept_after_a_sigkill_and_removed_when_the_runner_stops() {
    let Some(mut s) = fenced("what_a_fenced_job_leaves", "") else {
        return;
    };
    s.cp.assign(s.spec("eg-kill", "FAKE: hang", ""));
    let sock = s.ws.path().join("jobs/eg-kill/egress/proxy.sock");
    let deadline = std::time::Instant::now() + T;
    while s.containers().is_empty() || !sock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the fenced container never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    if let Some(r) = s.runner.as_mut() {
        r.signal(libc::SIGKILL);
        assert!(r.wait_exit(T).is_some(), "the runner did not die");
    }
    // The forwarder copies of two `check` runs: one killed (its process
    // is gone), one still running (this test's own process).
    let egress = s.ws.path().join("state/egress");
    let mut gone = std::process::Command::new("true")
        .spawn()
        .expect("run true");
    let gone_pid = gone.id();
    gone.wait().expect("wait for true");
    let killed_check = egress.join(format!("check-{gone_pid}"));
    let live_check = egress.join(format!("check-{}", std::process::id()));
    std::fs::write(&killed_check, "a killed check's forwarder").expect("write");
    std::fs::write(&live_check, "a running check's forwarder").expect("write");
    let from = s.cp.frame_count();
    s.start_runner();
    s.cp.wait_for_after(from, |v| v["type"] == "hello", T);
    assert!(!killed_check.exists(), "a killed check's forwarder is left");
    assert!(live_check.exists(), "a running check's forwarder was taken");
    let _ = std::fs::remove_file(&live_check);
    let res = s.cp.wait_for_after(
        from,
        |v| v["type"] == "job.result" && v["job_id"] == "eg-kill",
        T,
    );
    assert_eq!(res["status"], "failed", "{res}");
    assert!(s.containers().is_empty(), "{:?}", s.containers());
    assert!(!sock.exists(), "the job's egress socket outlived its job");
    // A runner that stops leaves nothing of the fence either.
    let forwarder = s.ws.path().join("state/egress/ados-work-runner");
    assert!(forwarder.exists(), "the forwarder binary was not placed");
    if let Some(r) = s.runner.as_mut() {
        r.signal(libc::SIGTERM);
        assert!(r.wait_exit(T).is_some(), "the runner did not stop");
    }
    assert!(!forwarder.exists(), "the forwarder outlived the runner");
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

#[test]
fn check_says_the_egress_mode_and_that_the_fence_works_here() {
    let Some(s) = fenced("check_says_the_egress", "pypi.org,10.0.0.0/8") else {
        return;
    };
    let (_, out, err) =
        ados_test_support::runner::run_to_end(Path::new(BIN), &["check"], &s.env, T);
    assert!(
        out.contains("✓ egress: allowlist: job containers have no network but the runner's proxy"),
        "{out}{err}"
    );
    assert!(out.contains("and pypi.org, 10.0.0.0/8"), "{out}");
    // Nothing of the check is left in the workspace.
    let left: Vec<_> = std::fs::read_dir(s.ws.path().join("state/egress"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.iter()
            .all(|n| !n.to_string_lossy().starts_with("check-")),
        "{left:?}"
    );
    let mut env = s.env.clone();
    env.retain(|(k, _)| !k.starts_with("ADOS_EGRESS") && *k != "ADOS_JOB_EGRESS");
    let (_, out, _) = ados_test_support::runner::run_to_end(Path::new(BIN), &["check"], &env, T);
    assert!(
        out.contains("✓ egress: open: job containers reach"),
        "{out}"
    );
}

#[test]
fn a_refusal_after_the_jobs_last_command_reaches_its_stream_and_the_counter_alike() {
    let health = free_port();
    let Some(s) = fenced_with(
        "a_refusal_after_the_jobs_last",
        "",
        vec![("ADOS_HEALTH_ADDR", format!("127.0.0.1:{health}"))],
    ) else {
        return;
    };
    // The agent leaves a process behind that keeps trying a refused host
    // until the container goes: past the agent's end, the job's last
    // command. It says so (bg.txt) once it has been refused.
    let script = r"import socket, os, base64, time\ntok = os.environ['HTTPS_PROXY'].split('@')[0].rsplit(':', 1)[1]\nauth = base64.b64encode(('ados:' + tok).encode()).decode()\nreq = ('CONNECT evil.example:443 HTTP/1.1\\r\\nHost: evil.example:443\\r\\nProxy-Authorization: Basic ' + auth + '\\r\\n\\r\\n').encode()\nfirst = True\nwhile True:\n    try:\n        s = socket.create_connection(('127.0.0.1', 3128), timeout=5)\n        s.sendall(req)\n        s.recv(4096)\n        s.close()\n    except Exception:\n        pass\n    if first:\n        open('bg.txt', 'w').write('refused')\n        first = False\n    time.sleep(0.002)";
    let prompt = [
        format!("FAKE: write-escaped bg.py {script}"),
        "FAKE: sh nohup python3 bg.py > /dev/null 2>&1 &".into(),
        "FAKE: sh while [ ! -s bg.txt ]; do sleep 0.05; done".into(),
    ]
    .join("\n");
    s.cp.assign(s.spec("eg-bg", &prompt, ""));
    let res = s.result("eg-bg");
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(on_main(&s, "bg.txt"), "refused");
    let log = runner_log(&s, "eg-bg");
    let mut streamed = 0u64;
    for line in log.lines() {
        if line == "egress refused: evil.example:443 (not on the allowlist)" {
            streamed += 1;
        } else if let Some(n) = line
            .strip_prefix("egress refused ")
            .and_then(|l| l.strip_suffix(" more connection(s)"))
        {
            streamed += n.parse::<u64>().expect("a count");
        }
    }
    let (code, metrics) = http_get(health, "/metrics").expect("the runner's /metrics");
    assert_eq!(code, 200);
    let counted: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ados_egress_denied_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ados_egress_denied_total in /metrics:\n{metrics}"));
    assert!(counted > 0, "{metrics}");
    // Every refusal the proxy counted is in the job's stream, those after
    // the job's last command too.
    assert_eq!(streamed, counted, "{log}");
}

#[test]
fn a_runner_in_the_full_image_fences_its_jobs_in_through_its_volume() {
    let Some((image, mut s)) = full_scene("a_runner_in_the_full_image_fences", "egress-in") else {
        return;
    };
    let gw: IpAddr = docker::bridge_gateway()
        .parse()
        .expect("the bridge's gateway address");
    let allowed = http_server(gw, "allowed-body");
    let other = http_server(gw, "other-body");
    let vol = s.volume(1);
    let pid = std::process::id();
    let id = format!("egress-in-{pid}");
    let from = s.cp.frames().len();
    s.start_runner(
        &image,
        &RunnerSpec {
            id: &id,
            workspace: &vol,
            group: None,
            limits: None,
            user: None,
            env: vec![
                ("ADOS_JOB_EGRESS", "allowlist".into()),
                // Everything, but the Docker host (the runner's host,
                // on the gateway of the runner's network) only on the
                // one port named exactly.
                ("ADOS_EGRESS_ALLOW", format!("{allowed},0.0.0.0/0,::/0")),
            ],
        },
    );
    s.hello(&id, from);
    // `check` in the runner's container runs the forwarder from the volume.
    let name = s.container_name(&id);
    let check = docker::docker_output(&["exec", &name, "ados-work-runner", "check"]);
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("✓ egress: allowlist: job containers have no network"),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let job = format!("egress-in-{pid}-1");
    let prompt = [
        fetch(&format!("http://{allowed}/"), "allowed.txt"),
        fetch(&format!("http://{other}/"), "other.txt"),
        fetch("https://evil.example/", "evil.txt"),
        direct(allowed, "direct.txt"),
    ]
    .join("\n");
    s.assign(&id, s.spec("r", &job, &prompt, ""));
    let res = s.result(&job);
    assert_eq!(res["status"], "completed", "{res}\n{}", s.logs(&id));
    let bare = s.repos.path().join("r.git");
    let file = |f: &str| {
        let (ok, out, _) = try_git(&bare, &["show", &format!("main:{f}")]);
        assert!(ok, "{f} is not on main");
        out.trim().to_string()
    };
    assert_eq!(file("allowed.txt"), "allowed-body");
    for f in ["other.txt", "evil.txt"] {
        let got = file(f);
        assert!(
            got.starts_with("failed") && got.contains("403"),
            "{f}: {got}"
        );
    }
    let direct = file("direct.txt");
    assert!(direct.starts_with("failed"), "{direct}");
    let log = runner_stream(&s.cp, &job);
    assert!(
        log.contains("egress refused: evil.example:443 (not on the allowlist)\n"),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "egress refused: {other} ({gw} is the runner's own host;"
        )),
        "{log}"
    );
}
