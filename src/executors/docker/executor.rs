//! The executor of one job in Docker: its commands become `docker exec`s
//! in the job's container, which is started at the first command and
//! removed when the job ends. A cancel or timeout stops the container
//! before `process::run` signals the `docker` CLI (killing the CLI alone
//! would leave the command running in the container); a later command of
//! the job (a fallback agent) gets a fresh container.

use super::command;
use super::container::JobContainer;
use super::fence::JobFence;
use super::runtime::DockerRuntime;
use crate::egress::Allowlist;
use crate::executors::Executor;
use crate::process::{
    self, CommandSpec, OutputStream, ProcessOutcome, RunAs, RunOptions, SpawnError, SpawnObserver,
};
use std::sync::{Arc, Mutex, PoisonError};

/// The proxy variables a fenced command gets from the fence only.
fn is_proxy_var(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "https_proxy" | "http_proxy" | "no_proxy" | "all_proxy"
    )
}

/// Runs one job's commands in its own container.
#[derive(Debug)]
pub struct DockerExecutor {
    rt: Arc<DockerRuntime>,
    job_id: String,
    run_as: Option<RunAs>,
    state: Mutex<State>,
    /// The job's registration with the egress proxy, when containers are
    /// fenced: made with the executor (its token is a secret the job's
    /// redactor must know before anything runs), serving from the first
    /// container on, closed with the executor.
    fence: Option<JobFence>,
}

#[derive(Debug, Default)]
struct State {
    /// The running container, if any.
    container: Option<JobContainer>,
    /// Containers started so far (each gets the next number in its name).
    started: u32,
}

impl DockerExecutor {
    /// The executor of job `job_id`; its commands run as `run_as` (the
    /// job's leased user) or, when `None`, as the runner's own uid:gid,
    /// so that what they write stays the runner's to commit and remove.
    pub fn for_job(
        rt: Arc<DockerRuntime>,
        job_id: impl Into<String>,
        run_as: Option<RunAs>,
    ) -> DockerExecutor {
        DockerExecutor {
            rt,
            job_id: job_id.into(),
            run_as,
            state: Mutex::new(State::default()),
            fence: None,
        }
    }

    /// Fence the job's containers in: they reach only what `allow` allows,
    /// through the runner's egress proxy. A fence whose socket cannot be
    /// made fails the container's start, with why: never an unfenced run.
    pub fn fenced(mut self, allow: Allowlist) -> DockerExecutor {
        if let Some(f) = &self.rt.fence {
            let dir = self.rt.workspace.join("jobs").join(&self.job_id);
            self.fence = Some(f.register(&self.job_id, dir, allow));
        }
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The name of the job's running container, started now if there is
    /// none (the first command, or the first after a stop).
    fn container(&self, user: RunAs) -> Result<String, String> {
        let mut state = self.state();
        if let Some(c) = &state.container {
            return Ok(c.name().to_string());
        }
        let n = state.started.saturating_add(1);
        if let Some(f) = &self.fence {
            f.listen()?;
        }
        let c = JobContainer::start(&self.rt, &self.job_id, n, user, self.fence.as_ref())?;
        state.started = n;
        let name = c.name().to_string();
        state.container = Some(c);
        Ok(name)
    }

    /// Stop and remove the running container (a cancel or timeout).
    fn stop(&self) {
        let taken = self.state().container.take();
        if let Some(c) = taken {
            log::info!(
                "job {}: stopping its container {} (docker stop -t 10)",
                self.job_id,
                c.name()
            );
            c.stop();
        }
    }
}

impl Executor for DockerExecutor {
    fn name(&self) -> &'static str {
        super::NAME
    }

    fn job_id(&self) -> &str {
        &self.job_id
    }

    fn run_as(&self) -> Option<RunAs> {
        self.run_as
    }

    fn shares_workspace(&self) -> bool {
        false
    }

    fn run(
        &self,
        spec: &CommandSpec,
        opts: &RunOptions,
        on_line: &mut dyn FnMut(OutputStream, &str),
    ) -> Result<ProcessOutcome, SpawnError> {
        let user = spec.run_as.or(self.run_as).unwrap_or(self.rt.runner_user);
        let name = self.container(user).map_err(|e| SpawnError {
            program: spec.program.clone(),
            source: std::io::Error::other(e),
        })?;
        let cli = match &self.fence {
            Some(fence) => {
                let mut fenced = spec.clone();
                fenced.env.retain(|(k, _)| !is_proxy_var(k));
                fenced.env.extend(fence.env());
                command::exec(&self.rt, &name, &fenced, user)
            }
            None => command::exec(&self.rt, &name, spec, user),
        };
        let hook = StopOnSignal {
            executor: self,
            inner: opts.observer,
        };
        let opts = RunOptions {
            cancel: opts.cancel,
            redactor: opts.redactor,
            observer: Some(&hook),
        };
        process::run(&cli, &opts, on_line)
    }

    fn notes(&self) -> Vec<String> {
        self.fence
            .as_ref()
            .map(JobFence::take_refusals)
            .unwrap_or_default()
    }

    fn secrets(&self) -> Vec<String> {
        self.fence.iter().map(|f| f.token().to_string()).collect()
    }

    fn finish(&self) {
        let taken = self.state().container.take();
        if let Some(c) = taken {
            c.remove();
        }
        // Nothing of the job can connect any more: what it left behind
        // was refused by now, and `notes` has it.
        if let Some(f) = &self.fence {
            f.close();
        }
    }
}

/// Stops the job's container when `process::run` is about to signal the
/// `docker exec` CLI, and forwards everything to the caller's observer.
struct StopOnSignal<'a> {
    executor: &'a DockerExecutor,
    inner: Option<&'a dyn SpawnObserver>,
}

impl SpawnObserver for StopOnSignal<'_> {
    fn spawned(&self, pgid: i32) {
        if let Some(o) = self.inner {
            o.spawned(pgid);
        }
    }

    fn finished(&self, pgid: i32) {
        if let Some(o) = self.inner {
            o.finished(pgid);
        }
    }

    fn signalling(&self, pgid: i32, signal: i32) {
        self.executor.stop();
        if let Some(o) = self.inner {
            o.signalling(pgid, signal);
        }
    }
}
