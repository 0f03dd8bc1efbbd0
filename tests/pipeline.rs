//! Issue jobs end to end through the real binary: the test control plane
//! assigns, a smart-HTTP git server that demands the token serves the
//! repository, fake agent CLIs (exact output formats of agents.md) do the
//! work; a stand-in for the provider's REST API takes the pull requests.
//! Every path of the pipeline, and that the token ends up nowhere.

use ados_test_support::fixtures::{files_containing, recorded_argv, run_git, try_git, TempDir};
use ados_test_support::forge::{Auth, ForgeServer, Kind};
use ados_test_support::git_server::base64;
use ados_test_support::harness::{all_text, statuses, Harness, ANTHROPIC, T, TOKEN};
use ados_test_support::runner::http_get;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[test]
fn completed_with_each_agent_and_the_token_is_nowhere() {
    let h = Harness::start(&[
        ("README.md", "# r\n"),
        ("test.sh", "grep -q hi hello.txt\n"),
    ]);
    let mut every = String::new();
    for agent in ["claude", "codex", "copilot"] {
        let id = format!("ok-{agent}");
        let (events, res) = h.run(h.spec(
            &id,
            agent,
            &format!("FAKE: write hello.txt hi from {agent}"),
            "sh test.sh",
        ));
        assert_eq!(res["status"], "completed", "{agent}: {res}");
        assert_eq!(
            statuses(&events),
            [
                "preparing",
                "cloning",
                "running_agent",
                "testing",
                "committing",
                "pushing",
                "creating_pr"
            ],
            "{agent}"
        );
        assert_eq!(res["changed_files"], json!(["hello.txt"]), "{res}");
        assert_eq!(res["agent"], agent);
        assert_eq!(res["attempts"].as_array().map(Vec::len), Some(1));
        assert_eq!(res["tests"]["passed"], true);
        assert!(res["commit_sha"].as_str().is_some_and(|s| s.len() == 40));
        let pr = h
            .forge
            .prs()
            .into_iter()
            .find(|p| p.branch == format!("ados/{id}"));
        let pr = pr.expect("a PR of the job's branch");
        assert_eq!(res["pr_number"], pr.number, "{res}");
        assert!(
            res["pr_url"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/pull/{}", pr.number))),
            "{res}"
        );
        assert_eq!(
            h.branch_file(&format!("ados/{id}"), "hello.txt").as_deref(),
            Some(format!("hi from {agent}\n").as_str())
        );
        // Agent events were normalised and streamed.
        assert!(events
            .iter()
            .any(|e| e["event"]["kind"] == "agent" && e["event"]["agent"] == agent));
        assert!(events
            .iter()
            .any(|e| e["event"]["kind"] == "test" && e["event"]["passed"] == true));
        if agent == "claude" {
            assert!(
                res["usage"]["output_tokens"].as_u64().unwrap_or(0) > 0,
                "{res}"
            );
            assert!(res["usage"]["cost_usd"].as_f64().is_some(), "{res}");
        }
        every.push_str(&all_text(&events, &res));
    }
    // The commit carries the spec's author.
    let (_, author, _) = try_git(
        &h.bare(),
        &["log", "-1", "--format=%an <%ae>", "ados/ok-claude"],
    );
    assert_eq!(author.trim(), "ADOS Bot <bot@ados.dev>");
    // The token is in no file, no argv, no event, in any usual form.
    let basic = base64(format!("x-access-token:{TOKEN}").as_bytes());
    for needle in [TOKEN.to_string(), basic.clone()] {
        assert!(
            files_containing(h.ws.path(), needle.as_bytes()).is_empty(),
            "token found in workspace files"
        );
        assert!(!every.contains(&needle), "token in an event");
    }
    let argv = recorded_argv(h.recorder.path());
    assert!(argv.len() > 10, "git argv recorded: {}", argv.len());
    assert!(argv
        .iter()
        .all(|l| !l.contains(TOKEN) && !l.contains(&basic)));
    // Metrics were updated per job.
    let (_, metrics) = http_get(h.health, "/metrics").expect("metrics");
    for agent in ["claude", "codex", "copilot"] {
        let line =
            format!("ados_jobs_total{{status=\"completed\",repo=\"o/r\",agent=\"{agent}\"}} 1");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
        let count = format!("ados_agent_duration_seconds_count{{agent=\"{agent}\"}} 1");
        assert!(metrics.contains(&count), "missing {count}");
    }
    // The job directories are gone; the mirror stays.
    let jobs: Vec<_> = std::fs::read_dir(h.ws.path().join("jobs"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(jobs.is_empty(), "job dirs left: {jobs:?}");
}

#[test]
fn fallback_after_a_failing_agent_starts_from_a_clean_tree() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let mut spec = h.spec(
        "fb",
        "claude",
        "FAKE[claude]: write junk.txt from the failed attempt\nFAKE[claude]: fail\nFAKE[codex]: write hello.txt hi",
        "",
    );
    spec["fallbacks"] = json!([{"name": "codex"}]);
    let (events, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    // The fallback's status says why the job moved on.
    let details: Vec<&str> = events
        .iter()
        .filter(|v| v["event"]["status"] == "running_agent")
        .filter_map(|v| v["event"]["detail"].as_str())
        .collect();
    assert_eq!(details.len(), 2, "{details:?}");
    assert_eq!(details[0], "claude");
    assert!(
        details[1].starts_with("codex (fallback: claude failed: ") && details[1].ends_with(')'),
        "{details:?}"
    );
    let attempts = res["attempts"].as_array().cloned().unwrap_or_default();
    assert_eq!(attempts.len(), 2, "{res}");
    assert_eq!(attempts[0]["agent"], "claude");
    assert!(attempts[0]["error"].is_string());
    assert_eq!(attempts[1]["agent"], "codex");
    assert!(attempts[1]["error"].is_null());
    assert_eq!(res["agent"], "codex");
    assert_eq!(
        res["changed_files"],
        json!(["hello.txt"]),
        "the failed attempt's file was cleaned: {res}"
    );
}

#[test]
fn no_change_needs_a_human_and_pushes_nothing() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (_, res) = h.run(h.spec("nochange", "claude", "just look around", ""));
    assert_eq!(res["status"], "needs-human", "{res}");
    assert_eq!(res["summary"], "agent made no changes");
    let (ok, _, _) = try_git(
        &h.bare(),
        &["rev-parse", "--verify", "refs/heads/ados/nochange"],
    );
    assert!(!ok, "nothing may be pushed");
}

#[test]
fn tests_red_after_repair_push_and_need_a_human() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (events, res) = h.run(h.spec("red", "claude", "FAKE: write hello.txt hi", "false"));
    assert_eq!(res["status"], "needs-human", "{res}");
    assert_eq!(res["tests"]["passed"], false);
    assert_eq!(
        res["attempts"].as_array().map(Vec::len),
        Some(2),
        "one repair: {res}"
    );
    let st = statuses(&events);
    assert!(st.contains(&"repairing".to_string()), "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "testing").count(), 2, "{st:?}");
    assert!(
        h.branch_file("ados/red", "hello.txt").is_some(),
        "pushed for a person to look at"
    );
}

#[test]
fn a_repair_turns_the_tests_green() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (events, res) = h.run(h.spec(
        "repair",
        "claude",
        "FAKE: write calc.txt 1\nFAKE: fix-if-failing calc.txt 2",
        "grep -qx 2 calc.txt",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    let tests: Vec<bool> = events
        .iter()
        .filter(|e| e["event"]["kind"] == "test")
        .map(|e| e["event"]["passed"].as_bool().unwrap_or(false))
        .collect();
    assert_eq!(tests, [false, true]);
    assert_eq!(
        h.branch_file("ados/repair", "calc.txt").as_deref(),
        Some("2\n")
    );
}

#[test]
fn a_rerun_onto_an_existing_ados_branch_starts_from_the_target() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let mut spec = h.spec("rerun-1", "claude", "FAKE: write hello.txt first", "");
    spec["branch"] = json!("ados/issue-7");
    let (_, first) = h.run(spec.clone());
    assert_eq!(first["status"], "completed", "{first}");
    spec["job_id"] = json!("rerun-2");
    spec["prompt"] = json!("FAKE: write other.txt second");
    let (events, second) = h.run(spec);
    assert_eq!(second["status"], "completed", "{second}");
    // The branch was replaced: it holds the second run's file only, on top of main.
    assert_eq!(
        h.branch_file("ados/issue-7", "other.txt").as_deref(),
        Some("second\n")
    );
    assert!(h.branch_file("ados/issue-7", "hello.txt").is_none());
    let (_, parent, _) = try_git(&h.bare(), &["rev-parse", "ados/issue-7^"]);
    let (_, main, _) = try_git(&h.bare(), &["rev-parse", "main"]);
    assert_eq!(parent.trim(), main.trim());
    // The mirror was reused by the second job: it fetched, it did not clone.
    let text: String = events.iter().map(|e| e.to_string()).collect();
    assert!(
        text.contains("updated the repository mirror"),
        "second job reused the mirror"
    );
    let inits = recorded_argv(h.recorder.path())
        .iter()
        .filter(|l| {
            l.contains(" init ") || l.contains(" clone --mirror") || l.contains(" clone --bare")
        })
        .count();
    assert_eq!(
        inits,
        1,
        "the mirror is made once: {:?}",
        recorded_argv(h.recorder.path())
    );
    let mirrors = std::fs::read_dir(h.ws.path().join("mirrors"))
        .map(|d| d.flatten().count())
        .unwrap_or(0);
    assert_eq!(mirrors, 1);
}

#[test]
fn a_monorepo_path_is_where_the_agent_and_tests_run() {
    let h = Harness::start(&[("README.md", "# r\n"), ("svc/api/README.md", "api\n")]);
    let mut spec = h.spec(
        "mono",
        "claude",
        "FAKE: write new.txt inside",
        "test -f new.txt",
    );
    spec["repo"]["path"] = json!("svc/api");
    let (_, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["changed_files"], json!(["svc/api/new.txt"]));
}

#[test]
fn secrets_printed_by_the_agent_are_redacted() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (events, res) = h.run(h.spec(
        "leak",
        "claude",
        "FAKE: print-env ANTHROPIC_API_KEY\nFAKE: write hello.txt hi",
        "",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    let text = all_text(&events, &res);
    assert!(!text.contains(ANTHROPIC), "the key leaked into an event");
    assert!(text.contains("[REDACTED]"), "the printed key was masked");
}

/// A clone is visible while it runs: git's progress becomes the `cloning`
/// status detail (a phase and a whole percent), never `git` log lines.
#[test]
fn a_clone_reports_its_progress_as_the_cloning_detail() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (events, res) = h.run(h.spec("progress", "claude", "FAKE: write hello.txt hi", ""));
    assert_eq!(res["status"], "completed", "{res}");
    let details: Vec<&str> = events
        .iter()
        .filter(|e| e["event"]["kind"] == "status" && e["event"]["status"] == "cloning")
        .filter_map(|e| e["event"]["detail"].as_str())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.ends_with('%') || d.contains("% (")),
        "no progress detail: {details:?}"
    );
    let logged = events
        .iter()
        .filter(|e| e["event"]["stream"] == "git")
        .filter_map(|e| e["event"]["text"].as_str())
        .collect::<String>();
    assert!(!logged.contains("% ("), "progress in the git log: {logged}");
}

/// A custom agent receives the variables its definition names (its API
/// key), and what it prints of them is redacted like every secret.
#[test]
fn a_custom_agent_gets_the_key_it_names_and_its_value_is_redacted() {
    const KEY: &str = "svc-key-0123456789abcdef-custom";
    let defs = TempDir::new("pipeline-custom");
    let file = defs.path().join("agents.json");
    std::fs::write(
        &file,
        json!({"agents": [{"name": "keyed",
            "command": ["sh", "-c", "echo \"key=$MY_SERVICE_KEY\"; echo hi > hello.txt"],
            "env": ["MY_SERVICE_KEY"]}]})
        .to_string(),
    )
    .unwrap();
    let h = Harness::start_with(
        &[("README.md", "# r\n")],
        &[
            ("ADOS_CUSTOM_AGENTS", file.to_str().unwrap()),
            ("MY_SERVICE_KEY", KEY),
        ],
    );
    let (events, res) = h.run(h.spec("keyed", "keyed", "add hello", ""));
    assert_eq!(res["status"], "completed", "{res}");
    let text = all_text(&events, &res);
    assert!(!text.contains(KEY), "the key leaked into an event");
    assert!(
        text.contains("key=[REDACTED]"),
        "the agent did not receive its key: {text}"
    );
}

#[test]
fn an_agent_timeout_fails_the_attempt() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let mut spec = h.spec("slow", "claude", "FAKE: hang", "");
    spec["agent"]["timeout_s"] = json!(1);
    let (_, res) = h.run(spec);
    assert_eq!(res["status"], "failed", "{res}");
    assert!(
        res["error"]
            .as_str()
            .unwrap_or("")
            .contains("every agent failed"),
        "{res}"
    );
}

fn processes_with(marker: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmd).contains(marker) {
                out.push(pid);
            }
        }
    }
    out
}

#[test]
fn cancel_kills_a_sigterm_ignoring_agent_and_its_grandchild() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let marker = "ados-fake-grandchild";
    h.cp.assign(h.spec("cxl", "claude", "FAKE: grandchild\nFAKE: ignore-term", ""));
    h.cp.wait_for(|v| v["job_id"] == "cxl" && v["event"]["kind"] == "agent", T);
    let seen = h.cp.wait_until(Duration::from_secs(10), |_| {
        !processes_with(marker).is_empty()
    });
    assert!(seen, "the grandchild runs");
    h.cp.cancel("cxl");
    let res =
        h.cp.wait_for(|v| v["type"] == "job.result" && v["job_id"] == "cxl", T);
    assert_eq!(res["status"], "cancelled", "{res}");
    let left = processes_with(marker);
    assert!(left.is_empty(), "processes outlived the job: {left:?}");
    drop(h);
}

#[test]
fn a_token_in_the_diff_stops_the_push_and_names_file_and_line() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let leaked = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    let (_, res) = h.run(h.spec(
        "guard",
        "claude",
        &format!("FAKE: write notes.txt fine\nFAKE: append notes.txt token={leaked}"),
        "",
    ));
    assert_eq!(res["status"], "needs-human", "{res}");
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("a GitHub token in notes.txt line 2"),
        "{summary}"
    );
    assert!(
        !res.to_string().contains(leaked),
        "the value is never shown: {res}"
    );
    let (ok, _, _) = try_git(
        &h.bare(),
        &["rev-parse", "--verify", "refs/heads/ados/guard"],
    );
    assert!(!ok, "nothing may be pushed");
}

#[test]
fn registry_credentials_are_where_tools_look_and_never_committed() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let reg_token = "npm_RegistryToken_0123456789";
    let mut spec = h.spec(
        "reg",
        "claude",
        "FAKE: cat-home .npmrc\nFAKE: write hello.txt hi",
        "",
    );
    spec["registries"] = json!([{"type": "npm", "url": "https://npm.pkg.github.com", "scope": "@o",
                                 "token": reg_token}]);
    let (events, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    let text = all_text(&events, &res);
    assert!(
        text.contains("@o:registry=https://npm.pkg.github.com/"),
        "the agent's HOME has the .npmrc"
    );
    assert!(
        text.contains("_authToken=[REDACTED]"),
        "the token is masked in events"
    );
    assert!(!text.contains(reg_token));
    assert_eq!(res["changed_files"], json!(["hello.txt"]));
    assert!(h.branch_file("ados/reg", ".npmrc").is_none());
    assert!(
        files_containing(h.ws.path(), reg_token.as_bytes()).is_empty(),
        "deleted with the job"
    );
}

#[test]
fn the_job_time_limit_fails_the_job() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let mut spec = h.spec("limit", "claude", "FAKE: hang", "");
    spec["timeout_s"] = json!(2);
    let (_, res) = h.run(spec);
    assert_eq!(res["status"], "failed", "{res}");
    assert!(
        res["error"].as_str().unwrap_or("").contains("time limit"),
        "{res}"
    );
}

#[test]
fn merge_mode_direct_pushes_to_the_target_branch() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let mut spec = h.spec("direct", "claude", "FAKE: write hello.txt direct", "");
    spec["merge_mode"] = json!("direct");
    let (_, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["branch"], "main");
    assert_eq!(
        h.branch_file("main", "hello.txt").as_deref(),
        Some("direct\n")
    );
    let (ok, _, _) = try_git(
        &h.bare(),
        &["rev-parse", "--verify", "refs/heads/ados/direct"],
    );
    assert!(!ok, "only the target branch is pushed");
    let (_, msg, _) = try_git(&h.bare(), &["log", "-1", "--format=%B", "main"]);
    assert!(msg.starts_with("Say hello (#7)\n"), "{msg}");
    assert!(msg.contains("Closes #7"), "{msg}");
}

#[test]
fn an_agent_that_commits_by_itself_is_folded_into_the_jobs_commit() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (_, res) = h.run(h.spec(
        "selfcommit",
        "claude",
        "FAKE: write a.txt one\nFAKE: commit agent did it\nFAKE: write b.txt two",
        "",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["changed_files"], json!(["a.txt", "b.txt"]), "{res}");
    let (_, log, _) = try_git(
        &h.bare(),
        &["log", "--format=%an|%s", "main..ados/selfcommit"],
    );
    assert_eq!(
        log.trim(),
        "ADOS Bot|Say hello (#7)",
        "one commit, the job's author"
    );
}

/// Commits symlinks (path, target) onto `main` of `bare`, as a repository
/// author could.
fn commit_symlinks(bare: &Path, links: &[(&str, &str)]) {
    let work = TempDir::new("pipeline-links");
    let dir = work.join("w");
    run_git(
        work.path(),
        &[
            "clone",
            "--quiet",
            &bare.display().to_string(),
            &dir.display().to_string(),
        ],
    );
    for (path, target) in links {
        std::os::unix::fs::symlink(target, dir.join(path)).expect("symlink");
    }
    run_git(&dir, &["add", "--all"]);
    run_git(&dir, &["commit", "--quiet", "-m", "links"]);
    run_git(&dir, &["push", "--quiet", "origin", "main"]);
}

/// Asserts the guard stopped job `id`: `needs-human`, the value nowhere in
/// the result, the job's branch not on the server.
fn assert_guard_stopped(h: &Harness, id: &str, res: &Value, leaked: &str) {
    assert_eq!(res["status"], "needs-human", "{res}");
    assert!(
        !res.to_string().contains(leaked),
        "the value is never shown: {res}"
    );
    let (ok, _, _) = try_git(
        &h.bare(),
        &["rev-parse", "--verify", &format!("refs/heads/ados/{id}")],
    );
    assert!(!ok, "nothing may be pushed");
}

const LEAKED: &str = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";

#[test]
fn a_secret_in_a_file_with_a_nul_byte_is_found() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (_, res) = h.run(h.spec(
        "guard-nul",
        "claude",
        &format!("FAKE: write-escaped blob.txt head\\x00 token={LEAKED}"),
        "",
    ));
    assert_guard_stopped(&h, "guard-nul", &res, LEAKED);
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(summary.contains("a GitHub token in blob.txt"), "{summary}");
}

#[test]
fn a_secret_in_a_file_marked_minus_diff_is_found() {
    let h = Harness::start(&[("README.md", "# r\n"), (".gitattributes", "*.dat -diff\n")]);
    let (_, res) = h.run(h.spec(
        "guard-attr",
        "claude",
        &format!("FAKE: write secret.dat token={LEAKED}"),
        "",
    ));
    assert_guard_stopped(&h, "guard-attr", &res, LEAKED);
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("a GitHub token in secret.dat"),
        "{summary}"
    );
}

#[test]
fn a_secret_in_a_file_name_is_found_and_not_shown() {
    let h = Harness::start(&[("README.md", "# r\n"), ("notes.txt", "")]);
    // A new file, and an empty file renamed: no line shows either name.
    for (id, prompt) in [
        (
            "guard-name",
            format!("FAKE: write notes-{LEAKED}.txt harmless"),
        ),
        (
            "guard-rename",
            format!("FAKE: rename notes.txt notes-{LEAKED}"),
        ),
    ] {
        let (_, res) = h.run(h.spec(id, "claude", &prompt, ""));
        assert_guard_stopped(&h, id, &res, LEAKED);
        let summary = res["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("a GitHub token in a file name"),
            "{id}: {summary}"
        );
    }
}

#[test]
fn a_diff_too_large_to_scan_whole_is_not_pushed() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // The generated file sorts first: the secret comes after the cap.
    let (_, res) = h.run(h.spec(
        "guard-big",
        "claude",
        &format!("FAKE: write-big a-generated.txt 65\nFAKE: write z.txt token={LEAKED}"),
        "",
    ));
    assert_guard_stopped(&h, "guard-big", &res, LEAKED);
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("could not scan the whole change"),
        "{summary}"
    );
}

#[test]
fn a_prompt_over_128_kib_reaches_each_agent() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // Many lines of a long issue; no single argv element may be this big.
    let long: String = (0..4000)
        .map(|i| format!("Line {i} of a long issue body, with details.\n"))
        .collect();
    assert!(long.len() > 160 * 1024);
    for agent in ["claude", "codex", "copilot"] {
        let id = format!("long-{agent}");
        let (_, res) = h.run(h.spec(
            &id,
            agent,
            &format!("{long}FAKE: write hello.txt hi from {agent}\n{long}"),
            "",
        ));
        assert_eq!(res["status"], "completed", "{agent}: {res}");
        assert_eq!(
            h.branch_file(&format!("ados/{id}"), "hello.txt").as_deref(),
            Some(format!("hi from {agent}\n").as_str())
        );
    }
}

#[test]
fn a_repair_after_a_300_kb_failing_line_reaches_the_agent() {
    let h = Harness::start(&[
        ("README.md", "# r\n"),
        (
            "test.sh",
            "test -f fixed.txt && exit 0\nhead -c 300000 /dev/zero | tr '\\000' x\necho\necho failing\nexit 1\n",
        ),
    ]);
    let (_, res) = h.run(h.spec(
        "repair-long",
        "claude",
        "FAKE: write hello.txt hi\nFAKE: fix-if-failing fixed.txt ok",
        "sh test.sh",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["attempts"].as_array().map(Vec::len), Some(2), "{res}");
    assert_eq!(res["tests"]["passed"], true, "{res}");
}

#[test]
fn committed_links_to_dev_zero_and_a_fifo_are_not_read() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // Opening a FIFO with no writer blocks: a reader that follows the link
    // hangs the job, one that reads /dev/zero never ends.
    let outside = TempDir::new("pipeline-fifo");
    let fifo = outside.join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let fifo_s = fifo.display().to_string();
    commit_symlinks(
        &h.bare(),
        &[
            ("Makefile", "/dev/zero"),
            ("package.json", &fifo_s),
            ("CONTRIBUTING.md", "/dev/zero"),
            (".ados.yaml", &fifo_s),
        ],
    );
    let mut spec = h.spec("zero", "claude", "FAKE: write hello.txt hi", "");
    spec["test_command"] = Value::Null;
    let (events, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        res["tests"].is_null(),
        "no test command was detected: {res}"
    );
    assert!(
        events
            .iter()
            .any(|e| e.to_string().contains("tests skipped")),
        "detection found nothing"
    );
}

#[test]
fn a_repo_path_through_a_link_out_of_the_checkout_fails() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let outside = TempDir::new("pipeline-outside");
    commit_symlinks(&h.bare(), &[("svc", &outside.path().display().to_string())]);
    let mut spec = h.spec("escape", "claude", "FAKE: write new.txt escaped", "");
    spec["repo"]["path"] = json!("svc");
    let (_, res) = h.run(spec);
    assert_eq!(res["status"], "failed", "{res}");
    assert!(
        res["error"].as_str().unwrap_or("").contains("repo.path"),
        "{res}"
    );
    assert!(
        !outside.join("new.txt").exists(),
        "the agent ran outside the checkout"
    );
}

#[test]
fn a_timeout_too_large_for_the_clock_does_not_take_a_worker_down() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // 2^63 seconds cannot be added to the clock: the job is answered
    // (run without a limit, or refused naming the field), never lost.
    let mut spec = h.spec("huge", "claude", "FAKE: write hello.txt hi", "");
    spec["timeout_s"] = json!(9_223_372_036_854_775_808u64);
    spec["agent"]["timeout_s"] = json!(9_223_372_036_854_775_808u64);
    h.cp.assign(spec);
    let answer = h.cp.wait_for(
        |v| v["job_id"] == "huge" && (v["type"] == "job.result" || v["type"] == "job.rejected"),
        T,
    );
    if answer["type"] == "job.result" {
        assert_eq!(answer["status"], "completed", "{answer}");
    } else {
        assert!(answer.to_string().contains("timeout_s"), "{answer}");
    }
    // And jobs still run after it.
    for id in ["after-1", "after-2"] {
        let (_, res) = h.run(h.spec(id, "claude", "FAKE: write hello.txt hi", ""));
        assert_eq!(res["status"], "completed", "{res}");
    }
}

/// A hostile agent's moves, as one `FAKE: sh` line: find the shared mirror
/// through the checkout's alternates, put a commit of its own on the
/// mirror's `main`, and narrow the mirror's fetch refspec so `main` is never
/// refreshed from upstream again. It prints the subject of the mirror's
/// `main` last (`evil` when the attack worked).
const POISON_THE_MIRROR: &str = "FAKE: sh M=$(sed 's#/objects$##' .git/objects/info/alternates) \
    && export GIT_INDEX_FILE=$TMPDIR/evil-index && git read-tree HEAD \
    && git update-index --add --cacheinfo 100644,$(echo evil | git hash-object -w --stdin),evil.txt \
    && E=$(git -c user.name=E -c user.email=e@example.com commit-tree -p HEAD -m evil $(git write-tree)) \
    && unset GIT_INDEX_FILE && git push -q \"$M\" $E:refs/heads/main \
    && git --git-dir=\"$M\" config --replace-all remote.origin.fetch +refs/tags/*:refs/tags/* \
    && git --git-dir=\"$M\" log --format=poisoned-%s -1 main";

#[test]
fn a_poisoned_mirror_never_reaches_upstream_through_a_later_job() {
    // As on a host where the runner is not root: the agent runs as the
    // runner's own user and can write the mirror, which must defend itself.
    // (A root runner gives the agent a user of its own, who cannot write
    // the mirror at all: see `a_job_user_reaches_neither_the_runner_nor_another_job`.)
    let h = Harness::start_with(&[("README.md", "# r\n")], &[("ADOS_JOB_UID_BASE", "off")]);
    let (_, upstream_main, _) = try_git(&h.bare(), &["rev-parse", "refs/heads/main"]);
    let upstream_main = upstream_main.trim().to_string();

    let (events, res) = h.run(h.spec(
        "poison",
        "claude",
        &format!("FAKE: write a.txt from the hostile job\n{POISON_THE_MIRROR}"),
        "",
    ));
    // The attack itself worked: the mirror's main was the agent's commit.
    assert!(
        events
            .iter()
            .any(|e| e["event"]["kind"] == "agent" && e.to_string().contains("poisoned-evil")),
        "the agent's moves did not all run: {events:?} {res}"
    );

    // A later, unrelated job with a harmless agent on the same repository.
    let (_, res) = h.run(h.spec("later", "claude", "FAKE: write b.txt harmless", ""));
    assert_eq!(res["status"], "completed", "{res}");
    let (_, parent, _) = try_git(&h.bare(), &["rev-parse", "refs/heads/ados/later^"]);
    assert_eq!(
        parent.trim(),
        upstream_main,
        "the later job's commit sits on upstream main, not on the agent's commit"
    );
    assert!(
        h.branch_file("ados/later", "evil.txt").is_none(),
        "the poisoned commit reached upstream"
    );
    let (_, main_now, _) = try_git(&h.bare(), &["rev-parse", "refs/heads/main"]);
    assert_eq!(main_now.trim(), upstream_main);
    // And the mirror is the runner's again.
    let mirrors: Vec<PathBuf> = std::fs::read_dir(h.ws.path().join("mirrors"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    let (_, refspecs, _) = try_git(&mirrors[0], &["config", "--get-all", "remote.origin.fetch"]);
    assert_eq!(
        refspecs.trim(),
        "+refs/heads/*:refs/heads/*\n+refs/tags/*:refs/tags/*"
    );
}

#[test]
fn a_clean_filter_planted_by_the_agent_never_runs_in_the_runners_git() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let marker_dir = ados_test_support::fixtures::TempDir::new("pipeline-filter");
    let marker = marker_dir.path().join("the-filter-ran");
    let plant = format!(
        "FAKE: sh printf '* filter=pwn\\n' > .git/info/attributes \
         && git config filter.pwn.clean \"sh -c 'touch {m}; tr a-z A-Z'\" \
         && git config filter.pwn.required true",
        m = marker.display()
    );
    let (_, res) = h.run(h.spec(
        "filter",
        "claude",
        &format!("FAKE: write a.txt plain text\n{plant}"),
        "",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        !marker.exists(),
        "the agent's clean filter ran inside the runner's git"
    );
    // What was committed is the file as the agent left it, not filtered.
    assert_eq!(
        h.branch_file("ados/filter", "a.txt").as_deref(),
        Some("plain text\n")
    );
}

/// Hex of `s`, as `od -An -tx1 | tr -d ' \n'` prints it: a form no
/// redactor knows, so a secret that leaks this way shows in the events.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_job_user_reaches_neither_the_runner_nor_another_job() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: per-job users need a runner started as root (CI runs as root)");
        return;
    }
    let h = Harness::start(&[("README.md", "# r\n")]);
    let npm_token = "npm_OtherJobsToken_0123456789";
    // Job A holds its registry credentials while job B's agent looks.
    let mut a = h.spec("iso-a", "claude", "FAKE: sleep 6\nFAKE: write a.txt a", "");
    a["registries"] = json!([{"type": "npm", "url": "https://npm.pkg.github.com", "scope": "@o",
                              "token": npm_token}]);
    h.cp.assign(a);
    h.cp.wait_for(
        |v| v["job_id"] == "iso-a" && v["event"]["status"] == "running_agent",
        T,
    );
    let snoop = "FAKE: sh R=$(cut -d' ' -f4 /proc/$PPID/stat); \
        echo runner-env:$(od -An -tx1 /proc/$R/environ | tr -d ' \\n'); \
        echo other-job:$(od -An -tx1 ../../iso-a/home/.npmrc | tr -d ' \\n'); \
        M=$(sed 's#/objects$##' .git/objects/info/alternates); \
        git --git-dir=\"$M\" update-ref refs/heads/main HEAD && echo MIRROR-WRITTEN; \
        touch \"$M/objects/planted\" && echo MIRROR-WRITTEN; \
        echo uid:$(id -u)";
    let (events, res) = h.run(h.spec(
        "iso-b",
        "claude",
        &format!("FAKE: write b.txt b\n{snoop}"),
        "",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    // What the agent's commands printed (not the commands themselves).
    let text: String = events
        .iter()
        .filter(|e| e["event"]["type"] == "tool_result" && e["event"]["tool"] == "Bash")
        .map(|e| e["event"]["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        text.contains("uid:2000"),
        "the agent ran as a job user: {text}"
    );
    assert!(
        text.contains("runner-env:"),
        "the agent's moves ran: {text}"
    );
    assert!(
        !text.contains(&hex(&h.cp.options().token)),
        "the agent read ADOS_TOKEN from the runner's environment"
    );
    assert!(
        !text.contains(&hex(npm_token)),
        "the agent read another job's registry credentials"
    );
    assert!(
        !text.contains("MIRROR-WRITTEN"),
        "the agent wrote to the mirror"
    );
    let done =
        h.cp.wait_for(|v| v["type"] == "job.result" && v["job_id"] == "iso-a", T);
    assert_eq!(done["status"], "completed", "{done}");
}

/// Every request the forge stand-in saw, as one string (headers, paths
/// and bodies): where a secret must not be.
fn forge_wire(h: &Harness) -> String {
    h.forge
        .requests()
        .iter()
        .map(|r| {
            format!(
                "{} {}?{} {:?} {}\n",
                r.method, r.path, r.query, r.headers, r.body
            )
        })
        .collect()
}

/// A job opens the PR, a re-run of the same issue (a new job, the same
/// branch) and a repair stage update that one PR, never a second.
fn a_pr_is_opened_then_updated(kind: Kind) {
    let h = Harness::start_on(kind, &[("README.md", "# r\n")], &[]);
    let mut spec = h.spec("open-1", "claude", "FAKE: write hello.txt hi", "");
    spec["branch"] = json!("ados/issue-7");
    let (events, res) = h.run(spec.clone());
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        statuses(&events).ends_with(&["pushing".into(), "creating_pr".into()]),
        "{:?}",
        statuses(&events)
    );
    let prs = h.forge.prs();
    assert_eq!(prs.len(), 1, "{prs:?}");
    let pr = &prs[0];
    assert_eq!(
        (pr.branch.as_str(), pr.base.as_str()),
        ("ados/issue-7", "main")
    );
    assert!(!pr.draft, "tests are green: {pr:?}");
    assert_eq!(pr.title, "Say hello (#7)");
    assert!(pr.body.contains("hello.txt"), "{}", pr.body);
    assert_eq!(res["pr_number"], pr.number, "{res}");
    // The web URL is the one the API answered, never one built by hand.
    let created = h
        .forge
        .requests()
        .into_iter()
        .find(|r| r.method == "POST")
        .expect("a create");
    let answered_url = match kind {
        Kind::GitHub => format!("http://{}/o/r/pull/{}", h.forge.addr(), pr.number),
        Kind::GitLab => format!(
            "http://{}/o/r/-/merge_requests/{}",
            h.forge.addr(),
            pr.number
        ),
        Kind::Bitbucket => format!("https://bitbucket.org/o/r/pull-requests/{}", pr.number),
    };
    assert_eq!(res["pr_url"], answered_url.as_str(), "{res}");
    assert_eq!(res["branch"], "ados/issue-7");
    assert!(res["commit_sha"].as_str().is_some_and(|s| s.len() == 40));
    assert!(!created.body.contains(TOKEN));
    for r in h.forge.requests() {
        let visible = format!("{}?{} {}", r.path, r.query, r.body);
        assert!(
            !visible.contains(TOKEN),
            "token in a URL or body: {visible}"
        );
    }

    spec["job_id"] = json!("open-2");
    spec["prompt"] = json!("FAKE: write hello.txt hi again");
    let (events2, res2) = h.run(spec.clone());
    assert_eq!(res2["status"], "completed", "{res2}");
    assert_eq!(res2["pr_number"], pr.number, "the same PR: {res2}");
    assert_eq!(res2["pr_url"], res["pr_url"]);
    assert_eq!(h.forge.prs().len(), 1, "no second PR: {:?}", h.forge.prs());
    let updates = h
        .forge
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" || r.method == "PUT")
        .count();
    assert_eq!(updates, 1, "the re-run updated the PR");

    spec["job_id"] = json!("open-3");
    spec["stage"] = json!("repair");
    spec["prompt"] = json!("CI failed: hello.txt needs a second line\nFAKE: append hello.txt two");
    let (events3, res3) = h.run(spec);
    assert_eq!(res3["status"], "completed", "{res3}");
    assert_eq!(
        res3["pr_number"], pr.number,
        "a repair updates the PR: {res3}"
    );
    assert_eq!(h.forge.prs().len(), 1, "no second PR: {:?}", h.forge.prs());

    let mut every = all_text(&events, &res);
    every.push_str(&all_text(&events2, &res2));
    every.push_str(&all_text(&events3, &res3));
    assert!(!every.contains(TOKEN), "token in an event");
    let wire = forge_wire(&h);
    assert!(
        !wire.contains(&h.cp.options().token),
        "ADOS_TOKEN reached the forge"
    );
}

#[test]
fn a_github_pr_is_opened_then_updated_by_a_rerun_and_a_repair() {
    a_pr_is_opened_then_updated(Kind::GitHub);
}

#[test]
fn a_gitlab_mr_is_opened_then_updated_by_a_rerun_and_a_repair() {
    a_pr_is_opened_then_updated(Kind::GitLab);
}

#[test]
fn a_bitbucket_pr_is_opened_then_updated_by_a_rerun_and_a_repair() {
    a_pr_is_opened_then_updated(Kind::Bitbucket);
}

#[test]
fn red_tests_open_a_draft_pr_and_need_a_human() {
    for kind in [Kind::GitHub, Kind::GitLab] {
        let h = Harness::start_on(kind, &[("README.md", "# r\n")], &[]);
        let (events, res) = h.run(h.spec("red-pr", "claude", "FAKE: write hello.txt hi", "false"));
        assert_eq!(res["status"], "needs-human", "{kind:?}: {res}");
        assert!(statuses(&events).contains(&"creating_pr".to_string()));
        let prs = h.forge.prs();
        assert_eq!(prs.len(), 1, "{kind:?}: {prs:?}");
        assert!(prs[0].draft, "{kind:?}: a draft: {prs:?}");
        assert_eq!(res["pr_number"], prs[0].number, "{res}");
        assert!(res["pr_url"].is_string(), "{res}");
        let summary = res["summary"].as_str().unwrap_or("");
        assert!(
            summary.contains("as a draft") && summary.contains("tests still fail"),
            "{summary}"
        );
    }
}

#[test]
fn a_token_the_api_rejects_fails_the_job_with_the_branch_pushed() {
    let mut h = Harness::start(&[("README.md", "# r\n")]);
    // The git server takes the token; the API does not.
    h.forge = ForgeServer::start(Kind::GitHub, "o/r", Auth::Bearer("another-token".into()));
    let (events, res) = h.run(h.spec("bad-api-token", "claude", "FAKE: write hello.txt hi", ""));
    assert_eq!(res["status"], "failed", "{res}");
    assert_eq!(res["branch"], "ados/bad-api-token");
    let sha = res["commit_sha"].as_str().unwrap_or("");
    assert_eq!(sha.len(), 40, "{res}");
    assert_eq!(
        h.branch_file("ados/bad-api-token", "hello.txt").as_deref(),
        Some("hi\n"),
        "the branch was pushed"
    );
    assert!(
        res["pr_url"].is_null() && res["pr_number"].is_null(),
        "{res}"
    );
    let summary = res["summary"].as_str().unwrap_or("");
    assert!(
        summary.contains("no pull request exists") && summary.contains("GITHUB_TOKEN"),
        "{summary}"
    );
    assert!(summary.contains("401"), "{summary}");
    assert!(h.forge.prs().is_empty());
    assert!(
        !all_text(&events, &res).contains(TOKEN),
        "token in an event"
    );
}

#[test]
fn a_direct_push_refused_by_branch_protection_needs_a_human() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let refused = |id: &str| -> String {
        let mut spec = h.spec(id, "claude", "FAKE: write hello.txt direct", "");
        spec["merge_mode"] = json!("direct");
        let (_, res) = h.run(spec);
        assert_eq!(res["status"], "needs-human", "{res}");
        assert!(
            h.branch_file("main", "hello.txt").is_none(),
            "nothing reached main"
        );
        res["summary"].as_str().unwrap_or("").to_string()
    };
    // A hook that refuses without a word: git reports only
    // "pre-receive hook declined".
    let hook = h.bare().join("hooks/pre-receive");
    std::fs::create_dir_all(h.bare().join("hooks")).expect("hooks dir");
    std::fs::write(&hook, "#!/bin/sh\nexit 1\n").expect("hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let summary = refused("protected");
    assert!(
        summary.contains("refused by branch protection"),
        "{summary}"
    );
    // GitHub's words.
    h.git.protect_branch("o/r.git", "main");
    let summary = refused("protected-gh");
    assert!(
        summary.contains("refused by branch protection") && summary.contains("GH006"),
        "{summary}"
    );
    assert!(h.forge.requests().is_empty(), "direct opens no PR");
}

#[test]
fn a_cancel_during_a_rate_limit_wait_ends_the_job_at_once() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // The limit resets 200 s from now (the runner's clock): within the 5
    // minutes the PR step would wait.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    h.forge.rate_limit_until(now + 200);
    h.cp.assign(h.spec("limited", "claude", "FAKE: write hello.txt hi", ""));
    h.cp.wait_for(
        |v| v["type"] == "job.event" && v["event"]["status"] == "creating_pr",
        T,
    );
    // Cancelled before or after the first (limited) request: the same end.
    h.cp.cancel("limited");
    let res =
        h.cp.wait_for(|v| v["type"] == "job.result" && v["job_id"] == "limited", T);
    assert_eq!(res["status"], "cancelled", "{res}");
    assert!(
        res["summary"]
            .as_str()
            .is_some_and(|s| s.contains("creating the pull request")),
        "{res}"
    );
    assert!(h.forge.prs().is_empty());
}
