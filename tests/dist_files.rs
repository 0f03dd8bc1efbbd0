//! What `dist/` ships for operators, checked offline: the systemd unit
//! (`systemd-analyze verify` where systemd is installed), the Compose file
//! (`docker compose config` / `docker-compose config` where one is
//! installed), the Kubernetes StatefulSet, and `install.sh` run from the
//! real `make dist` tarball into a scratch root (`DESTDIR`).
//!
//! Each shutdown timeout is checked against the default of
//! `ADOS_SHUTDOWN_GRACE` as `dist/.env.example` states it (a test in
//! `docs.rs` keeps that file equal to `help env-file`).

use ados_test_support::docker::{repo_root, static_binary};
use ados_test_support::fixtures::TempDir;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// The default of `ADOS_SHUTDOWN_GRACE` in seconds, from dist/.env.example.
fn default_grace_s() -> u64 {
    let env = read("dist/.env.example");
    let lines: Vec<&str> = env.lines().collect();
    let at = lines
        .iter()
        .position(|l| *l == "#ADOS_SHUTDOWN_GRACE=")
        .expect("ADOS_SHUTDOWN_GRACE in dist/.env.example");
    let default = lines[..at]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("# default: "))
        .expect("its default line");
    default
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("a number of seconds: {default}"))
}

/// The value of `key=` in a unit or `key: ` in YAML, the first one.
fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().map(str::trim).find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('=').or_else(|| r.strip_prefix(": ")))
            .map(str::trim)
    })
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"))
}

fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_systemd_unit_is_hardened_and_outlasts_the_shutdown_grace() {
    let unit = read("dist/systemd/ados-work-runner.service");
    for line in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "KillMode=mixed",
        "User=ados-runner",
        "ExecStart=/usr/local/bin/ados-work-runner run",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line:?}");
    }
    // The one writable path is the workspace the unit gives the runner.
    let rw = value_of(&unit, "ReadWritePaths").expect("ReadWritePaths=");
    assert_eq!(
        value_of(&unit, "Environment"),
        Some(format!("WORKSPACE_DIR={rw}").as_str())
    );
    // Drain (the grace), cancel (10 s) and flush (10 s) fit before SIGKILL.
    let stop: u64 = value_of(&unit, "TimeoutStopSec")
        .and_then(|v| v.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop > default_grace_s() + 20, "TimeoutStopSec={stop}");

    if !on_path("systemd-analyze") {
        eprintln!("systemd-analyze verify: skipped: systemd-analyze is not installed");
        return;
    }
    // verify needs ExecStart to exist: point it at this build's binary.
    let dir = TempDir::new("dist-unit");
    let path = dir.join("ados-work-runner.service");
    let bin = env!("CARGO_BIN_EXE_ados-work-runner");
    std::fs::write(&path, unit.replace("/usr/local/bin/ados-work-runner", bin))
        .expect("write the unit");
    let out = run(Command::new("systemd-analyze").arg("verify").arg(&path));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {said}");
    // An unknown or misspelt key is only a warning: none is allowed.
    assert!(
        said.trim().is_empty(),
        "systemd-analyze verify warns: {said}"
    );
}

#[test]
fn the_compose_file_is_valid_and_gives_each_runner_its_own_id_and_volume() {
    let compose = read("dist/docker-compose.yml");
    let ids: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("ADOS_RUNNER_ID: "))
        .collect();
    assert_eq!(ids, ["runner-001", "frontend-001", "backend-001"]);
    let volumes: Vec<&str> = compose
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- ")
                .and_then(|v| v.strip_suffix(":/workspace"))
        })
        .collect();
    assert_eq!(volumes.len(), 3, "{volumes:?}");
    let mut distinct = volumes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "a workspace volume shared: {volumes:?}");
    assert_eq!(
        compose
            .matches("- /var/run/docker.sock:/var/run/docker.sock")
            .count(),
        3
    );
    let grace = value_of(&compose, "stop_grace_period").expect("stop_grace_period");
    let grace: u64 = grace.trim_end_matches('s').parse().expect("seconds");
    assert!(
        grace > default_grace_s() + 20,
        "stop_grace_period: {grace}s"
    );

    let file = repo_root().join("dist/docker-compose.yml");
    let file = file.to_string_lossy();
    let tool: Vec<&str> = if run(Command::new("docker").args(["compose", "version"]))
        .status
        .success()
    {
        vec!["docker", "compose"]
    } else if on_path("docker-compose") {
        vec!["docker-compose"]
    } else {
        eprintln!(
            "compose config: skipped: neither `docker compose` nor docker-compose is installed"
        );
        return;
    };
    let mut cmd = Command::new(tool[0]);
    cmd.args(&tool[1..])
        .args(["-f", &file, "--profile", "groups", "config", "--services"])
        .env("ADOS_TOKEN", "compose-config-test");
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut services: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    services.sort();
    assert_eq!(
        services,
        ["backend-runner", "frontend-runner", "work-runner"]
    );
    // Without ADOS_TOKEN the file refuses to start anything.
    let mut cmd = Command::new(tool[0]);
    cmd.args(&tool[1..])
        .args(["-f", &file, "config"])
        .env_remove("ADOS_TOKEN");
    let out = run(&mut cmd);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ADOS_TOKEN"));
}

#[test]
fn the_statefulset_names_each_runner_after_its_pod_and_outlasts_the_grace() {
    let k8s = read("dist/kubernetes/ados-work-runner.yaml");
    let lines: Vec<&str> = k8s.lines().map(str::trim).collect();
    let id = lines
        .iter()
        .position(|l| *l == "- name: ADOS_RUNNER_ID")
        .expect("ADOS_RUNNER_ID");
    assert_eq!(lines[id + 3], "fieldPath: metadata.name");
    let token = lines
        .iter()
        .position(|l| *l == "- name: ADOS_TOKEN")
        .expect("ADOS_TOKEN");
    assert_eq!(lines[token + 2], "secretKeyRef:");
    assert!(!k8s.contains("value: ghp_") && !k8s.contains("value: sk-"));
    assert!(lines.contains(&"volumeClaimTemplates:"));
    assert_eq!(lines.iter().filter(|l| **l == "path: /health").count(), 2);
    assert!(lines.contains(&"livenessProbe:") && lines.contains(&"readinessProbe:"));
    // The runner's grace is the default, stated; the pod's covers it plus
    // the cancel (10 s) and flush (10 s) that follow it.
    let grace_at = lines
        .iter()
        .position(|l| *l == "- name: ADOS_SHUTDOWN_GRACE")
        .expect("ADOS_SHUTDOWN_GRACE");
    assert_eq!(
        lines[grace_at + 1],
        format!("value: \"{}\"", default_grace_s())
    );
    let pod: u64 = value_of(&k8s, "terminationGracePeriodSeconds")
        .and_then(|v| v.parse().ok())
        .expect("terminationGracePeriodSeconds");
    assert_eq!(pod, default_grace_s() + 30);

    let parse = Command::new("python3")
        .args([
            "-c",
            "import sys, yaml; print(' '.join(d['kind'] for d in yaml.safe_load_all(sys.stdin)))",
        ])
        .stdin(
            std::fs::File::open(repo_root().join("dist/kubernetes/ados-work-runner.yaml"))
                .expect("open"),
        )
        .output();
    match parse {
        Ok(out) if out.status.success() => {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                "Service StatefulSet"
            );
        }
        _ => eprintln!("YAML parse: skipped: python3 with PyYAML is not installed"),
    }
}

/// A scratch root with the /etc files `useradd --prefix` edits, and a
/// `docker` group.
fn scratch_root(dir: &Path) {
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).expect("create etc");
    for (name, text) in [
        ("passwd", "root:x:0:0:root:/root:/bin/sh\n"),
        ("group", "root:x:0:\ndocker:x:998:\n"),
        ("shadow", "root:*:19000:0:99999:7:::\n"),
        ("gshadow", "root:*::\ndocker:!::\n"),
    ] {
        std::fs::write(etc.join(name), text).expect("write an /etc file");
    }
}

#[test]
fn install_sh_installs_the_release_tarball_into_a_root_with_no_network() {
    if !on_path("useradd") {
        eprintln!("install.sh: skipped: useradd is not installed");
        return;
    }
    static_binary();
    let out = run(Command::new("sh").arg(repo_root().join("dist/make-dist.sh")));
    assert!(
        out.status.success(),
        "make-dist.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tarball = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.ends_with(".tar.gz"))
        .map(|l| repo_root().join(l))
        .expect("make-dist.sh prints the tarball");
    // Named as released, its SHA-256 beside it.
    let name = format!(
        "ados-work-runner-{}-x86_64-linux-musl.tar.gz",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(tarball.file_name(), Some(std::ffi::OsStr::new(&name)));
    let out_dir = tarball.parent().expect("dist/out");
    let sum = run(Command::new("sha256sum")
        .args(["-c", &format!("{name}.sha256")])
        .current_dir(out_dir));
    assert!(
        sum.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&sum.stdout)
    );
    let unpacked = TempDir::new("dist-unpacked");
    let tar = run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(unpacked.path()));
    assert!(tar.status.success());
    let top = std::fs::read_dir(unpacked.path())
        .expect("list the tarball")
        .next()
        .expect("one directory")
        .expect("its entry")
        .path();
    for f in [
        "ados-work-runner",
        "install.sh",
        "ados-work-runner.service",
        ".env.example",
        "LICENSE",
        "README.md",
        "docs/docker.md",
        "docs/static.md",
    ] {
        assert!(top.join(f).is_file(), "{f} is not in the tarball");
    }

    let root = TempDir::new("dist-root");
    scratch_root(root.path());
    // No network: install.sh reaches nothing (a namespace of its own when
    // unshare can make one, as root can).
    let install = top.join("install.sh");
    let netless = on_path("unshare")
        && run(Command::new("unshare").args(["-n", "true"]))
            .status
            .success();
    let mut cmd = if netless {
        let mut c = Command::new("unshare");
        c.arg("-n").arg(&install);
        c
    } else {
        Command::new(&install)
    };
    cmd.arg("--docker").env("DESTDIR", root.path());
    let out = run(&mut cmd);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "install.sh: {said}");

    let r = root.path();
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).expect("passwd");
    let user = passwd
        .lines()
        .find(|l| l.starts_with("ados-runner:"))
        .unwrap_or_else(|| panic!("no ados-runner user in {passwd}"));
    assert!(
        user.ends_with(":/var/lib/ados-work-runner:/usr/sbin/nologin"),
        "{user}"
    );
    let fields: Vec<&str> = user.split(':').collect();
    let (uid, gid): (u32, u32) = (
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    );
    let group = std::fs::read_to_string(r.join("etc/group")).expect("group");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("docker:") && l.ends_with("ados-runner")),
        "{group}"
    );

    let bin = r.join("usr/local/bin/ados-work-runner");
    assert_eq!(
        std::fs::metadata(&bin)
            .expect("binary")
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    let version = run(Command::new(&bin).arg("version"));
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("ados-work-runner "));
    assert_eq!(
        std::fs::read(r.join("etc/systemd/system/ados-work-runner.service")).expect("unit"),
        std::fs::read(repo_root().join("dist/systemd/ados-work-runner.service")).expect("unit")
    );
    let env = std::fs::metadata(r.join("etc/ados-work-runner/env")).expect("env file");
    assert_eq!(env.permissions().mode() & 0o777, 0o640);
    assert_eq!((env.uid(), env.gid()), (0, gid), "root:ados-runner");
    let ws = std::fs::metadata(r.join("var/lib/ados-work-runner")).expect("workspace");
    assert_eq!((ws.uid(), ws.gid()), (uid, gid));
    assert_eq!(ws.permissions().mode() & 0o777, 0o750);
    assert!(r
        .join("usr/local/share/doc/ados-work-runner/docs/docker.md")
        .is_file());

    // Again: the filled-in env file is kept, the user not added twice.
    std::fs::write(r.join("etc/ados-work-runner/env"), "ADOS_RUNNER_ID=kept\n").expect("edit env");
    let out = run(Command::new(&install).env("DESTDIR", r));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(r.join("etc/ados-work-runner/env")).expect("env"),
        "ADOS_RUNNER_ID=kept\n"
    );
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).expect("passwd");
    assert_eq!(passwd.matches("ados-runner:").count(), 1);
}

/// The size budget of the release (BENCHMARKS.md, figure 4): `make dist`
/// refuses a static binary over 5 MB, naming the budget, and packs nothing.
#[test]
fn make_dist_refuses_a_binary_over_the_size_budget() {
    // make-dist.sh works in the tree it sits in: a scratch tree holding it
    // and a real static binary padded one byte past 5 MB.
    let tree = TempDir::new("dist-budget");
    let dist = tree.join("dist");
    std::fs::create_dir_all(&dist).expect("create dist/");
    std::fs::copy(
        repo_root().join("dist/make-dist.sh"),
        dist.join("make-dist.sh"),
    )
    .expect("copy make-dist.sh");
    let mut bin = std::fs::read(static_binary()).expect("read the static binary");
    assert!(bin.len() <= 5_000_000, "the real binary is over budget");
    bin.resize(5_000_001, 0);
    let padded = dist.join("ados-work-runner");
    std::fs::write(&padded, &bin).expect("write the padded binary");
    std::fs::set_permissions(&padded, std::fs::Permissions::from_mode(0o755))
        .expect("make it executable");

    let out = run(Command::new("sh").arg(dist.join("make-dist.sh")));
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("5000001 bytes") && said.contains("size budget of 5 MB"),
        "{said}"
    );
    assert!(!dist.join("out").exists(), "a tarball was started");
}
