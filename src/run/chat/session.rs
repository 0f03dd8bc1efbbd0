//! A chat session from its spec to its result: refuse an agent that cannot
//! resume, prepare the checkout once (the prepare step of an issue job),
//! then answer each message with a turn in that checkout until the chat
//! ends. The slot it holds is the worker thread it runs on.
//!
//! ```text
//! prepare → waiting_input → (running_agent [→ committing → pushing → creating_pr] → waiting_input)* → result
//! ```

use super::inbox::{ChatInbox, Next};
use super::turn::Session;
use crate::job::event::{JobResult, ResultStatus, Status};
use crate::job::Reporter;
use crate::run::agent::agent_version;
use crate::run::context::{fail_with, JobRunner, Stop};
use crate::run::prepare::{prepare, BranchStart};
use std::time::Duration;

/// Run the chat session `job` to its result.
///
/// # Errors
/// The result of a session that could not start (no control plane, an
/// agent that cannot resume, a failed prepare), was cancelled or ran out
/// of time; the checkout is removed either way.
pub fn run(job: &JobRunner, r: &mut Reporter) -> Result<JobResult, Stop> {
    let spec = job.spec;
    let res = JobResult::bare(ResultStatus::Failed, "", None);
    let Some(rx) = job.chat.clone() else {
        return Err(fail_with(
            &res,
            "a chat session needs the control plane to talk to: it runs under `ados-work-runner run`, not `exec`".into(),
        ));
    };
    let Some(adapter) = job.ctx.agents.get(&spec.agent.name) else {
        return Err(fail_with(
            &res,
            format!(
                "unknown agent `{}` in agent.name (built in: claude, codex, copilot)",
                spec.agent.name
            ),
        ));
    };
    let env = crate::process::allowlisted_env(None);
    adapter
        .can_resume(&mut || agent_version(job, r, adapter, &env))
        .map_err(|why| fail_with(&res, why))?;
    // A fresh branch from target_branch, as an implement job: the chat's
    // work is pushed only when its user asks (`create_pr`).
    let mut p = prepare(job, r, &res, BranchStart::Fresh)?;
    let mut session = Session::new(&spec.agent, res);
    let mut inbox = ChatInbox::new(rx);
    let idle = Duration::from_secs(spec.idle_timeout_s);
    let ending = loop {
        job.check_cancel(r, session.result())?;
        r.status(Status::WaitingInput, None);
        match inbox.next(job.budget(idle), job.cancel) {
            Next::Input(input) => session.answer(job, r, &mut p, input)?,
            Next::End(ending) => break ending,
            // The check at the top of the loop gives the result.
            Next::Cancelled => {}
        }
    };
    // The wait may have ended at the job's own deadline.
    job.check_cancel(r, session.result())?;
    for input in inbox.left_over() {
        r.chat_reply(
            &input.message_id,
            &format!(
                "This message was not run: the session ended first ({}).",
                ending.describe()
            ),
            true,
        );
    }
    let unpushed = job
        .git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
        .map(|c| c.len())
        .unwrap_or(0);
    Ok(session.finish(ending, unpushed))
}
