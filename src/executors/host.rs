//! The host executor: commands run directly on the runner's machine, as
//! the runner's user, through [`crate::process::run`].

use super::Executor;
use crate::process::{self, CommandSpec, OutputStream, ProcessOutcome, RunOptions, SpawnError};

/// Runs commands on the runner's own host.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostExecutor;

impl Executor for HostExecutor {
    fn name(&self) -> &'static str {
        "host"
    }

    fn run(
        &self,
        spec: &CommandSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) -> Result<ProcessOutcome, SpawnError> {
        process::run(spec, opts, on_line)
    }
}
