//! The real binary against the test control plane: job validation on the
//! wire, drain/undrain, idempotent assign, health and metrics, signals and
//! configuration errors.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::fixtures::{make_bare_repo, TempDir};
use ados_test_support::runner::{
    free_port, http_get, path_with_fake_agents, run_to_end, RunnerProcess, CHECK_PASSES,
};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");
/// The longest any one wait may take: generous, so a loaded CI machine does
/// not fail a test that passes in a second (no test waits for something
/// NOT to happen within it).
const T: Duration = Duration::from_secs(60);

fn env_for(cp: &ControlPlane, ws: &Path, health: u16) -> Vec<(&'static str, String)> {
    vec![
        ("ADOS_API_URL", cp.url()),
        ("ADOS_TOKEN", cp.options().token.clone()),
        ("ADOS_RUNNER_ID", "runner-test".into()),
        ("WORKSPACE_DIR", ws.display().to_string()),
        ("ADOS_HEALTH_ADDR", format!("127.0.0.1:{health}")),
        ("ADOS_MAX_BACKOFF", "300ms".into()),
        ("ADOS_ALLOW_FILE_REMOTES", "1".into()),
        ("ADOS_MAX_JOBS", "2".into()),
        ("ADOS_MIN_FREE_DISK", "0".into()),
        ("ADOS_LOG_LEVEL", "info".into()),
        ("ANTHROPIC_API_KEY", "sk-ant-daemon-test-0123456789".into()),
        ("PATH", path_with_fake_agents()),
    ]
}

fn start_cp(heartbeat_s: u64) -> ControlPlane {
    ControlPlane::start(Options {
        heartbeat_s,
        ..Options::default()
    })
}

fn job(id: &str, clone_url: &str, prompt: &str) -> Value {
    json!({"job_id": id, "kind": "issue",
           "repo": {"provider":"github","owner":"o","name":"r","clone_url":clone_url,"target_branch":"main"},
           "prompt": prompt, "agent": {"name":"claude"}, "merge_mode":"none", "test_command": ""})
}

fn is(kind: &str, job_id: &str) -> impl Fn(&Value) -> bool {
    let kind = kind.to_string();
    let job_id = job_id.to_string();
    move |v: &Value| v["type"] == kind.as_str() && v["job_id"] == job_id.as_str()
}

/// Assign `base` patched by each case (`job_id`, top-level fields) and
/// expect a `job.rejected`, not retryable, naming the case's field.
fn assert_rejected_by_field(cp: &ControlPlane, base: &Value, cases: &[(&str, Value, &str)]) {
    for (id, patch, field) in cases {
        let mut spec = base.clone();
        spec["job_id"] = json!(id);
        for (k, v) in patch.as_object().expect("object") {
            spec[k] = v.clone();
        }
        let expect_id = spec["job_id"].clone();
        cp.assign(spec);
        let rej = cp.wait_for(
            |v| v["type"] == "job.rejected" && v["job_id"] == expect_id,
            T,
        );
        assert_eq!(rej["retryable"], false, "{rej}");
        let reason = rej["reason"].as_str().unwrap_or("");
        assert!(reason.contains(&format!("`{field}`")), "{id}: {reason}");
    }
}

#[test]
fn every_invalid_field_is_rejected_by_name_and_not_retryable() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-reject");
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);
    let base = job("x", "https://github.com/o/r.git", "p");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("bad-1", json!({"job_id": "a/b"}), "job_id"),
        (
            "bad-2",
            json!({"repo": {"owner":"o/x","name":"r"}}),
            "repo.owner",
        ),
        (
            "bad-3",
            json!({"repo": {"owner":"o","name":".."}}),
            "repo.name",
        ),
        (
            "bad-4",
            json!({"repo": {"owner":"o","name":"r","path":"../../etc"}}),
            "repo.path",
        ),
        ("bad-5", json!({"branch": "-f"}), "branch"),
        ("bad-6", json!({"branch": "a..b"}), "branch"),
        (
            "bad-7",
            json!({"repo": {"owner":"o","name":"r","target_branch":"x y"}}),
            "repo.target_branch",
        ),
        (
            "bad-8",
            json!({"repo": {"owner":"o","name":"r","clone_url":"ext::sh -c id"}}),
            "repo.clone_url",
        ),
        (
            "bad-9",
            json!({"repo": {"owner":"o","name":"r","clone_url":"http://example.com/r.git"}}),
            "repo.clone_url",
        ),
        (
            "bad-10",
            json!({"agent": {"name":"../claude"}}),
            "agent.name",
        ),
        ("bad-11", json!({"merge_mode": "yolo"}), "merge_mode"),
    ];
    assert_rejected_by_field(&cp, &base, &cases);
    // A missing job_id is answered with null.
    let mut spec = base.clone();
    spec.as_object_mut().expect("object").remove("job_id");
    cp.assign(spec);
    let rej = cp.wait_for(|v| v["type"] == "job.rejected" && v["job_id"].is_null(), T);
    assert!(rej["reason"].as_str().unwrap_or("").contains("job_id"));
    // No job was started for any of them.
    assert!(!cp.frames().iter().any(|f| f["type"] == "job.event"));
}

/// A timeout of 2^63 s used to overflow `Instant + Duration` in a worker
/// thread outside its `catch_unwind`: the worker died, the job stayed
/// "running" and, with every slot taken, the dispatcher spun on the dead
/// channel. Every number and branch name of a spec is now checked on
/// arrival, and the runner keeps running jobs afterwards.
#[test]
fn hostile_numbers_and_branch_names_are_rejected_by_field_and_the_runner_keeps_working() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-hostile");
    let repos = TempDir::new("daemon-hostile-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let url = repo.to_str().unwrap_or("").to_string();
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);
    let huge = json!(1u64 << 63);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("h-1", json!({"timeout_s": huge}), "timeout_s"),
        ("h-2", json!({"timeout_s": huge}), "timeout_s"),
        (
            "h-3",
            json!({"agent": {"name":"claude","timeout_s":huge}}),
            "agent.timeout_s",
        ),
        ("h-4", json!({"idle_timeout_s": huge}), "idle_timeout_s"),
        (
            "h-5",
            json!({"max_repair_attempts": huge}),
            "max_repair_attempts",
        ),
        ("h-6", json!({"branch": "ados/\u{202E}txt.exe"}), "branch"),
        (
            "h-7",
            json!({"repo": {"owner":"o","name":"r","clone_url":url,"target_branch":"main\u{200E}"}}),
            "repo.target_branch",
        ),
    ];
    assert_rejected_by_field(&cp, &job("h", &url, "p"), &cases);
    // Both slots are still free and a job still runs to its result.
    cp.assign(job("h-ok", &url, "FAKE: write a.txt hello"));
    let res = cp.wait_for(is("job.result", "h-ok"), T);
    assert_eq!(res["status"], "completed", "{res}");
}

/// The info log follows a job: a line per step and a closing line with
/// status, duration and commit; never the prompt or the agent's words.
#[test]
fn the_info_log_has_a_line_per_step_and_a_closing_line_with_the_commit() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-steplog");
    let repos = TempDir::new("daemon-steplog-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job(
        "log-1",
        repo.to_str().unwrap_or(""),
        "FAKE: write a.txt prompt-words-9f3",
    ));
    let res = cp.wait_for(is("job.result", "log-1"), T);
    assert_eq!(res["status"], "completed", "{res}");
    let sha = res["commit_sha"].as_str().unwrap_or_default().to_string();
    assert!(!sha.is_empty(), "{res}");
    let closing = "job log-1: completed in ";
    assert!(r.wait_stderr(closing, T), "{}", r.stderr());
    let log = r.stderr();
    for step in ["preparing", "cloning", "running_agent", "committing"] {
        assert!(
            log.contains(&format!("job log-1: {step}\n")),
            "no line for {step}: {log}"
        );
    }
    let line = log
        .lines()
        .find(|l| l.contains(closing))
        .unwrap_or_default();
    assert!(line.contains(&format!("commit {sha}")), "{line}");
    assert!(
        !log.contains("prompt-words-9f3"),
        "the prompt reached the log"
    );
}

#[test]
fn drain_undrain_and_idempotent_assign() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-drain");
    let repos = TempDir::new("daemon-drain-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.send(json!({"type":"drain"}));
    cp.wait_for(
        |v| v["type"] == "heartbeat" && v["draining"] == true && v["free_slots"] == 0,
        T,
    );
    cp.assign(job("d-1", repo.to_str().unwrap_or(""), "FAKE: hang"));
    let rej = cp.wait_for(is("job.rejected", "d-1"), T);
    assert_eq!(rej["retryable"], true, "{rej}");
    cp.send(json!({"type":"undrain"}));
    cp.wait_for(
        |v| v["type"] == "heartbeat" && v["draining"] == false && v["free_slots"] == 2,
        T,
    );

    // A job that hangs, assigned twice: accepted twice, started once.
    let spec = job("d-2", repo.to_str().unwrap_or(""), "FAKE: hang");
    cp.assign(spec.clone());
    cp.wait_for(is("job.accepted", "d-2"), T);
    cp.wait_for(
        |v| {
            v["type"] == "job.event"
                && v["job_id"] == "d-2"
                && v["event"]["status"] == "running_agent"
        },
        T,
    );
    let before = cp.frame_count();
    cp.assign(spec);
    cp.wait_for_after(before, is("job.accepted", "d-2"), T);
    cp.wait_for(
        |v| v["type"] == "heartbeat" && v["running"] == json!(["d-2"]),
        T,
    );
    let starts = cp
        .frames()
        .iter()
        .filter(|v| v["job_id"] == "d-2" && v["event"]["status"] == "preparing")
        .count();
    assert_eq!(starts, 1);

    // Cancel: the result is `cancelled`, exactly one.
    cp.cancel("d-2");
    let res = cp.wait_for(is("job.result", "d-2"), T);
    assert_eq!(res["status"], "cancelled", "{res}");
    // Seqs of the job grow by one, the result last.
    let seqs: Vec<u64> = cp
        .frames()
        .iter()
        .filter(|v| v["job_id"] == "d-2" && (v["type"] == "job.event" || v["type"] == "job.result"))
        .filter_map(|v| v["seq"].as_u64())
        .collect();
    let want: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, want);
}

#[test]
fn health_and_metrics_while_connected() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-health");
    let port = free_port();
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), port));
    cp.wait_for(|v| v["type"] == "heartbeat", T);
    let mut health = None;
    for _ in 0..100 {
        if let Some((200, body)) = http_get(port, "/health") {
            let v: Value = serde_json::from_str(&body).expect("health json");
            if v["connected"] == true {
                health = Some(v);
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let h = health.expect("/health says connected");
    for field in [
        "status",
        "connected",
        "since",
        "running_jobs",
        "free_slots",
        "draining",
        "version",
    ] {
        assert!(h.get(field).is_some(), "missing {field} in {h}");
    }
    assert_eq!(h["free_slots"], 2);
    let (code, metrics) = http_get(port, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    for needle in [
        "ados_up 1",
        "ados_connected 1",
        "ados_active_jobs 0",
        "ados_reconnects_total",
        "ados_events_unacked",
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }
    let (status, _, _) = run_to_end(
        Path::new(BIN),
        &["healthcheck"],
        &[("ADOS_HEALTH_ADDR", format!("127.0.0.1:{port}"))],
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let (status, _, _) = run_to_end(
        Path::new(BIN),
        &["healthcheck"],
        &[("ADOS_HEALTH_ADDR", format!("127.0.0.1:{}", free_port()))],
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1));
}

#[test]
fn first_sigterm_waits_for_the_job_second_cancels_it() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-sigterm");
    let repos = TempDir::new("daemon-sigterm-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let mut r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job("s-1", repo.to_str().unwrap_or(""), "FAKE: hang"));
    cp.wait_for(
        |v| v["job_id"] == "s-1" && v["event"]["status"] == "running_agent",
        T,
    );
    r.signal(libc::SIGTERM);
    cp.wait_for(|v| v["type"] == "heartbeat" && v["draining"] == true, T);
    // Still running, no result: the grace period (600 s) is waiting. (A
    // fixed wait: what is asserted is that nothing happens meanwhile.)
    std::thread::sleep(Duration::from_millis(1500));
    assert!(r.is_running(), "runner exited during the grace period");
    assert!(
        cp.frames().iter().any(|v| v["type"] == "heartbeat"
            && v["running"] == json!(["s-1"])
            && v["draining"] == true),
        "heartbeats go on while draining with the job running"
    );
    assert!(!cp.frames().iter().any(|v| v["type"] == "job.result"));
    // Second signal: cancelled at once, then a clean exit 0.
    r.signal(libc::SIGTERM);
    let res = cp.wait_for(is("job.result", "s-1"), T);
    assert_eq!(res["status"], "cancelled", "{res}");
    let status = r
        .wait_exit(T)
        .expect("runner exits after the second signal");
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
    // The log reads as sentences: no Rust names, counts in the right number.
    let err = r.stderr();
    assert!(
        err.contains("received signal 15 (#1): shutting down"),
        "{err}"
    );
    assert!(err.contains("received signal 15 (#2): killing"), "{err}");
    assert!(err.contains("for 1 running job ("), "{err}");
    for debug_name in [": Shutdown", ": Kill", "(s)"] {
        assert!(!err.contains(debug_name), "{debug_name:?} in:\n{err}");
    }
}

#[test]
fn sigterm_with_nothing_running_exits_zero() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-sigterm-idle");
    let mut r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "heartbeat", T);
    r.signal(libc::SIGINT);
    let status = r.wait_exit(T).expect("exits");
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
}

#[test]
fn bad_configuration_names_every_variable_and_exits_2() {
    let ws = TempDir::new("daemon-config");
    let (status, _out, err) = run_to_end(
        Path::new(BIN),
        &[],
        &[
            ("ADOS_API_URL", "ftp://nowhere".into()),
            ("ADOS_TOKEN", "super secret token value".into()),
            ("WORKSPACE_DIR", "relative/dir".into()),
            ("ADOS_MEMORY", "lots".into()),
            ("ADOS_MODE", "sometimes".into()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
        ],
        T,
    );
    drop(ws);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    for var in [
        "ADOS_API_URL",
        "ADOS_TOKEN",
        "ADOS_RUNNER_ID",
        "WORKSPACE_DIR",
        "ADOS_MEMORY",
        "ADOS_MODE",
    ] {
        assert!(err.contains(var), "{var} not named in:\n{err}");
    }
    assert!(!err.contains("super secret"), "secret printed:\n{err}");
    assert!(err.contains("example"), "{err}");
}

#[test]
fn version_and_help() {
    let (status, out, _) = run_to_end(Path::new(BIN), &["version"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(out.contains(env!("CARGO_PKG_VERSION")));
    let (status, out, _) = run_to_end(Path::new(BIN), &["--help"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    for sub in ["run", "exec", "check", "healthcheck", "version"] {
        assert!(out.contains(sub), "{sub} missing from help");
    }
    let (status, _, err) = run_to_end(Path::new(BIN), &["bogus"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
}

#[test]
fn help_on_every_subcommand_prints_help_and_runs_nothing() {
    // No configuration and no server: a subcommand that ran would fail.
    for sub in ["run", "exec", "check", "healthcheck"] {
        for flag in ["--help", "-h"] {
            let (status, out, err) = run_to_end(Path::new(BIN), &[sub, flag], &[], T);
            assert_eq!(
                status.and_then(|s| s.code()),
                Some(0),
                "{sub} {flag}: {out}{err}"
            );
            assert!(out.contains("USAGE"), "{sub} {flag}: {out}");
            assert!(!out.contains('✗'), "{sub} {flag} ran checks: {out}");
        }
    }
    let (status, _, err) = run_to_end(Path::new(BIN), &["check", "--bogus"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
}

#[test]
fn help_env_lists_every_variable_with_its_default() {
    let (status, out, err) = run_to_end(Path::new(BIN), &["help", "env"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    for var in [
        "ADOS_API_URL",
        "ADOS_TOKEN",
        "WORKSPACE_DIR",
        "ADOS_LOG_LEVEL",
        "ADOS_MIN_FREE_DISK",
        "ADOS_JOB_UID_BASE",
    ] {
        assert!(out.contains(var), "{var} missing from:\n{out}");
    }
    assert!(out.contains("default: 0.0.0.0:8080"), "{out}");
}

#[test]
fn hello_lists_only_the_agent_clis_found() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-agents");
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp, ws.path(), free_port()));
    let hello = cp.wait_for(|v| v["type"] == "hello", T);
    assert_eq!(
        hello["agents"],
        json!(["claude", "codex", "copilot"]),
        "{hello}"
    );
    drop(_r);

    let cp = start_cp(15);
    let ws = TempDir::new("daemon-no-agents");
    let mut env = env_for(&cp, ws.path(), free_port());
    for (k, v) in env.iter_mut() {
        if *k == "PATH" {
            *v = "/usr/bin:/bin".into();
        }
    }
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env);
    let hello = cp.wait_for(|v| v["type"] == "hello", T);
    assert_eq!(hello["agents"], json!([]), "{hello}");
}

#[test]
fn low_disk_rejects_new_jobs_as_retryable_and_health_says_why() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-disk");
    let port = free_port();
    let mut env = env_for(&cp, ws.path(), port);
    for (k, v) in env.iter_mut() {
        if *k == "ADOS_MIN_FREE_DISK" {
            *v = "1000T".into();
        }
    }
    let _r = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "heartbeat", T);
    cp.assign(job("disk-1", "https://github.com/o/r.git", "p"));
    let rej = cp.wait_for(is("job.rejected", "disk-1"), T);
    assert_eq!(rej["retryable"], true, "{rej}");
    assert!(
        rej["reason"].as_str().unwrap_or("").contains("disk"),
        "{rej}"
    );
    let (code, body) = http_get(port, "/health").expect("health");
    assert_eq!(code, 200, "alive, just refusing jobs: {body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(
        v["disk"]
            .as_str()
            .unwrap_or("")
            .contains("ADOS_MIN_FREE_DISK"),
        "{v}"
    );
}

#[test]
fn a_secret_too_short_to_mask_is_warned_about_once() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-short");
    let mut env = env_for(&cp, ws.path(), free_port());
    env.push(("GITHUB_TOKEN", "abc".into()));
    let r = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "heartbeat", T);
    // stderr is collected by a thread of its own: the heartbeat may arrive
    // on the socket before that thread has read the warning.
    assert!(
        r.wait_stderr("GITHUB_TOKEN is shorter than", T),
        "{}",
        r.stderr()
    );
    let err = r.stderr();
    assert_eq!(
        err.matches("GITHUB_TOKEN is shorter than").count(),
        1,
        "{err}"
    );
}

#[test]
fn after_the_grace_period_running_jobs_are_cancelled_and_the_runner_exits() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-grace");
    let repos = TempDir::new("daemon-grace-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let mut env = env_for(&cp, ws.path(), free_port());
    env.push(("ADOS_SHUTDOWN_GRACE", "1".into()));
    let mut r = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job("g-1", repo.to_str().unwrap_or(""), "FAKE: hang"));
    cp.wait_for(
        |v| v["job_id"] == "g-1" && v["event"]["status"] == "running_agent",
        T,
    );
    r.signal(libc::SIGTERM);
    let res = cp.wait_for(is("job.result", "g-1"), T);
    assert_eq!(res["status"], "cancelled", "{res}");
    assert!(
        res["error"]
            .as_str()
            .unwrap_or("")
            .contains("shutting down"),
        "{res}"
    );
    let status = r.wait_exit(T).expect("exits after the grace period");
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
}

#[test]
fn check_passes_against_a_control_plane_and_names_the_fix_when_the_token_is_wrong() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-check");
    let env = env_for(&cp, ws.path(), free_port());
    let (status, out, err) = run_to_end(Path::new(BIN), &["check"], &env, T);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}{err}");
    for line in CHECK_PASSES {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(!out.contains("(s)"), "{out}");
    let mut bad = env.clone();
    for (k, v) in bad.iter_mut() {
        if *k == "ADOS_TOKEN" {
            *v = "wrong-token-value".into();
        }
    }
    let (status, out, err) = run_to_end(Path::new(BIN), &["check"], &bad, T);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}{err}");
    assert!(out.contains("✗ WebSocket handshake"), "{out}");
    assert!(out.contains("fix:"), "{out}");
    assert!(!out.contains("wrong-token-value") && !err.contains("wrong-token-value"));
}

#[test]
fn a_refused_token_is_never_logged_even_at_trace_in_json() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-trace");
    let secret = "refused-token-0123456789";
    let mut env = env_for(&cp, ws.path(), free_port());
    for (k, v) in env.iter_mut() {
        match *k {
            "ADOS_TOKEN" => *v = secret.into(),
            "ADOS_LOG_LEVEL" => *v = "trace".into(),
            _ => {}
        }
    }
    env.push(("ADOS_LOG_FORMAT", "json".into()));
    let r = RunnerProcess::start(Path::new(BIN), &[], &env);
    assert!(r.wait_stderr("401", T), "{}", r.stderr());
    let err = r.stderr();
    assert!(!err.contains(secret), "token in the log");
    assert!(
        err.contains(&cp.url().replace("http://", "")),
        "the URL is named"
    );
    // Every line is one JSON object.
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(v.get("level").is_some() && v.get("msg").is_some(), "{line}");
    }
}

/// Where `name` is on this process's PATH.
fn on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

/// `setpriv` arguments that run a program as `nobody` with no capabilities:
/// the position of an agent running as the runner's own (non-root) uid.
const AS_NOBODY: [&str; 3] = ["--reuid=65534", "--regid=65534", "--clear-groups"];

#[test]
fn a_same_uid_process_cannot_read_the_runners_environment() {
    let setpriv = on_path("setpriv").expect("setpriv (util-linux) runs the runner as nobody");
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-dumpable");
    // The runner runs as nobody: a reader of the same uid without
    // CAP_SYS_PTRACE is what an agent is (root may read any process).
    std::os::unix::fs::chown(ws.path(), Some(65534), Some(65534)).expect("chown workspace");
    let mut args = AS_NOBODY.to_vec();
    args.push(BIN);
    let r = RunnerProcess::start(&setpriv, &args, &env_for(&cp, ws.path(), free_port()));
    cp.wait_for(|v| v["type"] == "hello", T);

    let read_as_nobody = |pid: u32| {
        std::process::Command::new(&setpriv)
            .args(AS_NOBODY)
            .args(["cat", &format!("/proc/{pid}/environ")])
            .output()
            .expect("run cat as nobody")
    };
    // The reader can read a dumpable process of its uid: a refusal below
    // is the runner's doing, not a missing permission of the reader.
    let mut control = std::process::Command::new(&setpriv)
        .args(AS_NOBODY)
        .args(["sleep", "30"])
        .env("CONTROL_MARK", "1")
        .spawn()
        .expect("spawn a control process");
    let seen = (0..200).find_map(|_| {
        let out = read_as_nobody(control.id());
        let found = String::from_utf8_lossy(&out.stdout).contains("CONTROL_MARK=1");
        std::thread::sleep(Duration::from_millis(10));
        found.then_some(())
    });
    let _ = control.kill();
    let _ = control.wait();
    assert!(
        seen.is_some(),
        "a same-uid reader must read a dumpable process's environ"
    );

    let out = read_as_nobody(r.pid() as u32);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && !text.contains("ADOS_TOKEN"),
        "a same-uid process read the runner's environment: {text:.80}"
    );
}

#[test]
fn health_addr_off_runs_without_an_endpoint() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-health-off");
    let mut env = env_for(&cp, ws.path(), free_port());
    env.retain(|(k, _)| *k != "ADOS_HEALTH_ADDR");
    env.push(("ADOS_HEALTH_ADDR", "off".into()));
    let r = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    assert!(
        r.wait_stderr("no /health or /metrics endpoint", T),
        "{}",
        r.stderr()
    );
}

#[test]
fn run_once_takes_one_job_delivers_it_and_exits_zero() {
    let cp = start_cp(1);
    let ws = TempDir::new("daemon-once");
    let repos = TempDir::new("daemon-once-repos");
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    let url = repo.to_str().unwrap_or("").to_string();
    let env = env_for(&cp, ws.path(), free_port());
    let mut r = RunnerProcess::start(Path::new(BIN), &["run", "--once"], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job("once-1", &url, "FAKE: sleep 1\nFAKE: write a.txt a"));
    cp.wait_for(is("job.accepted", "once-1"), T);
    // Its one job taken, the runner takes no other.
    cp.assign(job("once-2", &url, "FAKE: write b.txt b"));
    let rej = cp.wait_for(is("job.rejected", "once-2"), T);
    assert_eq!(rej["retryable"], true, "{rej}");
    cp.wait_for(is("job.result", "once-1"), T);
    let status = r.wait_exit(T).expect("exits once its job is delivered");
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
    assert!(cp
        .frames()
        .iter()
        .all(|f| f["job_id"] != "once-2" || f["type"] == "job.rejected"));
}

#[test]
fn run_once_drained_before_any_job_exits_zero_at_once() {
    let cp = start_cp(15);
    let ws = TempDir::new("daemon-once-drain");
    let mut env = env_for(&cp, ws.path(), free_port());
    env.push(("ADOS_ONCE", "1".into()));
    let mut r = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.send(json!({"type": "drain"}));
    let status = r.wait_exit(T).expect("exits on a drain before any job");
    assert_eq!(status.code(), Some(0), "{}", r.stderr());
}
