//! The runner's own images, run with real Docker as the ADOS docs run
//! them: `minimal` runs `version`; `full`, started with the docs' `docker
//! run` (the socket and a named volume, or a bind mount, on `/workspace`),
//! runs a job end to end in a container of its own; three `full` runners
//! side by side, one killed mid-job and restarted on its volume.
//!
//! The scenes (tests/support `runner_container.rs`) put the test servers on
//! the Docker bridge's gateway, where a container reaches this host, and
//! remove the containers and volumes a test made.

use ados_test_support::docker::{self, available_or_skip};
use ados_test_support::fixtures::{try_git, TempDir};
use ados_test_support::runner_container::{
    full_scene, wait_containers, RunnerSpec, ANTHROPIC, GITHUB,
};
use serde_json::json;
use std::process::{Command, Stdio};

#[test]
fn the_minimal_image_runs_version() {
    if !available_or_skip("the_minimal_image_runs_version") {
        return;
    }
    let image = docker::minimal_image();
    let out = docker::docker(&["run", "--rm", "--network", "none", &image, "version"]);
    assert_eq!(
        out,
        format!("ados-work-runner {}", env!("CARGO_PKG_VERSION"))
    );
    // Nothing but the binary: no shell to run.
    let shell = docker::docker_output(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        &image,
    ]);
    assert!(!shell.status.success(), "the minimal image has a shell");
}

#[test]
fn the_full_image_run_as_the_docs_say_runs_jobs_on_a_volume_and_on_a_bind_mount() {
    let Some((image, mut s)) = full_scene("the_full_image_run_as_the_docs_say", "docs-run") else {
        return;
    };
    let vol = s.volume(1);
    let bind = TempDir::new("docs-run-bind");
    let bind_dir = bind.path().display().to_string();
    let pid = std::process::id();
    // As docs/docker.md says for a user other than root: `--user`,
    // `--group-add` with the socket's group, a bind mount that user owns.
    let user_bind = TempDir::new("docs-run-user");
    let user_dir = user_bind.path().display().to_string();
    std::os::unix::fs::chown(user_bind.path(), Some(1000), Some(1000))
        .expect("chown the workspace");
    let socket_gid = std::fs::metadata("/var/run/docker.sock")
        .map(|m| std::os::unix::fs::MetadataExt::gid(&m).to_string())
        .expect("the Docker socket");
    let non_root = ("1000:1000", socket_gid.as_str());
    for (n, workspace, holder, user) in [
        (1, vol.as_str(), format!("is the volume {vol} ("), None),
        (
            2,
            bind_dir.as_str(),
            format!("is the bind mount of {bind_dir} on"),
            None,
        ),
        (
            3,
            user_dir.as_str(),
            format!("is the bind mount of {user_dir} on"),
            Some(non_root),
        ),
    ] {
        let id = format!("runner-{pid}-{n}");
        let from = s.cp.frames().len();
        s.start_runner(
            &image,
            &RunnerSpec {
                id: &id,
                workspace,
                group: None,
                limits: None,
                user,
                env: Vec::new(),
            },
        );
        let hello = s.hello(&id, from);
        assert_eq!(hello["executor"], "docker", "{hello}");
        assert!(
            hello["agents"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("claude"))),
            "{hello}"
        );
        let log = s.logs(&id);
        assert!(
            log.contains(&holder),
            "the start-up log names the workspace's mount:\n{log}"
        );
        // `check` in the runner's container says the same.
        let name = s.container_name(&id);
        let check = docker::docker_output(&["exec", &name, "ados-work-runner", "check"]);
        let said = String::from_utf8_lossy(&check.stdout);
        assert!(
            said.contains("✓ workspace mounts") && said.contains(&holder),
            "{said}"
        );
        // What the image's HEALTHCHECK runs.
        let health = docker::docker_output(&["exec", &name, "ados-work-runner", "healthcheck"]);
        assert!(
            health.status.success(),
            "healthcheck: {}",
            String::from_utf8_lossy(&health.stderr)
        );

        let job = format!("docs-{pid}-{n}");
        let prompt = format!(
            "FAKE: sh echo SEEN:$(ls /workspace | tr '\\n' ,)$(ls /workspace/jobs | tr '\\n' ,)\nFAKE: write from-{n}.txt hi"
        );
        s.assign(
            &id,
            s.spec("r", &job, &prompt, &format!("test -f from-{n}.txt")),
        );
        let res = s.result(&job);
        assert_eq!(res["status"], "completed", "{res}\n{}", s.logs(&id));
        // The job container saw its own job's directory and nothing else
        // of the workspace (no mirrors, journals, other jobs).
        let events = s.cp.events_text(&job);
        assert!(events.contains(&format!("SEEN:jobs,{job},")), "{events}");
        let (ok, file, _) = try_git(
            &s.repos.path().join("r.git"),
            &["show", &format!("main:from-{n}.txt")],
        );
        assert!(ok && file == "hi\n", "pushed: {file}");
        assert!(!events.contains(GITHUB) && !events.contains(ANTHROPIC));
        wait_containers(
            &format!("ados.job={job}"),
            |c| c.is_empty(),
            "the job container is removed",
        );
    }
    // The bind-mounted workspace holds the runner's files on this host.
    assert!(bind.path().join("mirrors").is_dir());
}

#[test]
fn with_host_networking_the_runner_finds_its_container_without_its_host_name() {
    let Some((image, mut s)) = full_scene(
        "with_host_networking_the_runner_finds_its_container",
        "hostnet",
    ) else {
        return;
    };
    let vol = s.volume(1);
    let name = s.container_name("check");
    let label = format!("ados.test={}", s.test);
    let ws = format!("{vol}:/workspace");
    let url = format!("ADOS_API_URL={}", s.cp.url());
    let token = format!("ADOS_TOKEN={}", s.cp.options().token);
    // `--network host`: the container's host name is this host's, which
    // names no container.
    let out = docker::docker_output(&[
        "run",
        "--name",
        &name,
        "--label",
        &label,
        "--network",
        "host",
        "-e",
        &url,
        "-e",
        &token,
        "-e",
        "ADOS_RUNNER_ID=hostnet-1",
        "-e",
        "ADOS_ALLOW_HTTP=1",
        "-e",
        "ADOS_MIN_FREE_DISK=0",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &ws,
        "--entrypoint",
        "sh",
        &image,
        "-c",
        "hostname; ados-work-runner check",
    ]);
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    assert_eq!(said.lines().next(), Some(host.trim()), "{said}");
    // So a runner trusting it would inspect no container, or the wrong one.
    assert!(
        !docker::docker_output(&["inspect", host.trim()])
            .status
            .success(),
        "a container is named {host}"
    );
    let id = docker::docker(&["inspect", "--format", "{{.Id}}", &name]);
    let line = said
        .lines()
        .find(|l| l.starts_with("✓ workspace mounts"))
        .unwrap_or_else(|| panic!("no workspace mounts line: {said}"));
    assert!(
        line.contains(&format!("runs in container {}", &id[..12]))
            && line.contains(&format!("is the volume {vol} (")),
        "{line}"
    );
}

#[test]
fn a_setup_that_cannot_work_is_named_with_its_fix_by_check_and_at_start() {
    let Some((image, mut s)) = full_scene("a_setup_that_cannot_work", "cannot") else {
        return;
    };
    let vol = s.volume(1);
    let label = format!("ados.test={}", s.test);
    let base = |extra: &[&str], sub: &str| {
        let mut argv = vec![
            "run",
            "--rm",
            "--label",
            &label,
            "-e",
            "ADOS_API_URL=http://127.0.0.1:9",
            "-e",
            "ADOS_TOKEN=cannot-token",
            "-e",
            "ADOS_RUNNER_ID=cannot-1",
        ];
        argv.extend_from_slice(extra);
        argv.extend([image.as_str(), sub]);
        let out = docker::docker_output(&argv);
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // The workspace on the container's own layer.
    let layer = [
        "-e",
        "WORKSPACE_DIR=/layer",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
    ];
    let (code, out) = base(&layer, "check");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("✗ Docker executor") && out.contains("own layer"),
        "{out}"
    );
    assert!(out.contains("-v ados-workspace:/layer"), "{out}");
    // The runner stops at start (exit 1, as for any start-up failure).
    let (code, out) = base(&layer, "run");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("own layer") && out.contains("-v ados-workspace:/layer"),
        "{out}"
    );
    // No socket.
    let ws = format!("{vol}:/workspace");
    let (code, out) = base(&["-v", &ws], "check");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("-v /var/run/docker.sock:/var/run/docker.sock"),
        "{out}"
    );
    let (code, out) = base(&["-v", &ws], "run");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("-v /var/run/docker.sock:/var/run/docker.sock"),
        "{out}"
    );
}

#[test]
fn the_compose_file_starts_the_docs_runner() {
    let Some((image, s)) = full_scene("the_compose_file_starts_the_docs_runner", "compose") else {
        return;
    };
    let compose: Vec<&str> = if docker::docker_output(&["compose", "version"])
        .status
        .success()
    {
        vec!["docker", "compose"]
    } else if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        vec!["docker-compose"]
    } else {
        eprintln!("the_compose_file_starts_the_docs_runner: skipped: neither `docker compose` nor docker-compose is installed");
        return;
    };
    let file = docker::repo_root().join("dist/docker-compose.yml");
    let project = format!("ados-test-compose-{}", std::process::id());
    let run = |args: &[&str]| {
        let out = Command::new(compose[0])
            .args(&compose[1..])
            .args(["-p", &project, "-f"])
            .arg(&file)
            .args(args)
            .env("ADOS_IMAGE", &image)
            .env("ADOS_API_URL", s.cp.url())
            .env("ADOS_TOKEN", s.cp.options().token.clone())
            .stdin(Stdio::null())
            .output()
            .expect("run compose");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    /// Takes the project down (containers and volumes) however the test ends.
    struct Down<'a>(&'a dyn Fn(&[&str]) -> (bool, String));
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "-t", "1"]);
        }
    }
    let _down = Down(&run);
    let (ok, err) = run(&["up", "-d"]);
    assert!(ok, "compose up: {err}");
    let hello = s.hello("runner-001", 0);
    assert_eq!(hello["executor"], "docker", "{hello}");
    assert_eq!(hello["group"], "default", "{hello}");
}

#[test]
fn three_runners_scale_out_and_a_killed_one_recovers_on_its_volume() {
    let Some((image, mut s)) = full_scene("three_runners_scale_out", "scale") else {
        return;
    };
    let pid = std::process::id();
    let ids: Vec<String> = (1..=3).map(|i| format!("runner-{pid}-{i:03}")).collect();
    let runners = [
        (&ids[0], "frontend-runners", "1", "512m", 1u64, 512u64 << 20),
        (&ids[1], "frontend-runners", "2", "768m", 2, 768 << 20),
        (&ids[2], "backend-runners", "1.5", "1g", 2, 1 << 30),
    ];
    let mut containers = Vec::new();
    let from = s.cp.frames().len();
    for (n, (id, group, cpus, memory, _, _)) in runners.iter().enumerate() {
        let vol = s.volume(n);
        containers.push(s.start_runner(
            &image,
            &RunnerSpec {
                id,
                workspace: &vol,
                group: Some(group),
                limits: Some((cpus, memory)),
                user: None,
                env: Vec::new(),
            },
        ));
    }
    let mut hostnames = Vec::new();
    for (n, (id, group, _, _, want_cpus, want_memory)) in runners.iter().enumerate() {
        let hello = s.hello(id, from);
        assert_eq!(hello["group"], *group, "{hello}");
        assert_eq!(hello["cpus"], *want_cpus, "{hello}");
        assert_eq!(hello["memory_bytes"], *want_memory, "{hello}");
        // Its own container's host name (its short id), not the host's.
        assert_eq!(
            hello["hostname"].as_str(),
            containers[n].get(..12),
            "{hello}"
        );
        hostnames.push(hello["hostname"].to_string());
    }
    hostnames.sort();
    hostnames.dedup();
    assert_eq!(hostnames.len(), 3);

    // Runner 3 hangs in its job; 1 and 2 run theirs slowly.
    let lost = format!("lost-{pid}");
    s.assign(&ids[2], s.spec("r", &lost, "FAKE: hang", ""));
    let lost_label = format!("ados.job={lost}");
    let lost_container = wait_containers(
        &lost_label,
        |c| c.len() == 1,
        "the hanging job's container starts",
    );
    for (n, id) in ids[..2].iter().enumerate() {
        let prompt = format!("FAKE: sleep 3\nFAKE: write side-{n}.txt x");
        let repo = format!("side{n}");
        s.repo(&repo);
        s.assign(id, s.spec(&repo, &format!("side-{pid}-{n}"), &prompt, ""));
    }
    docker::docker(&["kill", &s.container_name(&ids[2])]);
    for n in 0..2 {
        let res = s.result(&format!("side-{pid}-{n}"));
        assert_eq!(res["status"], "completed", "{res}");
    }
    // Killed, its job's container lives on until the runner comes back.
    assert_eq!(docker::containers_labelled(&lost_label), lost_container);

    let from = s.cp.frames().len();
    docker::docker(&["start", &s.container_name(&ids[2])]);
    s.hello(&ids[2], from);
    let res = s.result(&lost);
    assert_eq!(res["status"], "failed", "{res}");
    wait_containers(
        &lost_label,
        |c| c.is_empty(),
        "the lost job's container is removed",
    );
    // The other two never stopped.
    for id in &ids[..2] {
        let state = docker::docker(&[
            "inspect",
            "--format",
            "{{.State.Running}} {{.RestartCount}}",
            &s.container_name(id),
        ]);
        assert_eq!(state, "true 0", "{id}");
    }
}
