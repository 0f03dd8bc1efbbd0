//! Chat sessions end to end through the real binary: the test control
//! plane assigns a `kind: chat` job and sends `chat.input` / `chat.end`,
//! a smart-HTTP git server serves the repository, the fake agent CLIs
//! answer each turn (saying their own argv when asked, so the resume of
//! the CLI's session is checked), and a stand-in for GitHub's REST API
//! takes the pull request a `create_pr` opens.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::fixtures::{files_containing, make_bare_repo, try_git, TempDir};
use ados_test_support::forge::{Auth, ForgeServer, Kind};
use ados_test_support::git_server::GitServer;
use ados_test_support::runner::{fake_agents_dir, free_port, RunnerProcess};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");
const TOKEN: &str = "ghs_ChatTestToken0123456789abcdefXYZ";
const T: Duration = Duration::from_secs(60);

struct Chat {
    cp: ControlPlane,
    repos: TempDir,
    git: GitServer,
    forge: ForgeServer,
    /// Where a test drops the files a `FAKE: wait-for` turn waits on
    /// (readable by the job's user).
    gates: TempDir,
    runner: RunnerProcess,
    ws: TempDir,
}

impl Chat {
    fn start(extra: &[(&str, &str)]) -> Chat {
        Chat::start_with_path(extra, None)
    }

    /// A runner whose PATH starts with `first` (a stand-in CLI) when given.
    fn start_with_path(extra: &[(&str, &str)], first: Option<&Path>) -> Chat {
        let cp = ControlPlane::start(Options {
            heartbeat_s: 1,
            ..Options::default()
        });
        let ws = TempDir::new("chat-ws");
        let repos = TempDir::new("chat-repos");
        let gates = TempDir::new("chat-gates");
        std::fs::set_permissions(gates.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod gates");
        make_bare_repo(repos.path(), "o/r.git", &[("README.md", "# r\n")]);
        let git = GitServer::start(repos.path(), "x-access-token", TOKEN);
        let forge = ForgeServer::start(Kind::GitHub, "o/r", Auth::Bearer(TOKEN.into()));
        let mut path = format!(
            "{}:{}",
            fake_agents_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        if let Some(dir) = first {
            path = format!("{}:{path}", dir.display());
        }
        let mut env: Vec<(&str, String)> = vec![
            ("ADOS_API_URL", cp.url()),
            ("ADOS_TOKEN", cp.options().token.clone()),
            ("ADOS_RUNNER_ID", "runner-chat".into()),
            ("WORKSPACE_DIR", ws.path().display().to_string()),
            ("ADOS_HEALTH_ADDR", format!("127.0.0.1:{}", free_port())),
            ("ADOS_MAX_BACKOFF", "300ms".into()),
            ("ADOS_MAX_JOBS", "2".into()),
            ("ADOS_MIN_FREE_DISK", "0".into()),
            ("GITHUB_TOKEN", TOKEN.into()),
            (
                "ANTHROPIC_API_KEY",
                "sk-ant-test-key-0123456789abcdef".into(),
            ),
            ("OPENAI_API_KEY", "sk-openai-test-0123456789abcdef".into()),
            (
                "COPILOT_GITHUB_TOKEN",
                "github_pat_copilot_test_0123456789".into(),
            ),
            ("PATH", path),
        ];
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let runner = RunnerProcess::start(Path::new(BIN), &[], &env);
        cp.wait_for(|v| v["type"] == "hello", T);
        Chat {
            cp,
            repos,
            git,
            forge,
            gates,
            runner,
            ws,
        }
    }

    /// A chat session with `agent`; `merge_mode: none`, which a
    /// `create_pr` overrides (the user asked).
    fn spec(&self, id: &str, agent: &str) -> Value {
        json!({"job_id": id, "kind": "chat",
               "repo": {"provider": "github", "owner": "o", "name": "r",
                        "clone_url": self.git.url_for("o/r.git"), "target_branch": "main",
                        "api_url": self.forge.api_url()},
               "agent": {"name": agent, "model": "test-model"},
               "branch": format!("ados/{id}"), "merge_mode": "none",
               "idle_timeout_s": 120,
               "commit": {"author_name": "ADOS Bot", "author_email": "bot@ados.dev"}})
    }

    /// Assign `spec` and wait until the session waits for input.
    fn open(&self, spec: Value) -> String {
        let id = spec["job_id"].as_str().unwrap_or_default().to_string();
        self.cp.assign(spec);
        self.wait_event(&id, |e| {
            e["kind"] == "status" && e["status"] == "waiting_input"
        });
        id
    }

    fn say(&self, id: &str, message_id: &str, text: &str, action: Option<&str>) {
        assert!(self.cp.send(json!({"type": "chat.input", "job_id": id,
            "message_id": message_id, "text": text, "action": action})));
    }

    /// The whole reply to `message_id` once its `done` piece came and the
    /// session waits again.
    fn reply(&self, id: &str, message_id: &str) -> String {
        let waited = self.cp.wait_until(T, |_| {
            let events = self.events(id);
            let done = events.iter().position(|e| {
                e["kind"] == "chat.reply" && e["message_id"] == message_id && e["done"] == true
            });
            done.is_some_and(|at| {
                events[at..]
                    .iter()
                    .any(|e| e["kind"] == "status" && e["status"] == "waiting_input")
            })
        });
        assert!(waited, "no reply to {message_id}: {:?}", self.events(id));
        self.events(id)
            .iter()
            .filter(|e| e["kind"] == "chat.reply" && e["message_id"] == message_id)
            .map(|e| e["text"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The `event` objects of `id`'s `job.event` frames, in order.
    fn events(&self, id: &str) -> Vec<Value> {
        self.cp
            .frames()
            .into_iter()
            .filter(|v| v["type"] == "job.event" && v["job_id"] == id)
            .map(|v| v["event"].clone())
            .collect()
    }

    fn wait_event(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.cp
            .wait_for(
                |v| v["type"] == "job.event" && v["job_id"] == id && pred(&v["event"]),
                T,
            )
            .get("event")
            .cloned()
            .unwrap_or_default()
    }

    fn result(&self, id: &str) -> Value {
        self.cp
            .wait_for(|v| v["type"] == "job.result" && v["job_id"] == id, T)
    }

    /// Send `message_id`, a turn that runs until the file this returns is
    /// written; back once the turn is under way.
    fn hold_turn(&self, id: &str, message_id: &str, gate: &str) -> PathBuf {
        let gate = self.gates.join(gate);
        let text = format!("FAKE: wait-for {}", gate.display());
        self.say(id, message_id, &text, None);
        self.wait_event(id, |e| {
            e["kind"] == "agent" && e["text"] == "waiting for the test"
        });
        gate
    }

    fn bare(&self) -> PathBuf {
        self.repos.path().join("o/r.git")
    }
}

/// The argv a fake agent said it got (`FAKE: argv`), from its reply.
fn said_argv(reply: &str) -> Vec<String> {
    let list = reply
        .lines()
        .find_map(|l| l.strip_prefix("argv: "))
        .unwrap_or_else(|| panic!("no argv in the reply: {reply}"));
    serde_json::from_str(list).unwrap_or_else(|e| panic!("{e}: {list}"))
}

/// The value after `flag` in `argv`.
fn value_of<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    let i = argv.iter().position(|a| a == flag)?;
    argv.get(i + 1).map(String::as_str)
}

/// The steps a session went through, a repeated status once.
fn statuses(events: &[Value]) -> Vec<String> {
    let mut steps: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "status")
        .map(|e| e["status"].as_str().unwrap_or("").to_string())
        .collect();
    steps.dedup();
    steps
}

/// The session id the CLI reported in its first `session` event.
fn first_session(events: &[Value]) -> String {
    events
        .iter()
        .find(|e| e["kind"] == "agent" && e["type"] == "session")
        .and_then(|e| e["session_id"].as_str())
        .unwrap_or_else(|| panic!("no session event: {events:?}"))
        .to_string()
}

#[test]
fn two_turns_resume_the_agents_own_session_for_each_cli() {
    let chat = Chat::start(&[]);
    for agent in ["claude", "codex", "copilot"] {
        let id = chat.open(chat.spec(&format!("two-{agent}"), agent));
        let checkout = chat.ws.join(&format!("jobs/{id}/repo"));
        assert!(checkout.join("README.md").exists(), "prepared once, kept");
        chat.say(&id, "m-1", "FAKE: argv", None);
        let first = said_argv(&chat.reply(&id, "m-1"));
        let session = first_session(&chat.events(&id));
        chat.say(&id, "m-2", "FAKE: argv", None);
        let second = said_argv(&chat.reply(&id, "m-2"));
        match agent {
            "claude" => {
                assert_eq!(value_of(&first, "--resume"), None, "{first:?}");
                assert_eq!(value_of(&second, "--resume"), Some(session.as_str()));
            }
            "codex" => {
                assert!(!first.contains(&"resume".to_string()), "{first:?}");
                // `resume <thread_id> <prompt>` after every option.
                let n = second.len();
                assert_eq!(second[n - 3..n - 1], ["resume".to_string(), session]);
                assert_eq!(second[n - 1], "FAKE: argv");
                assert!(
                    second[..n - 3]
                        .iter()
                        .all(|a| a.starts_with('-') || a == "exec" || !a.contains(' ')),
                    "{second:?}"
                );
            }
            _ => {
                let made = value_of(&first, "--session-id").expect("a session id");
                assert_eq!(made, session);
                assert_eq!(value_of(&second, "--session-id"), Some(made));
            }
        }
        // The first turn told the agent where it is; the second sent the
        // message alone.
        assert!(first
            .iter()
            .any(|a| a.contains("o/r, checked out on branch ados/two-")));
        assert!(second.iter().any(|a| a == "FAKE: argv"), "{second:?}");
        assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
        let res = chat.result(&id);
        assert_eq!(res["status"], "completed", "{res}");
        assert!(!checkout.exists(), "the checkout is removed at the end");
        assert_eq!(res["agent"], agent);
        assert_eq!(res["attempts"].as_array().map(Vec::len), Some(2));
        assert!(
            res["commit_sha"].is_null() && res["pr_url"].is_null(),
            "{res}"
        );
        let summary = res["summary"].as_str().unwrap_or_default();
        assert!(
            summary.contains("the user closed the chat") && summary.contains("2 answered"),
            "{summary}"
        );
        // Prepared once; the statuses cycle once per turn.
        assert_eq!(
            statuses(&chat.events(&id)),
            [
                "preparing",
                "cloning",
                "waiting_input",
                "running_agent",
                "waiting_input",
                "running_agent",
                "waiting_input"
            ]
        );
    }
}

#[test]
fn a_message_sent_during_a_turn_waits_for_it_and_is_answered_next() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("queued", "claude"));
    let gate = chat.hold_turn(&id, "m-1", "turn-1");
    chat.say(&id, "m-2", "FAKE: lines 1", None);
    std::fs::write(&gate, "go").expect("open the gate");
    assert!(chat.reply(&id, "m-1").contains("released"));
    assert_eq!(chat.reply(&id, "m-2"), "line 1 of 1");
    let events = chat.events(&id);
    let first_done = events
        .iter()
        .position(|e| e["kind"] == "chat.reply" && e["message_id"] == "m-1");
    let second_turn = events
        .iter()
        .enumerate()
        .filter(|(_, e)| e["kind"] == "status" && e["status"] == "running_agent")
        .map(|(i, _)| i)
        .nth(1);
    assert!(
        first_done < second_turn && second_turn.is_some(),
        "m-2 ran after m-1 was answered: {events:?}"
    );
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    assert_eq!(chat.result(&id)["status"], "completed");
}

#[test]
fn create_pr_mid_chat_opens_the_pr_and_the_session_goes_on() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("pr", "codex"));
    chat.say(&id, "m-1", "FAKE: write hello.txt hi", None);
    chat.reply(&id, "m-1");
    // Text and action together: the turn first, then the PR.
    chat.say(
        &id,
        "m-2",
        "FAKE: append hello.txt again",
        Some("create_pr"),
    );
    let reply = chat.reply(&id, "m-2");
    let prs = chat.forge.prs();
    assert_eq!(prs.len(), 1, "{prs:?}");
    assert_eq!(prs[0].branch, "ados/pr");
    assert!(
        reply.contains(&format!("/pull/{}", prs[0].number)),
        "the reply gives the PR's URL: {reply}"
    );
    let (ok, content, _) = try_git(&chat.bare(), &["show", "refs/heads/ados/pr:hello.txt"]);
    assert!(ok);
    assert_eq!(content, "hi\nagain\n");
    let statuses = statuses(&chat.events(&id));
    assert!(
        statuses.ends_with(&[
            "running_agent".to_string(),
            "committing".into(),
            "pushing".into(),
            "creating_pr".into(),
            "waiting_input".into()
        ]),
        "{statuses:?}"
    );

    // The session goes on, in the same CLI session, and a second
    // create_pr updates the one PR with a new commit on top.
    let session = first_session(&chat.events(&id));
    chat.say(&id, "m-3", "FAKE: argv\nFAKE: write more.txt more", None);
    let argv = said_argv(&chat.reply(&id, "m-3"));
    assert_eq!(value_of(&argv, "resume"), Some(session.as_str()));
    let (_, first_tip, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/pr"]);
    chat.say(&id, "m-4", "", Some("create_pr"));
    let reply = chat.reply(&id, "m-4");
    assert!(reply.contains("updated pull request"), "{reply}");
    assert_eq!(chat.forge.prs().len(), 1, "never a second PR");
    let (_, parent, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/pr^"]);
    assert_eq!(parent, first_tip, "a child of the first push, not a force");
    // Nothing new: said so, nothing pushed.
    chat.say(&id, "m-5", "", Some("create_pr"));
    assert!(chat
        .reply(&id, "m-5")
        .contains("Nothing changed since the last push"));

    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    let res = chat.result(&id);
    assert_eq!(res["status"], "completed", "{res}");
    assert_eq!(res["branch"], "ados/pr");
    assert_eq!(res["pr_number"], prs[0].number);
    assert!(res["pr_url"]
        .as_str()
        .is_some_and(|u| u.ends_with(&format!("/pull/{}", prs[0].number))));
    let (_, tip, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/pr"]);
    assert_eq!(res["commit_sha"], tip.trim());
    assert_eq!(res["changed_files"], json!(["hello.txt", "more.txt"]));
}

#[test]
fn a_pr_the_forge_refused_is_opened_at_the_next_create_pr() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("retry", "claude"));
    chat.forge.fail_next(&[401]);
    chat.say(&id, "m-1", "FAKE: write a.txt a", Some("create_pr"));
    let reply = chat.reply(&id, "m-1");
    assert!(reply.contains("but no pull request exists"), "{reply}");
    assert!(chat.forge.prs().is_empty());
    let (pushed, tip, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/retry"]);
    assert!(pushed, "the branch was pushed");
    // Nothing changed since: the PR step alone runs again.
    chat.say(&id, "m-2", "", Some("create_pr"));
    let reply = chat.reply(&id, "m-2");
    let prs = chat.forge.prs();
    assert_eq!(prs.len(), 1, "{reply}");
    assert!(
        reply.contains(&format!("/pull/{}", prs[0].number)),
        "{reply}"
    );
    let (_, again, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/retry"]);
    assert_eq!(again, tip, "nothing pushed a second time");
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    let res = chat.result(&id);
    assert_eq!(res["pr_number"], prs[0].number, "{res}");
}

#[test]
fn a_commit_the_guard_stopped_is_undone_and_never_reaches_the_branch() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("guarded", "codex"));
    let token = "ghp_0123456789abcdefghijklmnopqrstuvwxyz";
    chat.say(
        &id,
        "m-1",
        &format!("FAKE: write keys.txt {token}"),
        Some("create_pr"),
    );
    let reply = chat.reply(&id, "m-1");
    assert!(reply.contains("a secret was found"), "{reply}");
    let (pushed, _, _) = try_git(&chat.bare(), &["rev-parse", "refs/heads/ados/guarded"]);
    assert!(!pushed, "nothing pushed");
    chat.say(
        &id,
        "m-2",
        "FAKE: write keys.txt none here",
        Some("create_pr"),
    );
    assert!(chat.reply(&id, "m-2").contains("opened pull request"));
    let (_, commits, _) = try_git(
        &chat.bare(),
        &["log", "--format=%H", "main..refs/heads/ados/guarded"],
    );
    assert_eq!(commits.lines().count(), 1, "one commit: {commits}");
    let (_, history, _) = try_git(&chat.bare(), &["log", "-p", "refs/heads/ados/guarded"]);
    assert!(
        !history.contains(token),
        "the secret is in the pushed history"
    );
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    assert_eq!(chat.result(&id)["status"], "completed");
}

#[test]
fn an_idle_session_ends_with_its_result_and_its_checkout_goes() {
    let chat = Chat::start(&[]);
    let mut spec = chat.spec("idle", "claude");
    spec["idle_timeout_s"] = json!(1);
    let id = chat.open(spec);
    let res = chat.result(&id);
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        res["summary"]
            .as_str()
            .is_some_and(|s| s.contains("idle_timeout_s") && s.contains("nothing was pushed")),
        "{res}"
    );
    assert!(
        !chat.ws.join("jobs/idle").exists(),
        "the checkout is removed at the end"
    );
}

#[test]
fn a_cancel_mid_turn_kills_the_turns_processes() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("cancel", "claude"));
    chat.say(&id, "m-1", "FAKE: grandchild chat-cancel\nFAKE: hang", None);
    chat.wait_event(&id, |e| {
        e["kind"] == "agent"
            && e["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("grandchild pid"))
    });
    assert!(chat.cp.cancel(&id));
    let res = chat.result(&id);
    assert_eq!(res["status"], "cancelled", "{res}");
    assert!(
        !marked_process_alive("ados-fake-grandchild-chat-cancel"),
        "the turn's processes are gone"
    );
}

/// Whether a process whose command line holds `marker` is alive.
fn marked_process_alive(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| c.windows(marker.len()).any(|w| w == marker.as_bytes()))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

#[test]
fn each_mode_rejects_the_other_kind_as_retryable() {
    for (mode, kind) in [("issue", "chat"), ("chat", "issue")] {
        let chat = Chat::start(&[("ADOS_MODE", mode)]);
        let mut spec = chat.spec("other-kind", "claude");
        spec["kind"] = json!(kind);
        chat.cp.assign(spec);
        let rejected = chat.cp.wait_for(|v| v["type"] == "job.rejected", T);
        assert_eq!(rejected["retryable"], true, "{rejected}");
        assert!(
            rejected["reason"]
                .as_str()
                .is_some_and(|r| r.contains("ADOS_MODE")),
            "{rejected}"
        );
    }
}

#[test]
fn a_waiting_chat_holds_its_slot_until_it_ends() {
    let chat = Chat::start(&[("ADOS_MAX_JOBS", "1")]);
    let id = chat.open(chat.spec("slot", "claude"));
    let mut issue = chat.spec("issue-during-chat", "claude");
    issue["kind"] = json!("issue");
    chat.cp.assign(issue);
    let rejected = chat.cp.wait_for(|v| v["type"] == "job.rejected", T);
    assert_eq!(rejected["job_id"], "issue-during-chat", "{rejected}");
    assert_eq!(rejected["retryable"], true, "{rejected}");
    assert!(
        rejected["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no free slot")),
        "{rejected}"
    );
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    assert_eq!(chat.result(&id)["status"], "completed");
}

#[test]
fn chat_content_stays_out_of_the_runners_log_and_leaves_the_journal_once_acked() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("private", "claude"));
    let words = "PRIVATE-WORDS-7d1e";
    chat.say(&id, "m-1", &format!("{words}\nFAKE: lines 2"), None);
    assert_eq!(chat.reply(&id, "m-1"), "line 2 of 2");
    // Once the turn's end is acknowledged its events leave the journal,
    // while the session lives on.
    let journal = chat.ws.join(&format!("state/journal/{id}"));
    assert!(
        chat.cp
            .wait_until(T, |_| files_containing(&journal, b"line 2 of 2").is_empty()),
        "the turn is still in the journal: {:?}",
        files_containing(&journal, b"line 2 of 2")
    );
    assert!(journal.exists(), "the session's journal is still there");
    // Mid-turn too: what the control plane acknowledged is gone while
    // the turn still runs.
    let gate = chat.hold_turn(&id, "m-2", "private");
    assert!(
        chat.cp.wait_until(T, |_| {
            files_containing(&journal, b"waiting for the test").is_empty()
        }),
        "an acknowledged event of the running turn is still in the journal"
    );
    std::fs::write(&gate, "go").expect("open the gate");
    chat.reply(&id, "m-2");
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    assert_eq!(chat.result(&id)["status"], "completed");
    let log = chat.runner.stderr();
    assert!(log.contains("job private"), "the session is logged: {log}");
    for private in [words, "line 2 of 2"] {
        assert!(
            !log.contains(private),
            "chat content in the runner's log: {log}"
        );
    }
}

#[test]
fn a_drain_lets_the_turn_finish_then_ends_the_session() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("drained", "codex"));
    let gate = chat.hold_turn(&id, "m-1", "drain");
    chat.say(&id, "m-2", "FAKE: lines 1", None);
    assert!(chat.cp.send(json!({"type": "drain"})));
    let heartbeat = chat
        .cp
        .wait_for(|v| v["type"] == "heartbeat" && v["draining"] == true, T);
    assert!(heartbeat["running"]
        .as_array()
        .is_some_and(|r| r.len() == 1));
    std::fs::write(&gate, "go").expect("open the gate");
    let res = chat.result(&id);
    assert_eq!(res["status"], "completed", "{res}");
    assert!(
        res["summary"]
            .as_str()
            .is_some_and(|s| s.contains("drained") && s.contains("1 answered message")),
        "{res}"
    );
    let replies: Vec<(String, String)> = chat
        .events(&id)
        .iter()
        .filter(|e| e["kind"] == "chat.reply")
        .map(|e| {
            let text = e["text"].as_str().unwrap_or_default().to_string();
            (
                e["message_id"].as_str().unwrap_or_default().to_string(),
                text,
            )
        })
        .collect();
    assert_eq!(replies.len(), 2, "{replies:?}");
    assert_eq!(replies[0].0, "m-1");
    assert!(
        replies[0].1.contains("released"),
        "the turn finished: {replies:?}"
    );
    assert_eq!(replies[1].0, "m-2");
    assert!(replies[1].1.contains("not run"), "{replies:?}");
}

/// A directory with a `copilot` that says it is `version` and otherwise
/// is the fake one.
fn copilot_of_version(version: &str) -> TempDir {
    let dir = TempDir::new("copilot-version");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let fake = fake_agents_dir().join("copilot");
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo {version}; exit 0; fi\nexec '{}' \"$@\"\n",
        fake.display()
    );
    let copilot = dir.join("copilot");
    std::fs::write(&copilot, script).expect("write");
    std::fs::set_permissions(&copilot, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

#[test]
fn a_copilot_before_1_0_51_resumes_with_the_result_lines_session_id() {
    let dir = copilot_of_version("0.0.430");
    let chat = Chat::start_with_path(&[], Some(dir.path()));
    let id = chat.open(chat.spec("mid-copilot", "copilot"));
    chat.say(&id, "m-1", "FAKE: argv", None);
    let first = said_argv(&chat.reply(&id, "m-1"));
    assert!(
        !first
            .iter()
            .any(|a| a.starts_with("--session-id") || a.starts_with("--resume")),
        "{first:?}"
    );
    let session = first_session(&chat.events(&id));
    chat.say(&id, "m-2", "FAKE: argv", None);
    let second = said_argv(&chat.reply(&id, "m-2"));
    assert!(
        second.contains(&format!("--resume={session}")),
        "{second:?}"
    );
    assert!(!second.iter().any(|a| a == "--session-id"), "{second:?}");
    let sessions: Vec<Value> = chat
        .events(&id)
        .into_iter()
        .filter(|e| e["type"] == "session")
        .map(|e| e["session_id"].clone())
        .collect();
    assert_eq!(sessions, [json!(session), json!(session)], "one session");
    let asked = chat
        .events(&id)
        .iter()
        .filter(|e| e["kind"] == "log" && e["stream"] == "runner")
        .filter_map(|e| e["text"].as_str().map(str::to_string))
        .filter(|t| t.contains("copilot --version"))
        .count();
    assert_eq!(asked, 1, "the version is asked once a session");
}

#[test]
fn a_copilot_too_old_to_resume_refuses_the_chat_naming_the_version_needed() {
    let dir = copilot_of_version("0.0.400");
    let chat = Chat::start_with_path(&[], Some(dir.path()));
    let spec = chat.spec("old", "copilot");
    chat.cp.assign(spec);
    let res = chat.result("old");
    assert_eq!(res["status"], "failed", "{res}");
    let error = res["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("copilot 0.0.400") && error.contains("0.0.422 or later"),
        "{error}"
    );
}

#[test]
fn an_empty_message_runs_no_turn() {
    let chat = Chat::start(&[]);
    let id = chat.open(chat.spec("empty", "claude"));
    chat.say(&id, "m-1", "  ", None);
    assert!(chat.reply(&id, "m-1").contains("empty message"));
    chat.say(&id, "m-2", "", Some("create_pr"));
    assert!(chat.reply(&id, "m-2").contains("Nothing to commit"));
    assert!(chat.cp.send(json!({"type": "chat.end", "job_id": id})));
    let res = chat.result(&id);
    assert_eq!(res["attempts"], json!([]), "no agent ran: {res}");
    assert!(!statuses(&chat.events(&id)).contains(&"running_agent".to_string()));
}
