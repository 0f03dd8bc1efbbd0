//! The unprivileged users a root runner starts its jobs' processes as.
//!
//! A job's agent works from an issue anyone may have written; run as the
//! runner's own user it could read the runner's environment
//! (`/proc/<pid>/environ`: `ADOS_TOKEN`, every key), its mirror, and the
//! checkouts and credentials of the jobs running beside it. So a runner
//! started as root gives each running job a uid of its own,
//! `ADOS_JOB_UID_BASE + n` for the lowest free `n` below the number of
//! slots, and runs that job's agent and test processes as it (group the
//! same number, no supplementary groups). No passwd entry is needed. The
//! job's directories are handed to that user
//! ([`crate::workspace::JobDir::hand_to`]); git, which carries the VCS
//! credential, stays the runner's.

use crate::process::RunAs;
use std::sync::{Arc, Mutex, PoisonError};

/// The users of one runner: one per job slot, each leased to one running
/// job at a time.
#[derive(Debug)]
pub struct JobUsers {
    base: u32,
    taken: Mutex<Vec<bool>>,
}

impl JobUsers {
    /// Users `base .. base + slots` (the configuration checked the range).
    pub fn new(base: u32, slots: usize) -> Arc<JobUsers> {
        Arc::new(JobUsers {
            base,
            taken: Mutex::new(vec![false; slots.max(1)]),
        })
    }

    /// The lowest free user, until the lease is dropped; `None` when every
    /// user is taken (more jobs at once than slots: the dispatcher never
    /// lets that happen).
    pub fn lease(self: &Arc<JobUsers>) -> Option<UserLease> {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        let index = taken.iter().position(|t| !t)?;
        taken[index] = true;
        let offset = u32::try_from(index).ok()?;
        let id = self.base.checked_add(offset)?;
        Some(UserLease {
            users: self.clone(),
            index,
            user: RunAs { uid: id, gid: id },
        })
    }
}

/// One job's user; given back when dropped.
#[derive(Debug)]
pub struct UserLease {
    users: Arc<JobUsers>,
    index: usize,
    user: RunAs,
}

impl UserLease {
    /// The uid and gid.
    pub fn user(&self) -> RunAs {
        self.user
    }
}

impl Drop for UserLease {
    fn drop(&mut self) {
        let mut taken = self
            .users
            .taken
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = taken.get_mut(self.index) {
            *t = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_running_job_has_its_own_user_and_gives_it_back() {
        let users = JobUsers::new(200_000, 2);
        let a = users.lease().expect("a user");
        let b = users.lease().expect("a second user");
        assert_eq!(
            a.user(),
            RunAs {
                uid: 200_000,
                gid: 200_000
            }
        );
        assert_eq!(b.user().uid, 200_001);
        assert!(users.lease().is_none(), "no more users than slots");
        drop(a);
        assert_eq!(users.lease().expect("the freed user").user().uid, 200_000);
    }
}
