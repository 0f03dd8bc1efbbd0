//! The validated configuration and the rules that produce it.

use super::raw::RawEnv;
use super::{custom, detect, validate};
use crate::job::spec::RemotePolicy;
use crate::net::{NoProxy, Proxy};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Memory a job is assumed to need when deriving `ADOS_MAX_JOBS`: a clone,
/// an agent CLI (Node.js) and a test run fit comfortably in 2 GiB.
pub const MEMORY_PER_JOB: u64 = 2 << 30;

/// The largest `ADOS_MAX_JOBS` accepted.
pub const MAX_JOBS_LIMIT: usize = 256;

/// `ADOS_MIN_FREE_DISK` when unset.
pub const DEFAULT_MIN_FREE_DISK: u64 = 2 << 30;

/// Below this an `ADOS_MEMORY` is surely missing its unit (`512` meant as MB).
const MIN_MEMORY: u64 = 64 << 20;

const EX_API_URL: &str = "https://api.ados.dev";

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

pub use crate::net::ProxySettings;

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
    /// `ADOS_MAX_BACKOFF`: ceiling of the reconnect backoff (default 30 s,
    /// protocol.md §1); tests lower it.
    pub max_backoff: Duration,
    /// `ADOS_ALLOW_HTTP` / `ADOS_ALLOW_FILE_REMOTES`.
    pub remote_policy: RemotePolicy,
    /// `ADOS_MIN_FREE_DISK`, bytes.
    pub min_free_disk: u64,
    /// `ADOS_METRICS_REPO_LABEL`: whether `ados_jobs_total` carries a
    /// `repo` label (on by default; the label set is bounded either way).
    pub metrics_repo_label: bool,
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

/// Problems collected while loading.
#[derive(Default)]
struct Problems(Vec<ConfigError>);

impl Problems {
    /// Record a problem; returns an empty placeholder so a failed field
    /// can still fill the struct while checking goes on.
    fn add<T: Default>(
        &mut self,
        var: &'static str,
        problem: impl Into<String>,
        example: &'static str,
    ) -> T {
        self.push(var, problem, example);
        T::default()
    }

    fn push(&mut self, var: &'static str, problem: impl Into<String>, example: &'static str) {
        self.0.push(ConfigError {
            var,
            problem: problem.into(),
            example,
        });
    }
}

/// A secret variable. Unset is an error only when `required`; an optional
/// secret set to the empty string counts as unset (compose files write
/// `GITHUB_TOKEN=${GITHUB_TOKEN}`), a required one does not.
fn secret(
    env: &RawEnv,
    errs: &mut Problems,
    var: &'static str,
    required: bool,
    example: &'static str,
) -> Option<String> {
    match env.get_raw(var) {
        None if required => errs.add(var, "is required but not set", example),
        None => None,
        Some(v) if v.is_empty() && !required => None,
        Some(v) => match validate::secret_problem(v) {
            Some(p) => errs.add(var, p, example),
            None => Some(v.to_string()),
        },
    }
}

fn label(
    env: &RawEnv,
    errs: &mut Problems,
    var: &'static str,
    example: &'static str,
) -> Option<String> {
    let v = env.get(var)?.trim();
    match validate::check_label(v) {
        Ok(()) => Some(v.to_string()),
        Err(p) => errs.add(var, p, example),
    }
}

/// A flag: on (`1 true yes on`), off (`0 false no off`, unset), or an error,
/// so that `ADOS_ALLOW_HTTP=ture` is not silently off.
fn flag(env: &RawEnv, errs: &mut Problems, var: &'static str) -> bool {
    flag_or(env, errs, var, false)
}

/// A flag that is `default` when unset; a value that is neither on nor
/// off is an error (and the default is used meanwhile).
fn flag_or(env: &RawEnv, errs: &mut Problems, var: &'static str, default: bool) -> bool {
    match env.get(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => default,
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                // The example turns the default around: what one sets it for.
                let example = if default { "0" } else { "1" };
                errs.push(var, "must be 1/true/yes/on or 0/false/no/off", example);
                default
            }
        },
    }
}

/// The upper-case variable wins over the lower-case one when both are set.
fn proxy_var(
    env: &RawEnv,
    errs: &mut Problems,
    upper: &'static str,
    lower: &'static str,
) -> Option<Proxy> {
    let (var, v) = match (env.get(upper), env.get(lower)) {
        (Some(v), _) => (upper, v),
        (None, Some(v)) => (lower, v),
        (None, None) => return None,
    };
    match Proxy::parse(var, v) {
        Ok(p) => Some(p),
        Err(p) => errs.add(var, p, "http://proxy.internal:3128"),
    }
}

fn workspace_dir(env: &RawEnv, errs: &mut Problems) -> PathBuf {
    const EX: &str = "/var/lib/ados/work";
    let Some(v) = env.get("WORKSPACE_DIR").map(str::trim) else {
        return errs.add("WORKSPACE_DIR", "is required but not set", EX);
    };
    let path = PathBuf::from(v);
    if !path.is_absolute() {
        return errs.add(
            "WORKSPACE_DIR",
            format!("`{v}` must be an absolute path"),
            EX,
        );
    }
    if let Err(e) = std::fs::create_dir_all(&path) {
        return errs.add(
            "WORKSPACE_DIR",
            format!(
                "{} does not exist and cannot be created: {e}",
                path.display()
            ),
            EX,
        );
    }
    if !path.is_dir() {
        return errs.add(
            "WORKSPACE_DIR",
            format!("{} is not a directory", path.display()),
            EX,
        );
    }
    path
}

/// `ADOS_CA_CERT` must hold at least one PEM certificate, all parseable.
fn check_ca_file(path: &Path) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let mut n = 0;
    for cert in iter {
        cert.map_err(|e| format!("{} has a bad PEM certificate: {e}", path.display()))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!(
            "{} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}

impl Config {
    /// Load from the process environment.
    pub fn from_env(purpose: Purpose) -> Result<Config, ConfigErrors> {
        Config::from_raw(&RawEnv::from_process(), purpose)
    }

    /// Load from a snapshot; collects every problem before failing.
    ///
    /// # Errors
    ///
    /// Every variable that is missing or wrong, each with an example of a
    /// right value. A secret's value is never part of a message.
    ///
    /// Side effect: `WORKSPACE_DIR` is created when missing, because a
    /// runner that cannot create it cannot run a job either.
    pub fn from_raw(env: &RawEnv, purpose: Purpose) -> Result<Config, ConfigErrors> {
        let mut errs = Problems::default();
        let daemon = purpose == Purpose::Daemon;

        let api_url = match env.get("ADOS_API_URL").map(str::trim) {
            Some(v) => match validate::parse_http_url(v) {
                Ok(_) => v.trim_end_matches('/').to_string(),
                Err(p) => errs.add("ADOS_API_URL", p, EX_API_URL),
            },
            None if daemon => errs.add("ADOS_API_URL", "is required but not set", EX_API_URL),
            None => String::new(),
        };
        let token = secret(
            env,
            &mut errs,
            "ADOS_TOKEN",
            daemon,
            "<the runner token from the dashboard>",
        )
        .unwrap_or_default();
        let runner_id = match env.get("ADOS_RUNNER_ID").map(str::trim) {
            Some(v) => match crate::job::spec::check_name("ADOS_RUNNER_ID", v) {
                Ok(()) => v.to_string(),
                Err(e) => errs.add("ADOS_RUNNER_ID", e.problem, "runner-001"),
            },
            None if daemon => errs.add("ADOS_RUNNER_ID", "is required but not set", "runner-001"),
            None => "exec".to_string(),
        };
        let workspace_dir = workspace_dir(env, &mut errs);
        let mode = match env.get("ADOS_MODE").map(|v| v.trim().to_ascii_lowercase()) {
            None => Mode::All,
            Some(v) => match v.as_str() {
                "chat" => Mode::Chat,
                "issue" => Mode::Issue,
                "all" => Mode::All,
                _ => {
                    errs.push("ADOS_MODE", "must be one of chat, issue, all", "all");
                    Mode::All
                }
            },
        };
        let group = match env.get("ADOS_GROUP").map(str::trim) {
            None => "default".to_string(),
            Some(v) => match crate::job::spec::check_name("ADOS_GROUP", v) {
                Ok(()) => v.to_string(),
                Err(e) => errs.add("ADOS_GROUP", e.problem, "default"),
            },
        };
        let cpus = match env.get("ADOS_CPUS") {
            None => detect::detect_cpus(),
            Some(v) => match validate::parse_count(v, 4096) {
                Ok(n) => n as u32,
                Err(p) => {
                    errs.push("ADOS_CPUS", p, "4");
                    1
                }
            },
        };
        let memory_bytes = match env.get("ADOS_MEMORY") {
            None => match detect::detect_memory() {
                Some(m) => m,
                None => {
                    errs.push(
                        "ADOS_MEMORY",
                        "is not set and could not be detected (no cgroup limit, no /proc/meminfo)",
                        "8G",
                    );
                    MEMORY_PER_JOB
                }
            },
            Some(v) => match super::parse_memory(v) {
                Ok(b) if b < MIN_MEMORY => {
                    errs.push(
                        "ADOS_MEMORY",
                        format!("is only {b} bytes; add a unit (M or G)"),
                        "8G",
                    );
                    MEMORY_PER_JOB
                }
                Ok(b) => b,
                Err(p) => {
                    errs.push("ADOS_MEMORY", p, "8G");
                    MEMORY_PER_JOB
                }
            },
        };
        let hostname = match env.get("ADOS_HOSTNAME").map(str::trim) {
            None => detect::detect_hostname().unwrap_or_else(|| "unknown".to_string()),
            Some(v) => match validate::check_label(v) {
                Ok(()) => v.to_string(),
                Err(p) => errs.add("ADOS_HOSTNAME", p, "server-01"),
            },
        };
        let deploy_id = label(env, &mut errs, "ADOS_DEPLOY_ID", "deploy-2026-11-24");
        let tenant_id = label(env, &mut errs, "ADOS_TENANT_ID", "acme");
        let max_jobs = match env.get("ADOS_MAX_JOBS") {
            None => default_max_jobs(cpus, memory_bytes),
            Some(v) => match validate::parse_count(v, MAX_JOBS_LIMIT as u64) {
                Ok(n) => n as usize,
                Err(p) => {
                    errs.push("ADOS_MAX_JOBS", p, "4");
                    1
                }
            },
        };
        let health_addr = match env.get("ADOS_HEALTH_ADDR").map(str::trim) {
            None => SocketAddr::from(([0, 0, 0, 0], 8080)),
            Some(v) => v.parse().unwrap_or_else(|_| {
                errs.push(
                    "ADOS_HEALTH_ADDR",
                    "must be an IP address and port",
                    "0.0.0.0:8080",
                );
                SocketAddr::from(([0, 0, 0, 0], 8080))
            }),
        };
        let log_format = match env
            .get("ADOS_LOG_FORMAT")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(_) => {
                errs.push("ADOS_LOG_FORMAT", "must be text or json", "json");
                LogFormat::Text
            }
        };
        let log_level = env
            .get("ADOS_LOG_LEVEL")
            .or_else(|| env.get("RUST_LOG"))
            .unwrap_or("info")
            .trim()
            .to_string();
        let ca_cert = env.get("ADOS_CA_CERT").and_then(|v| {
            let path = PathBuf::from(v.trim());
            match check_ca_file(&path) {
                Ok(()) => Some(path),
                Err(p) => {
                    errs.push("ADOS_CA_CERT", p, "/etc/ados/ca.pem");
                    None
                }
            }
        });
        let proxy = ProxySettings {
            https_proxy: proxy_var(env, &mut errs, "HTTPS_PROXY", "https_proxy"),
            http_proxy: proxy_var(env, &mut errs, "HTTP_PROXY", "http_proxy"),
            no_proxy: NoProxy::parse(
                env.get("NO_PROXY")
                    .or_else(|| env.get("no_proxy"))
                    .unwrap_or_default(),
            ),
        };
        let shutdown_grace = match env.get("ADOS_SHUTDOWN_GRACE") {
            None => Duration::from_secs(600),
            Some(v) => validate::parse_duration(v).unwrap_or_else(|p| {
                errs.push("ADOS_SHUTDOWN_GRACE", p, "10m");
                Duration::from_secs(600)
            }),
        };
        let max_backoff = match env.get("ADOS_MAX_BACKOFF") {
            None => Duration::from_secs(30),
            Some(v) => match validate::parse_duration(v) {
                Ok(d) if d >= Duration::from_millis(100) => d,
                Ok(_) => {
                    errs.push("ADOS_MAX_BACKOFF", "must be at least 100ms", "30s");
                    Duration::from_secs(30)
                }
                Err(p) => {
                    errs.push("ADOS_MAX_BACKOFF", p, "30s");
                    Duration::from_secs(30)
                }
            },
        };
        let remote_policy = RemotePolicy {
            allow_http: flag(env, &mut errs, "ADOS_ALLOW_HTTP"),
            allow_file: flag(env, &mut errs, "ADOS_ALLOW_FILE_REMOTES"),
        };
        let min_free_disk = match env.get("ADOS_MIN_FREE_DISK").map(str::trim) {
            None => DEFAULT_MIN_FREE_DISK,
            Some("0") => 0,
            Some(v) => super::parse_memory(v).unwrap_or_else(|p| {
                errs.push("ADOS_MIN_FREE_DISK", p, "2G");
                DEFAULT_MIN_FREE_DISK
            }),
        };
        let metrics_repo_label = flag_or(env, &mut errs, "ADOS_METRICS_REPO_LABEL", true);
        let vcs = VcsCredentials {
            github_token: secret(env, &mut errs, "GITHUB_TOKEN", false, "ghp_..."),
            gitlab_token: secret(env, &mut errs, "GITLAB_TOKEN", false, "glpat-..."),
            bitbucket_username: secret(env, &mut errs, "BITBUCKET_USERNAME", false, "my-bot"),
            bitbucket_app_password: secret(
                env,
                &mut errs,
                "BITBUCKET_APP_PASSWORD",
                false,
                "<app password>",
            ),
        };
        match (&vcs.bitbucket_username, &vcs.bitbucket_app_password) {
            (Some(_), None) if env.get_raw("BITBUCKET_APP_PASSWORD").is_none() => {
                errs.push(
                    "BITBUCKET_APP_PASSWORD",
                    "is required when BITBUCKET_USERNAME is set",
                    "<app password>",
                );
            }
            (None, Some(_)) if env.get_raw("BITBUCKET_USERNAME").is_none() => {
                errs.push(
                    "BITBUCKET_USERNAME",
                    "is required when BITBUCKET_APP_PASSWORD is set",
                    "my-bot",
                );
            }
            _ => {}
        }
        let agent_keys = AgentKeys {
            anthropic_api_key: secret(env, &mut errs, "ANTHROPIC_API_KEY", false, "sk-ant-..."),
            claude_code_oauth_token: secret(
                env,
                &mut errs,
                "CLAUDE_CODE_OAUTH_TOKEN",
                false,
                "sk-ant-oat01-...",
            ),
            openai_api_key: secret(env, &mut errs, "OPENAI_API_KEY", false, "sk-..."),
            copilot_github_token: secret(
                env,
                &mut errs,
                "COPILOT_GITHUB_TOKEN",
                false,
                "github_pat_...",
            ),
        };
        let custom_agents = match env.get("ADOS_CUSTOM_AGENTS").map(str::trim) {
            None => Vec::new(),
            Some(v) => match custom::load(Path::new(v)) {
                Ok(a) => a,
                Err(problems) => {
                    for p in problems {
                        errs.push(
                            "ADOS_CUSTOM_AGENTS",
                            format!("file {v}: {p}"),
                            "/etc/ados/agents.json",
                        );
                    }
                    Vec::new()
                }
            },
        };

        if !errs.0.is_empty() {
            return Err(ConfigErrors(errs.0));
        }
        Ok(Config {
            api_url,
            token,
            runner_id,
            workspace_dir,
            mode,
            group,
            cpus,
            memory_bytes,
            hostname,
            deploy_id,
            tenant_id,
            max_jobs,
            health_addr,
            log_format,
            log_level,
            ca_cert,
            proxy,
            shutdown_grace,
            max_backoff,
            remote_policy,
            min_free_disk,
            metrics_repo_label,
            vcs,
            agent_keys,
            custom_agents,
        })
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

    /// Names of secret variables set to a value too short to be masked
    /// (see [`crate::redact::MIN_SECRET_LEN`]): warned about once at start.
    pub fn short_secrets(&self) -> Vec<&'static str> {
        let named: [(&'static str, Option<&String>); 8] = [
            ("ADOS_TOKEN", Some(&self.token)),
            ("GITHUB_TOKEN", self.vcs.github_token.as_ref()),
            ("GITLAB_TOKEN", self.vcs.gitlab_token.as_ref()),
            (
                "BITBUCKET_APP_PASSWORD",
                self.vcs.bitbucket_app_password.as_ref(),
            ),
            (
                "ANTHROPIC_API_KEY",
                self.agent_keys.anthropic_api_key.as_ref(),
            ),
            (
                "CLAUDE_CODE_OAUTH_TOKEN",
                self.agent_keys.claude_code_oauth_token.as_ref(),
            ),
            ("OPENAI_API_KEY", self.agent_keys.openai_api_key.as_ref()),
            (
                "COPILOT_GITHUB_TOKEN",
                self.agent_keys.copilot_github_token.as_ref(),
            ),
        ];
        named
            .into_iter()
            .filter(|(_, v)| {
                v.map(|v| !v.is_empty() && v.len() < crate::redact::MIN_SECRET_LEN)
                    .unwrap_or(false)
            })
            .map(|(n, _)| n)
            .collect()
    }

    /// The WebSocket URL derived from `api_url` (protocol.md §1).
    pub fn ws_url(&self) -> String {
        crate::link::url::ws_url(&self.api_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory under the system temp dir (no tempfile crate).
    fn temp_dir(tag: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ados-config-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    /// A valid daemon environment with explicit cpus/memory (no detection),
    /// plus `extra` overriding or adding variables.
    fn env_with(extra: &[(&str, &str)]) -> RawEnv {
        let ws = temp_dir("ws");
        let mut pairs: Vec<(String, String)> = vec![
            ("ADOS_API_URL".into(), "https://api.ados.dev/".into()),
            ("ADOS_TOKEN".into(), "tok_secret_123".into()),
            ("ADOS_RUNNER_ID".into(), "runner-001".into()),
            ("WORKSPACE_DIR".into(), ws.display().to_string()),
            ("ADOS_CPUS".into(), "4".into()),
            ("ADOS_MEMORY".into(), "16G".into()),
            ("ADOS_HOSTNAME".into(), "host-1".into()),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            pairs.push(((*k).into(), (*v).into()));
        }
        RawEnv::from_pairs(pairs)
    }

    fn ok(extra: &[(&str, &str)]) -> Config {
        Config::from_raw(&env_with(extra), Purpose::Daemon).unwrap()
    }

    /// The problems reported, as `VAR: problem`.
    fn errs(extra: &[(&str, &str)], purpose: Purpose) -> Vec<String> {
        Config::from_raw(&env_with(extra), purpose)
            .unwrap_err()
            .0
            .iter()
            .map(|e| format!("{}: {}", e.var, e.problem))
            .collect()
    }

    fn err_for(var: &str, extra: &[(&str, &str)]) -> String {
        let all = errs(extra, Purpose::Daemon);
        all.iter()
            .find(|e| e.starts_with(&format!("{var}: ")))
            .unwrap_or_else(|| panic!("no error for {var} in {all:?}"))
            .clone()
    }

    #[test]
    fn defaults() {
        let c = ok(&[]);
        assert_eq!(c.api_url, "https://api.ados.dev");
        assert_eq!(c.mode, Mode::All);
        assert_eq!(c.group, "default");
        assert_eq!(c.max_jobs, 4);
        assert_eq!(c.health_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(c.log_level, "info");
        assert_eq!(c.shutdown_grace, Duration::from_secs(600));
        assert_eq!(c.min_free_disk, 2 << 30);
        assert_eq!(c.remote_policy, RemotePolicy::default());
        assert_eq!(c.proxy, ProxySettings::default());
        assert!(c.custom_agents.is_empty() && c.ca_cert.is_none());
        assert_eq!(c.ws_url(), "wss://api.ados.dev/api/v1/work/runners/ws");
    }

    #[test]
    fn api_url() {
        assert!(err_for("ADOS_API_URL", &[("ADOS_API_URL", "api.ados.dev")]).contains("https://"));
        assert!(err_for("ADOS_API_URL", &[("ADOS_API_URL", "")]).contains("required"));
        assert_eq!(
            ok(&[("ADOS_API_URL", "http://127.0.0.1:9/api/v1/")]).api_url,
            "http://127.0.0.1:9/api/v1"
        );
    }

    #[test]
    fn token_is_required_and_never_printed() {
        assert!(err_for("ADOS_TOKEN", &[("ADOS_TOKEN", "")]).contains("set but empty"));
        let e = err_for("ADOS_TOKEN", &[("ADOS_TOKEN", "tok_abc\n")]);
        assert!(e.contains("whitespace") && !e.contains("tok_abc"), "{e}");
        let unset = Config::from_raw(
            &RawEnv::from_pairs([("WORKSPACE_DIR", "/tmp")]),
            Purpose::Daemon,
        )
        .unwrap_err()
        .to_string();
        assert!(unset.contains("ADOS_TOKEN: is required"), "{unset}");
        let dbg = format!("{:?}", ok(&[]));
        assert!(!dbg.contains("tok_secret_123"), "{dbg}");
    }

    #[test]
    fn runner_id_and_group_charset() {
        assert!(err_for("ADOS_RUNNER_ID", &[("ADOS_RUNNER_ID", "runner 1")]).contains("only A-Z"));
        assert!(err_for("ADOS_GROUP", &[("ADOS_GROUP", "a/b")]).contains("only A-Z"));
        assert_eq!(ok(&[("ADOS_GROUP", "gpu")]).group, "gpu");
    }

    #[test]
    fn exec_purpose_needs_only_the_workspace() {
        let ws = temp_dir("exec");
        let c = Config::from_raw(
            &RawEnv::from_pairs([("WORKSPACE_DIR", ws.to_str().unwrap())]),
            Purpose::Exec,
        )
        .unwrap();
        assert_eq!(
            (c.api_url.as_str(), c.token.as_str(), c.runner_id.as_str()),
            ("", "", "exec")
        );
        let e = Config::from_raw(&RawEnv::default(), Purpose::Exec).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].var, "WORKSPACE_DIR");
    }

    #[test]
    fn workspace_dir_is_absolute_and_created() {
        assert!(err_for("WORKSPACE_DIR", &[("WORKSPACE_DIR", "work")]).contains("absolute"));
        let base = temp_dir("create");
        let nested = base.join("a/b");
        let c = ok(&[("WORKSPACE_DIR", nested.to_str().unwrap())]);
        assert!(c.workspace_dir.is_dir());
        let file = base.join("file");
        std::fs::write(&file, "x").unwrap();
        let e = err_for(
            "WORKSPACE_DIR",
            &[("WORKSPACE_DIR", file.join("sub").to_str().unwrap())],
        );
        assert!(
            e.contains("cannot be created") && e.contains("file/sub"),
            "{e}"
        );
    }

    #[test]
    fn mode() {
        assert_eq!(ok(&[("ADOS_MODE", "chat")]).mode, Mode::Chat);
        assert_eq!(ok(&[("ADOS_MODE", "Issue")]).mode, Mode::Issue);
        assert!(err_for("ADOS_MODE", &[("ADOS_MODE", "both")]).contains("chat, issue, all"));
    }

    #[test]
    fn cpus_memory_and_max_jobs() {
        assert!(err_for("ADOS_CPUS", &[("ADOS_CPUS", "0")]).contains("1 to"));
        assert!(err_for("ADOS_MEMORY", &[("ADOS_MEMORY", "8X")]).contains("unit"));
        assert!(err_for("ADOS_MEMORY", &[("ADOS_MEMORY", "512")]).contains("add a unit"));
        assert_eq!(ok(&[("ADOS_MEMORY", "8GB")]).memory_bytes, 8 << 30);
        // min(cpus, memory / 2 GiB), at least 1.
        assert_eq!(ok(&[("ADOS_CPUS", "8"), ("ADOS_MEMORY", "6G")]).max_jobs, 3);
        assert_eq!(
            ok(&[("ADOS_CPUS", "2"), ("ADOS_MEMORY", "64G")]).max_jobs,
            2
        );
        assert_eq!(ok(&[("ADOS_CPUS", "2"), ("ADOS_MEMORY", "1G")]).max_jobs, 1);
        assert_eq!(ok(&[("ADOS_MAX_JOBS", "16")]).max_jobs, 16);
        assert!(err_for("ADOS_MAX_JOBS", &[("ADOS_MAX_JOBS", "257")]).contains("1 to 256"));
        assert_eq!(default_max_jobs(10_000, u64::MAX), 256);
    }

    #[test]
    fn detected_defaults_are_sane() {
        let env = RawEnv::from_pairs(
            env_with(&[])
                .get_raw("WORKSPACE_DIR")
                .map(|w| ("WORKSPACE_DIR".to_string(), w.to_string())),
        );
        let c = Config::from_raw(&env, Purpose::Exec).unwrap();
        assert!(c.cpus >= 1 && c.memory_bytes > 0 && !c.hostname.is_empty());
        assert!(c.max_jobs >= 1);
    }

    #[test]
    fn hostname_deploy_tenant() {
        assert_eq!(ok(&[]).hostname, "host-1");
        assert!(err_for("ADOS_HOSTNAME", &[("ADOS_HOSTNAME", "a b")]).contains("visible ASCII"));
        let c = ok(&[("ADOS_DEPLOY_ID", "d-1"), ("ADOS_TENANT_ID", "acme")]);
        assert_eq!(
            (c.deploy_id.as_deref(), c.tenant_id.as_deref()),
            (Some("d-1"), Some("acme"))
        );
        assert!(err_for("ADOS_TENANT_ID", &[("ADOS_TENANT_ID", "ac me")]).contains("visible"));
    }

    #[test]
    fn health_addr_and_logging() {
        assert_eq!(
            ok(&[("ADOS_HEALTH_ADDR", "127.0.0.1:0")])
                .health_addr
                .ip()
                .to_string(),
            "127.0.0.1"
        );
        assert!(err_for("ADOS_HEALTH_ADDR", &[("ADOS_HEALTH_ADDR", "localhost")]).contains("port"));
        assert_eq!(
            ok(&[("ADOS_LOG_FORMAT", "json")]).log_format,
            LogFormat::Json
        );
        assert!(err_for("ADOS_LOG_FORMAT", &[("ADOS_LOG_FORMAT", "xml")]).contains("text or json"));
        assert_eq!(ok(&[("RUST_LOG", "debug")]).log_level, "debug");
        assert_eq!(
            ok(&[("RUST_LOG", "debug"), ("ADOS_LOG_LEVEL", "warn")]).log_level,
            "warn"
        );
    }

    #[test]
    fn ca_cert() {
        let dir = temp_dir("ca");
        let missing = dir.join("missing.pem");
        assert!(err_for(
            "ADOS_CA_CERT",
            &[("ADOS_CA_CERT", missing.to_str().unwrap())]
        )
        .contains("cannot be read"));
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a pem\n").unwrap();
        assert!(
            err_for("ADOS_CA_CERT", &[("ADOS_CA_CERT", empty.to_str().unwrap())])
                .contains("no PEM certificate")
        );
        // A structurally valid PEM block is enough here: the bytes are only
        // parsed as a certificate when a TLS config is built.
        let good = dir.join("good.pem");
        std::fs::write(
            &good,
            "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert_eq!(
            ok(&[("ADOS_CA_CERT", good.to_str().unwrap())]).ca_cert,
            Some(good)
        );
    }

    #[test]
    fn proxies() {
        let c = ok(&[
            ("https_proxy", "http://p:3128"),
            ("HTTP_PROXY", "http://q:8080"),
            ("http_proxy", "http://ignored:1"),
            ("no_proxy", "localhost, .corp.example,,10.0.0.1"),
        ]);
        let host_port = |p: Option<&crate::net::Proxy>| p.map(|p| (p.host.clone(), p.port));
        assert_eq!(
            host_port(c.proxy.https_proxy.as_ref()),
            Some(("p".into(), 3128))
        );
        assert_eq!(
            host_port(c.proxy.http_proxy.as_ref()),
            Some(("q".into(), 8080))
        );
        let route = |tls: bool, host: &str| host_port(c.proxy.route(tls, host, 443));
        assert_eq!(route(true, "api.corp.example"), None);
        assert_eq!(route(true, "corp.example"), None);
        assert_eq!(route(true, "localhost"), None);
        assert_eq!(route(true, "10.0.0.1"), None);
        assert_eq!(route(true, "api.ados.dev"), Some(("p".into(), 3128)));
        assert_eq!(route(false, "x"), Some(("q".into(), 8080)));
        assert_eq!(route(false, "notcorp.example"), Some(("q".into(), 8080)));
        let e = err_for("HTTPS_PROXY", &[("HTTPS_PROXY", "http://u:pw@proxy")]);
        assert!(e.contains("port") && !e.contains("pw"), "{e}");
        assert!(err_for("http_proxy", &[("http_proxy", "socks5://p:1")]).contains("http://"));
    }

    #[test]
    fn shutdown_grace_flags_and_disk() {
        assert_eq!(
            ok(&[("ADOS_SHUTDOWN_GRACE", "10m")]).shutdown_grace,
            Duration::from_secs(600)
        );
        assert_eq!(
            ok(&[("ADOS_SHUTDOWN_GRACE", "30")]).shutdown_grace,
            Duration::from_secs(30)
        );
        assert!(
            err_for("ADOS_SHUTDOWN_GRACE", &[("ADOS_SHUTDOWN_GRACE", "soon")]).contains("seconds")
        );
        let c = ok(&[
            ("ADOS_ALLOW_HTTP", "true"),
            ("ADOS_ALLOW_FILE_REMOTES", "0"),
        ]);
        assert_eq!(
            c.remote_policy,
            RemotePolicy {
                allow_http: true,
                allow_file: false
            }
        );
        assert!(err_for(
            "ADOS_ALLOW_FILE_REMOTES",
            &[("ADOS_ALLOW_FILE_REMOTES", "ture")]
        )
        .contains("1/true"));
        assert!(ok(&[]).metrics_repo_label, "on by default");
        assert!(!ok(&[("ADOS_METRICS_REPO_LABEL", "0")]).metrics_repo_label);
        assert!(ok(&[("ADOS_METRICS_REPO_LABEL", "yes")]).metrics_repo_label);
        assert!(err_for(
            "ADOS_METRICS_REPO_LABEL",
            &[("ADOS_METRICS_REPO_LABEL", "none")]
        )
        .contains("0/false"));
        assert_eq!(ok(&[("ADOS_MIN_FREE_DISK", "10G")]).min_free_disk, 10 << 30);
        assert_eq!(ok(&[("ADOS_MIN_FREE_DISK", "0")]).min_free_disk, 0);
        assert!(
            err_for("ADOS_MIN_FREE_DISK", &[("ADOS_MIN_FREE_DISK", "lots")]).contains("number")
        );
    }

    #[test]
    fn secrets_and_bitbucket_pairing() {
        let c = ok(&[
            ("GITHUB_TOKEN", "ghp_1"),
            ("GITLAB_TOKEN", ""),
            ("ANTHROPIC_API_KEY", "sk-ant-1"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "oat"),
            ("OPENAI_API_KEY", "sk-2"),
            ("COPILOT_GITHUB_TOKEN", "gh-3"),
            ("BITBUCKET_USERNAME", "bot"),
            ("BITBUCKET_APP_PASSWORD", "bbpw"),
        ]);
        assert_eq!(c.vcs.github_token.as_deref(), Some("ghp_1"));
        assert_eq!(
            c.vcs.gitlab_token, None,
            "empty optional secret counts as unset"
        );
        let mut secrets = c.secrets();
        secrets.sort();
        assert_eq!(
            secrets,
            [
                "bbpw",
                "gh-3",
                "ghp_1",
                "oat",
                "sk-2",
                "sk-ant-1",
                "tok_secret_123"
            ]
        );
        assert!(
            err_for("BITBUCKET_APP_PASSWORD", &[("BITBUCKET_USERNAME", "bot")])
                .contains("required when")
        );
        assert!(
            err_for("BITBUCKET_USERNAME", &[("BITBUCKET_APP_PASSWORD", "pw")])
                .contains("required when")
        );
        let e = err_for("OPENAI_API_KEY", &[("OPENAI_API_KEY", "sk live")]);
        assert!(!e.contains("sk live"), "{e}");
    }

    #[test]
    fn custom_agents_file() {
        let dir = temp_dir("agents");
        let f = dir.join("agents.json");
        std::fs::write(
            &f,
            r#"{"agents":[{"name":"aider","command":["aider","--yes"],"prompt":"stdin"}]}"#,
        )
        .unwrap();
        let c = ok(&[("ADOS_CUSTOM_AGENTS", f.to_str().unwrap())]);
        assert_eq!(c.custom_agents[0].name, "aider");
        assert!(c.custom_agents[0].prompt_on_stdin);
        std::fs::write(&f, r#"{"agents":[{"name":"codex","command":["x"]}]}"#).unwrap();
        let e = err_for(
            "ADOS_CUSTOM_AGENTS",
            &[("ADOS_CUSTOM_AGENTS", f.to_str().unwrap())],
        );
        assert!(
            e.contains("agents.json") && e.contains("agents[0].name"),
            "{e}"
        );
    }

    #[test]
    fn display_names_var_and_example() {
        let e = Config::from_raw(&env_with(&[("ADOS_MODE", "x")]), Purpose::Daemon).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid configuration (1 problem(s)):\n  - ADOS_MODE: must be one of chat, issue, all (example: ADOS_MODE=all)\n"
        );
    }
}
