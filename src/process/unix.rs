//! Process groups: signalling a whole group and asking whether it lives.
//!
//! Every child is the leader of its own group (`process_group(0)`), so
//! `kill(-pgid)` reaches every descendant that did not leave the group.

use std::io;

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
    let dir = std::fs::read_dir("/proc").ok()?;
    let mut n = 0;
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((state, pgrp)) = parse_stat(&stat) {
            if pgrp == pgid && state != 'Z' && state != 'X' {
                n += 1;
            }
        }
    }
    Some(n)
}

/// State and process group from a `/proc/<pid>/stat` line. The command name
/// can hold spaces and parentheses, so parsing starts after the last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_name() {
        let s = "123 (a) b (c)) S 1 456 456 0 -1 4194560";
        assert_eq!(parse_stat(s), Some(('S', 456)));
    }

    #[test]
    fn tiny_pgids_are_refused() {
        assert!(!kill_group(0, 0));
        assert!(!kill_group(1, 0));
        assert!(!kill_group(-5, 0));
        assert!(!group_alive(1));
    }
}
