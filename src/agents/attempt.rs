//! One agent attempt: build the command, run it, stream its events to the
//! job's reporter, and judge it.

use super::adapter::{
    AgentAdapter, AgentContext, AgentVerdict, LongPrompt, Parsed, PromptInput, PROMPT_ARG_MAX,
};
use crate::executors::Executor;
use crate::job::event::{Event, LogStream};
use crate::job::Reporter;
use crate::process::{OutputStream, ProcessOutcome, RunOptions, SpawnError};

/// What one attempt produced.
#[derive(Clone, Debug)]
pub struct AttemptOutput {
    /// What happened to the process.
    pub outcome: ProcessOutcome,
    /// The CLI's own verdict.
    pub verdict: AgentVerdict,
}

/// Run one attempt of `adapter` in `ctx` on `executor`.
///
/// Every parsed event goes out as an `agent` event; every log-only line
/// and every raw stderr line as an `agent` log line. Creates `ctx.home`,
/// `ctx.tmp` and the CLI's config home first. A prompt over
/// [`PROMPT_ARG_MAX`] goes on stdin or in a file under `ctx.tmp`, as the
/// CLI allows ([`AgentAdapter::long_prompt`]).
///
/// # Errors
///
/// [`SpawnError`] when those directories cannot be made or the CLI cannot
/// be started; a CLI that starts and fails is an `Ok` with a failed verdict.
pub fn run_attempt(
    adapter: &dyn AgentAdapter,
    ctx: &AgentContext,
    executor: &dyn Executor,
    opts: &RunOptions,
    reporter: &mut Reporter,
) -> Result<AttemptOutput, SpawnError> {
    let dirs = [
        Some(ctx.home.to_path_buf()),
        Some(ctx.tmp.to_path_buf()),
        adapter.config_dir(ctx),
    ];
    for dir in dirs.into_iter().flatten() {
        std::fs::create_dir_all(&dir).map_err(|e| SpawnError {
            program: adapter.program().to_string(),
            source: std::io::Error::new(
                e.kind(),
                format!("could not create {}: {e}", dir.display()),
            ),
        })?;
    }
    let placed = place_long_prompt(adapter, ctx, executor.run_as()).map_err(|e| SpawnError {
        program: adapter.program().to_string(),
        source: std::io::Error::new(e.kind(), format!("could not write the prompt file: {e}")),
    })?;
    let ctx = placed.as_ref().unwrap_or(ctx);
    let spec = adapter.command(ctx);
    let mut parser = adapter.parser();
    let outcome = executor.run(&spec, opts, &mut |stream, line| {
        crate::executors::pass_notes(executor, reporter);
        if stream == OutputStream::Stderr {
            reporter.log(LogStream::Agent, &format!("{line}\n"));
        }
        for p in parser.line(stream, line) {
            match p {
                Parsed::Event(e) => reporter.emit(Event::Agent(e)),
                Parsed::Log(text) => reporter.log(LogStream::Agent, &format!("{text}\n")),
            }
        }
    });
    crate::executors::pass_notes(executor, reporter);
    let outcome = outcome?;
    let mut verdict = parser.finish(&outcome);
    if verdict.session_id.is_none() {
        // Copilot names its session only in the final line; the id the
        // runner chose still resumes it when that line never came.
        verdict.session_id = spec
            .args
            .iter()
            .position(|a| a == "--session-id")
            .and_then(|i| spec.args.get(i + 1))
            .cloned();
    }
    if outcome.leaked {
        reporter.log(
            LogStream::Runner,
            &format!(
                "{} left a background process holding its output; it was killed\n",
                adapter.name()
            ),
        );
    }
    Ok(AttemptOutput { outcome, verdict })
}

/// `ctx` with a prompt too long for an argument moved to where the CLI
/// takes it; `None` when it can stay an argument.
fn place_long_prompt<'a>(
    adapter: &dyn AgentAdapter,
    ctx: &AgentContext<'a>,
    owner: Option<crate::process::RunAs>,
) -> std::io::Result<Option<AgentContext<'a>>> {
    if ctx.prompt.len() <= PROMPT_ARG_MAX || ctx.prompt_input != PromptInput::Argument {
        return Ok(None);
    }
    let input = match adapter.long_prompt() {
        LongPrompt::Stdin => PromptInput::Stdin,
        LongPrompt::File => {
            let path = ctx.tmp.join("ados-prompt.md");
            crate::registries::write_private(&path, ctx.prompt)?;
            if let Some(user) = owner {
                // Private to the agent's user, who must read it.
                std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))?;
            }
            PromptInput::File(path)
        }
    };
    let mut placed = ctx.clone();
    placed.prompt_input = input;
    Ok(Some(placed))
}
