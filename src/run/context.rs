//! What a job runs with: the runner-wide [`JobContext`] shared by every
//! job, and the per-job [`JobRunner`] every step borrows (spec, cancel token,
//! deadline, executor, journal stream) with the helpers steps share: the
//! time budget, cancel checks, git with logged output, and the early
//! results ([`Stop`]).

use crate::agents::AgentRegistry;
use crate::cancel::{CancelReason, CancelToken};
use crate::config::Config;
use crate::executors::{Executor, ExecutorKind, JobUsers, UserLease};
use crate::git::{parse_progress, Git, GitEnv, GitError, ProgressThrottle};
use crate::job::chat::ChatMsg;
use crate::job::event::{JobResult, LogStream, ResultStatus, Status};
use crate::job::spec::{JobKind, JobSpec, MergeMode};
use crate::job::Reporter;
use crate::journal::JobStream;
use crate::link::Waker;
use crate::metrics::Metrics;
use crate::net::Network;
use crate::process::{self, Ended, ProcessOutcome, RunOptions};
use crate::redact::Redactor;
use crate::workspace::Workspace;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a single git command may take.
const GIT_STEP_TIMEOUT: Duration = Duration::from_secs(1800);
/// The longest any one step may be given, whatever the spec says: keeps
/// every `Instant + Duration` the process layer computes far from overflow.
pub(crate) const MAX_STEP: Duration = Duration::from_secs(366 * 24 * 3600);

/// What every job shares: configuration, workspace, agents, executor kind.
pub struct JobContext {
    /// The runner's configuration.
    pub cfg: Arc<Config>,
    /// The on-disk layout.
    pub workspace: Workspace,
    /// Agent adapters (built in and custom).
    pub agents: AgentRegistry,
    /// Where commands run; each job gets its own executor of this kind.
    pub executors: ExecutorKind,
    /// The users jobs run as (`ADOS_JOB_UID_BASE`; `None`: as the runner).
    pub users: Option<Arc<JobUsers>>,
    /// Metrics to update per job.
    pub metrics: Arc<Metrics>,
    /// Redactor for the runner's own secrets (jobs add theirs).
    pub redactor: Redactor,
    /// Wakes the link after journal writes.
    pub waker: Waker,
    /// Proxy, TLS roots and the HTTP agent, built once: the PR step
    /// reaches the forge exactly as the link reaches the control plane.
    pub net: Network,
    /// Whether `merge_mode: pr` opens the pull request after the push
    /// (`false` only for `exec` given no `--provider`: no forge to ask).
    pub open_prs: bool,
    /// `exec` only: keep the commit of a `merge_mode: none` run (in the
    /// local `--repo`, else as a bundle in this directory); `None` for the
    /// daemon, whose control plane asked for a commit only.
    pub keep_local: Option<PathBuf>,
}

impl JobContext {
    /// Build the shared context, the network layer included.
    ///
    /// # Errors
    /// `ADOS_CA_CERT` cannot be used (the message names it).
    pub fn new(
        cfg: Arc<Config>,
        workspace: Workspace,
        executors: ExecutorKind,
        metrics: Arc<Metrics>,
        waker: Waker,
    ) -> std::io::Result<Self> {
        let net = Network::new(&cfg.proxy, cfg.ca_cert.as_deref())?;
        let redactor = Redactor::new(cfg.secrets());
        let agents = AgentRegistry::new(&cfg.custom_agents);
        let users = cfg
            .job_uid_base
            .map(|base| JobUsers::new(base, cfg.max_jobs));
        Ok(JobContext {
            users,
            cfg,
            workspace,
            agents,
            executors,
            metrics,
            redactor,
            waker,
            net,
            open_prs: true,
            keep_local: None,
        })
    }
}

/// Why a stage stopped early: already the job's result.
pub(crate) type Stop = Box<JobResult>;

/// One running job: what every step borrows.
pub struct JobRunner<'a> {
    /// The runner-wide context.
    pub ctx: &'a JobContext,
    /// The job's spec.
    pub spec: &'a JobSpec,
    /// Cancels the job (server cancel, shutdown).
    pub cancel: &'a CancelToken,
    /// Where this job's commands run.
    pub executor: Box<dyn Executor>,
    /// The job's own user while it runs (`None`: it runs as the runner).
    pub user: Option<UserLease>,
    /// Every job user was taken: the job must not run (as root or as
    /// another job's user).
    pub(crate) no_free_user: bool,
    stream: Option<Arc<JobStream>>,
    /// `None` when `timeout_s` is too large to add to the clock, or a chat
    /// session sets none: no limit.
    deadline: Option<Instant>,
    /// What each versioned agent CLI printed for `--version`, asked once
    /// per job (`None`: it could not be asked): see `agent::agent_version`.
    pub(super) agent_versions: RefCell<Vec<(String, Option<String>)>>,
    /// A chat session's messages from the dispatcher (`None`: an issue
    /// job, or a chat with no control plane to talk to, as in `exec`).
    pub(crate) chat: Option<crossbeam_channel::Receiver<ChatMsg>>,
}

impl<'a> JobRunner<'a> {
    /// The job `spec`. `stream` (the job's journal) records process groups
    /// for restart recovery; `exec` has none.
    pub fn new(
        ctx: &'a JobContext,
        spec: &'a JobSpec,
        cancel: &'a CancelToken,
        stream: Option<Arc<JobStream>>,
    ) -> JobRunner<'a> {
        let user = ctx.users.as_ref().and_then(|u| u.lease());
        let no_free_user = ctx.users.is_some() && user.is_none();
        let run_as = user.as_ref().map(UserLease::user);
        JobRunner {
            ctx,
            spec,
            cancel,
            executor: ctx.executors.for_spec(spec, run_as),
            user,
            no_free_user,
            stream,
            deadline: match (spec.kind, spec.timeout_s) {
                // A chat lives as long as its user talks to it: its idle
                // timeout ends it, not the one-shot default.
                (JobKind::Chat, None) => None,
                _ => Instant::now().checked_add(spec.timeout()),
            },
            agent_versions: RefCell::new(Vec::new()),
            chat: None,
        }
    }

    /// The same job, reading a chat session's messages from `chat`.
    pub fn with_chat(mut self, chat: Option<crossbeam_channel::Receiver<ChatMsg>>) -> Self {
        self.chat = chat;
        self
    }

    /// Where the job's work goes: the spec's `merge_mode`; a chat pushes
    /// only when its user asks (`create_pr`), and then always to a PR.
    pub(crate) fn merge_mode(&self) -> MergeMode {
        match self.spec.kind {
            JobKind::Chat => MergeMode::Pr,
            JobKind::Issue => self.spec.merge_mode,
        }
    }

    /// How every process of the job runs: its cancel token, `redactor`, and
    /// the journal stream as observer.
    pub(crate) fn opts<'r>(&'r self, redactor: &'r Redactor) -> RunOptions<'r> {
        RunOptions {
            cancel: self.cancel,
            redactor,
            observer: self
                .stream
                .as_deref()
                .map(|s| s as &dyn process::SpawnObserver),
        }
    }

    /// Whether the job's own deadline has passed.
    pub(crate) fn out_of_time(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Time left before the job's deadline, capped by `step` (and by
    /// [`MAX_STEP`]); at least a millisecond.
    pub(crate) fn budget(&self, step: Duration) -> Duration {
        budget_at(self.deadline, Instant::now(), step)
    }

    /// The result for a process that did not end by itself.
    pub(crate) fn interrupted(
        &self,
        what: &str,
        outcome: &ProcessOutcome,
        partial: &JobResult,
    ) -> Option<Stop> {
        match outcome.ended {
            Ended::Cancelled(reason) => Some(cancelled(partial, reason, Some(what))),
            Ended::TimedOut if self.out_of_time() => Some(self.time_limit(partial, Some(what))),
            _ => None,
        }
    }

    /// A `failed` result for the job's own time limit.
    fn time_limit(&self, partial: &JobResult, during: Option<&str>) -> Stop {
        let during = during.map(|w| format!(" (during {w})")).unwrap_or_default();
        end_with(
            partial,
            ResultStatus::Failed,
            format!(
                "time limit: the job ran longer than its timeout_s of {}s{during}",
                self.spec.timeout().as_secs()
            ),
        )
    }

    /// Between steps: stop if cancelled, out of time, or when the job's
    /// events can no longer be stored (a full disk): its result will be
    /// `failed` anyway, so nothing more is done, and nothing pushed.
    pub(crate) fn check_cancel(&self, r: &Reporter, partial: &JobResult) -> Result<(), Stop> {
        if let Some(reason) = self.cancel.reason() {
            return Err(cancelled(partial, reason, None));
        }
        if let Some(why) = r.write_error() {
            return Err(fail_with(
                partial,
                format!(
                    "the job's events could not be stored ({why}); stopped before the next step"
                ),
            ));
        }
        if self.out_of_time() {
            return Err(self.time_limit(partial, None));
        }
        Ok(())
    }

    /// Run `f` with a [`Git`] whose output lines become `git` log events,
    /// except its `--progress` lines (the mirror's clone and fetch): those
    /// become the `cloning` status detail, throttled.
    pub(crate) fn git<T>(
        &self,
        r: &mut Reporter,
        genv: &GitEnv,
        redactor: &Redactor,
        f: impl FnOnce(&mut Git<'_>) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let mut throttle = ProgressThrottle::default();
        let mut on_line = |line: &str| match parse_progress(line) {
            Some(p) => {
                if let Some(detail) = throttle.offer(&p, Instant::now()) {
                    r.status(Status::Cloning, detail);
                }
            }
            None => r.log(LogStream::Git, &format!("{line}\n")),
        };
        let mut git = Git::new(genv, self.cancel, redactor, &mut on_line)
            .with_timeout(Some(self.budget(GIT_STEP_TIMEOUT)));
        f(&mut git)
    }

    /// The result for a git step that failed (or was cancelled).
    pub(crate) fn git_failure(&self, partial: &JobResult, step: &str, e: GitError) -> Stop {
        if let Some(reason) = self.cancel.reason() {
            return cancelled(partial, reason, Some(step));
        }
        let hint = if e.is_auth_failure() {
            "bad credentials: "
        } else {
            ""
        };
        fail_with(partial, format!("{hint}{step} failed: {e}"))
    }
}

/// Time left at `now` before `deadline` (none: unlimited), capped by
/// `step` and [`MAX_STEP`]; at least a millisecond, so a step given no
/// time still ends by its own timeout instead of never starting.
pub(crate) fn budget_at(deadline: Option<Instant>, now: Instant, step: Duration) -> Duration {
    let left = deadline.map_or(MAX_STEP, |d| d.saturating_duration_since(now));
    left.min(step).min(MAX_STEP).max(Duration::from_millis(1))
}

/// `partial` ended with `status`; `msg` is both summary and error.
pub(crate) fn end_with(partial: &JobResult, status: ResultStatus, msg: String) -> Stop {
    let mut res = partial.clone();
    res.status = status;
    res.summary = msg.clone();
    res.error = Some(msg);
    Box::new(res)
}

/// `partial` ended `failed` with `msg`.
pub(crate) fn fail_with(partial: &JobResult, msg: String) -> Stop {
    end_with(partial, ResultStatus::Failed, msg)
}

/// `partial` ended `cancelled` for `reason`, `during` a step.
pub(crate) fn cancelled(partial: &JobResult, reason: CancelReason, during: Option<&str>) -> Stop {
    let mut stop = end_with(
        partial,
        ResultStatus::Cancelled,
        reason.describe().to_string(),
    );
    if let Some(w) = during {
        stop.summary = format!("{} (during {w})", reason.describe());
    }
    stop
}

/// `partial` ended with `status` and `summary` (no error): an outcome that
/// is not a failure of the runner.
pub(crate) fn outcome(partial: &JobResult, status: ResultStatus, summary: String) -> Stop {
    let mut res = partial.clone();
    res.status = status;
    res.summary = summary;
    Box::new(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_capped_by_the_deadline_the_step_and_the_ceiling() {
        let now = Instant::now();
        let step = Duration::from_secs(60);
        assert_eq!(budget_at(None, now, step), step);
        assert_eq!(budget_at(None, now, Duration::MAX), MAX_STEP);
        let soon = now.checked_add(Duration::from_secs(5));
        assert_eq!(budget_at(soon, now, step), Duration::from_secs(5));
        // Past the deadline: a millisecond, never zero or a panic.
        assert_eq!(
            budget_at(Some(now), now + step, step),
            Duration::from_millis(1)
        );
    }
}
