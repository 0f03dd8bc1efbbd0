//! One small sequencer per stage: each picks its steps. Outcomes that are
//! not errors of the runner (no change, red tests, a secret in the diff, a
//! refused push) are results, not `Err`s; every path ends in a result.
//!
//! ```text
//! implement: prepare(fresh)    → agent → [no change?] → test-and-repair → deliver → PR
//! repair:    prepare(existing) → agent → [no change?] → test-and-repair → deliver → PR
//! plan:      prepare(target)   → agent (read-only) → [changed? discard] → its text
//! review:    prepare(existing) → diff → agent (read-only) → [changed? discard] → verdict
//! chat:      prepare(fresh) → (turn [→ deliver → PR])* → its summary (run/chat/)
//! ```
//!
//! The PR step runs only for `merge_mode: pr`, after a successful push;
//! a repair stage updates the PR of its branch, never opens a second.

use super::agent::{millis, run_agents};
use super::context::{outcome, JobRunner, Stop};
use super::deliver::deliver;
use super::prepare::{prepare, BranchStart};
use super::prompt;
use super::pull_request::pull_request;
use super::review;
use super::test_repair::test_and_repair;
use crate::job::event::{JobResult, LogStream, ResultStatus};
use crate::job::spec::{JobKind, Stage};
use crate::job::Reporter;
use std::time::Instant;

impl JobRunner<'_> {
    /// Run the job to its result. Never panics on bad input; the caller
    /// sends the result (`Reporter::finish`). The job directory (and the
    /// job's container) is removed before this returns, whatever happened.
    pub fn run(&self, r: &mut Reporter) -> JobResult {
        let started = Instant::now();
        // What the executor gives the job's commands (a fenced container's
        // proxy token) is masked like the job's own secrets.
        let given = self.executor.secrets();
        if !given.is_empty() {
            let redactor = r.redactor().with(given);
            r.set_redactor(std::sync::Arc::new(redactor));
        }
        let ended = match (self.spec.kind, self.spec.stage) {
            _ if self.no_free_user => Ok(JobResult::failed(
                "every job user (ADOS_JOB_UID_BASE + slot) is taken by another job: the job was not run; this is a bug, please report it",
            )),
            (JobKind::Chat, _) => super::chat::run(self, r),
            (JobKind::Issue, Stage::Implement | Stage::Repair) => change(self, r),
            (JobKind::Issue, Stage::Plan | Stage::Review) => read_only(self, r),
        };
        // Before the result is sent: a job container is gone by then.
        crate::executors::finish(self.executor.as_ref(), r);
        let mut result = match ended {
            Ok(res) => res,
            Err(stop) => *stop,
        };
        result.duration_ms = millis(started.elapsed());
        result
    }
}

/// A result to fill in: `failed` until a stage says otherwise.
fn partial(job: &JobRunner) -> JobResult {
    let mut res = JobResult::bare(ResultStatus::Failed, "", None);
    res.branch = Some(job.spec.branch.clone());
    res
}

/// The implement and repair stages: change the code, test, deliver.
fn change(job: &JobRunner, r: &mut Reporter) -> Result<JobResult, Stop> {
    let mut res = partial(job);
    let mut p = prepare(job, r, &res, BranchStart::for_stage(job.spec.stage))?;
    let base_prompt = prompt::build(job.spec, &p.files, &p.workdir);
    let won = run_agents(job, r, &mut res, &p, &base_prompt, false)?;
    let changed = job
        .git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
        .map_err(|e| job.git_failure(&res, "status", e))?;
    if changed.is_empty() {
        return Err(outcome(
            &res,
            ResultStatus::NeedsHuman,
            "agent made no changes".into(),
        ));
    }
    let tested = test_and_repair(job, r, &mut res, &p, won.agent, &base_prompt)?;
    // Nothing of the job's own runs from here on: a process an agent left
    // in its container cannot change the checkout after the tests.
    crate::executors::finish(job.executor.as_ref(), r);
    let summary = tested.repair_text.as_deref().unwrap_or(&won.final_text);
    let summary = summary.to_string();
    let res = deliver(job, r, res, &mut p, changed, &tested, &summary)?;
    pull_request(job, r, res, &tested, &summary)
}

/// The plan and review stages: the agent reads, its answer is the result.
/// Nothing is committed or pushed; files the agent changed anyway are
/// discarded and named in a `runner` log line.
fn read_only(job: &JobRunner, r: &mut Reporter) -> Result<JobResult, Stop> {
    let stage = job.spec.stage;
    let mut res = partial(job);
    if stage == Stage::Plan {
        // A plan makes no branch: nothing is pushed.
        res.branch = None;
    }
    let p = prepare(job, r, &res, BranchStart::for_stage(stage))?;
    let mut prompt = prompt::build(job.spec, &p.files, &p.workdir);
    if stage == Stage::Review {
        let target = &job.spec.repo.target_branch;
        // Read before the agent runs: the checkout's `.git` is still the
        // runner's own clone.
        let diff = job
            .git(r, &p.genv, &p.redactor, |g| {
                p.checkout.diff_against_target(g, review::REVIEW_DIFF_MAX)
            })
            .map_err(|e| job.git_failure(&res, "diff against the target branch", e))?;
        prompt.push_str(&review::diff_section(&diff, target));
    }
    let won = run_agents(job, r, &mut res, &p, &prompt, true)?;
    crate::executors::finish(job.executor.as_ref(), r);
    let changed = job
        .git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
        .map_err(|e| job.git_failure(&res, "status", e))?;
    if !changed.is_empty() {
        let word = if stage == Stage::Plan {
            "plan"
        } else {
            "review"
        };
        r.log(LogStream::Runner, &review::discarded_line(word, &changed));
        job.git(r, &p.genv, &p.redactor, |g| p.checkout.reset_clean(g))
            .map_err(|e| job.git_failure(&res, "discarding the agent's changes", e))?;
    }
    let answer = if won.final_text.is_empty() {
        "the agent returned no text".to_string()
    } else {
        won.final_text
    };
    (res.status, res.summary) = match stage {
        Stage::Review => review::review_outcome(&answer),
        _ => (ResultStatus::Completed, answer),
    };
    Ok(res)
}
