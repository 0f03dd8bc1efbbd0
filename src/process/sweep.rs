//! Killing what a run leaves behind outside its process group, and reaping
//! the orphans the runner inherits as a child subreaper.
//!
//! A process that calls `setsid` (or `setpgid`) leaves the run's group and
//! survives `kill(-pgid)`. To find it anyway, every run's leader gets an
//! environment variable [`MARKER_VAR`] with a value unique to the run
//! ([`RunMarker`]); children inherit it. At the end of a run, [`sweep`]
//! scans `/proc`: every live process started after the run began whose
//! initial environment (`/proc/<pid>/environ`, readable for the same uid)
//! holds the run's marker is SIGKILLed, with everything below it (by parent
//! pid, so a descendant that cleared its environment goes too). Several
//! runs share the runner, and the marker is what tells their processes
//! apart; the start-time filter keeps the scan from reading the environment
//! of every process on the host.
//!
//! With [`become_subreaper`] (the runner binary calls it at start), orphans
//! of every run are re-parented to the runner instead of PID 1, so it must
//! reap them. It does so at the end of each run, with `waitpid` on specific
//! pids only: zombie children that are not the leader of a live run. The
//! leaders are the waiter threads' to reap ([`spawn_leader`] registers a
//! leader under the same lock before its exit can be seen, and
//! [`leader_reaped`] forgets it), so no exit status is ever stolen.
//!
//! Limits: a process that rewrites its environment block, or clears its
//! environment and then loses its parent before the sweep, is not found;
//! nor, by a runner that is not root, one that makes itself non-dumpable
//! or runs set-uid (its environment is then unreadable);
//! the environment is read up to [`MAX_ENVIRON`] bytes; a pid that is
//! recycled between the scan and the kill (microseconds) could be hit.
//! Zombies of runs that ended wait for the next run's end to be reaped.
//! Containers (and a per-job cgroup) bound all of this harder.

use super::unix::{parse_stat, scan, ProcStat};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The variable that carries a run's marker. Not a secret: it names the
/// runner's pid and a counter.
pub const MARKER_VAR: &str = "ADOS_RUN_MARKER";

/// Bytes of a process's environment read when looking for a marker.
pub const MAX_ENVIRON: u64 = 1024 * 1024;

/// Rounds of scan-and-kill: a process may fork while it is being killed.
const MAX_ROUNDS: usize = 8;

/// How long killed processes get to die before the sweep reaps and returns.
const DEATH_WAIT: Duration = Duration::from_secs(1);

static SUBREAPER: AtomicBool = AtomicBool::new(false);
static NEXT_RUN: AtomicU64 = AtomicU64::new(1);
/// Pids of leaders whose waiter has not reaped them yet (a count, since a
/// pid can be reused by a new leader before the old waiter forgets it).
static LEADERS: Mutex<BTreeMap<i32, u32>> = Mutex::new(BTreeMap::new());

fn leaders() -> MutexGuard<'static, BTreeMap<i32, u32>> {
    LEADERS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Make this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): orphans
/// of its children are re-parented to it, not to PID 1, and are reaped at
/// the end of the next run. Call it once at start, only in a process whose
/// children are all started by [`run`](super::run) (the runner binary):
/// from then on zombie children nobody registered are reaped.
///
/// # Errors
///
/// The `prctl` call failed (not Linux, or a seccomp filter).
pub fn become_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    SUBREAPER.store(true, Ordering::SeqCst);
    Ok(())
}

/// One run's identity in its processes' environment, and when it began.
#[derive(Clone, Debug)]
pub(super) struct RunMarker {
    value: String,
    /// `/proc/<pid>/stat` start time (clock ticks since boot) at or after
    /// which the run's processes started.
    since_ticks: u64,
    /// Whether [`sweep`] looks for this run's processes at all
    /// (`CommandSpec::sweep_escapees`).
    sweeps: bool,
}

impl RunMarker {
    /// A marker no other run of this process has; take it just before
    /// the spawn. `sweeps`: whether the run's end searches for processes
    /// that left its group.
    pub(super) fn new(sweeps: bool) -> RunMarker {
        let n = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        RunMarker {
            value: format!("{}-{n}", std::process::id()),
            // One tick of slack: the kernel truncates start times to ticks.
            since_ticks: boot_ticks().map_or(0, |t| t.saturating_sub(1)),
            sweeps,
        }
    }

    /// The value of [`MARKER_VAR`] for this run.
    pub(super) fn value(&self) -> &str {
        &self.value
    }
}

/// Spawn a run's leader and register it, under the lock the reaping of
/// orphans takes, so its zombie is never mistaken for an orphan's.
pub(super) fn spawn_leader(cmd: &mut Command) -> io::Result<Child> {
    let mut leaders = leaders();
    let child = cmd.spawn()?;
    let n = leaders.entry(child.id() as i32).or_default();
    *n = n.saturating_add(1);
    Ok(child)
}

/// The leader `pid` was reaped by its own `wait`.
pub(super) fn leader_reaped(pid: i32) {
    let mut leaders = leaders();
    if let Some(n) = leaders.get_mut(&pid) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            leaders.remove(&pid);
        }
    }
}

/// SIGKILL every live process of the run `marker` (and everything below
/// it), wait a moment for them to die, and, as a subreaper, reap the
/// zombie children that are no run's leader. Returns how many of the
/// processes killed were outside the run's group `pgid` (the group itself
/// was SIGKILLed just before; its dying members are killed again).
pub(super) fn sweep(marker: &RunMarker, pgid: i32) -> usize {
    if !marker.sweeps {
        return 0;
    }
    let entry = format!("{MARKER_VAR}={}", marker.value);
    let me = std::process::id() as i32;
    let mut killed: BTreeSet<i32> = BTreeSet::new();
    let mut outside = 0usize;
    for _ in 0..MAX_ROUNDS {
        let procs = scan();
        let targets = marked(&procs, me, marker.since_ticks, entry.as_bytes());
        let fresh: Vec<&ProcStat> = procs
            .iter()
            .filter(|p| targets.contains(&p.pid) && !killed.contains(&p.pid))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for p in fresh {
            // SAFETY: kill(2) has no memory-safety preconditions; pid > 1.
            unsafe { libc::kill(p.pid, libc::SIGKILL) };
            killed.insert(p.pid);
            if p.pgrp != pgid {
                outside += 1;
            }
        }
    }
    if !killed.is_empty() {
        let until = Instant::now() + DEATH_WAIT;
        while killed.iter().any(|&p| is_live(p)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    if SUBREAPER.load(Ordering::SeqCst) {
        reap_orphans(me);
    }
    outside
}

/// Reap zombie children of `me` that no waiter thread waits for.
fn reap_orphans(me: i32) {
    let leaders = leaders();
    for p in scan() {
        if p.ppid == me && p.state == 'Z' && !leaders.contains_key(&p.pid) {
            let mut status = 0;
            // SAFETY: waitpid on one specific pid, WNOHANG.
            unsafe { libc::waitpid(p.pid, &mut status, libc::WNOHANG) };
        }
    }
}

/// Live processes started since `since_ticks` whose environment holds
/// `entry`, plus every process below one of them. Never `me` or PID 1.
fn marked(procs: &[ProcStat], me: i32, since_ticks: u64, entry: &[u8]) -> BTreeSet<i32> {
    let recent: Vec<&ProcStat> = procs
        .iter()
        .filter(|p| p.pid > 1 && p.pid != me && p.is_live())
        .filter(|p| p.start_ticks >= since_ticks)
        .collect();
    let mut out: BTreeSet<i32> = recent
        .iter()
        .filter(|p| environ_has(p.pid, entry))
        .map(|p| p.pid)
        .collect();
    // Descendants start after their ancestors, so they are among `recent`.
    loop {
        let before = out.len();
        for p in &recent {
            if out.contains(&p.ppid) {
                out.insert(p.pid);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Whether `pid`'s initial environment holds the `NAME=value` `entry`.
fn environ_has(pid: i32, entry: &[u8]) -> bool {
    let Ok(f) = std::fs::File::open(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let mut buf = Vec::new();
    if f.take(MAX_ENVIRON).read_to_end(&mut buf).is_err() {
        return false;
    }
    buf.split(|&b| b == 0).any(|e| e == entry)
}

fn is_live(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(pid, &s))
        .is_some_and(|p| p.is_live())
}

/// Now, in the clock ticks of `/proc/<pid>/stat` start times.
fn boot_ticks() -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: one valid timespec out-pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return None;
    }
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    let secs = u64::try_from(ts.tv_sec).ok()?;
    let nanos = u64::try_from(ts.tv_nsec).ok()?;
    secs.checked_mul(hz)?
        .checked_add(nanos.checked_mul(hz)? / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_moves_forward() {
        let a = boot_ticks().expect("CLOCK_BOOTTIME");
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let own = parse_stat(0, &own).unwrap();
        assert!(own.start_ticks <= a, "{} > {a}", own.start_ticks);
    }
}
