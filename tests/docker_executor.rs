//! The Docker executor with real Docker: the real binary against the test
//! control plane, jobs whose agent (a fake CLI baked into a locally built
//! job image) and tests run in a container of the job's own. What runs
//! where, the limits and labels, where secrets are (and are not), and
//! that no container outlives its job, whatever happened to it.

use ados_test_support::docker;
use ados_test_support::docker_runner::{DockerRunner, T};
use ados_test_support::fixtures::{make_bare_repo, try_git, TempDir};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");
const ANTHROPIC: &str = "sk-ant-docker-test-0123456789abcdef";
const OPENAI: &str = "sk-openai-docker-test-0123456789abcd";
const GITHUB: &str = "ghs_DockerTestToken0123456789abcdef";

/// The shared Docker runner harness, with this file's limits and keys.
struct Setup(DockerRunner);

impl std::ops::Deref for Setup {
    type Target = DockerRunner;
    fn deref(&self) -> &DockerRunner {
        &self.0
    }
}

impl std::ops::DerefMut for Setup {
    fn deref_mut(&mut self) -> &mut DockerRunner {
        &mut self.0
    }
}

impl Setup {
    /// `None` when Docker is not available (the test is skipped).
    fn start(test: &str) -> Option<Setup> {
        if !docker::available_or_skip(test) {
            return None;
        }
        Some(Setup::with_image(test, docker::job_image()))
    }

    /// A runner whose jobs use `image`.
    fn with_image(test: &str, image: String) -> Setup {
        let extra = vec![
            ("ADOS_MAX_JOBS", "3".into()),
            ("ADOS_JOB_CPUS", "0.5".into()),
            ("ADOS_JOB_MEMORY", "256M".into()),
            ("ADOS_JOB_PIDS_LIMIT", "321".into()),
            ("ANTHROPIC_API_KEY", ANTHROPIC.into()),
            ("OPENAI_API_KEY", OPENAI.into()),
            ("GITHUB_TOKEN", GITHUB.into()),
        ];
        Setup(DockerRunner::start(BIN, "dx", test, image, extra))
    }

    fn job_label(&self, id: &str) -> String {
        format!("ados.job={id}")
    }

    /// The id of job `id`'s running container, once it runs.
    fn running_container(&self, id: &str) -> String {
        let deadline = Instant::now() + T;
        loop {
            let runner = format!("label=ados.runner={}", self.runner_id);
            let job = format!("label={}", self.job_label(id));
            let running = docker::docker(&[
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                &runner,
                "--filter",
                &job,
                "--filter",
                "status=running",
            ]);
            let mine: Vec<&str> = running.lines().filter(|l| !l.is_empty()).collect();
            if let Some(c) = mine.first() {
                return c.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "job {id}'s container never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Release a fake agent waiting for `<TMPDIR>/go` (its job's tmp).
    fn release(&self, id: &str) {
        let go = self.ws.path().join("jobs").join(id).join("tmp/go");
        std::fs::write(&go, "").expect("write the release file");
    }
}

/// A prompt line that waits (in the container) until the test creates
/// `$TMPDIR/go`.
const WAIT_FOR_GO: &str = "FAKE: sh while [ ! -e \"$TMPDIR/go\" ]; do sleep 0.05; done";

/// The pid namespace and host name of this (the runner's) side.
fn host_side() -> (String, String) {
    let ns = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    (ns, host.trim().to_string())
}

#[test]
fn a_job_runs_in_its_own_container_and_its_changes_are_committed_and_pushed() {
    let Some(s) = Setup::start("a_job_runs_in_its_own_container") else {
        return;
    };
    let prompt = "Say hello\n\
                  FAKE: sh readlink /proc/self/ns/pid > agent-pidns.txt; hostname > agent-host.txt\n\
                  FAKE: write hello.txt hi from the container";
    let test = "echo \"tests-ran-in $(readlink /proc/self/ns/pid) $(hostname)\"; test -f hello.txt";
    s.cp.assign(s.spec("dx-1", prompt, test));
    let res = s.result("dx-1");
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        res["commit_sha"].as_str().is_some_and(|c| !c.is_empty()),
        "{res}"
    );
    // Committed and pushed from the runner's side.
    assert_eq!(
        s.file_on_main("hello.txt").as_deref(),
        Some("hi from the container")
    );
    let (host_ns, host_name) = host_side();
    let agent_ns = s
        .file_on_main("agent-pidns.txt")
        .expect("the agent's pid namespace");
    let agent_host = s
        .file_on_main("agent-host.txt")
        .expect("the agent's host name");
    assert!(agent_ns.starts_with("pid:["), "{agent_ns}");
    assert_ne!(
        agent_ns, host_ns,
        "the agent ran in the runner's pid namespace"
    );
    assert_ne!(
        agent_host, host_name,
        "the agent ran with the runner's host name"
    );
    // The tests ran in the same container as the agent (its namespace).
    let events = s.events("dx-1");
    let said = format!("tests-ran-in {agent_ns} {agent_host}");
    assert!(
        events.contains(&said),
        "no `{said}` in the test log: {events}"
    );
    // And the container is gone once the result is out.
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

#[test]
fn limits_labels_and_mounts_are_applied_and_no_secret_is_in_the_container_or_on_a_command_line() {
    let Some(s) = Setup::start("limits_labels_and_mounts") else {
        return;
    };
    let prompt = format!(
        "{WAIT_FOR_GO}\n\
         FAKE: sh env | cut -d= -f1 | sort > env-names.txt\n\
         FAKE: sh echo ${{#ANTHROPIC_API_KEY}} > key-length.txt\n\
         FAKE: sh id -u > uid.txt"
    );
    s.cp.assign(s.spec("dx-2", &prompt, ""));
    let id = s.running_container("dx-2");
    let inspect = docker::docker(&["inspect", &id]);
    let c: Value = serde_json::from_str::<Vec<Value>>(&inspect).expect("inspect JSON")[0].clone();
    let host = &c["HostConfig"];
    assert_eq!(host["NanoCpus"], 500_000_000u64, "{host}");
    assert_eq!(host["Memory"], 256u64 << 20, "{host}");
    assert_eq!(host["PidsLimit"], 321, "{host}");
    assert_eq!(host["Init"], true, "{host}");
    assert_eq!(host["NetworkMode"], "bridge", "{host}");
    let labels = &c["Config"]["Labels"];
    assert_eq!(labels["ados.runner"], s.runner_id.as_str(), "{labels}");
    assert_eq!(labels["ados.job"], "dx-2", "{labels}");
    // Only the job's own checkout, HOME and TMPDIR are mounted.
    let job = s.ws.path().canonicalize().expect("ws").join("jobs/dx-2");
    let mut targets: Vec<String> = c["Mounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| m["Destination"].as_str().unwrap_or("").to_string())
        .collect();
    targets.sort();
    let expect: Vec<String> = ["home", "repo", "tmp"]
        .iter()
        .map(|d| job.join(d).display().to_string())
        .collect();
    assert_eq!(targets, expect);
    // No secret in the container's configuration...
    for secret in [ANTHROPIC, OPENAI, GITHUB, s.cp.options().token.as_str()] {
        assert!(!inspect.contains(secret), "a secret is in docker inspect");
    }
    // ...nor on any command line of this machine (the docker CLIs included).
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline);
        for secret in [ANTHROPIC, OPENAI, GITHUB] {
            assert!(!cmdline.contains(secret), "a secret is on a command line");
        }
    }
    s.release("dx-2");
    let res = s.result("dx-2");
    assert_eq!(res["status"], "completed", "{res}");
    // The agent had its own key (its length arrived), and no other.
    assert_eq!(
        s.file_on_main("key-length.txt").as_deref(),
        Some(ANTHROPIC.len().to_string().as_str())
    );
    let names = s.file_on_main("env-names.txt").expect("env names");
    let names: Vec<&str> = names.lines().collect();
    assert!(names.contains(&"ANTHROPIC_API_KEY"), "{names:?}");
    for other in [
        "OPENAI_API_KEY",
        "CODEX_API_KEY",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "COPILOT_GITHUB_TOKEN",
        "ADOS_TOKEN",
        "DOCKER_CONFIG",
    ] {
        assert!(
            !names.contains(&other),
            "{other} reached the agent: {names:?}"
        );
    }
    // As the job's own user (root runner: ADOS_JOB_UID_BASE + slot).
    let uid: u32 = s
        .file_on_main("uid.txt")
        .and_then(|u| u.parse().ok())
        .expect("uid");
    // SAFETY: geteuid has no preconditions.
    let runner_uid = unsafe { libc::geteuid() };
    if runner_uid == 0 {
        assert!(uid >= 200_000, "{uid}");
    } else {
        assert_eq!(uid, runner_uid);
    }
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

/// The daemon's container events of runner `runner_id` from `since` until
/// now, one `<action> <ados.job> <signal>` line each.
fn container_events(runner_id: &str, since: &str) -> Vec<String> {
    let until = unix_now();
    let out = docker::docker(&[
        "events",
        "--since",
        since,
        "--until",
        &until,
        "--filter",
        "type=container",
        "--filter",
        &format!("label=ados.runner={runner_id}"),
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"ados.job\"}} {{index .Actor.Attributes \"signal\"}}",
    ]);
    out.lines().map(|l| l.trim().to_string()).collect()
}

/// Now, as `docker events` takes a time (seconds since the epoch).
fn unix_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970");
    format!("{}.{:09}", now.as_secs(), now.subsec_nanos())
}

#[test]
fn the_container_is_gone_after_failure_cancel_and_timeout() {
    let Some(s) = Setup::start("the_container_is_gone_after") else {
        return;
    };
    let since = unix_now();
    s.cp.assign(s.spec("dx-fail", "FAKE: fail", ""));
    s.cp.assign(s.spec("dx-cancel", "FAKE: hang", ""));
    let mut timeout = s.spec("dx-timeout", "FAKE: ignore-term", "");
    timeout["agent"]["timeout_s"] = json!(2);
    s.cp.assign(timeout);

    let res = s.result("dx-fail");
    assert_eq!(res["status"], "failed", "{res}");
    s.running_container("dx-cancel");
    s.cp.cancel("dx-cancel");
    let res = s.result("dx-cancel");
    assert_eq!(res["status"], "cancelled", "{res}");
    let res = s.result("dx-timeout");
    assert_eq!(res["status"], "failed", "{res}");
    assert!(res.to_string().contains("timed out"), "{res}");
    assert!(s.containers().is_empty(), "{:?}", s.containers());
    // A cancel and a timeout stop the container (`docker stop -t 10`:
    // SIGTERM to its init, no SIGKILL needed) and then remove it; a job
    // that ended on its own is only removed.
    let events = container_events(&s.runner_id, &since);
    for job in ["dx-cancel", "dx-timeout"] {
        let of_job: Vec<&str> = events
            .iter()
            .filter(|e| e.split(' ').nth(1) == Some(job))
            .map(String::as_str)
            .collect();
        let at = |what: &str| of_job.iter().position(|e| e.starts_with(what));
        let (term, stop, destroy) = (at(&format!("kill {job} 15")), at("stop "), at("destroy "));
        assert!(
            term.is_some() && term < stop && stop < destroy,
            "{job}: {of_job:?}"
        );
    }
    assert!(
        !events.iter().any(|e| e.starts_with("stop dx-fail")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e.starts_with("destroy dx-fail")));
}

#[test]
fn a_timed_out_agent_in_a_container_gets_sigterm_and_its_grace_as_on_the_host() {
    let Some(s) = Setup::start("a_timed_out_agent_gets_sigterm") else {
        return;
    };
    let mut spec = s.spec("dx-term", "FAKE: say-on-term cleaning up before I go", "");
    spec["agent"]["timeout_s"] = json!(2);
    s.cp.assign(spec);
    let res = s.result("dx-term");
    assert_eq!(res["status"], "failed", "{res}");
    assert!(res.to_string().contains("timed out"), "{res}");
    // `docker stop` reached the agent, not only the container's init.
    let events = s.events("dx-term");
    assert!(
        events.contains("cleaning up before I go"),
        "the agent was killed without a SIGTERM: {events}"
    );
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

#[test]
fn a_killed_runners_container_is_removed_when_it_starts_again() {
    let Some(mut s) = Setup::start("a_killed_runners_container") else {
        return;
    };
    s.cp.assign(s.spec("dx-kill", "FAKE: hang", ""));
    let id = s.running_container("dx-kill");
    if let Some(r) = s.runner.as_mut() {
        r.signal(libc::SIGKILL);
        assert!(r.wait_exit(T).is_some(), "the runner did not die");
    }
    assert_eq!(s.containers(), [id], "the container outlived its runner");
    let from = s.cp.frame_count();
    s.start_runner();
    let res = s.cp.wait_for_after(
        from,
        |v| v["type"] == "job.result" && v["job_id"] == "dx-kill",
        T,
    );
    assert_eq!(res["status"], "failed", "{res}");
    assert!(s.containers().is_empty(), "{:?}", s.containers());
    // Removed before the job was reported failed: the restarted runner
    // says so in that order.
    let log = s.runner.as_ref().map(|r| r.stderr()).unwrap_or_default();
    let removed = log.find("removed 1 job container left by an earlier run");
    let reported = log.find("job dx-kill was running when the runner stopped");
    assert!(
        removed.is_some() && reported.is_some() && removed < reported,
        "{log}"
    );
}

#[test]
fn a_fallback_agent_after_a_timeout_runs_in_a_fresh_container() {
    let Some(s) = Setup::start("a_fallback_agent_after") else {
        return;
    };
    let mut spec = s.spec(
        "dx-fallback",
        "FAKE[claude]: hang\nFAKE: write fallback.txt codex did it",
        "",
    );
    spec["agent"]["timeout_s"] = json!(2);
    spec["fallbacks"] = json!([{"name": "codex"}]);
    s.cp.assign(spec);
    let res = s.result("dx-fallback");
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["agent"], "codex", "{res}");
    assert_eq!(
        s.file_on_main("fallback.txt").as_deref(),
        Some("codex did it")
    );
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

#[test]
fn hello_lists_the_agents_found_in_the_job_image_and_the_log_names_them() {
    let Some(s) = Setup::start("hello_lists_the_agents") else {
        return;
    };
    // The host's PATH holds none of them: only the image probe finds them.
    let hello = s.cp.wait_for(|v| v["type"] == "hello", T);
    assert_eq!(hello["executor"], "docker", "{hello}");
    assert_eq!(
        hello["agents"],
        json!(["claude", "codex", "copilot"]),
        "{hello}"
    );
    let runner = s.runner.as_ref().expect("the runner");
    let said = format!(
        "agent CLIs found in the job image {}: claude, codex, copilot",
        docker::job_image()
    );
    assert!(runner.wait_stderr(&said, T), "{}", runner.stderr());
}

#[test]
fn check_finds_the_daemon_the_socket_the_image_and_its_agents() {
    let Some(s) = Setup::start("check_finds_the_daemon") else {
        return;
    };
    let (_, out, err) =
        ados_test_support::runner::run_to_end(Path::new(BIN), &["check"], &s.env, T);
    assert!(out.contains("✓ Docker daemon: Docker Engine"), "{out}{err}");
    assert!(out.contains("✓ Docker socket"), "{out}");
    assert!(out.contains("✓ job image: ados-test-job:"), "{out}");
    assert!(
        out.contains("✓ agent CLIs in the job image: claude, codex, copilot"),
        "{out}"
    );
    // The host's PATH has no agent CLI, and that is no failure here.
    assert!(!out.contains("no agent CLI found"), "{out}");
    let mut env = s.env.clone();
    for (k, v) in env.iter_mut() {
        if *k == "ADOS_JOB_IMAGE" {
            *v = "ados-test-missing:never".into();
        }
    }
    let (status, out, _) =
        ados_test_support::runner::run_to_end(Path::new(BIN), &["check"], &env, T);
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
    assert!(
        out.contains("✗ job image: ados-test-missing:never is not here"),
        "{out}"
    );
    assert!(out.contains("fix: build or load the image"), "{out}");
}

#[test]
fn a_missing_image_is_said_at_start_and_fails_the_job_naming_it() {
    if !docker::available_or_skip("a_missing_image_is_said_at_start") {
        return;
    }
    let s = Setup::with_image("a_missing_image", "ados-test-missing:never".into());
    let hello = s.cp.wait_for(|v| v["type"] == "hello", T);
    assert_eq!(hello["executor"], "docker", "{hello}");
    assert_eq!(hello["agents"], json!([]), "{hello}");
    s.cp.assign(s.spec("dx-noimage", "FAKE: write a.txt a", ""));
    let res = s.result("dx-noimage");
    assert_eq!(res["status"], "failed", "{res}");
    assert!(
        res.to_string()
            .contains("ADOS_JOB_IMAGE ados-test-missing:never"),
        "{res}"
    );
    assert!(s.containers().is_empty(), "{:?}", s.containers());
}

#[test]
fn exec_runs_its_job_in_a_container_too() {
    if !docker::available_or_skip("exec_runs_its_job_in_a_container_too") {
        return;
    }
    let image = docker::job_image();
    let repos = TempDir::new("docker-exec-repos");
    let ws = TempDir::new("docker-exec-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let repo_s = repo.display().to_string();
    let env: Vec<(&str, String)> = vec![
        ("WORKSPACE_DIR", ws.path().display().to_string()),
        ("ADOS_ALLOW_FILE_REMOTES", "1".into()),
        ("ADOS_EXECUTOR", "docker".into()),
        ("ADOS_JOB_IMAGE", image),
        ("ANTHROPIC_API_KEY", ANTHROPIC.into()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ];
    let mut args = vec!["exec", "--merge-mode", "direct", "--repo", &repo_s];
    args.extend(["--prompt", "FAKE: sh readlink /proc/self/ns/pid > ns.txt"]);
    args.extend(["--agent", "claude", "--test-cmd", "test -s ns.txt"]);
    let (status, out, err) = ados_test_support::runner::run_to_end(Path::new(BIN), &args, &env, T);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}\n{out}");
    let (ok, ns, _) = try_git(&repo, &["show", "refs/heads/main:ns.txt"]);
    assert!(ok, "{err}");
    assert_ne!(ns.trim(), host_side().0, "exec's agent ran on the host");
}

#[test]
fn copilot_is_asked_its_version_in_the_job_container_not_on_the_host() {
    let Some(s) = Setup::start("copilot_is_asked_its_version_in_the_job_container") else {
        return;
    };
    let mut spec = s.spec("dx-cv", "FAKE: write v.txt versioned", "");
    spec["agent"] = json!({"name": "copilot"});
    s.cp.assign(spec);
    // The attempt itself fails (no GitHub token in this setup): what
    // matters is where its version was asked, before it ran.
    s.result("dx-cv");
    let events = s.events("dx-cv");
    // The host's PATH holds no copilot: only the image's could answer.
    assert!(
        events.contains("copilot --version: GitHub Copilot CLI 1.0.999"),
        "the version was not asked in the container: {events}"
    );
    assert!(!events.contains("could not ask copilot"), "{events}");
}
