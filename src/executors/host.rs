//! The host executor: commands run directly on the runner's machine,
//! through [`crate::process::run`], as the job's own user when the runner
//! is root (see `users.rs`), else as the runner's user.

use super::Executor;
use crate::process::{
    self, CommandSpec, OutputStream, ProcessOutcome, RunAs, RunOptions, SpawnError,
};

/// The name of this executor in `hello` and logs.
pub(super) const NAME: &str = "host";

/// Runs one job's commands on the runner's own host.
#[derive(Clone, Debug)]
pub struct HostExecutor {
    job_id: String,
    run_as: Option<RunAs>,
}

impl HostExecutor {
    /// The executor of job `job_id`, whose commands run as `run_as`.
    pub fn for_job(job_id: impl Into<String>, run_as: Option<RunAs>) -> HostExecutor {
        HostExecutor {
            job_id: job_id.into(),
            run_as,
        }
    }
}

impl Executor for HostExecutor {
    fn name(&self) -> &'static str {
        NAME
    }

    fn job_id(&self) -> &str {
        &self.job_id
    }

    fn run_as(&self) -> Option<RunAs> {
        self.run_as
    }

    fn run(
        &self,
        spec: &CommandSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) -> Result<ProcessOutcome, SpawnError> {
        // Host processes are signalled by `process::run` itself: no hook.
        if self.run_as.is_none() || spec.run_as.is_some() {
            return process::run(spec, opts, on_line);
        }
        let mut as_user = spec.clone();
        as_user.run_as = self.run_as;
        process::run(&as_user, opts, on_line)
    }
}
