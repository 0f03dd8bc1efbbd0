//! Spawning one child and supervising it to the end: the select loop,
//! timeout and cancel escalation, leak detection and the final clean-up.

use super::output::{self, LineSplitter, Msg, MAX_LINE};
use super::spec::{
    Captured, CommandSpec, Ended, OutputStream, ProcessOutcome, RunOptions, SpawnError,
    SpawnObserver, Stdin,
};
use super::sweep::{self, RunMarker};
use super::unix::{group_alive, kill_group};
use crate::cancel::CancelReason;
use crossbeam_channel::{bounded, never, Receiver};
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// After the leader exits, how long the pipes get to reach EOF before the
/// run counts as leaked (nextest's `leak_timeout`).
pub const LEAK_TIMEOUT: Duration = Duration::from_millis(100);

/// After the group was SIGKILLed, how long the pipes get before the
/// readers are told to give up (only a process that left the group with
/// `setsid` can hold them that long).
pub const ABANDON_AFTER: Duration = Duration::from_secs(1);

/// How long `run` waits for the killed group to disappear before it tells
/// the observer it finished anyway.
const GROUP_GONE_WAIT: Duration = Duration::from_secs(1);

/// Lines in flight between the readers and the supervisor. When full, the
/// readers block and so does the child: back-pressure, bounded memory.
const LINE_CHANNEL_CAP: usize = 256;

/// Run `spec` to the end, calling `on_line` (on this thread) for every
/// redacted line of output.
///
/// # Errors
///
/// [`SpawnError`] only when the child could not be started; everything
/// that happens to a started child (non-zero exit, signal, timeout,
/// cancel, leak) is in the [`ProcessOutcome`].
pub fn run(
    spec: &CommandSpec,
    opts: &RunOptions,
    on_line: &mut dyn FnMut(OutputStream, &str),
) -> Result<ProcessOutcome, SpawnError> {
    let start = Instant::now();
    let spawn_err = |source: io::Error| SpawnError {
        program: spec.program.clone(),
        source,
    };
    let marker = RunMarker::new(spec.sweep_escapees);
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        // How `sweep` finds the run's processes that left the group.
        .env(sweep::MARKER_VAR, marker.value())
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match spec.stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Bytes(_) => Stdio::piped(),
        });
    if let Some(user) = spec.run_as {
        // std drops the supplementary groups too (setgroups(0) as root).
        cmd.uid(user.uid).gid(user.gid);
    }
    let child = sweep::spawn_leader(&mut cmd).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound && !spec.cwd.is_dir() {
            // Not `NotFound`: the PATH hint would point the wrong way.
            io::Error::other(format!(
                "its working directory {} does not exist",
                spec.cwd.display()
            ))
        } else {
            e
        }
    });
    let mut child = child.map_err(spawn_err)?;
    // The child is the leader of a new group whose id is its pid.
    let pgid = child.id() as i32;
    if let Some(o) = opts.observer {
        o.spawned(pgid);
    }
    let mut group = Group::new(pgid, marker.clone(), opts.observer);
    let abandon = group.abandon.clone();

    let (out_tx, out_rx) = bounded(LINE_CHANNEL_CAP);
    let pipes = (child.stdout.take(), child.stderr.take(), child.stdin.take());
    let (Some(stdout), Some(stderr)) = (pipes.0, pipes.1) else {
        // Cannot happen with Stdio::piped(); reap and report rather than panic.
        reap_now(pgid, child);
        group.done();
        return Err(spawn_err(io::Error::other(
            "the child's pipes were not created",
        )));
    };
    let started = output::spawn_reader(
        OutputStream::Stdout,
        stdout,
        LineSplitter::new(MAX_LINE),
        opts.redactor.stream(),
        out_tx.clone(),
        abandon.clone(),
        pgid,
    )
    .and_then(|h| {
        group.threads.push(h);
        output::spawn_reader(
            OutputStream::Stderr,
            stderr,
            LineSplitter::new(MAX_LINE).cr_ends_line(spec.stderr_cr_ends_line),
            opts.redactor.stream(),
            out_tx,
            abandon.clone(),
            pgid,
        )
    })
    .and_then(|h| {
        group.threads.push(h);
        match (&spec.stdin, pipes.2) {
            (Stdin::Bytes(bytes), Some(stdin)) => {
                output::spawn_stdin_writer(stdin, bytes.clone(), abandon.clone(), pgid)
                    .map(|h| group.threads.push(h))
            }
            _ => Ok(()),
        }
    });
    if let Err(e) = started {
        reap_now(pgid, child);
        group.finish();
        return Err(spawn_err(e));
    }
    let (exit_tx, exit_rx) = bounded::<io::Result<ExitStatus>>(1);
    let reaper = Reaper {
        child: Some(child),
        pgid,
    };
    let waiter = std::thread::Builder::new()
        .name(format!("proc-{pgid}-wait"))
        .spawn(move || {
            let mut reaper = reaper;
            if let Some(mut child) = reaper.child.take() {
                let status = child.wait();
                sweep::leader_reaped(pgid);
                let _ = exit_tx.send(status);
            }
        });
    match waiter {
        Ok(h) => group.threads.push(h),
        // The closure (and its Reaper) was dropped: the child is reaped.
        Err(e) => {
            group.finish();
            return Err(spawn_err(e));
        }
    }

    let mut sup = Supervisor {
        spec,
        opts,
        pgid,
        marker,
        start,
        deadline: spec.timeout.and_then(|t| start.checked_add(t)),
        phase: Phase::Running,
        ended: Ended::Exited,
        cancel_seen: None,
        exit: None,
        open: [true, true],
        leak_checked: false,
        leaked: false,
        abandon_at: None,
        abandon,
        lines_truncated: 0,
    };
    sup.supervise(&out_rx, &exit_rx, on_line);
    let (exit_code, signal) = match &sup.exit {
        Some((Ok(st), _)) => (st.code(), st.signal()),
        _ => (None, None),
    };
    let outcome = ProcessOutcome {
        exit_code,
        signal,
        ended: sup.ended,
        duration: start.elapsed(),
        timeout: spec.timeout,
        leaked: sup.leaked,
        lines_truncated: sup.lines_truncated,
    };
    drop(out_rx);
    group.finish();
    Ok(outcome)
}

/// Run `spec` and keep its output: at most `max_bytes` of each stream
/// (lines past the limit are dropped and counted in `dropped_bytes`).
///
/// # Errors
///
/// As [`run`].
pub fn run_captured(
    spec: &CommandSpec,
    opts: &RunOptions,
    max_bytes: usize,
) -> Result<Captured, SpawnError> {
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut dropped = 0u64;
    let outcome = run(spec, opts, &mut |stream, line| {
        let buf = match stream {
            OutputStream::Stdout => &mut stdout,
            OutputStream::Stderr => &mut stderr,
        };
        if buf.len() + line.len() < max_bytes {
            buf.push_str(line);
            buf.push('\n');
        } else {
            dropped += line.len() as u64 + 1;
        }
    })?;
    Ok(Captured {
        outcome,
        stdout,
        stderr,
        dropped_bytes: dropped,
    })
}

/// Kill and reap a child whose supervision could not be set up.
fn reap_now(pgid: i32, mut child: Child) {
    kill_group(pgid, libc::SIGKILL);
    let _ = child.wait();
    sweep::leader_reaped(pgid);
}

/// Owns the child until the waiter thread has reaped it; if that thread
/// never runs (its spawn failed), Drop kills the group and reaps, so no
/// zombie is left behind.
struct Reaper {
    child: Option<Child>,
    pgid: i32,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            reap_now(self.pgid, child);
        }
    }
}

/// The group and the threads serving it. `finish` (or Drop, when `on_line`
/// panics) SIGKILLs the group, joins every thread and tells the observer;
/// no process or thread of a run outlives it.
struct Group<'a> {
    pgid: i32,
    marker: RunMarker,
    observer: Option<&'a dyn SpawnObserver>,
    threads: Vec<JoinHandle<()>>,
    abandon: Arc<AtomicBool>,
    finished: bool,
}

impl<'a> Group<'a> {
    fn new(pgid: i32, marker: RunMarker, observer: Option<&'a dyn SpawnObserver>) -> Group<'a> {
        Group {
            pgid,
            marker,
            observer,
            threads: Vec::new(),
            abandon: Arc::new(AtomicBool::new(false)),
            finished: false,
        }
    }

    /// Mark finished without joining (nothing was started).
    fn done(&mut self) {
        self.finished = true;
        if let Some(o) = self.observer {
            o.finished(self.pgid);
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        // Always: a member that closed its pipes (`cmd >/dev/null &`) would
        // otherwise outlive the job.
        kill_group(self.pgid, libc::SIGKILL);
        // And what left the group (`setsid`), found by the run's marker.
        let escaped = sweep::sweep(&self.marker, self.pgid);
        if escaped > 0 {
            log::warn!(
                "{escaped} process(es) of group {} had left the group (setsid?): killed",
                self.pgid
            );
        }
        // Readers end on EOF, which the SIGKILL brings; a member that left
        // the group can keep the pipe open, so they also end on `abandon`.
        // Usually they are already done or end within microseconds of the
        // SIGKILL: poll finely (a 2 ms step cost ~35 ms a job over its ~25
        // git calls), with a hard stop at `give_up`.
        let give_up = Instant::now() + ABANDON_AFTER;
        let mut step = Duration::from_micros(50);
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < give_up {
            std::thread::sleep(step);
            step = (step * 2).min(Duration::from_millis(5));
        }
        self.abandon.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                log::error!("a thread serving process group {} panicked", self.pgid);
            }
        }
        let gone_by = Instant::now() + GROUP_GONE_WAIT;
        while group_alive(self.pgid) && Instant::now() < gone_by {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(o) = self.observer {
            o.finished(self.pgid);
        }
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        // Reached with `finished == false` only when `on_line` panicked.
        self.finish();
    }
}

/// Where termination stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Not signalled.
    Running,
    /// SIGTERM sent; SIGKILL at the instant.
    Terminating(Instant),
    /// SIGKILL sent.
    Killed,
}

/// Which timer the select loop waits for.
#[derive(Clone, Copy, Debug)]
enum Timer {
    Timeout,
    Kill,
    Leak,
    Abandon,
}

struct Supervisor<'s, 'o> {
    spec: &'s CommandSpec,
    opts: &'s RunOptions<'o>,
    pgid: i32,
    marker: RunMarker,
    start: Instant,
    deadline: Option<Instant>,
    phase: Phase,
    ended: Ended,
    cancel_seen: Option<CancelReason>,
    /// The leader's status and when it arrived.
    exit: Option<(io::Result<ExitStatus>, Instant)>,
    /// Whether stdout / stderr are still open.
    open: [bool; 2],
    leak_checked: bool,
    leaked: bool,
    abandon_at: Option<Instant>,
    abandon: Arc<AtomicBool>,
    lines_truncated: u64,
}

impl Supervisor<'_, '_> {
    fn supervise(
        &mut self,
        out_rx: &Receiver<Msg>,
        exit_rx: &Receiver<io::Result<ExitStatus>>,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) {
        let no_exit = never();
        loop {
            self.check_cancel();
            if self.exit.is_some() && self.open == [false, false] {
                return;
            }
            let timer = self.next_timer();
            let timer_rx = match timer {
                Some((at, _)) => crossbeam_channel::at(at),
                None => never(),
            };
            // Once received, the waiter's channel is disconnected and would
            // be ready forever: swap in `never`.
            let exit_rx = if self.exit.is_some() {
                &no_exit
            } else {
                exit_rx
            };
            crossbeam_channel::select_biased! {
                recv(self.opts.cancel.wake_rx()) -> _ => {}
                recv(exit_rx) -> st => {
                    let st = st.unwrap_or_else(|_| Err(io::Error::other("the waiter thread ended without a status")));
                    self.exit = Some((st, Instant::now()));
                }
                recv(out_rx) -> msg => match msg {
                    Ok(Msg::Line(stream, line)) => on_line(stream, &line),
                    Ok(Msg::Truncated(stream, n)) => {
                        self.lines_truncated += 1;
                        on_line(stream, &output::truncation_note(n));
                    }
                    Ok(Msg::Eof(stream)) => self.open[stream_index(stream)] = false,
                    // Both readers are gone.
                    Err(_) => self.open = [false, false],
                },
                recv(timer_rx) -> _ => {
                    if let Some((_, t)) = timer {
                        self.on_timer(t);
                    }
                }
            }
        }
    }

    /// The earliest timer that matters now.
    fn next_timer(&self) -> Option<(Instant, Timer)> {
        let mut timers: Vec<(Instant, Timer)> = Vec::with_capacity(3);
        if self.exit.is_none() {
            match self.phase {
                Phase::Running => {
                    if let Some(d) = self.deadline {
                        timers.push((d, Timer::Timeout));
                    }
                }
                Phase::Terminating(at) => timers.push((at, Timer::Kill)),
                Phase::Killed => {}
            }
        } else if let Some((_, exited)) = &self.exit {
            if !self.leak_checked {
                timers.push((*exited + LEAK_TIMEOUT, Timer::Leak));
            }
        }
        if let Some(at) = self.abandon_at {
            timers.push((at, Timer::Abandon));
        }
        timers.into_iter().min_by_key(|(at, _)| *at)
    }

    fn on_timer(&mut self, t: Timer) {
        match t {
            Timer::Timeout => {
                if self.phase == Phase::Running && self.exit.is_none() {
                    log::info!(
                        "`{}` (group {}) timed out after {}",
                        self.spec.program,
                        self.pgid,
                        crate::words::duration(self.start.elapsed())
                    );
                    self.ended = Ended::TimedOut;
                    self.terminate(false);
                }
            }
            Timer::Kill => self.kill(),
            Timer::Leak => {
                self.leak_checked = true;
                if self.open != [false, false] {
                    log::warn!(
                        "`{}` exited but a descendant still holds its output: killing group {}",
                        self.spec.program,
                        self.pgid
                    );
                    self.leaked = true;
                    self.kill();
                }
            }
            Timer::Abandon => {
                log::warn!(
                    "group {} was killed but its output is still open (a process left the group?): no longer reading it",
                    self.pgid
                );
                self.abandon.store(true, Ordering::SeqCst);
                self.abandon_at = None;
            }
        }
    }

    /// Act on a cancel request that is new or stronger than the last one.
    fn check_cancel(&mut self) {
        let Some(reason) = self.opts.cancel.reason() else {
            return;
        };
        if self.cancel_seen.is_some_and(|seen| reason <= seen) {
            return;
        }
        let again = self.cancel_seen.is_some();
        self.cancel_seen = Some(reason);
        if self.exit.is_some() {
            // The leader is gone; only stragglers are left.
            self.kill();
            return;
        }
        if matches!(self.ended, Ended::Exited | Ended::Cancelled(_)) {
            self.ended = Ended::Cancelled(reason);
        }
        self.terminate(again || reason == CancelReason::Kill);
    }

    /// SIGTERM the group (SIGKILL when `now`, when the grace is zero, or
    /// when already terminating).
    fn terminate(&mut self, now: bool) {
        match self.phase {
            Phase::Running if !now && !self.spec.kill_grace.is_zero() => {
                self.signalling(libc::SIGTERM);
                kill_group(self.pgid, libc::SIGTERM);
                self.phase = Phase::Terminating(Instant::now() + self.spec.kill_grace);
            }
            Phase::Killed => {}
            _ => self.kill(),
        }
    }

    fn kill(&mut self) {
        self.signalling(libc::SIGKILL);
        kill_group(self.pgid, libc::SIGKILL);
        // A process that left the group may be what holds the output open:
        // kill it now rather than abandon the pipes a second later.
        sweep::sweep(&self.marker, self.pgid);
        if self.phase != Phase::Killed {
            self.phase = Phase::Killed;
        }
        if self.abandon_at.is_none() && !self.abandon.load(Ordering::SeqCst) {
            self.abandon_at = Some(Instant::now() + ABANDON_AFTER);
        }
    }
}

impl Supervisor<'_, '_> {
    /// Tell the observer (the executor's hook) before the group is signalled.
    fn signalling(&self, signal: i32) {
        if let Some(o) = self.opts.observer {
            o.signalling(self.pgid, signal);
        }
    }
}

fn stream_index(s: OutputStream) -> usize {
    match s {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}
