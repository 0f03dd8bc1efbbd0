//! `ados-work-runner exec`: one job with no server, from flags or from a
//! spec file; progress on stderr, the result JSON on stdout or `--output`.

use ados_test_support::fixtures::{make_bare_repo, try_git, TempDir};
use ados_test_support::forge::{Auth, ForgeServer, Kind};
use ados_test_support::git_server::GitServer;
use ados_test_support::runner::{
    exec_on_new_repo, path_with_fake_agents, run_to_end, ExecRun, RunnerProcess,
};
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
        "(agent claude, merge mode pr)",
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
    let err = p.stderr();
    assert!(err.contains("s] cancelled: the runner"), "{err}");
    assert!(!err.contains("cancelled: cancelled"), "{err}");
}

#[test]
fn a_timeout_says_its_limit() {
    let repos = TempDir::new("exec-timeout-repos");
    let ws = TempDir::new("exec-timeout-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let spec = json!({"job_id": "timeout-1", "prompt": "FAKE: hang",
        "repo": {"owner": "o", "name": "r", "clone_url": repo.display().to_string()},
        "agent": {"name": "claude", "timeout_s": 1}, "merge_mode": "none"});
    let spec_path = ws.path().join("spec.json");
    std::fs::write(&spec_path, spec.to_string()).expect("write spec");
    let (status, out, err) = run_to_end(
        Path::new(BIN),
        &["exec", "--spec", &spec_path.display().to_string()],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{err}");
    let res: Value = serde_json::from_str(&out).expect("result JSON");
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(summary.contains("timed out after 1s"), "{summary}\n{err}");
    // The supervisor's INFO line about the timeout is not in exec's progress.
    assert!(!err.contains(" INFO "), "{err}");
}

/// Run `exec` on a new bare repository holding `files`, with `args` after
/// `--repo`: the exit code, the result JSON, stderr and the repository.
fn exec_on_repo(
    name: &str,
    files: &[(&str, &str)],
    args: &[&str],
) -> (Option<i32>, Value, String, std::path::PathBuf, ExecRun) {
    let run = exec_on_new_repo(Path::new(BIN), name, files, args, env);
    (
        run.code,
        run.result.clone(),
        run.stderr.clone(),
        run.repo.clone(),
        run,
    )
}

#[test]
fn the_test_command_runs_through_sh_and_a_failure_shows_its_last_lines() {
    let (code, res, err, _, _dir) = exec_on_repo(
        "sh",
        &[("README.md", "# r\n")],
        &[
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "echo failing-test-marker && false",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(res["status"], "needs-human", "{err}");
    assert_eq!(res["tests"]["passed"], false, "{res}");
    assert_eq!(res["tests"]["command"], "echo failing-test-marker && false");
    // Without --verbose, the failing run's last lines are shown.
    assert!(err.contains("| failing-test-marker"), "{err}");
}

#[test]
fn a_test_command_not_found_ends_needs_human_without_a_repair() {
    let (code, res, err, _, _dir) = exec_on_repo(
        "notfound",
        &[("README.md", "# r\n")],
        &[
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "ados-no-such-tester -q",
        ],
    );
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(res["status"], "needs-human", "{err}");
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("`ados-no-such-tester`: command not found"),
        "{summary}"
    );
    assert_eq!(res["attempts"].as_array().map(Vec::len), Some(1), "{res}");
    assert!(!err.contains("repairing"), "{err}");
}

#[test]
fn exec_says_when_no_tests_ran() {
    let (code, res, err, _, _dir) = exec_on_repo(
        "notests",
        &[("README.md", "# r\n")],
        &["--prompt", "FAKE: write hello.txt hi", "--test-cmd", ""],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(res["status"], "completed", "{err}");
    assert!(
        err.contains("no test command given or detected: tests skipped"),
        "{err}"
    );
}

#[test]
fn files_the_test_run_creates_never_reach_the_commit() {
    // No .gitignore: untracked test products would be staged with the work.
    let script = "mkdir -p pkg/__pycache__ build\n\
                  echo bytecode > pkg/__pycache__/m.cpython-312.pyc\n\
                  echo coverage > .coverage\n\
                  echo object > build/out.o\n\
                  test -f hello.txt\n";
    let (code, res, err, repo, _dir) = exec_on_repo(
        "products",
        &[("README.md", "# r\n"), ("t.sh", script)],
        &[
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "sh t.sh",
            "--branch",
            "ados/products",
            "--merge-mode",
            "pr",
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(res["status"], "completed", "{err}");
    let (ok, files, _) = try_git(&repo, &["ls-tree", "-r", "--name-only", "ados/products"]);
    assert!(ok);
    let files: Vec<&str> = files.lines().collect();
    assert_eq!(files, ["README.md", "hello.txt", "t.sh"], "{err}");
    assert_eq!(res["changed_files"], json!(["hello.txt"]), "{res}");
}

#[test]
fn a_spec_file_is_checked_whole_and_takes_execs_defaults() {
    let repos = TempDir::new("exec-specchk-repos");
    let ws = TempDir::new("exec-specchk-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let write_spec = |name: &str, job: Value| {
        let path = ws.path().join(name);
        std::fs::write(&path, json!({ "job": job }).to_string()).expect("write spec");
        path.display().to_string()
    };
    let base = json!({"job_id": "spec-d", "prompt": "FAKE: write hello.txt hi",
        "repo": {"owner": "o", "name": "r", "clone_url": repo.display().to_string()},
        "test_command": ""});
    // A typo is an error naming the field and its close match.
    let mut typo = base.clone();
    typo["merge_mod"] = json!("pr");
    let typo = write_spec("typo.json", typo);
    let (status, _, err) = run_to_end(
        Path::new(BIN),
        &["exec", "--spec", &typo],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    assert!(
        err.contains("unknown field `merge_mod` (did you mean `merge_mode`?)"),
        "{err}"
    );
    // A job flag beside --spec is refused, never ignored.
    let good = write_spec("good.json", base);
    let (status, _, err) = run_to_end(
        Path::new(BIN),
        &["exec", "--spec", &good, "--merge-mode", "pr"],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{err}");
    assert!(
        err.contains("--merge-mode cannot be combined with --spec"),
        "{err}"
    );
    // Without merge_mode, exec's default holds for a spec file too: none.
    let (status, out, err) = run_to_end(
        Path::new(BIN),
        &["exec", "--spec", &good],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let res: Value = serde_json::from_str(&out).expect("result JSON");
    assert_eq!(res["status"], "completed", "{res}");
    // Nothing pushed: the commit is only kept, as the job's branch.
    assert!(res["local_copy"].is_object(), "{res}");
    let (_, main, _) = try_git(&repo, &["ls-tree", "--name-only", "main"]);
    assert_eq!(main, "README.md\n", "pushed with merge_mode unset");
}

#[test]
fn flags_are_checked_before_any_work_and_errors_name_the_flag() {
    let repos = TempDir::new("exec-flagchk-repos");
    let ws = TempDir::new("exec-flagchk-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let repo_s = repo.display().to_string();
    let broken = ws.path().join("issue.json");
    std::fs::write(&broken, "{\"title\": \"Add a greeting\",\n").expect("write issue");
    let broken = broken.display().to_string();
    let missing_dir = ws.path().join("no-such-dir").join("result.json");
    let missing_dir = missing_dir.display().to_string();
    let cases: [(&[&str], &str); 5] = [
        (&["--issue-file", &broken], "--issue-file"),
        (
            &["--issue-file", &broken, "--prompt", "FAKE: write a b"],
            "not both",
        ),
        (
            &["--prompt", "FAKE: write a b", "--agent", "nosuch"],
            "--agent: unknown agent `nosuch`",
        ),
        (
            &["--prompt", "FAKE: write a b", "--merge-mode", "bogus"],
            "--merge-mode: ",
        ),
        (
            &["--prompt", "FAKE: write a b", "--output", &missing_dir],
            "does not exist",
        ),
    ];
    for (flags, needle) in cases {
        let mut argv = vec!["exec", "--repo", &repo_s];
        argv.extend_from_slice(flags);
        let (status, _, err) = run_to_end(Path::new(BIN), &argv, &env(ws.path()), T);
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {needle:?} not in {err}");
        assert!(!err.contains("cloning"), "{flags:?} started the job: {err}");
        assert!(
            !err.contains("field `"),
            "{flags:?} named a spec field: {err}"
        );
    }
}

#[test]
fn a_local_run_keeps_its_commit_as_a_branch_of_the_local_repo() {
    let repos = TempDir::new("exec-keep-repos");
    let ws = TempDir::new("exec-keep-ws");
    let repo = make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
    let repo_s = repo.display().to_string();
    let (status, out, err) = run_to_end(
        Path::new(BIN),
        &[
            "exec",
            "--repo",
            &repo_s,
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "",
            "--branch",
            "ados/exec-keep",
        ],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let res: Value = serde_json::from_str(&out).expect("result JSON");
    assert_eq!(res["status"], "completed", "{res}");
    let canonical = std::fs::canonicalize(&repo).expect("canonical repo");
    assert_eq!(
        res["local_copy"],
        json!({"kind": "repository", "path": canonical.display().to_string(),
               "branch": "ados/exec-keep"}),
        "{res}"
    );
    // The job's directory is gone; the commit is not.
    let (ok, file, _) = try_git(&repo, &["show", "ados/exec-keep:hello.txt"]);
    assert!(ok, "the commit was not kept:\n{err}");
    assert_eq!(file, "hi\n");
    let (_, sha, _) = try_git(&repo, &["rev-parse", "ados/exec-keep"]);
    assert_eq!(res["commit_sha"].as_str(), Some(sha.trim()));
    assert!(err.contains("kept as branch ados/exec-keep in"), "{err}");
    // Its target branch is untouched.
    let (_, main_files, _) = try_git(&repo, &["ls-tree", "--name-only", "main"]);
    assert_eq!(main_files, "README.md\n");
}

#[test]
fn a_local_run_whose_branch_is_checked_out_there_keeps_a_bundle_beside_the_output() {
    let repos = TempDir::new("exec-bundle-repos");
    let ws = TempDir::new("exec-bundle-ws");
    let out_dir = TempDir::new("exec-bundle-out");
    let bare = make_bare_repo(repos.path(), "w.git", &[("README.md", "# w\n")]);
    // A non-bare repository whose checked-out branch is the job's.
    let work = repos.path().join("w");
    let (ok, _, e) = try_git(
        repos.path(),
        &["clone", "--quiet", &bare.display().to_string(), "w"],
    );
    assert!(ok, "{e}");
    let (ok, _, e) = try_git(&work, &["checkout", "--quiet", "-b", "ados/exec-mine"]);
    assert!(ok, "{e}");
    let work_s = work.display().to_string();
    let output = out_dir.path().join("result.json");
    let output_s = output.display().to_string();
    let (status, _, err) = run_to_end(
        Path::new(BIN),
        &[
            "exec",
            "--repo",
            &work_s,
            "--prompt",
            "FAKE: write hello.txt hi",
            "--test-cmd",
            "",
            "--branch",
            "ados/exec-mine",
            "--output",
            &output_s,
        ],
        &env(ws.path()),
        T,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{err}");
    let res: Value =
        serde_json::from_str(&std::fs::read_to_string(&output).expect("output")).expect("JSON");
    assert_eq!(res["local_copy"]["kind"], "bundle", "{res}\n{err}");
    let bundle = res["local_copy"]["path"].as_str().expect("bundle path");
    let out_canon = std::fs::canonicalize(out_dir.path()).expect("canonical");
    assert!(Path::new(bundle).starts_with(&out_canon), "{bundle}");
    // The checked-out branch and its work tree were not touched.
    let (_, head, _) = try_git(&work, &["rev-parse", "HEAD"]);
    let (_, main, _) = try_git(&work, &["rev-parse", "main"]);
    assert_eq!(head, main);
    assert!(!work.join("hello.txt").exists());
    // The bundle holds the commit: the user takes it with a fetch.
    let (ok, _, e) = try_git(&work, &["fetch", "--quiet", bundle, "ados/exec-mine:kept"]);
    assert!(ok, "{e}");
    let (_, file, _) = try_git(&work, &["show", "kept:hello.txt"]);
    assert_eq!(file, "hi\n");
    assert!(err.contains("in the bundle"), "{err}");
}

/// `make demo`, `make run` and the demo script find the binary where cargo
/// put it: under `$CARGO_TARGET_DIR` when that is set.
#[test]
fn make_and_the_demo_script_honour_cargo_target_dir() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = TempDir::new("exec-target-dir");
    let target = tmp.path().join("elsewhere");
    let release = target.join("release");
    std::fs::create_dir_all(&release).expect("create release dir");
    let planned = std::process::Command::new("make")
        .args(["--dry-run", "--no-print-directory", "demo", "run"])
        .current_dir(root)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("run make");
    let planned = String::from_utf8_lossy(&planned.stdout).into_owned();
    let wanted = release.join("ados-work-runner").display().to_string();
    assert!(planned.contains(&format!("run.sh {wanted}")), "{planned}");
    assert!(planned.contains(&format!("{wanted} run")), "{planned}");
    assert!(!planned.contains("./target/release"), "{planned}");
    // The demo script, given no binary, takes it from there too: the whole
    // demo runs from a directory with no ./target at all.
    std::os::unix::fs::symlink(BIN, release.join("ados-work-runner")).expect("link binary");
    let demo = std::process::Command::new("sh")
        .arg(root.join("dist/demo/run.sh"))
        .current_dir(tmp.path())
        .env("CARGO_TARGET_DIR", &target)
        .env("ADOS_MIN_FREE_DISK", "0")
        .output()
        .expect("run the demo");
    let out = String::from_utf8_lossy(&demo.stdout);
    let err = String::from_utf8_lossy(&demo.stderr);
    assert!(
        demo.status.success() && out.contains("== result (exit code 0)"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
}

/// A secret given as `<NAME>_FILE` (a Docker or Kubernetes secret) works
/// as the variable does, end to end: the agent gets the file's content
/// without its trailing newline, and the key it prints is redacted.
#[test]
fn a_key_from_a_file_reaches_its_agent_trimmed_and_is_redacted() {
    const KEY: &str = "sk-ant-from-a-file-0123456789";
    let secrets = TempDir::new("exec-key-file");
    let file = secrets.join("anthropic");
    std::fs::write(&file, format!("{KEY}\n")).expect("write the key file");
    let file = file.display().to_string();
    let run = exec_on_new_repo(
        Path::new(BIN),
        "key-file",
        &[("README.md", "# r\n")],
        &[
            "--agent",
            "claude",
            "--prompt",
            "FAKE: print-env ANTHROPIC_API_KEY\nFAKE: sh echo ${#ANTHROPIC_API_KEY} > len.txt",
            "--branch",
            "ados/key-file",
            "--merge-mode",
            "pr",
        ],
        |ws| {
            let mut e = env(ws);
            e.retain(|(k, _)| *k != "ANTHROPIC_API_KEY");
            e.push(("ANTHROPIC_API_KEY_FILE", file.clone()));
            e
        },
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let (ok, len, _) = try_git(&run.repo, &["show", "ados/key-file:len.txt"]);
    assert!(ok, "{}", run.stderr);
    assert_eq!(len.trim(), KEY.len().to_string(), "the newline was kept");
    assert!(
        run.stderr.contains("ANTHROPIC_API_KEY=[REDACTED]"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(KEY), "{}", run.stderr);
}
