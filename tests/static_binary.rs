//! The release artifact: the static binary `make static` builds in
//! `dist/ados-work-runner` (`make test` builds it first). It must be static
//! (`file`, `ldd`) and must work as the debug build does: `version`, `check`
//! against the test control plane, and one `exec` job end to end with the
//! fake agent.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::docker::{repo_root, static_binary};
use ados_test_support::fixtures::{try_git, TempDir};
use ados_test_support::runner::{
    exec_on_new_repo, path_with_fake_agents, run_to_end, CHECK_PASSES,
};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

const T: Duration = Duration::from_secs(60);

#[test]
fn the_static_binary_has_no_dynamic_dependency() {
    let bin = static_binary();
    let file = Command::new("file")
        .arg(&bin)
        .output()
        .expect("run file(1)");
    let file = String::from_utf8_lossy(&file.stdout);
    assert!(
        file.contains("statically linked") || file.contains("static-pie linked"),
        "file(1) says: {file}"
    );
    assert!(file.contains("x86-64"), "file(1) says: {file}");
    // glibc's ldd exits 1 with this sentence for a static executable.
    let ldd = Command::new("ldd").arg(&bin).output().expect("run ldd");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable"),
        "ldd says: {said}"
    );
}

/// The release's size budget (BENCHMARKS.md, figure 4; `make dist`
/// refuses a binary over it): 5 MB.
#[test]
fn the_static_binary_is_within_its_size_budget() {
    let size = std::fs::metadata(static_binary())
        .expect("the static binary")
        .len();
    assert!(
        size <= 5_000_000,
        "dist/ados-work-runner is {size} bytes, over the 5 MB budget"
    );
}

#[test]
fn the_static_binary_prints_this_version() {
    let (status, out, err) = run_to_end(&static_binary(), &["version"], &[], T);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}{err}");
    assert_eq!(
        out.trim(),
        format!("ados-work-runner {}", env!("CARGO_PKG_VERSION")),
        "a stale dist/ados-work-runner? run `make static`"
    );
}

#[test]
fn the_static_binary_checks_a_real_setup() {
    let cp = ControlPlane::start(Options::default());
    let ws = TempDir::new("static-check");
    let env = vec![
        ("ADOS_API_URL", cp.url()),
        ("ADOS_TOKEN", cp.options().token.clone()),
        ("ADOS_RUNNER_ID", "static-1".into()),
        ("WORKSPACE_DIR", ws.path().display().to_string()),
        ("ADOS_MIN_FREE_DISK", "0".into()),
        ("PATH", path_with_fake_agents()),
    ];
    let (status, out, err) = run_to_end(&static_binary(), &["check"], &env, T);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{out}{err}");
    for line in CHECK_PASSES {
        assert!(out.contains(line), "missing {line:?} in\n{out}");
    }
    assert!(
        cp.handshakes()
            .iter()
            .any(|h| h.status == 101 && h.path.ends_with("/runners/ws")),
        "the control plane saw no WebSocket handshake"
    );
}

#[test]
fn the_static_binary_runs_a_job_end_to_end() {
    let env = |ws: &std::path::Path| {
        vec![
            ("WORKSPACE_DIR", ws.display().to_string()),
            ("PATH", path_with_fake_agents()),
            ("ADOS_MIN_FREE_DISK", "0".into()),
            ("ANTHROPIC_API_KEY", "sk-ant-static-test-0123456789".into()),
        ]
    };
    let run = exec_on_new_repo(
        &static_binary(),
        "static",
        &[("README.md", "# r\n")],
        &[
            "--agent",
            "claude",
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "test -f hello.txt",
            "--branch",
            "ados/static-1",
            "--merge-mode",
            "pr",
        ],
        env,
    );
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert_eq!(run.result["status"], "completed", "{}", run.result);
    let (ok, file, _) = try_git(&run.repo, &["show", "ados/static-1:hello.txt"]);
    assert!(ok, "the branch was pushed with the agent's file");
    assert_eq!(file, "hi\n");
    assert!(!run.stderr.contains("sk-ant-static-test"), "{}", run.stderr);
}

/// Where rustup's musl target is installed, `make static` takes the
/// standard route (`cargo build --target x86_64-unknown-linux-musl`) and
/// says so; the Debian route (this machine's) is for machines without it.
/// Run in a scratch tree with a `rustup` that lists the target and a
/// `cargo` that records its arguments and leaves a binary where cargo
/// would.
#[test]
fn make_static_takes_rustups_musl_target_where_it_is_installed() {
    let tree = TempDir::new("static-rustup");
    let dist = tree.join("dist");
    let bin = tree.join("bin");
    for d in [&dist, &bin] {
        std::fs::create_dir_all(d).expect("create a directory");
    }
    std::fs::copy(
        repo_root().join("dist/build-static.sh"),
        dist.join("build-static.sh"),
    )
    .expect("copy build-static.sh");
    let target_dir = tree.join("target");
    let fakes = [
        (
            "rustup",
            "#!/bin/sh\n[ \"$*\" = 'target list --installed' ] && printf 'x86_64-unknown-linux-gnu\\nx86_64-unknown-linux-musl\\n'\n",
        ),
        (
            "cargo",
            "#!/bin/sh\nout=$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release\nmkdir -p \"$out\" && echo \"$*\" > \"$CARGO_TARGET_DIR/cargo-args\" && echo built > \"$out/ados-work-runner\"\n",
        ),
    ];
    for (name, text) in fakes {
        let path = bin.join(name);
        std::fs::write(&path, text).expect("write a fake");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .arg(dist.join("build-static.sh"))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("run build-static.sh");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("route: rustup target x86_64-unknown-linux-musl"),
        "{said}"
    );
    let args = std::fs::read_to_string(target_dir.join("cargo-args")).expect("cargo ran");
    assert_eq!(
        args.trim(),
        "build --release --bin ados-work-runner --target x86_64-unknown-linux-musl"
    );
    assert_eq!(
        std::fs::read_to_string(dist.join("ados-work-runner")).expect("the binary"),
        "built\n"
    );
}
