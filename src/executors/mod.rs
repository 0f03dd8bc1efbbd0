//! Where a [`CommandSpec`] runs: on the runner's host ([`HostExecutor`])
//! or in a container of the job's own ([`DockerExecutor`], `docker/`),
//! behind the same trait, so agents and tests never know the difference.
//! git (clone, commit, push) always runs on the runner's side.
//!
//! An executor is made per job ([`ExecutorKind::for_job`]): it knows its
//! job (a container needs the job id, a path mapping and the agents its
//! image holds), and it can act before `process::run` signals a group
//! through [`SpawnObserver::signalling`](crate::process::SpawnObserver)
//! (a container is stopped with `docker stop`, not a host signal): such an
//! executor passes `process::run` an observer of its own that acts there
//! and forwards every call to the caller's (`opts.observer`, the job's
//! journal).

pub mod docker;
mod host;
mod own_container;
pub mod placement;
mod users;

pub use docker::{DockerExecutor, DockerRuntime};
pub use host::HostExecutor;
pub use users::{JobUsers, UserLease};

use crate::config::{Config, EgressSetting, ExecutorSetting};
use crate::job::spec::JobSpec;
use crate::job::JobId;
use crate::metrics::Metrics;
use crate::process::{CommandSpec, OutputStream, ProcessOutcome, RunAs, RunOptions, SpawnError};
use std::sync::Arc;

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

    /// Whether commands see the whole workspace as the runner does (the
    /// host), so a checkout may borrow objects from its mirror; a
    /// container sees only the job's own directories, and its checkout
    /// must hold every object itself.
    fn shares_workspace(&self) -> bool {
        true
    }

    /// The job's commands are over: release what they held (remove its
    /// container), so nothing of the job runs during its commit and
    /// push. Idempotent; also done on drop, but called explicitly so it
    /// happens before the commit and before the result is sent.
    fn finish(&self) {}

    /// Lines the executor has for the job's `runner` stream since it was
    /// last asked (a fenced container's egress refusals). The job's thread
    /// asks before each output line of a command and after the command,
    /// so a refusal appears just before the error the client prints, and
    /// once more after [`Executor::finish`] (see [`finish`]).
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }

    /// Secrets the executor gave the job's commands (a fenced container's
    /// proxy token), for the job's redactor; known once the first command
    /// has started.
    fn secrets(&self) -> Vec<String> {
        Vec::new()
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

/// End the job's commands ([`Executor::finish`]) and write what they left
/// for its `runner` stream: a refusal of a process the job left running
/// after its last command comes in up to its container's removal.
pub fn finish(executor: &dyn Executor, r: &mut crate::job::Reporter) {
    executor.finish();
    pass_notes(executor, r);
}

/// Write what `executor` has for the job's `runner` stream (see
/// [`Executor::notes`]).
pub fn pass_notes(executor: &dyn Executor, r: &mut crate::job::Reporter) {
    for note in executor.notes() {
        r.log(crate::job::event::LogStream::Runner, &note);
    }
}

/// Which executor this runner gives its jobs.
#[derive(Clone, Debug, Default)]
pub enum ExecutorKind {
    /// Commands run on the runner's own host.
    #[default]
    Host,
    /// Commands run in a container per job.
    Docker(Arc<DockerRuntime>),
}

impl ExecutorKind {
    /// The executor `cfg` asks for (`ADOS_EXECUTOR`), resolved: for Docker,
    /// where the runner runs and which image jobs use.
    ///
    /// # Errors
    ///
    /// What to change when the Docker executor cannot work here.
    ///
    /// With `ADOS_JOB_EGRESS=allowlist` this starts the egress proxy (a
    /// thread of the runner), counting refusals in `metrics`.
    pub fn from_config(cfg: &Config, metrics: &Arc<Metrics>) -> Result<ExecutorKind, String> {
        match &cfg.executor {
            ExecutorSetting::Host => Ok(ExecutorKind::Host),
            ExecutorSetting::Docker(settings) => {
                let rt = DockerRuntime::new(cfg, settings)?;
                let rt = match &cfg.egress {
                    EgressSetting::Open => rt,
                    EgressSetting::Allowlist(global) => {
                        let fence = docker::EgressFence::start(
                            &cfg.workspace_dir,
                            rt.placement(),
                            global.clone(),
                            cfg.proxy.clone(),
                            metrics.clone(),
                            docker::fence::FORWARDER_NAME,
                            rt.cli_env(),
                        )?;
                        rt.with_fence(fence)
                    }
                };
                Ok(ExecutorKind::Docker(Arc::new(rt)))
            }
        }
    }

    /// The name `hello.executor` reports.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorKind::Host => host::NAME,
            ExecutorKind::Docker(_) => docker::NAME,
        }
    }

    /// An executor for the job `spec`, whose commands run as `run_as`; a
    /// fenced one reaches its agents' APIs and its registries.
    pub fn for_spec(&self, spec: &JobSpec, run_as: Option<RunAs>) -> Box<dyn Executor> {
        match self {
            ExecutorKind::Docker(rt) if rt.fenced() => {
                let agents = std::iter::once(&spec.agent)
                    .chain(&spec.fallbacks)
                    .map(|a| a.name.as_str());
                Box::new(
                    DockerExecutor::for_job(rt.clone(), spec.job_id.as_str(), run_as)
                        .fenced(rt.job_allowlist(agents, &spec.registries)),
                )
            }
            _ => self.for_job(&spec.job_id, run_as),
        }
    }

    /// An executor for the job `job_id`, whose commands run as `run_as`.
    pub fn for_job(&self, job_id: &JobId, run_as: Option<RunAs>) -> Box<dyn Executor> {
        match self {
            ExecutorKind::Host => Box::new(HostExecutor::for_job(job_id.as_str(), run_as)),
            ExecutorKind::Docker(rt) => {
                Box::new(DockerExecutor::for_job(rt.clone(), job_id.as_str(), run_as))
            }
        }
    }

    /// At start, before restart recovery reports the jobs of a killed run
    /// `failed`: remove what those jobs left running (their containers).
    pub fn remove_leftovers(&self) {
        let ExecutorKind::Docker(rt) = self else {
            return;
        };
        match rt.remove_leftovers() {
            Ok(0) => {}
            Ok(n) => log::warn!(
                "removed {} left by an earlier run of this runner ({})",
                crate::words::count(n, "job container"),
                rt.runner_label()
            ),
            Err(e) => log::error!(
                "cannot remove the job containers an earlier run left ({}): {e}",
                rt.runner_label()
            ),
        }
    }

    /// The agent CLIs the jobs' commands can find, of `agents` (name,
    /// program): on the host's `path_env`, or in the job image (probed
    /// once, and logged).
    pub fn available_agents(&self, agents: &[(String, String)], path_env: &str) -> Vec<String> {
        match self {
            ExecutorKind::Host => agents
                .iter()
                .filter(|(_, p)| crate::agents::find_program(p, path_env).is_some())
                .map(|(n, _)| n.clone())
                .collect(),
            ExecutorKind::Docker(rt) => {
                let programs: Vec<String> = agents.iter().map(|(_, p)| p.clone()).collect();
                match rt.probe_programs(&programs) {
                    Ok(found) => agents
                        .iter()
                        .filter(|(_, p)| found.contains(p))
                        .map(|(n, _)| n.clone())
                        .collect(),
                    Err(e) => {
                        log::error!(
                            "cannot look for agent CLIs in ADOS_JOB_IMAGE {}: {e}; see `ados-work-runner check`",
                            rt.image()
                        );
                        Vec::new()
                    }
                }
            }
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
