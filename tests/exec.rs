//! `ados-work-runner exec`: one job with no server, from flags or from a
//! spec file; progress on stderr, the result JSON on stdout or `--output`.

use ados_test_support::fixtures::{make_bare_repo, try_git, TempDir};
use ados_test_support::forge::{Auth, ForgeServer, Kind};
use ados_test_support::git_server::GitServer;
use ados_test_support::runner::{path_with_fake_agents, run_to_end, RunnerProcess};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");
const T: Duration = Duration::from_secs(60);

fn env(ws: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("WORKSPACE_DIR", ws.display().to_string()),
        ("PATH", path_with_fake_agents()),
        ("ADOS_MIN_FREE_DISK", "0".into()),
        ("ANTHROPIC_API_KEY", "sk-ant-exec-test-0123456789".into()),
        ("OPENAI_API_KEY", "sk-exec-test-0123456789abcdef".into()),
    ]
}

#[test]
fn exec_from_flags_runs_the_pipeline_and_prints_the_result() {
    let repos = TempDir::new("exec-flags-repos");
    let ws = TempDir::new("exec-flags-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let repo_s = repo.display().to_string();
    let (status, out, err) = run_to_end(
        Path::new(BIN),
        &[
            "exec",
            "--repo",
            &repo_s,
            "--agent",
            "claude",
            "--model",
            "m1",
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "test -f hello.txt",
            "--branch",
            "ados/exec-1",
            "--merge-mode",
            "pr",
        ],
        &env(ws.path()),
        T,
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "stderr:\n{err}\nstdout:\n{out}"
    );
    let res: Value = serde_json::from_str(&out).expect("stdout is the result JSON");
    assert_eq!(res["status"], "completed");
    assert_eq!(res["model"], "m1");
    // Progress: each status with its elapsed time, agent lines.
    for needle in [
        "s] preparing",
        "s] cloning",
        "s] running_agent",
        "s] testing",
        "s] pushing",
        "claude",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let (ok, file, _) = try_git(&repo, &["show", "ados/exec-1:hello.txt"]);
    assert!(ok);
    assert_eq!(file, "hi\n");
}

#[test]
fn exec_with_a_provider_opens_the_pull_request() {
    let repos = TempDir::new("exec-pr-repos");
    let ws = TempDir::new("exec-pr-ws");
    make_bare_repo(repos.path(), "o/r.git", &[("README.md", "# r\n")]);
    let token = "ghs_ExecPrToken0123456789abcdef";
    let git = GitServer::start(repos.path(), "x-access-token", token);
    let forge = ForgeServer::start(Kind::GitHub, "o/r", Auth::Bearer(token.into()));
    let mut env = env(ws.path());
    env.push(("GITHUB_TOKEN", token.into()));
    let (status, out, err) = run_to_end(
        Path::new(BIN),
        &[
            "exec",
            "--repo",
            &git.url_for("o/r.git"),
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "",
            "--branch",
            "ados/exec-pr",
            "--merge-mode",
            "pr",
            "--provider",
            "github",
            "--api-url",
            &forge.api_url(),
        ],
        &env,
        T,
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "stderr:\n{err}\nstdout:\n{out}"
    );
    let res: Value = serde_json::from_str(&out).expect("stdout is the result JSON");
    assert_eq!(res["status"], "completed", "{res}");
    assert!(err.contains("s] creating_pr"), "{err}");
    let prs = forge.prs();
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(prs[0].branch, "ados/exec-pr");
    assert_eq!(res["pr_number"], prs[0].number, "{res}");
    assert!(
        res["pr_url"]
            .as_str()
            .is_some_and(|u| u.contains("/o/r/pull/")),
        "{res}"
    );
    assert!(!out.contains(token) && !err.contains(token));
}

#[test]
fn exec_from_a_spec_file_writes_output_and_exits_1_when_not_completed() {
    let repos = TempDir::new("exec-spec-repos");
    let ws = TempDir::new("exec-spec-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let spec = json!({"job": {"job_id": "spec-1", "kind": "issue",
        "repo": {"owner": "o", "name": "r", "clone_url": repo.display().to_string(), "target_branch": "main"},
        "issue": {"number": 3, "title": "Do nothing", "body": ""},
        "agent": {"name": "codex"}, "merge_mode": "none", "test_command": ""}});
    let spec_path = ws.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write spec");
    let out_path = ws.path().join("result.json");
    let (status, _, err) = run_to_end(
        Path::new(BIN),
        &[
            "exec",
            "--spec",
            &spec_path.display().to_string(),
            "--output",
            &out_path.display().to_string(),
        ],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    let res: Value =
        serde_json::from_str(&std::fs::read_to_string(&out_path).expect("result file"))
            .expect("json");
    assert_eq!(res["status"], "needs-human");
    assert_eq!(res["job_id"], "spec-1");
}

#[test]
fn exec_usage_errors_exit_2() {
    let ws = TempDir::new("exec-usage");
    let (status, _, err) = run_to_end(Path::new(BIN), &["exec", "--bogus"], &env(ws.path()), T);
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    let (status, _, err) = run_to_end(
        Path::new(BIN),
        &["exec", "--repo", "/nonexistent/x"],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    assert!(err.contains("--repo"), "{err}");
}

#[test]
fn ctrl_c_cancels_the_job_and_exits_130() {
    let repos = TempDir::new("exec-int-repos");
    let ws = TempDir::new("exec-int-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let repo_s = repo.display().to_string();
    let mut p = RunnerProcess::start(
        Path::new(BIN),
        &["exec", "--repo", &repo_s, "--prompt", "FAKE: hang"],
        &env(ws.path()),
    );
    assert!(p.wait_stderr("running_agent", T), "{}", p.stderr());
    p.signal(libc::SIGINT);
    let status = p.wait_exit(T).expect("exec exits after Ctrl-C");
    assert_eq!(status.code(), Some(130), "{}", p.stderr());
    let res: Value = serde_json::from_str(&p.stdout()).expect("result JSON on stdout");
    assert_eq!(res["status"], "cancelled");
}
