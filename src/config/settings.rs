//! The small settings types of the configuration (mode, log format,
//! credentials from the environment) and the job-slot arithmetic.

use std::fmt;

/// Memory a job is assumed to need when deriving `ADOS_MAX_JOBS`: a clone,
/// an agent CLI (Node.js) and a test run fit comfortably in 2 GiB.
pub const MEMORY_PER_JOB: u64 = 2 << 30;

/// The largest `ADOS_MAX_JOBS` accepted.
pub const MAX_JOBS_LIMIT: usize = 256;

/// `ADOS_MIN_FREE_DISK` when unset.
pub const DEFAULT_MIN_FREE_DISK: u64 = 2 << 30;

/// The default number of job slots when `ADOS_MAX_JOBS` is unset:
/// `min(cpus, memory / 2 GiB)`, at least 1 and at most 256. One job per
/// CPU keeps agents and test runs from starving each other, and 2 GiB per
/// job ([`MEMORY_PER_JOB`]) keeps the OOM killer away; a small box still
/// runs one job.
pub fn default_max_jobs(cpus: u32, memory_bytes: u64) -> usize {
    let by_memory = memory_bytes / MEMORY_PER_JOB;
    u64::from(cpus)
        .min(by_memory)
        .clamp(1, MAX_JOBS_LIMIT as u64) as usize
}

/// Which job kinds this runner takes (`ADOS_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Chat sessions only.
    Chat,
    /// Issue jobs only.
    Issue,
    /// Both (the default).
    All,
}

impl Mode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Issue => "issue",
            Mode::All => "all",
        }
    }
}

/// `ADOS_LOG_FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line.
    Json,
}

/// What the configuration is loaded for: the daemon needs the control
/// plane's URL, token and runner id; `exec` does not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `run`, `check`: everything.
    Daemon,
    /// `exec`: one job, no server.
    Exec,
}

/// VCS credentials from the environment (secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VcsCredentials {
    /// `GITHUB_TOKEN`.
    pub github_token: Option<String>,
    /// `GITLAB_TOKEN`.
    pub gitlab_token: Option<String>,
    /// `BITBUCKET_USERNAME` (not a secret, but only useful with the password).
    pub bitbucket_username: Option<String>,
    /// `BITBUCKET_APP_PASSWORD`.
    pub bitbucket_app_password: Option<String>,
}

impl fmt::Debug for VcsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VcsCredentials")
            .field("github_token", &self.github_token.as_ref().map(|_| "[set]"))
            .field("gitlab_token", &self.gitlab_token.as_ref().map(|_| "[set]"))
            .field("bitbucket_username", &self.bitbucket_username)
            .field(
                "bitbucket_app_password",
                &self.bitbucket_app_password.as_ref().map(|_| "[set]"),
            )
            .finish()
    }
}

/// Agent API keys from the environment (secrets).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AgentKeys {
    /// `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Option<String>,
    /// `CLAUDE_CODE_OAUTH_TOKEN`.
    pub claude_code_oauth_token: Option<String>,
    /// `OPENAI_API_KEY` (given to Codex as `CODEX_API_KEY`).
    pub openai_api_key: Option<String>,
    /// `COPILOT_GITHUB_TOKEN` (Copilot's own token; falls back to GITHUB_TOKEN).
    pub copilot_github_token: Option<String>,
    /// The values of the variables custom agents name in their `env`, by
    /// name: secrets like the keys above.
    pub named: std::collections::BTreeMap<String, String>,
}

impl AgentKeys {
    /// The value of a variable a custom agent names, when set.
    pub fn named(&self, name: &str) -> Option<&String> {
        self.named.get(name)
    }
}

impl fmt::Debug for AgentKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentKeys { .. }")
    }
}
