//! The validated configuration and the rules that produce it.

use super::raw::RawEnv;
use crate::job::spec::RemotePolicy;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

/// Proxy settings (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, either case).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for https/wss targets.
    pub https_proxy: Option<String>,
    /// Proxy for http/ws targets.
    pub http_proxy: Option<String>,
    /// Hosts that bypass the proxy (comma-separated, `.suffix`, `*`).
    pub no_proxy: Vec<String>,
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
}

impl fmt::Debug for AgentKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentKeys { .. }")
    }
}

/// A command agent defined in the runner's configuration
/// (`ADOS_CUSTOM_AGENTS`, see README), so any CLI can be plugged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomAgent {
    /// The name jobs use in `agent.name`.
    pub name: String,
    /// Program and fixed arguments (argv, never a shell line).
    pub command: Vec<String>,
    /// How the prompt is given: as the last argument, or on stdin.
    pub prompt_on_stdin: bool,
    /// Default model, passed with `model_flag` when set.
    pub default_model: Option<String>,
    /// The flag that sets the model (`--model`), if the CLI has one.
    pub model_flag: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
}

/// The validated configuration of the runner.
#[derive(Clone)]
pub struct Config {
    /// `ADOS_API_URL`, trailing `/` removed.
    pub api_url: String,
    /// `ADOS_TOKEN` (secret; never printed).
    pub token: String,
    /// `ADOS_RUNNER_ID`.
    pub runner_id: String,
    /// `WORKSPACE_DIR`, absolute.
    pub workspace_dir: PathBuf,
    /// `ADOS_MODE`.
    pub mode: Mode,
    /// `ADOS_GROUP`.
    pub group: String,
    /// `ADOS_CPUS` or detected.
    pub cpus: u32,
    /// `ADOS_MEMORY` or detected, in bytes.
    pub memory_bytes: u64,
    /// `ADOS_HOSTNAME` or the host name.
    pub hostname: String,
    /// `ADOS_DEPLOY_ID`.
    pub deploy_id: Option<String>,
    /// `ADOS_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// `ADOS_MAX_JOBS` or derived from cpus and memory.
    pub max_jobs: usize,
    /// `ADOS_HEALTH_ADDR`.
    pub health_addr: SocketAddr,
    /// `ADOS_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `ADOS_LOG_LEVEL` (or `RUST_LOG`), as an env_logger filter.
    pub log_level: String,
    /// `ADOS_CA_CERT`: extra PEM roots, trusted with the embedded ones.
    pub ca_cert: Option<PathBuf>,
    /// Proxy settings.
    pub proxy: ProxySettings,
    /// `ADOS_SHUTDOWN_GRACE`.
    pub shutdown_grace: Duration,
    /// `ADOS_ALLOW_HTTP` / `ADOS_ALLOW_FILE_REMOTES`.
    pub remote_policy: RemotePolicy,
    /// `ADOS_MIN_FREE_DISK`, bytes.
    pub min_free_disk: u64,
    /// VCS tokens.
    pub vcs: VcsCredentials,
    /// Agent keys.
    pub agent_keys: AgentKeys,
    /// Custom command agents.
    pub custom_agents: Vec<CustomAgent>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("api_url", &self.api_url)
            .field("token", &"[REDACTED]")
            .field("runner_id", &self.runner_id)
            .field("workspace_dir", &self.workspace_dir)
            .field("mode", &self.mode)
            .field("max_jobs", &self.max_jobs)
            .finish_non_exhaustive()
    }
}

/// One configuration problem: the variable, what is wrong, a right example.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The variable (`ADOS_MEMORY`).
    pub var: &'static str,
    /// What is wrong (never the value of a secret).
    pub problem: String,
    /// An example of a right value.
    pub example: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (example: {}={})",
            self.var, self.problem, self.var, self.example
        )
    }
}

/// Every configuration problem found, reported together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Load from the process environment.
    pub fn from_env(purpose: Purpose) -> Result<Config, ConfigErrors> {
        Config::from_raw(&RawEnv::from_process(), purpose)
    }

    /// Load from a snapshot; collects every problem before failing.
    pub fn from_raw(env: &RawEnv, purpose: Purpose) -> Result<Config, ConfigErrors> {
        let _ = (env, purpose);
        todo!("config loading")
    }

    /// Every secret in the configuration, for the redactor.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.token.clone()];
        out.extend(self.vcs.github_token.iter().cloned());
        out.extend(self.vcs.gitlab_token.iter().cloned());
        out.extend(self.vcs.bitbucket_app_password.iter().cloned());
        out.extend(self.agent_keys.anthropic_api_key.iter().cloned());
        out.extend(self.agent_keys.claude_code_oauth_token.iter().cloned());
        out.extend(self.agent_keys.openai_api_key.iter().cloned());
        out.extend(self.agent_keys.copilot_github_token.iter().cloned());
        out.retain(|s| !s.is_empty());
        out
    }

    /// The WebSocket URL derived from `api_url` (protocol.md §1).
    pub fn ws_url(&self) -> String {
        crate::link::url::ws_url(&self.api_url)
    }
}
