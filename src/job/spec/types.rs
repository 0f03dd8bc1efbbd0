//! The types of a validated job spec (protocol.md §4): what a job is once
//! its JSON has passed every check, and the error that names the field
//! that did not.

use super::checks::check_name;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A validated job id: `[A-Za-z0-9._-]{1,128}`, not `.` or `..`; safe as a
/// directory name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Validate `raw` as a job id.
    pub fn parse(raw: &str) -> Result<JobId, SpecError> {
        check_name("job_id", raw)?;
        Ok(JobId(raw.to_string()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a spec was refused: the field (a JSON path such as `repo.owner`) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The offending field, dotted (`repo.clone_url`, `fallbacks[1].name`).
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub problem: String,
}

impl SpecError {
    pub(super) fn new(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid job spec: field `{}`: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for SpecError {}

/// One shot issue job, or a multi-turn chat session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Ends in one result.
    Issue,
    /// Waits for `chat.input` until `chat.end` or its idle timeout.
    Chat,
}

/// The stage of an issue job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Change code and push (the default).
    Implement,
    /// Read-only: the plan is the summary; nothing is pushed.
    Plan,
    /// Review `branch` against `target_branch`; verdict in the summary.
    Review,
    /// Push a new commit onto an existing PR branch.
    Repair,
}

/// A git hosting provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// github.com or GitHub Enterprise.
    Github,
    /// gitlab.com or self-managed GitLab.
    Gitlab,
    /// bitbucket.org.
    Bitbucket,
}

/// Where the work goes when the job is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Push `branch` and open or update a PR/MR.
    Pr,
    /// Push to `target_branch`.
    Direct,
    /// Commit locally, push nothing.
    None,
}

impl MergeMode {
    /// The spec's spelling: `pr`, `direct`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            MergeMode::Pr => "pr",
            MergeMode::Direct => "direct",
            MergeMode::None => "none",
        }
    }
}

/// The repository of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// The hosting provider.
    pub provider: Provider,
    /// e.g. `https://github.com`.
    pub base_url: String,
    /// The provider's API; `None` means the public default.
    pub api_url: Option<String>,
    /// Owner (GitLab: possibly `grp/sub`).
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// The URL git clones from (derived when the spec had none).
    pub clone_url: String,
    /// Monorepo subdirectory the agent and tests run in ("" = the root).
    pub path: String,
    /// The branch work starts from and PRs target.
    pub target_branch: String,
}

/// An issue comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Who wrote it.
    #[serde(default)]
    pub author: String,
    /// What they wrote.
    #[serde(default)]
    pub body: String,
}

/// The issue a job works on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSpec {
    /// Issue number.
    #[serde(default)]
    pub number: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body (markdown).
    #[serde(default)]
    pub body: String,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Comments, oldest first.
    #[serde(default)]
    pub comments: Vec<Comment>,
    /// Link to the issue.
    #[serde(default)]
    pub url: String,
}

/// Which agent CLI to run and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentSpec {
    /// `claude`, `codex`, `copilot`, or a custom agent's name.
    pub name: String,
    /// Model; `None` lets the CLI choose.
    pub model: Option<String>,
    /// Per-attempt time limit.
    pub timeout_s: Option<u64>,
    /// Extra arguments appended to the CLI's command line (never via a shell).
    pub args: Vec<String>,
}

/// Commit settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitSpec {
    /// Message; `None` means the runner's default.
    pub message: Option<String>,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
}

/// PR/MR settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PrSpec {
    /// Title; `None` means the issue title.
    pub title: Option<String>,
    /// Body; `None` means the runner's default.
    pub body: Option<String>,
    /// Open as a draft.
    pub draft: bool,
}

/// A package registry whose credentials the job's tools need.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `npm`, `pip` or `maven`.
    pub kind: String,
    /// Registry URL.
    pub url: String,
    /// npm scope (`@myorg`), when any.
    pub scope: Option<String>,
    /// The registry token: a secret.
    pub token: String,
}

impl fmt::Debug for RegistrySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySpec")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("scope", &self.scope)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// A validated job spec. Only [`JobSpec::from_json`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The job's id.
    pub job_id: JobId,
    /// Issue or chat.
    pub kind: JobKind,
    /// Stage of an issue job.
    pub stage: Stage,
    /// The repository.
    pub repo: RepoSpec,
    /// The issue, when the job has one.
    pub issue: Option<IssueSpec>,
    /// The whole prompt, replacing the one built from the issue.
    pub prompt: Option<String>,
    /// The agent to run first.
    pub agent: AgentSpec,
    /// Agents tried in order after the first one fails.
    pub fallbacks: Vec<AgentSpec>,
    /// The branch the work is pushed to.
    pub branch: String,
    /// Where the work goes.
    pub merge_mode: MergeMode,
    /// `None`: detect; `Some("")`: no tests.
    pub test_command: Option<String>,
    /// Extra agent runs allowed to turn red tests green.
    pub max_repair_attempts: u32,
    /// Commit settings.
    pub commit: CommitSpec,
    /// PR/MR settings.
    pub pr: PrSpec,
    /// `credentials.vcs_token`: a secret.
    pub vcs_token: Option<String>,
    /// Package registries.
    pub registries: Vec<RegistrySpec>,
    /// The job's overall time limit.
    pub timeout_s: Option<u64>,
    /// Chat sessions: idle time before the session ends.
    pub idle_timeout_s: u64,
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately partial: the secrets (vcs_token, registry tokens)
        // must never reach a log line through `{:?}`.
        f.debug_struct("JobSpec")
            .field("job_id", &self.job_id)
            .field("kind", &self.kind)
            .field("stage", &self.stage)
            .field("repo", &self.repo)
            .field("agent", &self.agent)
            .field("branch", &self.branch)
            .field("merge_mode", &self.merge_mode)
            .finish_non_exhaustive()
    }
}

/// The default overall time limit of a job when the spec gives none.
pub const DEFAULT_JOB_TIMEOUT_S: u64 = 3600;
/// The default idle timeout of a chat session.
pub const DEFAULT_CHAT_IDLE_S: u64 = 1800;
/// The largest `timeout_s`, agent `timeout_s` and `idle_timeout_s` a spec
/// may ask for: seven days. Far above any real job, and far below what
/// makes `Instant + Duration` overflow (2^63 s panics the job's thread).
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
/// The most repair runs a spec may ask for.
pub const MAX_REPAIR_ATTEMPTS: u64 = 10;
