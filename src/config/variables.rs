//! Every environment variable the runner reads, with its default and
//! meaning: one table, printed by `ados-work-runner help env` (the binary
//! is often copied without its README) and checked by a test against the
//! variables the configuration actually reads.

/// One variable of the table.
#[derive(Clone, Copy, Debug)]
pub struct Variable {
    /// The name (`ADOS_API_URL`); `A / B` for names read as one.
    pub name: &'static str,
    /// What holds when it is unset.
    pub default: &'static str,
    /// What it sets, in a line or two.
    pub meaning: &'static str,
}

/// The table, in the order of the README's sections.
#[rustfmt::skip]
pub const VARIABLES: &[Variable] = &[
    Variable { name: "ADOS_API_URL", default: "required", meaning: "control plane URL (https://api.ados.dev); the WebSocket is wss://…/api/v1/work/runners/ws" },
    Variable { name: "ADOS_TOKEN", default: "required", meaning: "runner token (secret; sent only as Authorization: Bearer)" },
    Variable { name: "ADOS_RUNNER_ID", default: "required", meaning: "this runner's id, [A-Za-z0-9._-], 1 to 128 characters" },
    Variable { name: "WORKSPACE_DIR", default: "required (exec: <tmp>/ados-exec-workspace)", meaning: "where clones, mirrors, journals and job directories live (created if missing)" },
    Variable { name: "ADOS_MODE", default: "all", meaning: "chat, issue or all: which job kinds this runner takes" },
    Variable { name: "ADOS_GROUP", default: "default", meaning: "runner group" },
    Variable { name: "ADOS_CPUS", default: "the cgroup CPU quota (v2 cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us), rounded up, else available parallelism", meaning: "CPUs reported to the control plane" },
    Variable { name: "ADOS_MEMORY", default: "the cgroup memory limit (v2 memory.max, v1 memory.limit_in_bytes), else MemTotal", meaning: "memory: 8G, 8GB, 8Gi, 512M, 512MiB or bytes (binary units)" },
    Variable { name: "ADOS_HOSTNAME", default: "the host name", meaning: "host name reported" },
    Variable { name: "ADOS_DEPLOY_ID", default: "unset", meaning: "deployment id reported in hello" },
    Variable { name: "ADOS_TENANT_ID", default: "unset", meaning: "tenant id (also sent as X-Ados-Tenant-Id)" },
    Variable { name: "GITHUB_TOKEN", default: "unset", meaning: "secret: GitHub clone/push; Copilot's token when COPILOT_GITHUB_TOKEN is unset" },
    Variable { name: "GITLAB_TOKEN", default: "unset", meaning: "secret: GitLab clone/push" },
    Variable { name: "BITBUCKET_USERNAME", default: "unset", meaning: "Bitbucket clone/push user (with BITBUCKET_APP_PASSWORD: both or neither)" },
    Variable { name: "BITBUCKET_APP_PASSWORD", default: "unset", meaning: "secret: Bitbucket app password (with BITBUCKET_USERNAME)" },
    Variable { name: "ANTHROPIC_API_KEY", default: "unset", meaning: "secret: Claude Code's key (given only to claude)" },
    Variable { name: "CLAUDE_CODE_OAUTH_TOKEN", default: "unset", meaning: "secret: Claude Code's OAuth token, instead of ANTHROPIC_API_KEY" },
    Variable { name: "OPENAI_API_KEY", default: "unset", meaning: "secret: Codex's key (given only to codex, as CODEX_API_KEY)" },
    Variable { name: "COPILOT_GITHUB_TOKEN", default: "unset", meaning: "secret: Copilot CLI's token (a fine-grained PAT with Copilot Requests)" },
    Variable { name: "ADOS_MAX_JOBS", default: "min(cpus, memory / 2 GiB), at least 1", meaning: "worker slots (jobs at once)" },
    Variable { name: "ADOS_HEALTH_ADDR", default: "0.0.0.0:8080", meaning: "address of /health and /metrics; off serves neither" },
    Variable { name: "ADOS_LOG_FORMAT", default: "text", meaning: "text or json (one object per line)" },
    Variable { name: "ADOS_LOG_LEVEL / RUST_LOG", default: "info", meaning: "log filter: a level (error, warn, info, debug, trace, off) or module=level directives, comma-separated" },
    Variable { name: "ADOS_CA_CERT", default: "unset", meaning: "PEM bundle trusted in addition to the embedded web PKI roots" },
    Variable { name: "HTTPS_PROXY / HTTP_PROXY", default: "unset", meaning: "proxy, http://[user:password@]host:port (either case)" },
    Variable { name: "NO_PROXY", default: "unset", meaning: "hosts reached without the proxy: domain, host:port, address, CIDR block or * (either case)" },
    Variable { name: "ADOS_SHUTDOWN_GRACE", default: "600 (s)", meaning: "how long the first SIGTERM waits for running jobs (600, 10m)" },
    Variable { name: "ADOS_ALLOW_HTTP", default: "off", meaning: "allow http:// clone URLs on non-loopback hosts" },
    Variable { name: "ADOS_ALLOW_FILE_REMOTES", default: "off", meaning: "allow file:// and local-path clone URLs" },
    Variable { name: "ADOS_ONCE", default: "off", meaning: "1: take exactly one job, deliver its result and every event, then exit 0 (ephemeral runners; same as run --once)" },
    Variable { name: "ADOS_JOB_UID_BASE", default: "200000 when root, else off", meaning: "first uid/gid of the per-job users (base + slot); off runs jobs as the runner's user" },
    Variable { name: "ADOS_EXECUTOR", default: "host", meaning: "where jobs' agents and tests run: host, or docker (a container per job; needs ADOS_JOB_IMAGE)" },
    Variable { name: "ADOS_JOB_IMAGE", default: "required with docker", meaning: "the image of each job's container (must exist locally); self: the image of the runner's own container" },
    Variable { name: "ADOS_JOB_EGRESS", default: "open", meaning: "open, or allowlist: a job container reaches only the runner's proxy, which allows its agent's API, its registries and ADOS_EGRESS_ALLOW (needs ADOS_EXECUTOR=docker)" },
    Variable { name: "ADOS_EGRESS_ALLOW", default: "unset", meaning: "with ADOS_JOB_EGRESS=allowlist, what every job may also reach: host, *.domain, host:port, address or CIDR block, comma-separated" },
    Variable { name: "ADOS_JOB_CPUS", default: "the runner's cpus / slots", meaning: "docker: --cpus of each job container (1.5)" },
    Variable { name: "ADOS_JOB_MEMORY", default: "the runner's memory / slots", meaning: "docker: --memory of each job container, as ADOS_MEMORY (2G)" },
    Variable { name: "ADOS_JOB_PIDS_LIMIT", default: "4096", meaning: "docker: --pids-limit of each job container" },
    Variable { name: "ADOS_JOB_NETWORK", default: "bridge", meaning: "docker: --network of each job container (bridge, none, or a network's name)" },
    Variable { name: "DOCKER_HOST / DOCKER_CONTEXT / DOCKER_CONFIG / DOCKER_CERT_PATH / DOCKER_TLS_VERIFY", default: "the docker CLI's own", meaning: "docker: passed to the docker CLI only, never into a job container" },
    Variable { name: "ADOS_METRICS_REPO_LABEL", default: "on", meaning: "0 drops the repo label of ados_jobs_total" },
    Variable { name: "ADOS_MIN_FREE_DISK", default: "2G", meaning: "below this free space in WORKSPACE_DIR new jobs are rejected (retryable); 0 turns it off" },
    Variable { name: "ADOS_CUSTOM_AGENTS", default: "unset", meaning: "JSON file defining custom command agents" },
    Variable { name: "ADOS_MAX_BACKOFF", default: "30 (s)", meaning: "ceiling of the reconnect backoff" },
];

/// Whether `var` (any case) is in the table.
pub fn is_listed(var: &str) -> bool {
    // Every secret may be given as `<NAME>_FILE` (see the help text).
    let var = var.strip_suffix("_FILE").unwrap_or(var);
    VARIABLES.iter().any(|v| {
        v.name
            .split(" / ")
            .any(|name| name.eq_ignore_ascii_case(var))
    })
}

/// The text of `ados-work-runner help env`: one block per variable.
pub fn help_text() -> String {
    let mut out = String::from(
        "ados-work-runner — environment variables (a value that is empty counts as unset)\n\n\
         Every secret (ADOS_TOKEN, GITHUB_TOKEN, GITLAB_TOKEN, BITBUCKET_*, the agents' keys)\n\
         may instead be given as <NAME>_FILE, the path of a file that holds it (Docker and\n\
         Kubernetes secrets); one trailing newline is dropped; setting both is an error.\n\n",
    );
    for v in VARIABLES {
        out.push_str(&format!(
            "{}\n    default: {}\n    {}\n",
            v.name, v.default, v.meaning
        ));
    }
    out
}

/// The same table as an env file (`help env-file`, and `dist/.env.example`,
/// which a test keeps equal to it): every variable commented out with its
/// meaning and default, ready for `docker run --env-file` or a systemd
/// `EnvironmentFile=` once the lines needed are filled in.
pub fn env_file_text() -> String {
    let mut out = String::from(
        "# ados-work-runner: every environment variable, with its meaning and default.\n\
         # Uncomment and fill in what you set. Secrets may instead be given as\n\
         # <NAME>_FILE, the path of a file that holds them.\n\
         # Generated by `ados-work-runner help env-file`.\n",
    );
    for v in VARIABLES {
        out.push_str(&format!("\n# {}\n# default: {}\n", v.meaning, v.default));
        for name in v.name.split(" / ") {
            out.push_str(&format!("#{name}=\n"));
        }
    }
    out
}
