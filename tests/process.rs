//! The process supervisor against real `sh` children: groups die whole,
//! termination escalates, output never deadlocks, leaks are detected and
//! killed, secrets are redacted across reads, the environment is exactly
//! the one given.

use ados_work_runner::cancel::cancel_pair;
use ados_work_runner::cancel::{CancelReason, CancelToken};
use ados_work_runner::process::{
    self, CommandSpec, Ended, OutputStream, ProcessOutcome, RunOptions, SpawnObserver, Stdin,
};
use ados_work_runner::redact::Redactor;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn sh(script: &str) -> CommandSpec {
    CommandSpec::new("sh", std::env::temp_dir())
        .args(["-c", script])
        .envs(process::allowlisted_env(None))
        .timeout(Some(Duration::from_secs(20)))
        .kill_grace(Duration::from_millis(300))
}

/// Run and collect every line per stream.
fn run_lines(
    spec: &CommandSpec,
    cancel: &CancelToken,
    redactor: &Redactor,
    mut hook: impl FnMut(OutputStream, &str),
) -> (ProcessOutcome, Vec<String>, Vec<String>) {
    let opts = RunOptions {
        cancel,
        redactor,
        observer: None,
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let outcome = process::run(spec, &opts, &mut |s, l| {
        hook(s, l);
        match s {
            OutputStream::Stdout => out.push(l.to_string()),
            OutputStream::Stderr => err.push(l.to_string()),
        }
    })
    .expect("spawn");
    (outcome, out, err)
}

/// Whether `pid` is gone or a zombie (dead, not yet reaped by PID 1).
fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let rest = &stat[stat.rfind(')').expect("stat") + 1..];
            matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))
        }
    }
}

/// Poll (with a deadline) until `pid` is dead.
fn assert_dies(pid: i32) {
    let until = Instant::now() + Duration::from_secs(3);
    while !is_dead(pid) {
        assert!(Instant::now() < until, "process {pid} is still alive");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn cancel_kills_the_whole_group() {
    let (canceller, token) = cancel_pair();
    let mut grandchild = 0;
    let (outcome, out, _) = run_lines(
        &sh("sleep 100 & echo $!; wait"),
        &token,
        &Redactor::empty(),
        |_, l| {
            grandchild = l.parse().expect("pid");
            canceller.cancel(CancelReason::Server);
        },
    );
    assert_eq!(out.len(), 1);
    assert_eq!(outcome.ended, Ended::Cancelled(CancelReason::Server));
    assert!(!outcome.success());
    assert!(outcome.duration < Duration::from_secs(5), "{outcome:?}");
    assert_dies(grandchild);
}

#[test]
fn ignored_sigterm_escalates_to_sigkill_on_timeout() {
    // SIG_IGN is inherited across exec, so `sleep` ignores TERM as well.
    let spec = sh("trap '' TERM; echo ready; sleep 100").timeout(Some(Duration::from_millis(200)));
    let t0 = Instant::now();
    let (outcome, out, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert_eq!(out, vec!["ready"]);
    assert_eq!(outcome.ended, Ended::TimedOut);
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn cancel_kill_skips_the_grace_period() {
    let (canceller, token) = cancel_pair();
    let spec = sh("trap '' TERM; echo ready; sleep 100").kill_grace(Duration::from_secs(60));
    let t0 = Instant::now();
    let (outcome, _, _) = run_lines(&spec, &token, &Redactor::empty(), |_, _| {
        canceller.cancel(CancelReason::Kill)
    });
    assert_eq!(outcome.ended, Ended::Cancelled(CancelReason::Kill));
    assert_eq!(outcome.signal, Some(libc::SIGKILL));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_megabyte_on_both_streams_at_once_does_not_deadlock() {
    let spec = sh("yes abc | head -c 1000000 >&2 & yes xyz | head -c 1000000; wait");
    let (outcome, out, err) =
        run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(out.iter().map(|l| l.len() + 1).sum::<usize>(), 1_000_000);
    assert_eq!(err.iter().map(|l| l.len() + 1).sum::<usize>(), 1_000_000);
    assert!(out.iter().all(|l| l == "xyz") && err.iter().all(|l| l == "abc"));
}

#[test]
fn a_grandchild_holding_stdout_is_a_leak_and_dies() {
    let (outcome, out, _) = run_lines(
        &sh("sleep 1000 & echo $!"),
        &CancelToken::never(),
        &Redactor::empty(),
        |_, _| {},
    );
    assert!(outcome.leaked, "{outcome:?}");
    assert_eq!(outcome.ended, Ended::Exited);
    assert_eq!(outcome.exit_code, Some(0));
    assert!(outcome.duration < Duration::from_secs(3), "{outcome:?}");
    assert_dies(out[0].parse().expect("pid"));
}

#[test]
fn a_member_that_closed_its_pipes_is_killed_too_without_a_leak() {
    let (outcome, out, _) = run_lines(
        &sh("sleep 1000 >/dev/null 2>&1 & echo $!"),
        &CancelToken::never(),
        &Redactor::empty(),
        |_, _| {},
    );
    assert!(!outcome.leaked, "{outcome:?}");
    assert!(outcome.success());
    assert_dies(out[0].parse().expect("pid"));
}

#[test]
fn a_line_at_the_cap_arrives_whole() {
    let spec = sh(&format!(
        "head -c {} /dev/zero | tr '\\0' x; echo; printf tail",
        process::MAX_LINE
    ));
    let (outcome, out, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success());
    assert_eq!(outcome.lines_truncated, 0);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), process::MAX_LINE);
    assert!(out[0].bytes().all(|b| b == b'x'));
    // A last line without a newline still counts.
    assert_eq!(out[1], "tail");
}

#[test]
fn a_five_mib_line_is_cut_at_one_mib_with_a_note() {
    let spec = sh("head -c 5242880 /dev/zero | tr '\\0' x; echo; printf tail");
    let (outcome, out, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success());
    assert_eq!(outcome.lines_truncated, 1);
    assert_eq!(out.len(), 3, "the cut line, the note, the tail");
    assert_eq!(out[0].len(), 1024 * 1024);
    assert!(out[0].bytes().all(|b| b == b'x'));
    let dropped = 5 * 1024 * 1024 - 1024 * 1024;
    assert_eq!(out[1], process::truncation_note(dropped));
    assert_eq!(out[2], "tail");
}

#[test]
fn a_secret_split_across_two_writes_is_redacted() {
    let redactor = Redactor::new(vec!["abcdef-secret".to_string()]);
    let spec =
        sh("printf 'key=abcdef'; sleep 0.2; printf -- '-secret end\\n'; echo abcdef-secret >&2");
    let (outcome, out, err) = run_lines(&spec, &CancelToken::never(), &redactor, |_, _| {});
    assert!(outcome.success());
    assert_eq!(out, vec!["key=[REDACTED] end"]);
    assert_eq!(err, vec!["[REDACTED]"]);
}

#[test]
fn the_environment_is_exactly_the_given_one() {
    // Set in the runner; must never reach a child.
    std::env::set_var("ADOS_TOKEN", "runner-token-123");
    let spec = CommandSpec::new("env", std::env::temp_dir())
        .env("PATH", "/usr/bin:/bin")
        .env("FOO", "bar baz");
    let (outcome, mut out, _) =
        run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success());
    // Plus the run's marker, which finds the processes that leave the group.
    let marker = format!("{}=", process::MARKER_VAR);
    assert_eq!(out.iter().filter(|l| l.starts_with(&marker)).count(), 1);
    out.retain(|l| !l.starts_with(&marker));
    out.sort();
    assert_eq!(out, vec!["FOO=bar baz", "PATH=/usr/bin:/bin"]);
    let base = process::allowlisted_env(None);
    assert!(base.iter().all(|(k, _)| k != "ADOS_TOKEN"));
}

#[test]
fn stdin_bytes_are_delivered_then_closed() {
    let mut input = b"hello\nworld\n".to_vec();
    input.extend(std::iter::repeat_n(b'z', 1_000_000));
    let spec = CommandSpec::new("cat", std::env::temp_dir())
        .envs(process::allowlisted_env(None))
        .stdin(Stdin::Bytes(input));
    let (outcome, out, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    // `cat` only exits after EOF on stdin.
    assert!(outcome.success(), "{outcome:?}");
    assert_eq!(&out[..2], ["hello", "world"]);
    assert_eq!(out[2].len(), 1_000_000);
}

#[test]
fn stdin_null_reads_as_empty() {
    let spec = sh("cat; echo done");
    let (outcome, out, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success());
    assert_eq!(out, vec!["done"]);
}

#[test]
fn exit_codes_and_signals_are_reported() {
    let r = |s: &str| run_lines(&sh(s), &CancelToken::never(), &Redactor::empty(), |_, _| {}).0;
    let o = r("exit 3");
    assert_eq!(
        (o.exit_code, o.signal, o.ended),
        (Some(3), None, Ended::Exited)
    );
    assert!(!o.success());
    assert_eq!(o.describe(), "exit code 3");
    let o = r("kill -9 $$");
    assert_eq!((o.exit_code, o.signal), (None, Some(9)));
    assert!(!o.success());
    assert!(r("true").success());
}

#[test]
fn a_missing_program_is_a_spawn_error_that_says_what_to_do() {
    let spec = CommandSpec::new("ados-no-such-program", std::env::temp_dir())
        .envs(process::allowlisted_env(None));
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let err = process::run(&spec, &opts, &mut |_, _| {}).expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.starts_with("could not start `ados-no-such-program`:") && msg.contains("on PATH"),
        "{msg}"
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(&'static str, i32)>>);

impl SpawnObserver for Recorder {
    fn spawned(&self, pgid: i32) {
        self.0.lock().expect("lock").push(("spawned", pgid));
    }
    fn finished(&self, pgid: i32) {
        assert!(!process::group_alive(pgid));
        self.0.lock().expect("lock").push(("finished", pgid));
    }
    fn signalling(&self, pgid: i32, signal: i32) {
        // Called before the signal: the group is still there to act on.
        assert!(process::group_alive(pgid));
        let what = if signal == 15 { "sigterm" } else { "sigkill" };
        self.0.lock().expect("lock").push((what, pgid));
    }
}

#[test]
fn the_observer_sees_the_group_start_and_end() {
    let rec = Recorder::default();
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: Some(&rec),
    };
    let mut pid_seen = 0;
    process::run(
        &sh("echo $$; sleep 1000 >/dev/null &"),
        &opts,
        &mut |_, l| pid_seen = l.parse().expect("pid"),
    )
    .expect("spawn");
    let calls = rec.0.lock().expect("lock").clone();
    // The leaked `sleep` is killed: the hook hears of it first.
    assert_eq!(
        calls,
        vec![
            ("spawned", pid_seen),
            ("sigkill", pid_seen),
            ("finished", pid_seen)
        ]
    );
}

#[test]
fn the_observer_hears_of_each_signal_before_the_group_gets_it() {
    let rec = Recorder::default();
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: Some(&rec),
    };
    let spec = sh("trap '' TERM; echo $$; while :; do sleep 1; done")
        .timeout(Some(Duration::from_millis(300)))
        .kill_grace(Duration::from_millis(200));
    let mut pid_seen = 0;
    let out = process::run(&spec, &opts, &mut |_, l| {
        pid_seen = l.parse().unwrap_or(pid_seen)
    })
    .expect("spawn");
    assert_eq!(out.ended, process::Ended::TimedOut);
    let calls = rec.0.lock().expect("lock").clone();
    assert_eq!(calls.first(), Some(&("spawned", pid_seen)));
    assert_eq!(calls.get(1), Some(&("sigterm", pid_seen)));
    assert_eq!(calls.get(2), Some(&("sigkill", pid_seen)));
    assert_eq!(calls.last(), Some(&("finished", pid_seen)));
}

#[test]
fn run_captured_keeps_output_up_to_the_limit() {
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let c = process::run_captured(
        &sh("echo one; echo two; echo err >&2; echo three"),
        &opts,
        9,
    )
    .expect("spawn");
    assert!(c.outcome.success());
    assert_eq!(c.stdout, "one\ntwo\n");
    assert_eq!(c.stderr, "err\n");
    assert_eq!(c.dropped_bytes, 6);
}

#[test]
fn a_line_arrives_while_the_child_still_runs_even_with_secrets_to_catch() {
    // The stream redactor must not hold a finished line back until EOF.
    let redactor = Redactor::new(vec!["a-rather-long-secret-value-0123456789".to_string()]);
    let (canceller, token) = cancel_pair();
    let t0 = Instant::now();
    let (outcome, out, _) = run_lines(&sh("echo first; sleep 100"), &token, &redactor, |_, _| {
        canceller.cancel(CancelReason::Server)
    });
    assert_eq!(out, vec!["first"]);
    assert_eq!(outcome.ended, Ended::Cancelled(CancelReason::Server));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn stdin_bytes_nobody_reads_do_not_block() {
    let spec = sh("exit 0").stdin(Stdin::Bytes(vec![b'q'; 4 * 1024 * 1024]));
    let (outcome, _, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    assert!(outcome.success(), "{outcome:?}");
}

#[test]
fn a_panicking_line_handler_still_kills_the_group() {
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let mut pid = 0;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        process::run(&sh("sleep 1000 & echo $!; wait"), &opts, &mut |_, l| {
            pid = l.parse().expect("pid");
            panic!("handler failed");
        })
    }));
    assert!(r.is_err());
    assert!(pid > 0);
    assert_dies(pid);
}

#[test]
fn a_missing_working_directory_is_named() {
    let spec = CommandSpec::new("sh", "/nonexistent/ados-dir").envs(process::allowlisted_env(None));
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let msg = process::run(&spec, &opts, &mut |_, _| {})
        .expect_err("must fail")
        .to_string();
    assert_eq!(
        msg,
        "could not start `sh`: its working directory /nonexistent/ados-dir does not exist"
    );
}

/// Kills the listed pids on drop, so a failing test leaves no sleeper.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Whether `pid` is a zombie child of this process (not reaped).
fn is_our_zombie(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let rest: Vec<&str> = stat[stat.rfind(')').expect("stat") + 1..]
        .split_whitespace()
        .collect();
    rest[0] == "Z" && rest[1] == std::process::id().to_string()
}

#[test]
fn processes_that_leave_the_group_die_with_the_run_and_are_reaped() {
    // As the runner binary does at start.
    process::become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
    let dir = std::env::temp_dir().join(format!("ados-setsid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pids = dir.join("pids");
    let _ = std::fs::remove_file(&pids);
    // 1. setsid in the background; 2. a double fork (the middle shell exits
    // at once, so the sleeper is orphaned); 3. setsid holding stdout open.
    let script = format!(
        r#"
        setsid sh -c 'echo $$ >> {p}; exec sleep 1000' </dev/null >/dev/null 2>&1 &
        sh -c "setsid sh -c 'echo \$\$ >> {p}; exec sleep 1001' </dev/null >/dev/null 2>&1 &"
        setsid sh -c 'echo $$ >> {p}; exec sleep 1002' &
        while [ "$(wc -l < {p} 2>/dev/null || echo 0)" -lt 3 ]; do sleep 0.02; done
        "#,
        p = pids.display()
    );
    let (outcome, _, _) = run_lines(
        &sh(&script),
        &CancelToken::never(),
        &Redactor::empty(),
        |_, _| {},
    );
    let escaped: Vec<i32> = std::fs::read_to_string(&pids)
        .expect("pids")
        .lines()
        .map(|l| l.trim().parse().expect("pid"))
        .collect();
    let _cleanup = KillOnDrop(escaped.clone());
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(escaped.len(), 3);
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    for pid in escaped {
        assert!(
            is_dead(pid),
            "process {pid} left the group and outlived the run"
        );
        assert!(
            !is_our_zombie(pid),
            "process {pid} was killed but not reaped"
        );
    }
}

/// The sweep is what kills an escaped process, and a run of a program the
/// runner trusts (git) opts out of it: the same escape then outlives the
/// run, which is why only such programs may opt out.
#[test]
fn a_run_that_opts_out_of_the_sweep_leaves_an_escaped_process_alone() {
    let dir = std::env::temp_dir().join(format!("ados-nosweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let pid_file = dir.join("pid");
    let script = format!(
        "setsid sh -c 'echo $$ > {p}; exec sleep 1003' </dev/null >/dev/null 2>&1 &\n\
         while [ ! -s {p} ]; do sleep 0.02; done",
        p = pid_file.display()
    );
    let mut spec = sh(&script);
    spec.sweep_escapees = false;
    let (outcome, _, _) = run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let _cleanup = KillOnDrop(vec![pid]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(outcome.exit_code, Some(0), "{outcome:?}");
    assert!(
        !is_dead(pid),
        "without the sweep the escaped process {pid} should outlive the run"
    );
}

#[test]
fn reaping_orphans_never_steals_a_leaders_exit_status() {
    process::become_subreaper().expect("PR_SET_CHILD_SUBREAPER");
    let threads: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(|| {
                for _ in 0..15 {
                    // Each run leaves an orphan that exits at once: a zombie
                    // for the sweeps of the other threads' runs to reap.
                    let spec = sh("(sh -c 'exit 0' &); exit 3");
                    let (outcome, _, _) =
                        run_lines(&spec, &CancelToken::never(), &Redactor::empty(), |_, _| {});
                    assert_eq!(outcome.exit_code, Some(3), "{outcome:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("no stolen status");
    }
}
