//! Answering one chat message: an agent turn that resumes the CLI's own
//! session, its `chat.reply`, and for `create_pr` the deliver and
//! pull-request steps of an issue job (commit what changed so far, scan,
//! push `branch`, open or update the PR). Outcomes that do not end the
//! session (a failed turn, a refused push, a secret in the diff) are told
//! to the user in the reply; only a cancel, the job's deadline or a
//! journal that cannot be written end it from here.

use super::prompt;
use crate::agents::prose;
use crate::job::chat::{ChatAction, ChatInput};
use crate::job::event::{JobResult, LogStream, ResultStatus, Status};
use crate::job::spec::AgentSpec;
use crate::job::Reporter;
use crate::run::agent::{attempt, attempt_record};
use crate::run::context::{JobRunner, Stop};
use crate::run::deliver::{deliver, short_sha};
use crate::run::prepare::Prepared;
use crate::run::pull_request::pull_request;
use crate::run::test_repair::Tested;

/// A live session: the CLI session to resume and what the chat's result
/// will say.
pub struct Session<'s> {
    agent: &'s AgentSpec,
    /// The CLI's session id once a turn succeeded (`None`: the next turn
    /// starts one, with the first turn's prompt).
    cli_session: Option<String>,
    /// Turns the agent answered.
    answered: u32,
    /// Attempts, usage, agent and model; `branch`, `commit_sha`, `pr_url`,
    /// `pr_number` and `changed_files` once something was pushed.
    res: JobResult,
}

impl<'s> Session<'s> {
    /// A session with `agent`, before its first turn.
    pub fn new(agent: &'s AgentSpec, res: JobResult) -> Session<'s> {
        Session {
            agent,
            cli_session: None,
            answered: 0,
            res,
        }
    }

    /// The result so far (for a cancel or a time limit).
    pub fn result(&self) -> &JobResult {
        &self.res
    }

    /// Answer `input`: its turn, then the PR when asked.
    ///
    /// # Errors
    /// Only what ends the session: a cancel, the job's deadline, a journal
    /// that cannot be written.
    pub fn answer(
        &mut self,
        job: &JobRunner,
        r: &mut Reporter,
        p: &mut Prepared,
        input: ChatInput,
    ) -> Result<(), Stop> {
        let id = &input.message_id;
        if let ChatAction::Unknown(action) = &input.action {
            r.log(
                LogStream::Runner,
                &format!("chat action `{action}` is not known to this runner: the message runs as plain text\n"),
            );
        }
        if input.action != ChatAction::CreatePr {
            if input.text.trim().is_empty() {
                // A CLI given an empty prompt fails or waits for one.
                r.chat_reply(
                    id,
                    "An empty message: nothing was asked of the agent.",
                    true,
                );
                return Ok(());
            }
            let reply = self.turn(job, r, p, &input.text)?;
            r.chat_reply(id, reply.text(), true);
            return Ok(());
        }
        if !input.text.trim().is_empty() {
            match self.turn(job, r, p, &input.text)? {
                Reply::Answer(text) => r.chat_reply(id, &text, false),
                Reply::Failed(text) => {
                    let text = format!("{text}\nNo pull request was opened: ask again.");
                    r.chat_reply(id, &text, true);
                    return Ok(());
                }
            }
        }
        let text = self.create_pr(job, r, p)?;
        r.chat_reply(id, &text, true);
        Ok(())
    }

    /// One agent turn with `message`, resuming the CLI's session.
    fn turn(
        &mut self,
        job: &JobRunner,
        r: &mut Reporter,
        p: &Prepared,
        message: &str,
    ) -> Result<Reply, Stop> {
        job.check_cancel(r, &self.res)?;
        let agent = self.agent;
        r.status(Status::RunningAgent, Some(agent.name.clone()));
        let first;
        let prompt = match &self.cli_session {
            Some(_) => message,
            None => {
                first = prompt::first(job.spec, &p.files, &p.workdir, message);
                &first
            }
        };
        let out = match attempt(job, r, p, agent, prompt, false, self.cli_session.as_deref()) {
            Ok(out) => out,
            Err(e) => {
                r.log(LogStream::Runner, &format!("agent {}: {e}\n", agent.name));
                return Ok(Reply::Failed(format!("The agent could not start: {e}")));
            }
        };
        self.res.usage.add(&out.verdict.usage);
        self.res.attempts.push(attempt_record(agent, &out));
        if let Some(stop) = job.interrupted("the agent's turn", &out.outcome, &self.res) {
            return Err(stop);
        }
        if !out.verdict.success {
            let why = out.verdict.error.as_deref().unwrap_or("unknown error");
            r.log(
                LogStream::Runner,
                &format!("agent {} failed: {why}\n", agent.name),
            );
            return Ok(Reply::Failed(format!("The agent failed: {why}")));
        }
        if let Some(id) = out.verdict.session_id {
            self.cli_session = Some(id);
        }
        self.answered = self.answered.saturating_add(1);
        self.res.agent = Some(agent.name.clone());
        self.res.model.clone_from(&agent.model);
        let text = prose(&out.verdict.final_text);
        Ok(Reply::Answer(if text.is_empty() {
            "(the agent answered with no text)".into()
        } else {
            text
        }))
    }

    /// Commit what changed so far, push `branch`, open or update its PR
    /// (whatever the spec's `merge_mode`: the user asked). The reply's
    /// text says what happened.
    fn create_pr(
        &mut self,
        job: &JobRunner,
        r: &mut Reporter,
        p: &mut Prepared,
    ) -> Result<String, Stop> {
        job.check_cancel(r, &self.res)?;
        // Never chat content in a commit or a PR: the spec's message and
        // PR text when it has them, else these words.
        let summary = format!("Made in ADOS chat session {}.", job.spec.job_id);
        let changed = match job.git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g)) {
            Ok(changed) => changed,
            Err(e) => return self.told(job, r, &job.git_failure(&self.res, "status", e)),
        };
        if changed.is_empty() {
            return match (&self.res.pr_url, &self.res.commit_sha) {
                (Some(url), _) => Ok(format!(
                    "Nothing changed since the last push: the pull request is {url}"
                )),
                // Pushed, but the PR step failed then: try it again.
                (None, Some(sha)) => {
                    let mut pushed = self.res.clone();
                    pushed.summary = format!("{} was pushed before.", short_sha(sha));
                    self.open_pr(job, r, pushed, &summary)
                }
                (None, None) => Ok(
                    "Nothing to commit: no file has changed yet, so no pull request was opened."
                        .into(),
                ),
            };
        }
        let before = match job.git(r, &p.genv, &p.redactor, |g| p.checkout.head(g)) {
            Ok(sha) => sha,
            Err(e) => return self.told(job, r, &job.git_failure(&self.res, "status", e)),
        };
        let mut base = self.res.clone();
        base.changed_files.clear();
        let pushed = match deliver(job, r, base, p, changed, &NOT_TESTED, &summary) {
            Ok(pushed) => pushed,
            Err(stop) => {
                self.still_running(job, r, &stop)?;
                // Not pushed: the commit is undone, so the next request
                // commits (and scans) everything since the last push as
                // one. Should that fail, no later push may carry the
                // unscanned commit: the session ends.
                job.git(r, &p.genv, &p.redactor, |g| {
                    p.checkout.undo_commits(g, &before)
                })
                .map_err(|e| job.git_failure(&self.res, "undo of the unpushed commit", e))?;
                return self.told(job, r, &stop);
            }
        };
        // The branch is ours on the remote now: later pushes fast-forward.
        p.replaced = None;
        self.res.branch.clone_from(&pushed.branch);
        self.res.commit_sha.clone_from(&pushed.commit_sha);
        for file in &pushed.changed_files {
            if !self.res.changed_files.contains(file) {
                self.res.changed_files.push(file.clone());
            }
        }
        self.open_pr(job, r, pushed, &summary)
    }

    /// Open or update the PR of `pushed` (its `branch` and `commit_sha`);
    /// the reply's text either way.
    fn open_pr(
        &mut self,
        job: &JobRunner,
        r: &mut Reporter,
        pushed: JobResult,
        summary: &str,
    ) -> Result<String, Stop> {
        match pull_request(job, r, pushed, &NOT_TESTED, summary) {
            Ok(opened) => {
                self.res.pr_url.clone_from(&opened.pr_url);
                self.res.pr_number = opened.pr_number;
                Ok(opened.summary)
            }
            Err(stop) => {
                self.still_running(job, r, &stop)?;
                Ok(stop.summary.clone())
            }
        }
    }

    /// The reply for a step that stopped without pushing, unless `stop`
    /// (or the job's state) ends the session.
    fn told(&self, job: &JobRunner, r: &Reporter, stop: &JobResult) -> Result<String, Stop> {
        self.still_running(job, r, stop)?;
        Ok(format!("Nothing was pushed: {}", stop.summary))
    }

    /// `Err` when `stop` (or the job's state) ends the session: a cancel,
    /// the deadline, a journal that cannot be written.
    fn still_running(&self, job: &JobRunner, r: &Reporter, stop: &JobResult) -> Result<(), Stop> {
        job.check_cancel(r, &self.res)?;
        if stop.status == ResultStatus::Cancelled {
            let mut ended = self.res.clone();
            ended.status = ResultStatus::Cancelled;
            ended.summary.clone_from(&stop.summary);
            ended.error.clone_from(&stop.error);
            return Err(Box::new(ended));
        }
        Ok(())
    }

    /// The session's result once it ended for `why`, with `unpushed` files
    /// changed since the last push (lost with the checkout).
    pub fn finish(mut self, why: super::inbox::Ending, unpushed: usize) -> JobResult {
        let mut summary = format!(
            "chat session ended ({}) after {}",
            why.describe(),
            crate::words::count(self.answered as usize, "answered message")
        );
        match (&self.res.pr_url, &self.res.commit_sha, &self.res.branch) {
            (Some(url), Some(sha), Some(branch)) => summary.push_str(&format!(
                "; {} pushed to {branch}, pull request {url}",
                short_sha(sha)
            )),
            (None, Some(sha), Some(branch)) => {
                summary.push_str(&format!("; {} pushed to {branch}", short_sha(sha)))
            }
            _ => summary.push_str("; nothing was pushed"),
        }
        if unpushed > 0 {
            summary.push_str(&format!(
                "; {} changed since then and not pushed (a create_pr before the end would have pushed them)",
                crate::words::count(unpushed, "file")
            ));
        }
        self.res.status = ResultStatus::Completed;
        self.res.summary = summary;
        self.res.error = None;
        self.res
    }
}

/// A chat runs no tests before a push: its user asked for the push.
const NOT_TESTED: Tested = Tested {
    ran: false,
    green: true,
    repair_text: None,
};

/// What a turn says back.
enum Reply {
    /// The agent's answer.
    Answer(String),
    /// Why there is no answer.
    Failed(String),
}

impl Reply {
    fn text(&self) -> &str {
        match self {
            Reply::Answer(t) | Reply::Failed(t) => t,
        }
    }
}
