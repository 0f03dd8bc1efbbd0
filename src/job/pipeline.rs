//! The issue-job pipeline: from clone to pushed commit, every step an event.
//!
//! ```text
//! preparing → cloning → running_agent (agent, then each fallback, each from
//! a clean tree) → testing → [repairing → testing]* → committing → pushing
//! ```
//!
//! Outcomes that are not errors of the runner (no change, red tests, a
//! secret in the diff, a refused push) are results, not `Err`s: see
//! [`JobRunner::run`]. The job directory is removed when the runner is
//! dropped, whatever happened.

use crate::agents::{self, AgentContext, AgentRegistry};
use crate::config::Config;
use crate::executors::{Executor, HostExecutor};
use crate::git::{self, Author, Checkout, Git, GitEnv, GitError, Mirror, PushMode, PushOutcome};
use crate::job::event::{
    Attempt, Event, JobResult, LogStream, ResultStatus, Status, TestSummary, Usage,
};
use crate::job::prompt;
use crate::job::spec::{AgentSpec, JobKind, JobSpec, MergeMode, Stage};
use crate::job::{CancelToken, Reporter};
use crate::journal::JobStream;
use crate::link::Waker;
use crate::metrics::Metrics;
use crate::process::{self, CommandSpec, Ended, ProcessOutcome, RunOptions};
use crate::redact::Redactor;
use crate::workspace::{JobDir, Workspace};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest a single git command may take.
const GIT_STEP_TIMEOUT: Duration = Duration::from_secs(1800);
/// Lines of failing test output given to a repair run.
const REPAIR_TAIL_LINES: usize = 80;
/// Bytes of test output kept for the repair prompt.
const TEST_OUTPUT_KEEP: usize = 256 * 1024;

/// What every job shares: configuration, workspace, agents, executor.
pub struct JobContext {
    /// The runner's configuration.
    pub cfg: Arc<Config>,
    /// The on-disk layout.
    pub workspace: Workspace,
    /// Agent adapters (built in and custom).
    pub agents: AgentRegistry,
    /// Where commands run.
    pub executor: Box<dyn Executor>,
    /// Metrics to update per job.
    pub metrics: Arc<Metrics>,
    /// Redactor for the runner's own secrets (jobs add theirs).
    pub redactor: Redactor,
    /// Wakes the link after journal writes.
    pub waker: Waker,
    /// PATH given to children.
    pub path_env: String,
}

impl JobContext {
    /// Build the shared context.
    pub fn new(
        cfg: Arc<Config>,
        workspace: Workspace,
        metrics: Arc<Metrics>,
        waker: Waker,
    ) -> Self {
        let redactor = Redactor::new(cfg.secrets());
        let agents = AgentRegistry::new(&cfg.custom_agents);
        let path_env =
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
        JobContext {
            cfg,
            workspace,
            agents,
            executor: Box::new(HostExecutor),
            metrics,
            redactor,
            waker,
            path_env,
        }
    }
}

/// Runs one job. Made per job; holds borrowed context only.
pub struct JobRunner<'a> {
    ctx: &'a JobContext,
    spec: &'a JobSpec,
    cancel: &'a CancelToken,
    stream: Option<Arc<JobStream>>,
    deadline: Instant,
}

/// Why the pipeline stopped early: already a result.
type Stop = Box<JobResult>;

impl<'a> JobRunner<'a> {
    /// A runner for `spec`. `stream` (the job's journal) records process
    /// groups for restart recovery; `exec` has none.
    pub fn new(
        ctx: &'a JobContext,
        spec: &'a JobSpec,
        cancel: &'a CancelToken,
        stream: Option<Arc<JobStream>>,
    ) -> JobRunner<'a> {
        JobRunner {
            ctx,
            spec,
            cancel,
            stream,
            deadline: Instant::now() + spec.timeout(),
        }
    }

    /// Run the job to its result. Never panics on bad input; the caller
    /// sends the result (`Reporter::finish`).
    pub fn run(&self, r: &mut Reporter) -> JobResult {
        let started = Instant::now();
        let mut result = match self.spec.kind {
            JobKind::Chat => JobResult::failed(
                "chat sessions are not supported by this runner version yet; run chat on another runner (ADOS_MODE=issue here)",
            ),
            JobKind::Issue => match self.run_issue(r) {
                Ok(res) | Err(res) => *res,
            },
        };
        result.duration_ms = started.elapsed().as_millis() as u64;
        result
    }

    fn opts<'r>(&'r self, redactor: &'r Redactor) -> RunOptions<'r> {
        RunOptions {
            cancel: self.cancel,
            redactor,
            observer: self
                .stream
                .as_deref()
                .map(|s| s as &dyn process::SpawnObserver),
        }
    }

    /// The result for a process that did not end by itself.
    fn interrupted(
        &self,
        what: &str,
        outcome: &ProcessOutcome,
        partial: JobResult,
    ) -> Option<Stop> {
        match outcome.ended {
            Ended::Cancelled(reason) => Some(cancelled(&partial, reason, Some(what))),
            Ended::TimedOut if Instant::now() >= self.deadline => {
                Some(self.time_limit(&partial, Some(what)))
            }
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

    /// Time left before the job's deadline, capped by `step`.
    fn budget(&self, step: Duration) -> Duration {
        self.deadline
            .saturating_duration_since(Instant::now())
            .min(step)
            .max(Duration::from_millis(1))
    }

    /// Between steps: stop if cancelled or out of time.
    fn check_cancel(&self, partial: &JobResult) -> Result<(), Stop> {
        if let Some(reason) = self.cancel.reason() {
            return Err(cancelled(partial, reason, None));
        }
        if Instant::now() >= self.deadline {
            return Err(self.time_limit(partial, None));
        }
        Ok(())
    }

    /// Run `f` with a [`Git`] whose output lines become `git` log events.
    fn git<T>(
        &self,
        r: &mut Reporter,
        genv: &GitEnv,
        redactor: &Redactor,
        f: impl FnOnce(&mut Git<'_>) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let mut on_line = |line: &str| r.log(LogStream::Git, &format!("{line}\n"));
        let mut git = Git::new(genv, self.cancel, redactor, &mut on_line)
            .with_timeout(Some(self.budget(GIT_STEP_TIMEOUT)));
        f(&mut git)
    }

    fn run_issue(&self, r: &mut Reporter) -> Result<Box<JobResult>, Stop> {
        let spec = self.spec;
        let redactor = r.redactor().as_ref().clone();
        let mut res = JobResult::bare(ResultStatus::Failed, "", None);
        res.branch = Some(spec.branch.clone());

        // preparing
        r.status(Status::Preparing, Some(format!("job {}", spec.job_id)));
        let job_dir = self
            .ctx
            .workspace
            .create_job_dir(spec.job_id.as_str())
            .map_err(|e| {
                fail_with(
                    &res,
                    format!("cannot create the job directory under WORKSPACE_DIR: {e}"),
                )
            })?;
        let auth = git::auth_for(
            spec.repo.provider,
            spec.vcs_token.as_deref(),
            &self.ctx.cfg.vcs,
        );
        let genv = GitEnv::new(
            job_dir.home(),
            self.ctx.cfg.remote_policy,
            &spec.repo.clone_url,
            auth,
            None,
        );
        let author = Author {
            name: spec.commit.author_name.clone(),
            email: spec.commit.author_email.clone(),
        };
        self.check_cancel(&res)?;

        // cloning
        r.status(Status::Cloning, Some(spec.repo.clone_url.clone()));
        let ws = &self.ctx.workspace;
        let url = &spec.repo.clone_url;
        let mirror = self
            .git(r, &genv, &redactor, |g| Mirror::ensure(ws, url, g))
            .map_err(|e| self.git_failure(&res, "clone", e))?;
        r.log(
            LogStream::Runner,
            &format!(
                "{} the repository mirror\n",
                if mirror.reused() {
                    "updated"
                } else {
                    "created"
                }
            ),
        );
        let mut checkout = self
            .git(r, &genv, &redactor, |g| {
                Checkout::clone(g, &mirror, job_dir.repo(), &spec.repo.target_branch)
            })
            .map_err(|e| self.git_failure(&res, "clone", e))?;
        self.check_cancel(&res)?;
        let remote_sha = match spec.stage {
            Stage::Review | Stage::Repair => None,
            _ => self
                .git(r, &genv, &redactor, |g| {
                    checkout.remote_branch(g, &spec.branch)
                })
                .map_err(|e| self.git_failure(&res, "ls-remote", e))?,
        };
        let branch_exists = remote_sha.is_some();
        match spec.stage {
            Stage::Review | Stage::Repair => self
                .git(r, &genv, &redactor, |g| {
                    checkout.checkout_existing(g, &spec.branch)
                })
                .map_err(|e| self.git_failure(&res, "checkout of the existing branch", e))?,
            _ => {
                if branch_exists {
                    r.log(
                        LogStream::Runner,
                        &format!(
                            "{} already exists on the remote: starting again from {} (it will be replaced with --force-with-lease)\n",
                            spec.branch, spec.repo.target_branch
                        ),
                    );
                }
                self.git(r, &genv, &redactor, |g| {
                    checkout.start_branch(g, &spec.branch)
                })
                .map_err(|e| self.git_failure(&res, "branch creation", e))?
            }
        }
        let registry_files =
            crate::registries::write(&spec.registries, job_dir.repo(), job_dir.home())
                .map_err(|e| fail_with(&res, format!("cannot write registry credentials: {e}")))?;
        let patterns = registry_files.exclude_patterns();
        let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
        checkout
            .add_exclude(&patterns)
            .map_err(|e| self.git_failure(&res, "exclude", e))?;
        let workdir = workdir_of(job_dir.repo(), &spec.repo.path);
        if !workdir.is_dir() {
            return Err(fail_with(
                &res,
                format!(
                    "repo.path `{}` is not a directory in the repository",
                    spec.repo.path
                ),
            ));
        }

        // running_agent, with fallbacks
        let base_prompt = prompt::build(spec, job_dir.repo(), &workdir);
        let read_only = matches!(spec.stage, Stage::Plan | Stage::Review);
        let mut usage = Usage::default();
        let mut winner: Option<(&AgentSpec, agents::AttemptOutput)> = None;
        for (i, agent_spec) in spec.agents_in_order().enumerate() {
            self.check_cancel(&res)?;
            if i > 0 {
                // Every attempt starts from a clean tree.
                self.git(r, &genv, &redactor, |g| checkout.reset_clean(g))
                    .map_err(|e| self.git_failure(&res, "reset before the fallback agent", e))?;
            }
            r.status(Status::RunningAgent, Some(agent_spec.name.clone()));
            let attempt = self.attempt(
                r,
                agent_spec,
                &base_prompt,
                &workdir,
                &job_dir,
                read_only,
                None,
                &redactor,
            );
            match attempt {
                Ok(out) => {
                    usage.add(&out.verdict.usage);
                    res.attempts.push(attempt_record(agent_spec, &out));
                    if let Some(stop) = self.interrupted("the agent run", &out.outcome, res.clone())
                    {
                        return Err(stop);
                    }
                    if out.verdict.success {
                        winner = Some((agent_spec, out));
                        break;
                    }
                    r.log(
                        LogStream::Runner,
                        &format!(
                            "agent {} failed: {}\n",
                            agent_spec.name,
                            out.verdict.error.as_deref().unwrap_or("unknown error")
                        ),
                    );
                }
                Err(e) => {
                    r.log(
                        LogStream::Runner,
                        &format!("agent {}: {e}\n", agent_spec.name),
                    );
                    res.attempts.push(Attempt {
                        agent: agent_spec.name.clone(),
                        exit_code: None,
                        duration_ms: 0,
                        error: Some(e),
                    });
                }
            }
        }
        res.usage = usage.clone();
        let Some((agent_spec, out)) = winner else {
            let reasons: Vec<String> = res
                .attempts
                .iter()
                .map(|a| format!("{}: {}", a.agent, a.error.as_deref().unwrap_or("failed")))
                .collect();
            return Err(fail_with(
                &res,
                format!("every agent failed ({})", reasons.join("; ")),
            ));
        };
        res.agent = Some(agent_spec.name.clone());
        res.model = agent_spec.model.clone();
        let mut summary = out.verdict.final_text.trim().to_string();

        if read_only {
            res.status = ResultStatus::Completed;
            res.summary = if summary.is_empty() {
                "the agent returned no text".into()
            } else {
                summary
            };
            return Ok(Box::new(res));
        }

        // no change → needs-human, nothing pushed
        let changed = self
            .git(r, &genv, &redactor, |g| checkout.changed_files(g))
            .map_err(|e| self.git_failure(&res, "status", e))?;
        if changed.is_empty() {
            res.status = ResultStatus::NeedsHuman;
            res.summary = "agent made no changes".into();
            return Ok(Box::new(res));
        }

        // testing, repairing
        let test_argv = match &spec.test_command {
            Some(cmd) => prompt::split_command(cmd)
                .map_err(|e| fail_with(&res, format!("test_command cannot be parsed: {e}")))?,
            None => prompt::detect_test_command(&workdir).unwrap_or_default(),
        };
        let mut tests_green = true;
        if !test_argv.is_empty() {
            let mut repairs_left = spec.max_repair_attempts;
            loop {
                self.check_cancel(&res)?;
                r.status(Status::Testing, Some(test_argv.join(" ")));
                let (summary_t, output) =
                    self.run_tests(r, &test_argv, &workdir, &job_dir, &redactor, &res)?;
                tests_green = summary_t.passed;
                res.tests = Some(summary_t);
                if tests_green || repairs_left == 0 {
                    break;
                }
                repairs_left -= 1;
                r.status(Status::Repairing, Some(agent_spec.name.clone()));
                let repair_prompt = prompt::repair(
                    &base_prompt,
                    &test_argv.join(" "),
                    &prompt::tail(&output, REPAIR_TAIL_LINES),
                );
                match self.attempt(
                    r,
                    agent_spec,
                    &repair_prompt,
                    &workdir,
                    &job_dir,
                    false,
                    None,
                    &redactor,
                ) {
                    Ok(rep) => {
                        res.usage.add(&rep.verdict.usage);
                        res.attempts.push(attempt_record(agent_spec, &rep));
                        if let Some(stop) =
                            self.interrupted("the repair run", &rep.outcome, res.clone())
                        {
                            return Err(stop);
                        }
                        if !rep.verdict.final_text.trim().is_empty() {
                            summary = rep.verdict.final_text.trim().to_string();
                        }
                    }
                    Err(e) => {
                        r.log(LogStream::Runner, &format!("repair run: {e}\n"));
                        break;
                    }
                }
            }
        } else {
            r.log(
                LogStream::Runner,
                "no test command given or detected: tests skipped\n",
            );
        }

        // committing
        self.check_cancel(&res)?;
        r.status(Status::Committing, None);
        // Tests and repairs may have changed the tree since the agent ran;
        // with no test command it is as the agent left it.
        let changed = if test_argv.is_empty() {
            changed
        } else {
            self.git(r, &genv, &redactor, |g| checkout.changed_files(g))
                .map_err(|e| self.git_failure(&res, "status", e))?
        };
        let changed: Vec<String> = changed.into_iter().map(|c| c.path).collect();
        if changed.is_empty() {
            res.status = ResultStatus::NeedsHuman;
            res.summary = "agent made no changes".into();
            return Ok(Box::new(res));
        }
        let message = commit_message(spec, &summary);
        let Some(sha) = self
            .git(r, &genv, &redactor, |g| {
                checkout.commit(g, &author, &message)
            })
            .map_err(|e| self.git_failure(&res, "commit", e))?
        else {
            res.status = ResultStatus::NeedsHuman;
            res.summary = "agent made no changes".into();
            return Ok(Box::new(res));
        };
        res.commit_sha = Some(sha.clone());
        res.changed_files = changed;
        // Scanned after the commit (the diff is base..HEAD), before any push.
        // The scan sees real values: its git runs with an empty redactor.
        let diff = self
            .git(r, &genv, &Redactor::empty(), |g| checkout.diff_for_scan(g))
            .map_err(|e| self.git_failure(&res, "secret scan of the diff", e))?;
        let added: Vec<crate::guard::AddedLine> = diff
            .lines
            .into_iter()
            .map(|l| crate::guard::AddedLine {
                file: l.path,
                line: l.line,
                text: l.text,
            })
            .collect();
        let findings = crate::guard::scan_lines(&added, &redactor.with(genv.secrets()));
        if !findings.is_empty() {
            let list: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
            r.log(
                LogStream::Runner,
                &format!("secret guard: nothing pushed; {}\n", list.join("; ")),
            );
            res.status = ResultStatus::NeedsHuman;
            res.summary = format!(
                "a secret was found in the diff, nothing was pushed: {}",
                list.join("; ")
            );
            return Ok(Box::new(res));
        }

        // pushing
        let (push_branch, mode) = match spec.merge_mode {
            MergeMode::None => {
                res.status = if tests_green {
                    ResultStatus::Completed
                } else {
                    ResultStatus::NeedsHuman
                };
                res.summary = format!(
                    "{}committed {} locally on {} (merge_mode none: nothing pushed). {}",
                    if tests_green {
                        ""
                    } else {
                        "tests still fail; "
                    },
                    short_sha(&sha),
                    spec.branch,
                    summary
                );
                return Ok(Box::new(res));
            }
            MergeMode::Direct => {
                // Pushing to the target needs the commit on the target:
                // the job branch started from it, so push it there.
                (spec.repo.target_branch.clone(), PushMode::FastForward)
            }
            MergeMode::Pr if branch_exists => (
                spec.branch.clone(),
                PushMode::ForceWithLease {
                    expected: remote_sha.clone(),
                },
            ),
            MergeMode::Pr => (spec.branch.clone(), PushMode::FastForward),
        };
        self.check_cancel(&res)?;
        r.status(Status::Pushing, Some(push_branch.clone()));
        res.branch = Some(push_branch.clone());
        if spec.merge_mode == MergeMode::Direct {
            self.git(r, &genv, &redactor, |g| {
                checkout.point_branch_at_head(g, &push_branch)
            })
            .map_err(|e| self.git_failure(&res, "push", e))?;
        }
        let pushed = self
            .git(r, &genv, &redactor, |g| {
                checkout.push(g, &push_branch, &mode)
            })
            .map_err(|e| self.git_failure(&res, "push", e))?;
        match pushed {
            PushOutcome::Pushed { .. } => {}
            PushOutcome::Rejected { protected, message } => {
                res.status = ResultStatus::NeedsHuman;
                res.summary = format!(
                    "the push of {push_branch} was refused{}: {message}",
                    if protected {
                        " by branch protection"
                    } else {
                        ""
                    }
                );
                return Ok(Box::new(res));
            }
            PushOutcome::AuthFailed { message } => {
                return Err(fail_with(
                    &res,
                    format!("bad credentials: the push was refused ({message}); check the VCS token's write access"),
                ));
            }
            PushOutcome::Failed { message } => {
                return Err(fail_with(&res, format!("push failed: {message}")));
            }
        }
        let pr_note = if spec.merge_mode == MergeMode::Pr {
            " No PR was opened: this runner version does not open pull requests yet."
        } else {
            ""
        };
        if tests_green {
            res.status = ResultStatus::Completed;
            res.summary = format!(
                "pushed {} to {push_branch}.{pr_note} {summary}",
                short_sha(&sha)
            );
        } else {
            res.status = ResultStatus::NeedsHuman;
            res.summary = format!(
                "tests still fail after {} repair attempt(s); pushed {} to {push_branch} for a person to look at.{pr_note} {summary}",
                spec.max_repair_attempts,
                short_sha(&sha)
            );
        }
        Ok(Box::new(res))
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site pair; a struct would only rename them"
    )]
    fn attempt(
        &self,
        r: &mut Reporter,
        agent_spec: &AgentSpec,
        prompt_text: &str,
        workdir: &Path,
        job_dir: &JobDir,
        read_only: bool,
        resume: Option<&str>,
        redactor: &Redactor,
    ) -> Result<agents::AttemptOutput, String> {
        let adapter = self.ctx.agents.get(&agent_spec.name).ok_or_else(|| {
            format!(
                "unknown agent `{}` (built in: claude, codex, copilot; custom agents come from ADOS_CUSTOM_AGENTS)",
                agent_spec.name
            )
        })?;
        let base_env = process::allowlisted_env(None);
        let github_token = self.ctx.cfg.vcs.github_token.clone();
        // The attempt may not outlive the job: cap its timeout by what is
        // left of the job's own.
        let step = agent_spec
            .timeout_s
            .map(Duration::from_secs)
            .unwrap_or(adapter.default_timeout());
        let mut budgeted = agent_spec.clone();
        // Rounded up: a timeout cut short by flooring would fire before the
        // job's own deadline and be reported as the agent's failure.
        budgeted.timeout_s = Some(self.budget(step).as_millis().div_ceil(1000).max(1) as u64);
        let actx = AgentContext {
            spec: &budgeted,
            prompt: prompt_text,
            workdir,
            home: job_dir.home(),
            tmp: job_dir.tmp(),
            read_only,
            resume_session: resume,
            keys: &self.ctx.cfg.agent_keys,
            github_token: github_token.as_deref(),
            base_env: &base_env,
        };
        let started = Instant::now();
        let opts = self.opts(redactor);
        let out = agents::run_attempt(adapter, &actx, self.ctx.executor.as_ref(), &opts, r)
            .map_err(|e| e.to_string())?;
        self.ctx
            .metrics
            .observe_agent(&agent_spec.name, started.elapsed().as_secs_f64());
        Ok(out)
    }

    fn run_tests(
        &self,
        r: &mut Reporter,
        argv: &[String],
        workdir: &Path,
        job_dir: &JobDir,
        redactor: &Redactor,
        partial: &JobResult,
    ) -> Result<(TestSummary, String), Stop> {
        let mut env = process::allowlisted_env(None);
        env.retain(|(k, _)| k != "HOME" && k != "TMPDIR");
        env.push(("HOME".into(), job_dir.home().display().to_string()));
        env.push(("TMPDIR".into(), job_dir.tmp().display().to_string()));
        env.push(("CI".into(), "true".into()));
        let mut cmd = CommandSpec::new(&argv[0], workdir.to_path_buf());
        cmd.args = argv[1..].to_vec();
        cmd.env = env;
        cmd.timeout = Some(self.budget(Duration::from_secs(3600)));
        let mut output = String::new();
        let started = Instant::now();
        let opts = self.opts(redactor);
        let outcome = self.ctx.executor.run(&cmd, &opts, &mut |_, line| {
            r.log(LogStream::Test, &format!("{line}\n"));
            if output.len() < TEST_OUTPUT_KEEP {
                output.push_str(line);
                output.push('\n');
            } else {
                // Keep the tail: the failure is usually at the end.
                let cut = output.len() - TEST_OUTPUT_KEEP / 2;
                let mut cut = cut;
                while !output.is_char_boundary(cut) {
                    cut += 1;
                }
                output.drain(..cut);
                output.push_str(line);
                output.push('\n');
            }
        });
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                let msg = format!("{e}");
                r.log(
                    LogStream::Runner,
                    &format!("tests could not start: {msg}\n"),
                );
                let summary = TestSummary {
                    command: argv.join(" "),
                    exit_code: 127,
                    passed: false,
                };
                r.emit(Event::Test {
                    command: summary.command.clone(),
                    exit_code: 127,
                    duration_ms: 0,
                    passed: false,
                });
                return Ok((summary, msg));
            }
        };
        if let Some(stop) = self.interrupted("the tests", &outcome, partial.clone()) {
            return Err(stop);
        }
        let exit_code = outcome.exit_code.unwrap_or(-1);
        let passed = outcome.success();
        r.emit(Event::Test {
            command: argv.join(" "),
            exit_code,
            duration_ms: started.elapsed().as_millis() as u64,
            passed,
        });
        Ok((
            TestSummary {
                command: argv.join(" "),
                exit_code,
                passed,
            },
            output,
        ))
    }

    fn git_failure(&self, partial: &JobResult, step: &str, e: git::GitError) -> Stop {
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

/// `partial` ended with `status`; `msg` is both summary and error.
fn end_with(partial: &JobResult, status: ResultStatus, msg: String) -> Stop {
    let mut res = partial.clone();
    res.status = status;
    res.summary = msg.clone();
    res.error = Some(msg);
    Box::new(res)
}

fn fail_with(partial: &JobResult, msg: String) -> Stop {
    end_with(partial, ResultStatus::Failed, msg)
}

fn cancelled(partial: &JobResult, reason: crate::job::CancelReason, during: Option<&str>) -> Stop {
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

fn attempt_record(spec: &AgentSpec, out: &agents::AttemptOutput) -> Attempt {
    Attempt {
        agent: spec.name.clone(),
        exit_code: out.outcome.exit_code,
        duration_ms: out.outcome.duration.as_millis() as u64,
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

fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(10)]
}

/// The commit message: the spec's, or `<issue title> (#N)` with the agent's
/// summary and `Closes #N`.
pub fn commit_message(spec: &JobSpec, agent_summary: &str) -> String {
    if let Some(m) = &spec.commit.message {
        if !m.trim().is_empty() {
            return m.clone();
        }
    }
    let (subject, closes) = match &spec.issue {
        Some(i) if i.number > 0 => (
            format!("{} (#{})", one_line(&i.title), i.number),
            format!("\n\nCloses #{}", i.number),
        ),
        _ => ("Changes by the ADOS agent".to_string(), String::new()),
    };
    let body = agent_summary.trim();
    let body: String = body.chars().take(4000).collect();
    if body.is_empty() {
        format!("{subject}{closes}\n")
    } else {
        format!("{subject}\n\n{body}{closes}\n")
    }
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    line.chars().take(120).collect()
}

/// Where a job's monorepo subdirectory is.
pub fn workdir_of(repo: &Path, path: &str) -> PathBuf {
    if path.is_empty() {
        repo.to_path_buf()
    } else {
        repo.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec::RemotePolicy;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> JobSpec {
        let mut v = json!({"job_id":"j","repo":{"owner":"o","name":"r"},
            "issue":{"number":42,"title":"Fix the parser\nsecond line","body":"b"}});
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        JobSpec::from_json(&v, RemotePolicy::default()).expect("valid spec")
    }

    #[test]
    fn default_commit_message_has_title_number_summary_and_closes() {
        let m = commit_message(&spec(json!({})), "Rewrote the tokenizer.");
        assert_eq!(
            m,
            "Fix the parser (#42)\n\nRewrote the tokenizer.\n\nCloses #42\n"
        );
        let m = commit_message(&spec(json!({})), "  ");
        assert_eq!(m, "Fix the parser (#42)\n\nCloses #42\n");
        let m = commit_message(&spec(json!({"commit":{"message":"custom"}})), "x");
        assert_eq!(m, "custom");
    }
}
