//! The stages of issue jobs besides `implement` (plan, review, repair) and
//! the Copilot CLI across its versions, end to end through the real
//! binary: the test control plane assigns, the git server and the forge
//! stand-in take what is pushed and opened, the fake agents do the work
//! (and say what their prompt held, with `FAKE: prompt-has`).

use ados_test_support::fixtures::{commit_to_bare, recorded_argv, try_git};
use ados_test_support::forge::{Pr, PrState};
use ados_test_support::harness::Harness;
use serde_json::{json, Value};

/// Every ref of the server's repository, `sha name` per line.
fn server_refs(h: &Harness) -> String {
    try_git(
        &h.bare(),
        &["for-each-ref", "--format=%(objectname) %(refname)"],
    )
    .1
}

/// The `runner` log lines of a job, as one string.
fn runner_log(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["event"]["kind"] == "log" && e["event"]["stream"] == "runner")
        .filter_map(|e| e["event"]["text"].as_str())
        .collect()
}

/// The texts of the agent's `message` events.
fn messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"]["kind"] == "agent" && e["event"]["type"] == "message")
        .filter_map(|e| e["event"]["text"].as_str().map(str::to_string))
        .collect()
}

/// `git push` calls the runner made (through the argv recorder).
fn pushes(h: &Harness) -> Vec<String> {
    recorded_argv(h.recorder.path())
        .into_iter()
        .filter(|l| l.split(' ').any(|w| w == "push"))
        .collect()
}

#[test]
fn a_plan_leaves_no_commit_and_no_push_and_names_what_the_agent_wrote_anyway() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // A plan neither builds on nor replaces a branch of the job's name.
    let (ok, _, err) = try_git(&h.bare(), &["branch", "ados/plan-claude", "main"]);
    assert!(ok, "{err}");
    let before = server_refs(&h);
    for agent in ["claude", "codex", "copilot"] {
        let id = format!("plan-{agent}");
        let mut spec = h.spec(
            &id,
            agent,
            // The write is refused by the read-only flags; the shell
            // command writes anyway, as a misbehaving agent could.
            "FAKE: write hello.txt hi\nFAKE: sh echo sneaky > sneaky.txt\nFAKE: say 1. Add hello.txt. 2. Test it.",
            "",
        );
        spec["stage"] = json!("plan");
        let (events, res) = h.run(spec);
        assert_eq!(res["status"], "completed", "{agent}: {res}");
        assert_eq!(res["summary"], "1. Add hello.txt. 2. Test it.", "{agent}");
        assert!(res["commit_sha"].is_null(), "{agent}: {res}");
        assert!(
            res["branch"].is_null(),
            "{agent}: a plan makes no branch: {res}"
        );
        let text: String = events.iter().map(|e| e.to_string()).collect();
        assert!(
            text.contains("permission denied: read-only"),
            "{agent}: the agent ran read-only"
        );
        let log = runner_log(&events);
        assert!(
            log.contains("the plan stage is read-only, but the agent changed sneaky.txt")
                && log.contains("discarded"),
            "{agent}: {log}"
        );
        assert!(!log.contains("hello.txt"), "{agent}: {log}");
        assert!(!log.contains("force-with-lease"), "{agent}: {log}");
    }
    assert_eq!(server_refs(&h), before, "nothing reached the server");
    assert!(pushes(&h).is_empty(), "{:?}", pushes(&h));
}

/// A server whose `ados/pr-1` adds `x.txt` (with `content`) to `main`.
fn with_branch(content: &str) -> Harness {
    let h = Harness::start(&[("README.md", "# r\n")]);
    let (ok, _, err) = try_git(&h.bare(), &["branch", "ados/pr-1", "main"]);
    assert!(ok, "{err}");
    commit_to_bare(&h.bare(), "ados/pr-1", &[("x.txt", content)]);
    h
}

/// A review of `ados/pr-1` whose prompt the runner builds from the issue;
/// the fake agent's directives ride in the issue's body.
fn review_spec(h: &Harness, id: &str, directives: &str) -> Value {
    let mut spec = h.spec(id, "claude", "", "");
    spec["prompt"] = Value::Null;
    spec["issue"]["body"] = json!(format!("Say hello in x.txt.\n{directives}"));
    spec["stage"] = json!("review");
    spec["branch"] = json!("ados/pr-1");
    spec
}

#[test]
fn each_review_verdict_is_found_and_an_answer_without_one_needs_a_human() {
    let h = with_branch("marker line of the change\n");
    let before = server_refs(&h);
    let cases = [
        ("PASS", "PASS", "completed"),
        (
            "**NEEDS_REVISION**: add a test",
            "NEEDS_REVISION",
            "completed",
        ),
        (
            "I would call this a FAIL, the parser breaks.",
            "FAIL",
            "completed",
        ),
        ("Looks reasonable, but I cannot decide.", "", "needs-human"),
    ];
    for (i, (answer, word, status)) in cases.into_iter().enumerate() {
        let (events, res) = h.run(review_spec(
            &h,
            &format!("review-{i}"),
            &format!(
                "FAKE: prompt-has +marker line of the change\nFAKE: prompt-has Say hello in x.txt.\n\
                 FAKE: write y.txt no\nFAKE: say {answer}"
            ),
        ));
        assert_eq!(res["status"], status, "{answer}: {res}");
        let summary = res["summary"].as_str().unwrap_or_default();
        if word.is_empty() {
            assert!(
                summary.starts_with("the review gave no verdict"),
                "{summary}"
            );
        } else {
            assert_eq!(summary, format!("{word}\n\n{answer}"), "{res}");
        }
        assert!(summary.ends_with(answer), "{summary}");
        assert!(
            messages(&events).contains(&"prompt has +marker line of the change: yes".into()),
            "the prompt carries the diff text: {:?}",
            messages(&events)
        );
        assert!(
            messages(&events).contains(&"prompt has Say hello in x.txt.: yes".into()),
            "the prompt carries the issue: {:?}",
            messages(&events)
        );
        let text: String = events.iter().map(|e| e.to_string()).collect();
        assert!(
            text.contains("permission denied: read-only"),
            "the review ran read-only"
        );
        assert!(res["commit_sha"].is_null(), "{res}");
    }
    assert_eq!(server_refs(&h), before, "a review pushes nothing");
    assert!(pushes(&h).is_empty(), "{:?}", pushes(&h));
}

#[test]
fn a_review_diff_over_256_kib_is_cut_with_a_note() {
    let big: String = (0..30_000).map(|i| format!("line-{i:06}\n")).collect();
    assert!(big.len() > 256 * 1024);
    let h = with_branch(&big);
    let (events, res) = h.run(review_spec(
        &h,
        "review-big",
        "FAKE: prompt-has +line-000001\nFAKE: prompt-has +line-029999\nFAKE: prompt-has [The diff was cut at 256 KiB\nFAKE: say PASS",
    ));
    assert_eq!(res["status"], "completed", "{res}");
    let said = messages(&events);
    for expected in [
        "prompt has +line-000001: yes",
        "prompt has +line-029999: no",
        "prompt has [The diff was cut at 256 KiB: yes",
    ] {
        assert!(said.contains(&expected.to_string()), "{expected}: {said:?}");
    }
}

#[test]
fn a_repair_pushes_a_child_of_the_old_tip_without_force_and_updates_the_one_pr() {
    let h = with_branch("one\n");
    let (_, old_tip, _) = try_git(&h.bare(), &["rev-parse", "ados/pr-1"]);
    let number = h.forge.add_pr(Pr {
        number: 0,
        branch: "ados/pr-1".into(),
        base: "main".into(),
        state: PrState::Open,
        source_repo: "o/r".into(),
        title: "Say hello (#7)".into(),
        body: "first try".into(),
        draft: false,
    });
    let mut spec = h.spec(
        "repair",
        "claude",
        "error: x.txt needs a second line\nFAKE: append x.txt two\nFAKE: prompt-has its CI run failed",
        "grep -qx two x.txt",
    );
    spec["stage"] = json!("repair");
    spec["branch"] = json!("ados/pr-1");
    let (events, res) = h.run(spec);
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        messages(&events).contains(&"prompt has its CI run failed: yes".into()),
        "the CI log is inside the repair template: {:?}",
        messages(&events)
    );
    assert_eq!(
        h.branch_file("ados/pr-1", "x.txt").as_deref(),
        Some("one\ntwo\n")
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"]["kind"] == "status" && e["event"]["status"] == "testing"),
        "the repair ran the tests"
    );
    assert_eq!(res["tests"]["passed"], true, "{res}");
    let (_, parent, _) = try_git(&h.bare(), &["rev-parse", "ados/pr-1^"]);
    assert_eq!(parent.trim(), old_tip.trim(), "a child of the old tip");
    let pushes = pushes(&h);
    assert!(!pushes.is_empty());
    assert!(
        pushes
            .iter()
            .all(|l| !l.contains("--force") && !l.contains('+')),
        "never forced: {pushes:?}"
    );
    assert_eq!(res["pr_number"], number, "{res}");
    let prs = h.forge.prs();
    assert_eq!(prs.len(), 1, "never a second PR: {prs:?}");
    let methods: Vec<String> = h.forge.requests().into_iter().map(|r| r.method).collect();
    assert!(methods.contains(&"PATCH".to_string()), "{methods:?}");
    assert!(!methods.contains(&"POST".to_string()), "{methods:?}");
}

#[test]
fn copilot_is_driven_by_its_version_band() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    // (version, JSON output)
    let bands = [("0.0.339", false), ("0.0.500", true), ("1.0.60", true)];
    for (version, json_output) in bands {
        // The version is asked per job: the next job sees the new one.
        h.copilot_version(version);
        let id = format!("copilot-{}", version.replace('.', "-"));
        // Red tests, then a repair: two attempts in the job.
        let (events, res) = h.run(h.spec(
            &id,
            "copilot",
            &format!("FAKE: write hello.txt hi from {version}\nFAKE: fix-if-failing fixed.txt ok"),
            "test -f fixed.txt",
        ));
        assert_eq!(res["status"], "completed", "{version}: {res}");
        assert_eq!(res["attempts"].as_array().map(Vec::len), Some(2), "{res}");
        assert_eq!(
            h.branch_file(&format!("ados/{id}"), "hello.txt"),
            Some(format!("hi from {version}\n"))
        );
        let asked = format!("copilot --version: GitHub Copilot CLI {version}\n");
        let log = runner_log(&events);
        assert_eq!(
            log.matches("copilot --version").count(),
            1,
            "once a job: {log}"
        );
        assert!(log.contains(&asked), "{version}: {log}");
        let kinds: Vec<&str> = events
            .iter()
            .filter(|e| e["event"]["kind"] == "agent")
            .filter_map(|e| e["event"]["type"].as_str())
            .collect();
        // Text output has no tool calls and no session, only messages.
        assert_eq!(
            kinds.contains(&"tool_use"),
            json_output,
            "{version}: {kinds:?}"
        );
        assert_eq!(
            kinds.contains(&"session"),
            json_output,
            "{version}: {kinds:?}"
        );
        if !json_output {
            assert_eq!(
                messages(&events),
                ["Done.", "Fixed the failing tests."],
                "{version}"
            );
        }
    }
}

#[test]
fn a_copilot_result_with_exit_code_1_fails_the_attempt_though_the_process_exits_0() {
    let h = Harness::start(&[("README.md", "# r\n")]);
    for version in ["0.0.500", "1.0.60"] {
        h.copilot_version(version);
        let id = format!("soft-{}", version.replace('.', "-"));
        let (_, res) = h.run(h.spec(
            &id,
            "copilot",
            "FAKE: write hello.txt hi\nFAKE: soft-fail",
            "",
        ));
        assert_eq!(res["status"], "failed", "{version}: {res}");
        let attempt = &res["attempts"][0];
        assert_eq!(attempt["exit_code"], 0, "{version}: {res}");
        let error = attempt["error"].as_str().unwrap_or_default();
        assert_eq!(
            error, "copilot reported exit code 1: Execution failed: the model refused the request",
            "{version}: the last session.error is the reason"
        );
        let (pushed, _, _) = try_git(
            &h.bare(),
            &["rev-parse", "--verify", &format!("refs/heads/ados/{id}")],
        );
        assert!(!pushed, "{version}: a failed attempt pushes nothing");
    }
}
