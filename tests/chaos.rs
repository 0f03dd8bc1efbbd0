//! Chaos tests of delivery through the real binary, with fixed seeds:
//! a flood of events while the control plane drops the connection and
//! forgets what it had not acknowledged; a SIGKILL of the runner in the
//! middle of a job and a restart; a job run start to end while the control
//! plane is down.
//!
//! What is checked is the server's *stored* view (each seq once, in order):
//! duplicates on the wire are allowed (a resend after a reconnect), a gap,
//! a lost event, a second result or a leaked process are not.

use ados_test_support::control_plane::{ControlPlane, Options};
use ados_test_support::fixtures::{make_bare_repo, TempDir};
use ados_test_support::runner::{free_port, path_with_fake_agents, RunnerProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ados-work-runner");
const T: Duration = Duration::from_secs(60);

/// A small deterministic PRNG (xorshift64), so every run drops at the same
/// points.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

fn env_for(cp_url: &str, ws: &Path, runner_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("ADOS_API_URL", cp_url.to_string()),
        ("ADOS_TOKEN", Options::default().token),
        ("ADOS_RUNNER_ID", runner_id.into()),
        ("WORKSPACE_DIR", ws.display().to_string()),
        ("ADOS_HEALTH_ADDR", format!("127.0.0.1:{}", free_port())),
        ("ADOS_MAX_BACKOFF", "200ms".into()),
        ("ADOS_ALLOW_FILE_REMOTES", "1".into()),
        ("ADOS_MAX_JOBS", "2".into()),
        ("ADOS_MIN_FREE_DISK", "0".into()),
        ("ADOS_LOG_LEVEL", "info".into()),
        (
            "ANTHROPIC_API_KEY",
            "sk-ant-chaos-test-0123456789abcdef".into(),
        ),
        ("PATH", path_with_fake_agents()),
    ]
}

/// A runner on `ws` that has said hello to `cp`.
fn connected_runner(cp: &ControlPlane, ws: &Path, runner_id: &str) -> RunnerProcess {
    let r = RunnerProcess::start(Path::new(BIN), &[], &env_for(&cp.url(), ws, runner_id));
    cp.wait_for(|v| v["type"] == "hello", T);
    r
}

/// A workspace and a bare repository with one commit, for one test.
struct Scratch {
    ws: TempDir,
    _repos: TempDir,
    repo: PathBuf,
}

fn scratch(tag: &str) -> Scratch {
    let ws = TempDir::new(tag);
    let repos = TempDir::new(&format!("{tag}-repos"));
    let repo = make_bare_repo(repos.path(), "r", &[("README.md", "hi\n")]);
    Scratch {
        ws,
        _repos: repos,
        repo,
    }
}

fn job(id: &str, clone_url: &Path, prompt: &str) -> Value {
    json!({"job_id": id, "kind": "issue",
           "repo": {"provider":"github","owner":"o","name":"r",
                    "clone_url": clone_url.display().to_string(),"target_branch":"main"},
           "prompt": prompt, "agent": {"name":"claude"}, "merge_mode":"none", "test_command": ""})
}

fn is(kind: &'static str, job_id: &'static str) -> impl Fn(&Value) -> bool {
    move |v: &Value| v["type"] == kind && v["job_id"] == job_id
}

/// Poll `cond` every 10 ms until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The stored frames of a job are seq 1, 2, … with exactly one result, the
/// last; returns that result.
fn assert_stored_exactly(cp: &ControlPlane, job_id: &str) -> (Vec<Value>, Value) {
    let stored = cp.stored_frames(job_id);
    assert!(!stored.is_empty(), "nothing stored for {job_id}");
    for (i, f) in stored.iter().enumerate() {
        assert_eq!(
            f["seq"].as_u64(),
            Some(i as u64 + 1),
            "stored frame {i}: {f}"
        );
        assert_eq!(f["job_id"], job_id, "{f}");
    }
    let results: Vec<&Value> = stored
        .iter()
        .filter(|f| f["type"] == "job.result")
        .collect();
    assert_eq!(results.len(), 1, "results stored: {results:?}");
    let last = stored.last().cloned().expect("not empty");
    assert_eq!(last["type"], "job.result", "the result is not last: {last}");
    // Every result the runner sent carried the same seq: the server never
    // saw a second, different result.
    let wire_results: Vec<Value> = cp
        .frames()
        .into_iter()
        .filter(|f| f["type"] == "job.result" && f["job_id"] == job_id)
        .collect();
    assert!(
        wire_results.iter().all(|r| r["seq"] == last["seq"]),
        "results under different seqs: {wire_results:?}"
    );
    assert_eq!(cp.gaps(), 0, "the runner skipped a seq on the wire");
    (stored, last)
}

/// Pids (not zombies) whose command line contains `needle`.
fn live_processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        // `pid (comm) S …`: the state follows the last `)`. A zombie is
        // dead; the machine's PID 1 may simply not reap it.
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("");
        if !state.is_empty() && state != "Z" && state != "X" {
            found.push(pid);
        }
    }
    found
}

/// The journal directory of a job.
fn journal_dir(ws: &Path, job_id: &str) -> PathBuf {
    ws.join("state/journal").join(job_id)
}

/// Whether the job's journal holds its result (a line `<seq>\tr\t…`).
fn journal_has_result(ws: &Path, job_id: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(journal_dir(ws, job_id)) else {
        return false;
    };
    entries.flatten().any(|e| {
        std::fs::read_to_string(e.path())
            .map(|text| text.lines().any(|l| l.split('\t').nth(1) == Some("r")))
            .unwrap_or(false)
    })
}

#[test]
fn flood_with_drops_and_forgetting_server_stores_every_line_once_in_order() {
    const N: usize = 20_000;
    const ID: &str = "flood-1";
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ack_every: 97,
        record_events: false,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-flood");
    let _r = connected_runner(&cp, ws.path(), "chaos-1");

    // Ten drop points by received frame count, and at which of them the
    // server also forgets what it had not acknowledged.
    let mut rng = XorShift(0x5EED_C4A0_5EED_0001);
    let mut points: Vec<(usize, bool)> = (0..10)
        .map(|_| (rng.range(300, 19_000) as usize, rng.next() % 2 == 0))
        .collect();
    points.sort();
    let forgets = points.iter().filter(|(_, f)| *f).count();
    assert!(
        (2..=8).contains(&forgets),
        "the seed should mix both kinds of drop: {points:?}"
    );

    cp.assign(job(ID, &repo, &format!("FAKE: lines {N}")));
    cp.wait_for(is("job.accepted", ID), T);
    for (at, forget) in &points {
        assert!(
            eventually(T, || cp.text_frames() >= *at),
            "only {} frames arrived, waiting for {at}",
            cp.text_frames()
        );
        let before = cp.connections();
        if *forget {
            // Something stored and not acknowledged yet, so there is
            // something to forget (right after a `welcome` there is not).
            eventually(Duration::from_secs(5), || {
                cp.stored_seq(ID) > cp.acked_seq(ID)
            });
        }
        // The connection may be between accept and registration: retry.
        assert!(eventually(T, || if *forget {
            cp.drop_connection_forgetting_unacked()
        } else {
            cp.drop_connection()
        }));
        assert!(
            eventually(T, || cp.connections() > before),
            "the runner did not reconnect after a drop at frame {at}"
        );
    }

    let result = cp.wait_for(is("job.result", ID), T);
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(
        eventually(T, || cp.stored_seq(ID) == last_seq),
        "stored up to {} of {last_seq}",
        cp.stored_seq(ID)
    );
    let (stored, result) = assert_stored_exactly(&cp, ID);
    let lines: Vec<String> = stored
        .iter()
        .filter(|f| f["event"]["kind"] == "agent" && f["event"]["type"] == "message")
        .filter_map(|f| f["event"]["text"].as_str())
        .filter(|t| t.starts_with("line ") && t.ends_with(&format!(" of {N}")))
        .map(str::to_string)
        .collect();
    let want: Vec<String> = (1..=N).map(|i| format!("line {i} of {N}")).collect();
    assert_eq!(lines.len(), want.len(), "lines stored");
    assert!(lines == want, "lines out of order or repeated");
    // The agent changed nothing: there is nothing to commit.
    assert_eq!(result["status"], "needs-human", "{result}");
    eprintln!(
        "flood: {} frames on the wire, {} duplicates, {} forgotten, {} connections, result {}",
        cp.text_frames(),
        cp.duplicates(),
        cp.forgotten(),
        cp.connections(),
        result["status"]
    );
    assert!(cp.connections() >= 11, "{} connections", cp.connections());
    assert!(cp.forgotten() > 0, "the server never forgot anything");
    // The result is acknowledged: the runner deletes the job's journal.
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the acknowledged journal was not removed"
    );
}

#[test]
fn sigkill_and_restart_fails_the_job_and_kills_its_processes() {
    const ID: &str = "kill-1";
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-kill");
    // Unique to this run: other tests on the machine may run fake agents.
    let tag = format!("chaoskill{}", std::process::id());
    let env = env_for(&cp.url(), ws.path(), "chaos-2");
    let mut first = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job(
        ID,
        &repo,
        &format!("FAKE: grandchild {tag}\nFAKE: hang"),
    ));
    cp.wait_for(
        |v| v["job_id"] == ID && v["event"]["status"] == "running_agent",
        T,
    );
    let marker = format!("ados-fake-grandchild-{tag}");
    assert!(
        eventually(T, || !live_processes_with(&marker).is_empty()),
        "the grandchild never showed up"
    );
    assert!(ws.path().join("jobs").join(ID).exists());

    first.signal(libc::SIGKILL);
    first.wait_exit(T).expect("the runner dies on SIGKILL");
    // As in a real crash the agent's process group outlives the runner:
    // only the next runner's recovery can stop it.
    assert!(
        !live_processes_with(&marker).is_empty(),
        "the grandchild died with the runner; the test proves nothing"
    );
    let hellos_before = cp.frames().iter().filter(|v| v["type"] == "hello").count();

    let _second = RunnerProcess::start(Path::new(BIN), &[], &env);
    let hello = cp
        .find_after(0, T, |r| r.value["type"] == "hello" && r.conn > 1)
        .expect("the second runner says hello")
        .1
        .value;
    assert!(hellos_before >= 1);
    assert!(
        hello["jobs"]
            .as_array()
            .is_some_and(|jobs| jobs.iter().any(|j| j["job_id"] == ID)),
        "hello.jobs does not list {ID}: {hello}"
    );
    let result = cp.wait_for(is("job.result", ID), T);
    assert_eq!(result["status"], "failed", "{result}");
    assert!(
        result["error"]
            .as_str()
            .is_some_and(|e| e.contains("restarted")),
        "{result}"
    );
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    let (stored, _) = assert_stored_exactly(&cp, ID);
    assert!(
        stored
            .iter()
            .any(|f| f["event"]["status"] == "running_agent"),
        "events from before the kill are missing"
    );
    // The tag is in the fake agent's prompt argument and in the
    // grandchild's marker: neither may survive.
    let left = |_: ()| live_processes_with(&tag);
    assert!(
        eventually(Duration::from_secs(10), || left(()).is_empty()),
        "processes of the killed job survive: {:?}",
        left(())
    );
    assert!(
        !ws.path().join("jobs").join(ID).exists(),
        "the job's directory was not removed"
    );
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the acknowledged journal was not removed"
    );
}

#[test]
fn control_plane_down_for_the_whole_job_then_everything_is_delivered() {
    const ID: &str = "down-1";
    let mut cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-down");
    let _r = connected_runner(&cp, ws.path(), "chaos-3");
    // The agent waits a little first, so the control plane is gone before
    // most of the job's events exist.
    let prompt = "FAKE: sleep 0.5\nFAKE: lines 300\nFAKE: write notes.txt hello\nadd notes";
    cp.assign(job(ID, &repo, prompt));
    cp.wait_for(is("job.accepted", ID), T);
    cp.stop();
    let stored_while_up = cp.stored_seq(ID);

    assert!(
        eventually(T, || journal_has_result(ws.path(), ID)),
        "the job did not finish while the control plane was down"
    );
    let connections_while_down = cp.connections();
    cp.restart_same_port();
    let result = cp.wait_for(is("job.result", ID), T);
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    assert!(cp.connections() > connections_while_down);
    let (stored, result) = assert_stored_exactly(&cp, ID);
    assert!(
        last_seq > stored_while_up + 300,
        "most of the job happened while the control plane was down \
         ({stored_while_up} of {last_seq} stored before)"
    );
    let lines = stored
        .iter()
        .filter(|f| {
            f["event"]["type"] == "message"
                && f["event"]["text"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(" of 300"))
        })
        .count();
    assert_eq!(lines, 300);
    assert_eq!(result["status"], "completed", "{result}");
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the acknowledged journal was not removed"
    );
}

#[test]
fn a_result_acknowledged_only_by_welcome_releases_the_job() {
    const ID: &str = "welcome-1";
    // A server that stores but never acks: only the next `welcome` tells
    // the runner what it holds.
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        auto_ack: false,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-welcome");
    let _r = connected_runner(&cp, ws.path(), "chaos-4");
    let spec = job(ID, &repo, "FAKE: lines 3");
    cp.assign(spec.clone());
    let result = cp.wait_for(is("job.result", ID), T);
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    assert!(
        journal_dir(ws.path(), ID).exists(),
        "released without an ack"
    );

    // The welcome after the reconnect acknowledges the result.
    let before = cp.connections();
    cp.drop_connection();
    assert!(eventually(T, || cp.connections() > before));
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the journal of a result acknowledged by welcome was kept"
    );
    // Released for good, in the dispatcher too: assigned again, the job is
    // a new one and runs (a job still held would only be answered
    // `accepted`).
    let from = cp.frame_count();
    assert!(eventually(T, || cp.assign(spec.clone())));
    cp.wait_for_after(from, is("job.accepted", ID), T);
    let started = cp.find_after(from, Duration::from_secs(10), |r| {
        r.value["job_id"] == ID && r.value["event"]["status"] == "preparing"
    });
    assert!(
        started.is_some(),
        "the job released by welcome is still held by the dispatcher"
    );
}

#[test]
fn sigkill_in_the_middle_of_a_flood_loses_nothing_written() {
    const N: usize = 20_000;
    const ID: &str = "kill-flood-1";
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ack_every: 61,
        record_events: false,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-kill-flood");
    let env = env_for(&cp.url(), ws.path(), "chaos-5");
    let mut first = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    // `hang` after the lines: the job cannot end by itself before the kill.
    cp.assign(job(ID, &repo, &format!("FAKE: lines {N}\nFAKE: hang")));
    assert!(eventually(T, || cp.stored_seq(ID) >= 3000));
    first.signal(libc::SIGKILL);
    first.wait_exit(T).expect("the runner dies on SIGKILL");
    let written_by_first = cp.stored_seq(ID);

    let _second = RunnerProcess::start(Path::new(BIN), &[], &env);
    let result = cp.wait_for(is("job.result", ID), T);
    assert_eq!(result["status"], "failed", "{result}");
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    assert!(last_seq > written_by_first);
    let (stored, _) = assert_stored_exactly(&cp, ID);
    // The lines that made it are a prefix, in order, each once.
    let lines: Vec<String> = stored
        .iter()
        .filter(|f| f["event"]["kind"] == "agent" && f["event"]["type"] == "message")
        .filter_map(|f| f["event"]["text"].as_str())
        .filter(|t| t.starts_with("line "))
        .map(str::to_string)
        .collect();
    let want: Vec<String> = (1..=lines.len())
        .map(|i| format!("line {i} of {N}"))
        .collect();
    assert!(lines.len() >= 3000 - 20, "{} lines", lines.len());
    assert!(
        lines == want,
        "the stored lines are not 1..={}",
        lines.len()
    );
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the acknowledged journal was not removed"
    );
}

#[test]
fn runner_stopped_while_the_control_plane_is_down_delivers_after_restart() {
    const ID: &str = "stop-down-1";
    let mut cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-stop-down");
    let mut env = env_for(&cp.url(), ws.path(), "chaos-6");
    env.push(("ADOS_SHUTDOWN_GRACE", "1s".into()));
    let mut first = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    cp.assign(job(
        ID,
        &repo,
        "FAKE: sleep 0.3\nFAKE: lines 50\nFAKE: hang",
    ));
    cp.wait_for(is("job.accepted", ID), T);
    cp.stop();
    // Stopped while nobody listens: the job is cancelled, its result can
    // only be journaled; the runner still exits.
    assert!(eventually(T, || std::fs::read_dir(journal_dir(
        ws.path(),
        ID
    ))
    .map(|d| d.count() > 0)
    .unwrap_or(false)));
    first.signal(libc::SIGTERM);
    first.signal(libc::SIGTERM);
    let status = first
        .wait_exit(Duration::from_secs(30))
        .expect("the runner exits while the control plane is down");
    assert_eq!(status.code(), Some(0), "{}", first.stderr());
    assert!(journal_has_result(ws.path(), ID));

    cp.restart_same_port();
    let _second = RunnerProcess::start(Path::new(BIN), &[], &env);
    let result = cp.wait_for(is("job.result", ID), T);
    assert_eq!(result["status"], "cancelled", "{result}");
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    assert_stored_exactly(&cp, ID);
    assert!(
        eventually(T, || !journal_dir(ws.path(), ID).exists()),
        "the acknowledged journal was not removed"
    );
}

#[test]
fn two_floods_through_drops_storms_and_a_silent_server() {
    const N: usize = 6_000;
    const IDS: [&str; 2] = ["twin-a", "twin-b"];
    let cp = ControlPlane::start(Options {
        heartbeat_s: 1,
        ack_every: 41,
        record_events: false,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-twins");
    let _r = connected_runner(&cp, ws.path(), "chaos-7");
    for id in IDS {
        cp.assign(job(id, &repo, &format!("FAKE: lines {N}")));
    }
    // Ten seeded chaos points: 0 drop, 1 drop and forget, 2 drop again as
    // soon as the runner reconnects (before or around `welcome`), 3 the
    // server goes silent (the runner must notice by the missing frames).
    let mut rng = XorShift(0xC4A0_5EED_0002_0003);
    let mut points: Vec<(usize, u64)> = (0..10)
        .map(|_| (rng.range(200, 2 * N as u64 - 500) as usize, rng.next() % 4))
        .collect();
    points.sort();
    let kinds: Vec<u64> = points.iter().map(|p| p.1).collect();
    assert!(
        kinds.contains(&1) && kinds.contains(&2) && kinds.contains(&3),
        "the seed should use every kind: {points:?}"
    );
    let mut silences = 0;
    for (at, kind) in &points {
        assert!(
            eventually(T, || cp.text_frames() >= *at),
            "only {} frames arrived, waiting for {at}",
            cp.text_frames()
        );
        let before = cp.connections();
        let done = match kind {
            0 | 2 => eventually(T, || cp.drop_connection()),
            1 => {
                eventually(Duration::from_secs(5), || {
                    IDS.iter().any(|id| cp.stored_seq(id) > cp.acked_seq(id))
                });
                eventually(T, || cp.drop_connection_forgetting_unacked())
            }
            _ => {
                silences += 1;
                eventually(T, || cp.go_silent(true))
            }
        };
        assert!(done, "no connection to disturb");
        assert!(
            eventually(T, || cp.connections() > before),
            "the runner did not reconnect after chaos {kind} at frame {at}"
        );
        if *kind == 2 {
            let again = cp.connections();
            assert!(eventually(T, || cp.drop_connection()));
            assert!(eventually(T, || cp.connections() > again));
        }
    }
    assert!(silences > 0);
    assert!(cp.forgotten() > 0, "the server never forgot anything");
    for id in IDS {
        let result = cp.wait_for(|v| v["type"] == "job.result" && v["job_id"] == id, T);
        let last_seq = result["seq"].as_u64().expect("seq");
        assert!(
            eventually(T, || cp.stored_seq(id) == last_seq),
            "{id}: stored up to {} of {last_seq}",
            cp.stored_seq(id)
        );
        let (stored, _) = assert_stored_exactly(&cp, id);
        let lines: Vec<String> = stored
            .iter()
            .filter(|f| f["event"]["kind"] == "agent" && f["event"]["type"] == "message")
            .filter_map(|f| f["event"]["text"].as_str())
            .filter(|t| t.starts_with("line "))
            .map(str::to_string)
            .collect();
        let want: Vec<String> = (1..=N).map(|i| format!("line {i} of {N}")).collect();
        assert!(
            lines == want,
            "{id}: {} lines, not 1..={N} in order",
            lines.len()
        );
        assert!(
            eventually(T, || !journal_dir(ws.path(), id).exists()),
            "{id}: the acknowledged journal was not removed"
        );
    }
    eprintln!(
        "twins: {} frames, {} duplicates, {} forgotten, {} connections",
        cp.text_frames(),
        cp.duplicates(),
        cp.forgotten(),
        cp.connections()
    );
}

#[test]
fn large_frames_cut_mid_write_are_resent_whole() {
    const ID: &str = "big-1";
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ack_every: 7,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-big");
    let _r = connected_runner(&cp, ws.path(), "chaos-8");
    // Each tool result of 0.9 MiB (under the 1 MiB line cap) becomes a
    // frame of ~128 KiB, several times a socket buffer: a drop can land in
    // the middle of a WebSocket frame.
    let prompt = "FAKE: big-result 0.9\nFAKE: lines 200\nFAKE: big-result 0.9\nFAKE: big-result 0.9\nFAKE: lines 200";
    cp.assign(job(ID, &repo, prompt));
    cp.wait_for(is("job.accepted", ID), T);
    let mut rng = XorShift(0xB16_F4A3_0000_0008);
    let mut points: Vec<(usize, bool)> = (0..6)
        .map(|_| (rng.range(10, 380) as usize, rng.next() % 2 == 0))
        .collect();
    points.sort();
    for (at, forget) in &points {
        assert!(eventually(T, || cp.text_frames() >= *at));
        let before = cp.connections();
        assert!(eventually(T, || if *forget {
            cp.drop_connection_forgetting_unacked()
        } else {
            cp.drop_connection()
        }));
        assert!(eventually(T, || cp.connections() > before));
    }
    let result = cp.wait_for(is("job.result", ID), T);
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    let (stored, _) = assert_stored_exactly(&cp, ID);
    // Each 0.9 MiB tool result arrived as one whole event: 128 KiB of its
    // text and the note saying how much there was.
    let big: Vec<&str> = stored
        .iter()
        .filter(|f| f["event"]["kind"] == "agent" && f["event"]["type"] == "tool_result")
        .filter_map(|f| f["event"]["text"].as_str())
        .filter(|t| t.starts_with("xxxx"))
        .collect();
    assert_eq!(big.len(), 3, "tool results stored");
    for t in big {
        let xs = t.bytes().take_while(|&b| b == b'x').count();
        assert!(xs >= 120 * 1024, "{xs} bytes of the tool result");
        assert!(t.ends_with("bytes in all]"), "{}", &t[t.len() - 80..]);
    }
    let lines = stored
        .iter()
        .filter(|f| f["event"]["type"] == "message")
        .filter_map(|f| f["event"]["text"].as_str())
        .filter(|t| t.ends_with(" of 200"))
        .count();
    assert_eq!(lines, 400);
    eprintln!(
        "big: {} frames, {} stored, {} forgotten, {} connections",
        cp.text_frames(),
        stored.len(),
        cp.forgotten(),
        cp.connections()
    );
}

/// A runner killed in the middle of a job whose journal then loses its
/// tail, as a power cut can leave it: `keep(stored)` says how many of its
/// lines survive (the server stored `stored` events), `torn` what half
/// line follows them. The restarted runner must deliver a `failed` result
/// under the seq after the server's last.
fn power_cut_loses_the_journal_tail(id: &'static str, keep: impl Fn(u64) -> usize, torn: &str) {
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch(&format!("chaos-{id}"));
    let env = env_for(&cp.url(), ws.path(), "chaos-9");
    let mut first = RunnerProcess::start(Path::new(BIN), &[], &env);
    cp.wait_for(|v| v["type"] == "hello", T);
    let tag = format!("chaos{id}{}", std::process::id());
    cp.assign(job(
        id,
        &repo,
        &format!("FAKE: lines 100\nFAKE: hang\n{tag}"),
    ));
    assert!(eventually(T, || cp.stored_seq(id) >= 100));
    assert!(
        !live_processes_with(&tag).is_empty(),
        "the agent is not running"
    );
    first.signal(libc::SIGKILL);
    first.wait_exit(T).expect("the runner dies on SIGKILL");
    let stored_before = cp.stored_seq(id);

    // The power cut: the server stored every event, the journal kept only
    // its first lines (and maybe a torn half line).
    let dir = journal_dir(ws.path(), id);
    let segment = std::fs::read_dir(&dir)
        .expect("journal dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a segment");
    let text = std::fs::read_to_string(&segment).expect("segment");
    let mut kept: String = text
        .split_inclusive('\n')
        .take(keep(stored_before))
        .collect();
    kept.push_str(torn);
    std::fs::write(&segment, kept).expect("truncate");

    let _second = RunnerProcess::start(Path::new(BIN), &[], &env);
    let result = cp.wait_for(is("job.result", id), T);
    assert_eq!(result["status"], "failed", "{result}");
    assert_eq!(
        result["seq"].as_u64(),
        Some(stored_before + 1),
        "the result must come under a seq the server does not hold: {result}"
    );
    assert!(eventually(T, || cp.stored_seq(id) == stored_before + 1));
    assert_stored_exactly(&cp, id);
    assert!(
        eventually(T, || !dir.exists()),
        "the acknowledged journal was not removed"
    );
    // The agent (its prompt holds the tag) was stopped by the recovery.
    assert!(
        eventually(Duration::from_secs(10), || live_processes_with(&tag)
            .is_empty()),
        "the killed runner's agent survives"
    );
}

#[test]
fn journal_tail_lost_in_a_power_cut_still_gets_a_result_under_a_new_seq() {
    power_cut_loses_the_journal_tail("power-1", |_| 40, "41\te\t{\"type\":\"job.ev");
}

#[test]
fn journal_one_line_short_of_the_servers_ack_still_gets_a_result() {
    // The journal ends one seq below the server's ack: recovery's result
    // takes exactly the seq the server holds, and must still be delivered.
    power_cut_loses_the_journal_tail("power-2", |stored| stored as usize - 1, "");
}

#[test]
fn an_assign_cut_off_by_a_drop_and_sent_again_runs_once() {
    const ID: &str = "again-1";
    let cp = ControlPlane::start(Options {
        heartbeat_s: 5,
        ..Options::default()
    });
    let Scratch { ws, _repos, repo } = scratch("chaos-again");
    let _r = connected_runner(&cp, ws.path(), "chaos-10");
    // The pause keeps the job running while the server re-assigns it (a
    // server re-assigns only jobs it has no result for).
    let spec = job(ID, &repo, "FAKE: lines 500\nFAKE: sleep 3");
    // The assign and the drop leave together: whether the runner saw the
    // assign, and whether its `job.accepted` got out, is down to timing.
    // The server, not having seen `accepted`, assigns again on every new
    // connection until it does; a job already running is never run twice.
    cp.assign(spec.clone());
    cp.drop_connection();
    for _ in 0..3 {
        let before = cp.connections();
        assert!(eventually(T, || cp.connections() > before));
        let from = cp.frame_count();
        assert!(
            !cp.frames().iter().any(is("job.result", ID)),
            "the job ended before the re-assigns; the test proves nothing"
        );
        assert!(eventually(T, || cp.assign(spec.clone())));
        cp.wait_for_after(from, is("job.accepted", ID), T);
        cp.drop_connection();
    }
    let result = cp.wait_for(is("job.result", ID), T);
    let last_seq = result["seq"].as_u64().expect("seq");
    assert!(eventually(T, || cp.stored_seq(ID) == last_seq));
    let (stored, _) = assert_stored_exactly(&cp, ID);
    let starts = stored
        .iter()
        .filter(|f| f["event"]["status"] == "preparing")
        .count();
    assert_eq!(starts, 1, "the job ran {starts} times");
    let lines = stored
        .iter()
        .filter(|f| f["event"]["type"] == "message")
        .filter_map(|f| f["event"]["text"].as_str())
        .filter(|t| t.ends_with(" of 500"))
        .count();
    assert_eq!(lines, 500);
}
