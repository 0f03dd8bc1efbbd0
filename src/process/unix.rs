//! Process groups: signalling a whole group and asking whether it lives;
//! and keeping the runner's own memory and environment from its children.
//!
//! Every child is the leader of its own group (`process_group(0)`), so
//! `kill(-pgid)` reaches every descendant that did not leave the group.

use std::io;

/// Make this process non-dumpable (`PR_SET_DUMPABLE` 0): a process of the
/// same uid (an agent the runner started) can then neither read
/// `/proc/<runner>/environ` (`ADOS_TOKEN`, provider keys) or its memory nor
/// ptrace it, and no core dump holds its secrets. Only a process with
/// `CAP_SYS_PTRACE` (root, in practice) still can.
///
/// The flag is reset to dumpable by `execve` for every child: a `git`
/// carrying a credential is readable by a same-uid process again. Only
/// running jobs under another uid (or in a container) closes that.
///
/// # Errors
///
/// The `prctl` call failed (not Linux, or a seccomp filter).
pub fn make_non_dumpable() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Send `sig` to every process of group `pgid`.
///
/// Returns `true` when the signal was sent, `false` when the group is
/// already gone (`ESRCH`) or `pgid` is not a real group id. `pgid` of 0 or
/// 1 is refused: `kill(0)` would hit the runner's own group and `kill(-1)`
/// every process it may signal.
pub fn kill_group(pgid: i32, sig: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    let rc = unsafe { libc::kill(-pgid, sig) };
    if rc == 0 {
        return true;
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::ESRCH) {
        log::warn!("kill(-{pgid}, {sig}) failed: {err}");
    }
    false
}

/// Whether group `pgid` still has a live (non-zombie) member.
///
/// `kill(-pgid, 0)` alone is not enough: an orphaned zombie stays in its
/// group until someone reaps it, and a container's PID 1 often never does.
/// On Linux, when the group answers, `/proc` is scanned for a member that
/// is not a zombie.
pub fn group_alive(pgid: i32) -> bool {
    if pgid <= 1 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence.
    let rc = unsafe { libc::kill(-pgid, 0) };
    if rc != 0 {
        // EPERM: the group exists but is not ours; it is alive.
        return io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    match live_members(pgid) {
        Some(n) => n > 0,
        None => true,
    }
}

/// How many non-zombie processes are in group `pgid`, from `/proc`
/// (`None` when `/proc` cannot be read).
fn live_members(pgid: i32) -> Option<usize> {
    std::fs::metadata("/proc").ok()?;
    Some(
        scan()
            .iter()
            .filter(|p| p.pgrp == pgid && p.is_live())
            .count(),
    )
}

/// What the runner needs of one `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub(super) pid: i32,
    pub(super) state: char,
    pub(super) ppid: i32,
    pub(super) pgrp: i32,
    /// Clock ticks after boot.
    pub(super) start_ticks: u64,
}

impl ProcStat {
    /// Running or sleeping: not a zombie waiting to be reaped.
    pub(super) fn is_live(&self) -> bool {
        self.state != 'Z' && self.state != 'X'
    }
}

/// Every process in `/proc` (those that vanish meanwhile are skipped).
pub(super) fn scan() -> Vec<ProcStat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            parse_stat(pid, &stat)
        })
        .collect()
}

/// State, parent and start time from a `/proc/<pid>/stat` line. The
/// command name can hold spaces and parentheses, so parsing starts after
/// the last `)`; start time is field 22.
pub(super) fn parse_stat(pid: i32, stat: &str) -> Option<ProcStat> {
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    Some(ProcStat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_past_an_odd_command_name() {
        let s = "77 (a) b (c)) S 12 77 77 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 98765 100 200";
        assert_eq!(
            parse_stat(77, s),
            Some(ProcStat {
                pid: 77,
                state: 'S',
                ppid: 12,
                pgrp: 77,
                start_ticks: 98765
            })
        );
        assert_eq!(parse_stat(1, "1 (x) S 0"), None);
    }

    #[test]
    fn tiny_pgids_are_refused() {
        assert!(!kill_group(0, 0));
        assert!(!kill_group(1, 0));
        assert!(!kill_group(-5, 0));
        assert!(!group_alive(1));
    }
}
