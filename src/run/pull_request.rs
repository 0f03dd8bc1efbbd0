//! The pull-request step, after a successful push with `merge_mode: pr`:
//! open the PR (GitHub, Bitbucket) or MR (GitLab) from the job's branch to
//! the target branch, or update the open one — a re-run or a repair stage
//! on the same branch never opens a second. The provider's REST dialects
//! are [`crate::vcs::forge`]'s; this step adds the `creating_pr` status,
//! the log line and the result.
//!
//! The result keeps the status the push gave it (`completed` with green
//! tests, `needs-human` with red ones — then the PR is a draft) and gains
//! `pr_url` / `pr_number`. When no PR exists afterwards the job is
//! `failed`, and since the branch *was* pushed, `branch` and `commit_sha`
//! stay set and the summary says so, with the forge's message (which names
//! the setting to fix, never a secret).
//!
//! The forge's waits (rate limits, up to 5 minutes; retry backoff) run on
//! the job's thread and end early when the job is cancelled ([`JobClock`]):
//! a cancel never waits out a rate limit.

use super::context::{cancelled, fail_with, JobRunner, Stop};
use super::deliver::short_sha;
use super::test_repair::Tested;
use crate::cancel::CancelToken;
use crate::job::event::{JobResult, LogStream, Status};
use crate::job::spec::{MergeMode, Provider};
use crate::job::Reporter;
use crate::vcs::forge::{
    self, BodyFacts, Clock, ForgeCredentials, ForgeError, ForgeTarget, OpenedPr, PullRequest,
};
use std::time::{Duration, SystemTime};

/// Open or update the job's PR when `merge_mode` is `pr`; `res` is the
/// result of the push (`branch` and `commit_sha` set). Other merge modes
/// pass `res` through.
///
/// # Errors
/// `failed` when no PR exists afterwards; `cancelled` when the job was
/// cancelled before the step began.
pub fn pull_request(
    job: &JobRunner,
    r: &mut Reporter,
    mut res: JobResult,
    tested: &Tested,
    agent_summary: &str,
) -> Result<JobResult, Stop> {
    let spec = job.spec;
    if job.merge_mode() != MergeMode::Pr {
        return Ok(res);
    }
    let word = pr_word(spec.repo.provider);
    if !job.ctx.open_prs {
        res.summary = format!(
            "{} No {word} was opened: exec was given no --provider.",
            res.summary
        );
        return Ok(res);
    }
    job.check_cancel(r, &res)?;
    r.status(Status::CreatingPr, None);
    let opened = open(job, &res, tested, agent_summary);
    if let (Err(_), Some(reason)) = (&opened, job.cancel.reason()) {
        return Err(cancelled(&res, reason, Some("creating the pull request")));
    }
    match opened {
        Ok(opened) => {
            let did = if opened.created { "opened" } else { "updated" };
            r.log(
                LogStream::Runner,
                &format!("{did} {word} #{}: {}\n", opened.number, opened.url),
            );
            let draft = if tested.green { "" } else { " as a draft" };
            res.summary = format!(
                "{did} {word} #{} {}{draft}; {}",
                opened.number, opened.url, res.summary
            );
            res.pr_url = Some(opened.url);
            res.pr_number = Some(opened.number);
            Ok(res)
        }
        Err(e) => {
            let sha = res.commit_sha.as_deref().map(short_sha).unwrap_or("");
            let branch = res.branch.as_deref().unwrap_or(&spec.branch);
            Err(fail_with(
                &res,
                format!("pushed {sha} to {branch}, but no {word} exists: {e}"),
            ))
        }
    }
}

/// The PR for this job's result, opened or updated.
fn open(
    job: &JobRunner,
    res: &JobResult,
    tested: &Tested,
    agent_summary: &str,
) -> Result<OpenedPr, ForgeError> {
    let spec = job.spec;
    let branch = res.branch.as_deref().unwrap_or(&spec.branch);
    let target = ForgeTarget::from_repo(&spec.repo, branch, job.ctx.cfg.remote_policy)?;
    let creds = ForgeCredentials::choose(
        spec.repo.provider,
        spec.vcs_token.as_deref(),
        &job.ctx.cfg.vcs,
    )?;
    let usage = &res.usage;
    let facts = BodyFacts {
        summary: agent_summary,
        changed_files: &res.changed_files,
        tests: res.tests.as_ref(),
        agent: res.agent.as_deref().unwrap_or(&spec.agent.name),
        model: res.model.as_deref(),
        attempts: res.attempts.len(),
        usage: (usage.input_tokens > 0 || usage.output_tokens > 0 || usage.cost_usd.is_some())
            .then_some(usage),
    };
    let pr = PullRequest::for_job(spec, &facts, !tested.green);
    let clock = JobClock { cancel: job.cancel };
    forge::open_or_update(&job.ctx.net, &target, &pr, &creds, &clock)
}

/// The real clock, whose sleeps end when the job is cancelled.
struct JobClock<'a> {
    cancel: &'a CancelToken,
}

impl Clock for JobClock<'_> {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, d: Duration) {
        // A wake-up already taken leaves the flag set: checked first.
        if !self.cancel.is_cancelled() {
            let _ = self.cancel.wake_rx().recv_timeout(d);
        }
    }
}

/// What the provider calls it.
fn pr_word(provider: Provider) -> &'static str {
    match provider {
        Provider::Gitlab => "merge request",
        Provider::Github | Provider::Bitbucket => "pull request",
    }
}
