//! Where a [`CommandSpec`] runs. Today only on the runner's host
//! ([`HostExecutor`]); a Docker executor comes later and will plug in
//! behind the same trait, so agents and git never know the difference.

mod host;

pub use host::HostExecutor;

use crate::process::{CommandSpec, OutputStream, ProcessOutcome, RunOptions, SpawnError};

/// Runs commands somewhere, with the guarantees of [`crate::process::run`]:
/// own process group, redacted line streams, timeout and cancel escalation,
/// nothing left running afterwards.
pub trait Executor: Send + Sync {
    /// A short name for logs and `check` (`host`).
    fn name(&self) -> &'static str;

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
