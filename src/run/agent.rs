//! The agent step: the job's agent, then each fallback (each from a clean
//! tree), until one succeeds; and single attempts (the repair runs use
//! them). The attempt's time limit travels in the [`AgentContext`].

use super::context::{fail_with, JobRunner, Stop};
use super::prepare::Prepared;
use crate::agents::{self, AgentAdapter, AgentContext, AttemptOutput};
use crate::job::event::{Attempt, JobResult, LogStream, Status, Usage};
use crate::job::spec::AgentSpec;
use crate::job::Reporter;
use crate::process;
use std::time::{Duration, Instant};

/// The agent that succeeded and what it said.
pub struct AgentWon<'s> {
    /// The winning agent's settings (repairs use the same agent).
    pub agent: &'s AgentSpec,
    /// Its final text, trimmed.
    pub final_text: String,
}

/// Run the job's agents in order until one succeeds. Every attempt is
/// recorded in `res` (and its usage added); the winner's name and model
/// too.
///
/// # Errors
/// `cancelled` / time limit while an agent ran, a failed reset between
/// attempts, or `failed` naming each agent's error when none succeeded.
pub fn run_agents<'s>(
    job: &JobRunner<'s>,
    r: &mut Reporter,
    res: &mut JobResult,
    p: &Prepared,
    prompt: &str,
    read_only: bool,
) -> Result<AgentWon<'s>, Stop> {
    let mut usage = Usage::default();
    let mut winner = None;
    // Why the previous agent failed: a fallback's status says it, so a
    // person watching sees why the job moved on.
    let mut previous_failure: Option<String> = None;
    for (i, agent_spec) in job.spec.agents_in_order().enumerate() {
        job.check_cancel(r, res)?;
        if i > 0 {
            // Every attempt starts from a clean tree.
            job.git(r, &p.genv, &p.redactor, |g| p.checkout.reset_clean(g))
                .map_err(|e| job.git_failure(res, "reset before the fallback agent", e))?;
        }
        let detail = match previous_failure.take() {
            Some(why) => format!("{} (fallback: {why})", agent_spec.name),
            None => agent_spec.name.clone(),
        };
        r.status(Status::RunningAgent, Some(detail));
        match attempt(job, r, p, agent_spec, prompt, read_only, None) {
            Ok(out) => {
                usage.add(&out.verdict.usage);
                res.attempts.push(attempt_record(agent_spec, &out));
                if let Some(stop) = job.interrupted("the agent run", &out.outcome, res) {
                    return Err(stop);
                }
                if out.verdict.success {
                    winner = Some((agent_spec, out));
                    break;
                }
                let why = out.verdict.error.as_deref().unwrap_or("unknown error");
                r.log(
                    LogStream::Runner,
                    &format!("agent {} failed: {why}\n", agent_spec.name),
                );
                previous_failure = Some(failure_detail(&agent_spec.name, why));
            }
            Err(e) => {
                r.log(
                    LogStream::Runner,
                    &format!("agent {}: {e}\n", agent_spec.name),
                );
                previous_failure = Some(failure_detail(&agent_spec.name, &e));
                res.attempts.push(Attempt {
                    agent: agent_spec.name.clone(),
                    exit_code: None,
                    duration_ms: 0,
                    error: Some(e),
                });
            }
        }
    }
    res.usage = usage;
    let Some((agent, out)) = winner else {
        return Err(fail_with(res, every_agent_failed(&res.attempts)));
    };
    res.agent = Some(agent.name.clone());
    res.model = agent.model.clone();
    Ok(AgentWon {
        agent,
        // The summary is the agent's prose: never a JSON line it printed.
        final_text: crate::agents::prose(&out.verdict.final_text),
    })
}

/// `<agent> failed: <why>` on one line of at most 200 characters, for a
/// fallback's `running_agent` detail.
fn failure_detail(agent: &str, why: &str) -> String {
    let first = why
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(why)
        .trim();
    let mut cut: String = first.chars().take(200).collect();
    if cut.len() < first.len() {
        cut.push('…');
    }
    format!("{agent} failed: {cut}")
}

/// One attempt of `agent_spec` with `prompt` in the prepared workdir;
/// `resume` continues the CLI's session (a chat's later turns).
///
/// # Errors
/// The message for an attempt that could not start (unknown agent, CLI
/// not installed); a CLI that starts and fails is an `Ok`.
pub fn attempt(
    job: &JobRunner,
    r: &mut Reporter,
    p: &Prepared,
    agent_spec: &AgentSpec,
    prompt: &str,
    read_only: bool,
    resume: Option<&str>,
) -> Result<AttemptOutput, String> {
    let adapter = job.ctx.agents.get(&agent_spec.name).ok_or_else(|| {
        format!(
            "unknown agent `{}` (built in: claude, codex, copilot; custom agents come from ADOS_CUSTOM_AGENTS)",
            agent_spec.name
        )
    })?;
    let base_env = process::allowlisted_env(None);
    let at_version = if adapter.versioned() {
        let printed = agent_version(job, r, adapter, &base_env);
        adapter.at_version(printed.as_deref().unwrap_or_default())
    } else {
        None
    };
    let adapter = at_version.as_deref().unwrap_or(adapter);
    let workdir = p.workdir(&job.spec.repo.path)?;
    // The runner may have written there since (checkout, registries, a
    // reset between agents): the job's user must own it all again.
    p.job_dir
        .hand_to(job.executor.run_as())
        .map_err(|e| format!("cannot give the job directory to the job's user: {e}"))?;
    let github_token = job.ctx.cfg.vcs.github_token.clone();
    let actx = AgentContext {
        spec: agent_spec,
        prompt,
        prompt_input: agents::PromptInput::Argument,
        // The attempt may not outlive the job.
        timeout: Some(job.budget(attempt_limit(agent_spec, adapter))),
        workdir,
        home: p.job_dir.home(),
        tmp: p.job_dir.tmp(),
        read_only,
        resume_session: resume,
        keys: &job.ctx.cfg.agent_keys,
        github_token: github_token.as_deref(),
        base_env: &base_env,
    };
    let started = Instant::now();
    let opts = job.opts(&p.redactor);
    let out = agents::run_attempt(adapter, &actx, job.executor.as_ref(), &opts, r).map_err(|e| {
        match job.executor.run_as() {
            Some(user) if e.source.kind() == std::io::ErrorKind::PermissionDenied => format!(
                "{e} (the agent runs as the job's own uid {}: install its CLI where every user can run it, \
                 such as /usr/local/bin, or set ADOS_JOB_UID_BASE=off)",
                user.uid
            ),
            _ => e.to_string(),
        }
    })?;
    job.ctx
        .metrics
        .observe_agent(&agent_spec.name, started.elapsed().as_secs_f64());
    Ok(out)
}

/// What `adapter`'s version command printed (its first line), asked once
/// per job and kept for its later attempts, repairs and turns (see
/// [`crate::agents::CopilotVersion`] for why per job); `None`, logged, when
/// it could not be asked. On the host it runs as the runner, with the
/// `PATH` of `base_env` (the agent's); with the Docker executor it runs in
/// the job's container, whose image holds the agent CLIs.
pub fn agent_version(
    job: &JobRunner,
    r: &mut Reporter,
    adapter: &dyn AgentAdapter,
    base_env: &[(String, String)],
) -> Option<String> {
    let name = adapter.name();
    if let Some((_, known)) = job.agent_versions.borrow().iter().find(|(n, _)| n == name) {
        return known.clone();
    }
    let path = base_env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let printed = match adapter.version_command() {
        Some(argv) if job.executor.shares_workspace() => crate::agents::probe_version(&argv, path),
        Some(argv) => version_in_job_container(job, &argv),
        None => Err("it has no version command".into()),
    };
    let line = match &printed {
        Ok(v) => format!("{name} --version: {v}\n"),
        Err(e) => {
            format!("could not ask {name} its version ({e}): driving it as its newest version\n")
        }
    };
    r.log(LogStream::Runner, &line);
    let printed = printed.ok();
    job.agent_versions
        .borrow_mut()
        .push((name.to_string(), printed.clone()));
    printed
}

/// The first line `argv` prints, run by the job's executor: with the Docker
/// executor the agent CLIs are the job image's, not the host's.
fn version_in_job_container(job: &JobRunner, argv: &[String]) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no version command".into());
    };
    let mut spec = process::CommandSpec::new(program.as_str(), "/")
        .timeout(Some(Duration::from_secs(10)))
        .kill_grace(Duration::from_secs(1));
    spec.args = args.to_vec();
    let redactor = crate::redact::Redactor::empty();
    let opts = process::RunOptions {
        cancel: job.cancel,
        redactor: &redactor,
        observer: None,
    };
    let mut first: Option<String> = None;
    let outcome = job
        .executor
        .run(&spec, &opts, &mut |_, line| {
            let line = line.trim();
            if first.is_none() && !line.is_empty() {
                first = Some(line.chars().take(200).collect());
            }
        })
        .map_err(|e| format!("cannot be started in the job container: {e}"))?;
    if !outcome.success() {
        return Err(format!(
            "`{}` failed in the job container ({})",
            argv.join(" "),
            outcome.describe()
        ));
    }
    first.ok_or_else(|| "it printed nothing".to_string())
}

/// The attempt's own limit: the job's `agent.timeout_s`, else the
/// adapter's default (the job's deadline caps it further).
fn attempt_limit(agent_spec: &AgentSpec, adapter: &dyn AgentAdapter) -> Duration {
    agent_spec
        .timeout_s
        .map(Duration::from_secs)
        .unwrap_or_else(|| adapter.default_timeout())
}

/// The record of one attempt for the result.
pub fn attempt_record(spec: &AgentSpec, out: &AttemptOutput) -> Attempt {
    Attempt {
        agent: spec.name.clone(),
        exit_code: out.outcome.exit_code,
        duration_ms: millis(out.outcome.duration),
        error: if out.verdict.success {
            None
        } else {
            Some(
                out.verdict
                    .error
                    .clone()
                    .unwrap_or_else(|| "the agent failed".into()),
            )
        },
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The error of a job whose every agent failed, naming each one's reason.
pub fn every_agent_failed(attempts: &[Attempt]) -> String {
    let reasons: Vec<String> = attempts
        .iter()
        .map(|a| format!("{}: {}", a.agent, a.error.as_deref().unwrap_or("failed")))
        .collect();
    format!("every agent failed ({})", reasons.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::Claude;

    fn attempt_of(agent: &str, error: Option<&str>) -> Attempt {
        Attempt {
            agent: agent.into(),
            exit_code: Some(1),
            duration_ms: 5,
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn every_failure_is_named() {
        assert_eq!(
            every_agent_failed(&[
                attempt_of("claude", Some("rate limited")),
                attempt_of("codex", None)
            ]),
            "every agent failed (claude: rate limited; codex: failed)"
        );
    }

    #[test]
    fn the_attempt_limit_is_the_jobs_or_the_adapters() {
        let mut spec = AgentSpec {
            name: "claude".into(),
            model: None,
            timeout_s: Some(7),
            args: Vec::new(),
        };
        assert_eq!(attempt_limit(&spec, &Claude), Duration::from_secs(7));
        spec.timeout_s = None;
        assert_eq!(attempt_limit(&spec, &Claude), Claude.default_timeout());
        assert_eq!(millis(Duration::MAX), u64::MAX);
    }
}
