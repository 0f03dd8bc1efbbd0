//! The validated configuration and the rules that produce it.

use super::custom::{self, CustomAgent};
use super::egress::{self, EgressSetting};
use super::error::{ConfigErrors, Problems};
use super::executor::{self, ExecutorSetting};
use super::raw::RawEnv;
use super::settings::{
    default_max_jobs, AgentKeys, LogFormat, Mode, Purpose, VcsCredentials, DEFAULT_MIN_FREE_DISK,
    MAX_JOBS_LIMIT, MEMORY_PER_JOB,
};
use super::vars::{check_ca_file, flag, flag_or, label, proxy_var, secret, workspace_dir};
use super::{detect, validate};
use crate::job::spec::RemotePolicy;
use crate::net::{NoProxy, ProxySettings};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Below this an `ADOS_MEMORY` is surely missing its unit (`512` meant as MB).
const MIN_MEMORY: u64 = 64 << 20;

const EX_API_URL: &str = "https://api.ados.dev";

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
    pub health_addr: Option<SocketAddr>,
    /// `ADOS_ONCE` (or `run --once`): take exactly one job, deliver its
    /// result and events, then exit 0 (ephemeral runners).
    pub once: bool,
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
    /// `ADOS_JOB_UID_BASE`: when the runner runs as root, the agent and
    /// the tests of the job in slot `n` run as uid/gid `base + n`, a user
    /// of that slot's own (`None`: as the runner; the default when the
    /// runner is not root, or with `off`).
    pub job_uid_base: Option<u32>,
    /// VCS tokens.
    pub vcs: VcsCredentials,
    /// Agent keys.
    pub agent_keys: AgentKeys,
    /// Custom command agents.
    pub custom_agents: Vec<CustomAgent>,
    /// `ADOS_EXECUTOR` and, for `docker`, the job containers' settings.
    pub executor: ExecutorSetting,
    /// `ADOS_JOB_EGRESS` and `ADOS_EGRESS_ALLOW`.
    pub egress: EgressSetting,
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

/// The default first uid of the per-job users: above the ranges that
/// distributions give to system and login users, and to `subuid` maps'
/// usual start (100000 + 65536 per user).
pub const DEFAULT_JOB_UID_BASE: u32 = 200_000;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `ADOS_JOB_UID_BASE`: a number, or `off`. On by default only for a
/// runner that runs as root (nobody else can switch users); set on a
/// runner that is not root it is an error, so nobody believes jobs are
/// isolated when they are not.
fn job_uid_base(env: &RawEnv, errs: &mut Problems, max_jobs: usize, root: bool) -> Option<u32> {
    const VAR: &str = "ADOS_JOB_UID_BASE";
    let base = match env.get(VAR).map(str::trim) {
        None => DEFAULT_JOB_UID_BASE,
        Some(v) if v.eq_ignore_ascii_case("off") => return None,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if n >= 1000 => n,
            _ => {
                errs.push(VAR, "must be a user id of 1000 or more, or off", "200000");
                return None;
            }
        },
    };
    let slots = u32::try_from(max_jobs).unwrap_or(u32::MAX);
    if base
        .checked_add(slots)
        .is_none_or(|end| end >= u32::MAX - 1)
    {
        errs.push(
            VAR,
            "leaves no room for one user per job slot below 4294967294",
            "200000",
        );
        return None;
    }
    if !root {
        if env.get(VAR).is_some() {
            errs.push(
                VAR,
                "needs the runner to run as root (only root can start a job as another user); unset it, or set it to off",
                "off",
            );
        }
        return None;
    }
    Some(base)
}

/// Job users (`ADOS_JOB_UID_BASE`) must be able to pass through every
/// directory down to `WORKSPACE_DIR/jobs/<id>/`: an agent whose checkout
/// sits below a directory of mode 0700 (a `mktemp -d`, `/root`) cannot
/// even start. Said before any job runs, with the fix.
fn reachable_by_job_users(workspace: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(canonical) = std::fs::canonicalize(workspace) else {
        return Ok(()); // reported by the WORKSPACE_DIR check itself
    };
    for dir in canonical.ancestors() {
        let Ok(meta) = std::fs::metadata(dir) else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o001 == 0 {
            return Err(format!(
                "{} is not reachable by the per-job users (ADOS_JOB_UID_BASE): {} has mode {mode:04o}; \
                 let others pass through it (chmod o+x {}), put WORKSPACE_DIR elsewhere, or set ADOS_JOB_UID_BASE=off",
                workspace.display(),
                dir.display(),
                dir.display()
            ));
        }
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
            None => Some(SocketAddr::from(([0, 0, 0, 0], 8080))),
            // Where nothing probes the runner, or its port is not to be open.
            Some(v) if v.eq_ignore_ascii_case("off") => None,
            Some(v) => Some(v.parse().unwrap_or_else(|_| {
                errs.push(
                    "ADOS_HEALTH_ADDR",
                    "must be an IP address and port, or off",
                    "0.0.0.0:8080",
                );
                SocketAddr::from(([0, 0, 0, 0], 8080))
            })),
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
        let (log_var, log_level) = match (env.get("ADOS_LOG_LEVEL"), env.get("RUST_LOG")) {
            (Some(v), _) => ("ADOS_LOG_LEVEL", v),
            (None, Some(v)) => ("RUST_LOG", v),
            (None, None) => ("ADOS_LOG_LEVEL", "info"),
        };
        let log_level = match validate::check_log_filter(log_level) {
            Ok(()) => log_level.trim().to_string(),
            Err(p) => {
                errs.push(log_var, p, "info");
                "info".to_string()
            }
        };
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
        let once = flag_or(env, &mut errs, "ADOS_ONCE", false);
        let job_uid_base = job_uid_base(env, &mut errs, max_jobs, is_root());
        let executor = executor::executor(env, &mut errs, cpus, memory_bytes, max_jobs);
        let egress = egress::egress(env, &mut errs, &executor);
        // A job container has its directories mounted directly: its user
        // never walks the host's path down to them.
        if job_uid_base.is_some() && executor == ExecutorSetting::Host {
            if let Err(problem) = reachable_by_job_users(&workspace_dir) {
                errs.push("WORKSPACE_DIR", problem, "/var/lib/ados/work");
            }
        }
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
        let mut agent_keys = AgentKeys {
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
            named: Default::default(),
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
        for name in custom_agents.iter().flat_map(|a| &a.env) {
            match env.get_raw(name) {
                None | Some("") => {}
                Some(v) => match validate::secret_problem(v) {
                    Some(p) => errs.push(
                        "ADOS_CUSTOM_AGENTS",
                        format!("{name} (named in a custom agent's env) {p}"),
                        "/etc/ados/agents.json",
                    ),
                    None => {
                        agent_keys.named.insert(name.clone(), v.to_string());
                    }
                },
            }
        }

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
            once,
            log_format,
            log_level,
            ca_cert,
            proxy,
            shutdown_grace,
            max_backoff,
            remote_policy,
            min_free_disk,
            metrics_repo_label,
            job_uid_base,
            vcs,
            agent_keys,
            custom_agents,
            executor,
            egress,
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
        out.extend(self.agent_keys.named.values().cloned());
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
mod job_uid_tests {
    use super::*;

    fn base(vars: &[(&str, &str)], root: bool) -> (Option<u32>, Vec<String>) {
        let env = RawEnv::from_pairs(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut errs = Problems(Vec::new());
        let got = job_uid_base(&env, &mut errs, 4, root);
        (got, errs.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_root_runner_gives_each_slot_a_user_unless_told_not_to() {
        assert_eq!(base(&[], true), (Some(DEFAULT_JOB_UID_BASE), vec![]));
        assert_eq!(
            base(&[("ADOS_JOB_UID_BASE", "300000")], true).0,
            Some(300_000)
        );
        assert_eq!(base(&[("ADOS_JOB_UID_BASE", "off")], true), (None, vec![]));
        let (got, errs) = base(&[("ADOS_JOB_UID_BASE", "12")], true);
        assert!(
            got.is_none() && errs[0].contains("ADOS_JOB_UID_BASE"),
            "{errs:?}"
        );
        let (_, errs) = base(&[("ADOS_JOB_UID_BASE", "4294967293")], true);
        assert!(errs[0].contains("no room"), "{errs:?}");
    }

    #[test]
    fn a_workspace_below_a_private_directory_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let private = std::env::temp_dir().join(format!("ados-private-{}", std::process::id()));
        let ws = private.join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        let err = reachable_by_job_users(&ws).expect_err("0700 on the way");
        assert!(err.contains("chmod o+x") && err.contains("0700"), "{err}");
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(reachable_by_job_users(&ws).is_ok());
        std::fs::remove_dir_all(&private).unwrap();
    }

    #[test]
    fn a_runner_that_is_not_root_runs_jobs_as_itself_and_says_so_when_asked_otherwise() {
        assert_eq!(base(&[], false), (None, vec![]));
        assert_eq!(base(&[("ADOS_JOB_UID_BASE", "off")], false), (None, vec![]));
        let (got, errs) = base(&[("ADOS_JOB_UID_BASE", "200000")], false);
        assert!(got.is_none() && errs[0].contains("root"), "{errs:?}");
    }
}
