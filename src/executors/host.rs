//! The host executor: commands run directly on the runner's machine, as
//! the runner's user, through [`crate::process::run`].

use super::Executor;
use crate::process::{self, CommandSpec, OutputStream, ProcessOutcome, RunOptions, SpawnError};

/// The name of this executor in `hello` and logs.
pub(super) const NAME: &str = "host";

/// Runs one job's commands on the runner's own host.
#[derive(Clone, Debug)]
pub struct HostExecutor {
    job_id: String,
}

impl HostExecutor {
    /// The executor of job `job_id`.
    pub fn for_job(job_id: impl Into<String>) -> HostExecutor {
        HostExecutor {
            job_id: job_id.into(),
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

    fn run(
        &self,
        spec: &CommandSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) -> Result<ProcessOutcome, SpawnError> {
        // Host processes are signalled by `process::run` itself: no hook.
        process::run(spec, opts, on_line)
    }
}
