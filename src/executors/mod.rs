//! Where a [`CommandSpec`] runs. Today only on the runner's host
//! ([`HostExecutor`]); a Docker executor comes later and will plug in
//! behind the same trait, so agents and git never know the difference.
//!
//! An executor is made per job ([`ExecutorKind::for_job`]): it knows its
//! job (a container needs the job id, a path mapping and the agents its
//! image holds), and it can act before `process::run` signals a group
//! through [`SpawnObserver::signalling`](crate::process::SpawnObserver)
//! (a container is stopped with `docker stop`, not a host signal): such an
//! executor passes `process::run` an observer of its own that acts there
//! and forwards every call to the caller's (`opts.observer`, the job's
//! journal).

mod host;
mod own_container;
pub mod placement;
mod users;

pub use host::HostExecutor;
pub use users::{JobUsers, UserLease};

use crate::job::JobId;
use crate::process::{CommandSpec, OutputStream, ProcessOutcome, RunAs, RunOptions, SpawnError};

/// Runs commands somewhere, with the guarantees of [`crate::process::run`]:
/// own process group, redacted line streams, timeout and cancel escalation,
/// nothing left running afterwards.
pub trait Executor: Send + Sync {
    /// A short name for logs, `check` and `hello.executor` (`host`).
    fn name(&self) -> &'static str;

    /// The job this executor runs commands for.
    fn job_id(&self) -> &str;

    /// The user the job's commands run as, who must own what they write
    /// to (`None`: the runner's own user).
    fn run_as(&self) -> Option<RunAs> {
        None
    }

    /// Run `spec` to the end, calling `on_line` on this thread for each
    /// redacted output line.
    ///
    /// # Errors
    ///
    /// [`SpawnError`] when the command could not be started at all.
    fn run(
        &self,
        spec: &CommandSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) -> Result<ProcessOutcome, SpawnError>;
}

/// Which executor this runner gives its jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutorKind {
    /// Commands run on the runner's own host.
    #[default]
    Host,
}

impl ExecutorKind {
    /// The name `hello.executor` reports.
    pub fn name(self) -> &'static str {
        match self {
            ExecutorKind::Host => host::NAME,
        }
    }

    /// An executor for the job `job_id`, whose commands run as `run_as`.
    pub fn for_job(self, job_id: &JobId, run_as: Option<RunAs>) -> Box<dyn Executor> {
        match self {
            ExecutorKind::Host => Box::new(HostExecutor::for_job(job_id.as_str(), run_as)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_gets_its_own_executor_that_knows_it() {
        let id = JobId::parse("job-7").expect("valid id");
        let ex = ExecutorKind::Host.for_job(&id, None);
        assert_eq!(ex.job_id(), "job-7");
        assert_eq!(ex.name(), ExecutorKind::Host.name());
        assert_eq!(ExecutorKind::default().name(), "host");
    }
}
