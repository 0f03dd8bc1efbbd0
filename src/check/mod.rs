//! `ados-work-runner check`: the doctor. Runs every check a runner needs to
//! work (configuration, git, agent CLIs, workspace, the API and the
//! WebSocket handshake), prints one ✓/✗ line each with a fix under every
//! failure, and exits 1 if anything failed.
//!
//! Checks that need a valid configuration (workspace, API, WebSocket) are
//! left out when the configuration itself fails: its ✗ already lists every
//! problem, and checking with half a configuration would only add noise.
//!
//! Agent CLIs: the check fails only when *no* agent (built-in or custom)
//! is available; a runner with just one agent is a valid runner, so the
//! others are listed as "not found", each on a line of its own. A custom
//! agent is never run with `--version` (a CLI that reads any argument as a
//! prompt would go to work): only the `version` command its definition
//! gives runs, else it is only looked up on PATH.
//!
//! With `ADOS_EXECUTOR=docker` the agent CLIs are looked for in the job
//! image instead, after the Docker daemon, its socket and the image itself
//! (`docker.rs`).
//!
//! The WebSocket check performs a real handshake and closes the connection
//! right away without sending `hello`, so the control plane never sees a
//! runner session. Run it while the daemon is stopped if your control plane
//! drops the older connection for a runner id (close code 4009).

mod api;
mod docker;
#[cfg(test)]
mod net_tests;
mod programs;
mod websocket;
mod workspace;

use crate::config::{format_binary, Config, ConfigErrors, Purpose, RawEnv, BUILTIN_AGENTS};
use crate::net::Network;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

/// Timeout for each network check.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`git`, `API reachable`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found; may span several lines.
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn pass(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Run every check against the real system.
pub fn run_checks(env: &RawEnv) -> Vec<Check> {
    let path = path_of(env);
    run_checks_with(env, &|program| match program {
        // git as the daemon runs it (its environment, its process handling).
        "git" => crate::git::git_version_line(),
        _ => programs::version_of(program, &path),
    })
}

/// The `PATH` programs are looked up on.
fn path_of(env: &RawEnv) -> String {
    env.get("PATH")
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .to_string()
}

/// [`run_checks`] with the program probe injected: `probe(program)` is the
/// first line of `program --version`, or why it could not be had. Custom
/// agents are not probed through it: only their own `version` command
/// runs, if their definition gives one.
pub fn run_checks_with(env: &RawEnv, probe: &dyn Fn(&str) -> Result<String, String>) -> Vec<Check> {
    let config = Config::from_raw(env, Purpose::Daemon);
    let mut out = vec![config_check(&config), programs::git_check(probe("git"))];
    let mut agents: Vec<(String, Result<String, String>)> = BUILTIN_AGENTS
        .iter()
        .map(|a| (a.to_string(), probe(a)))
        .collect();
    if let Ok(cfg) = &config {
        let path = path_of(env);
        for custom in &cfg.custom_agents {
            agents.push((
                custom.name.clone(),
                programs::custom_agent_status(custom, &path),
            ));
        }
    }
    match config.as_ref().map(|c| (c, &c.executor)) {
        // Jobs' agents run in the job image: the host's do not matter.
        Ok((cfg, crate::config::ExecutorSetting::Docker(settings))) => {
            out.extend(docker::checks(cfg, settings));
        }
        Ok(_) => {
            out.push(programs::agents_check(&agents));
            out.push(Check::pass(
                "egress",
                "open: jobs run on the host and reach every network it reaches (ADOS_JOB_EGRESS=allowlist needs ADOS_EXECUTOR=docker)",
            ));
        }
        Err(_) => out.push(programs::agents_check(&agents)),
    }
    if let Ok(cfg) = &config {
        out.push(workspace::writable(&cfg.workspace_dir));
        out.push(workspace::free_space(&cfg.workspace_dir, cfg.min_free_disk));
        // The daemon's own network layer, built once as the daemon builds it.
        match Network::new(&cfg.proxy, cfg.ca_cert.as_deref()) {
            Ok(net) => {
                out.push(api::api_check(cfg, &net));
                out.push(websocket::websocket_check(cfg, &net));
            }
            Err(e) => out.push(Check::fail(
                "TLS setup",
                e.to_string(),
                "point ADOS_CA_CERT at a PEM file of CA certificates",
            )),
        }
    }
    out
}

/// The report as printed: one `✓`/`✗` line per check, continuation lines
/// indented, and `fix:` under each failure.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { '✓' } else { '✗' };
        let mut lines = c.detail.lines();
        let _ = writeln!(out, "{mark} {}: {}", c.name, lines.next().unwrap_or(""));
        for l in lines {
            let _ = writeln!(out, "    {l}");
        }
        if let (false, Some(fix)) = (c.ok, &c.fix) {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str("all checks passed\n");
    } else {
        let _ = writeln!(out, "{failed} check(s) failed");
    }
    out
}

/// The exit code for a report: 0 when every check passed, else 1.
pub fn exit_code(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| !c.ok))
}

/// Print the report to stdout and return the exit code.
pub fn print(checks: &[Check]) -> i32 {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(render(checks).as_bytes());
    let _ = stdout.flush();
    exit_code(checks)
}

fn config_check(config: &Result<Config, ConfigErrors>) -> Check {
    match config {
        Ok(c) => Check::pass(
            "configuration",
            format!(
                "valid (runner {}, group {}, mode {}, {}, {}, {} memory)",
                c.runner_id,
                c.group,
                c.mode.as_str(),
                crate::words::count(c.max_jobs, "job slot"),
                crate::words::count(c.cpus as usize, "CPU"),
                format_binary(c.memory_bytes)
            ),
        ),
        Err(errs) => Check::fail(
            "configuration",
            errs.to_string().trim_end().to_string(),
            "set each variable listed above as its example shows",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(super) fn temp_dir(tag: &str) -> std::path::PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ados-check-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    pub(super) fn config_for(api_url: &str, token: &str) -> Config {
        let ws = temp_dir("ws");
        Config::from_raw(
            &RawEnv::from_pairs([
                ("ADOS_API_URL", api_url),
                ("ADOS_TOKEN", token),
                ("ADOS_RUNNER_ID", "runner-1"),
                ("WORKSPACE_DIR", ws.to_str().unwrap()),
                ("ADOS_CPUS", "1"),
                ("ADOS_MEMORY", "4G"),
            ]),
            Purpose::Daemon,
        )
        .unwrap()
    }

    /// [`api::api_check`] with the network built as `run_checks` builds it.
    pub(super) fn api_check_for(cfg: &Config) -> Check {
        api::api_check(
            cfg,
            &Network::new(&cfg.proxy, cfg.ca_cert.as_deref()).unwrap(),
        )
    }

    /// [`websocket::websocket_check`], likewise.
    pub(super) fn websocket_check_for(cfg: &Config) -> Check {
        websocket::websocket_check(
            cfg,
            &Network::new(&cfg.proxy, cfg.ca_cert.as_deref()).unwrap(),
        )
    }

    #[test]
    fn render_marks_failures_with_their_fix() {
        let checks = vec![
            Check::pass("git", "2.43.0"),
            Check::fail(
                "configuration",
                "invalid configuration:\n  - ADOS_TOKEN: is required",
                "set it",
            ),
        ];
        assert_eq!(
            render(&checks),
            "✓ git: 2.43.0\n✗ configuration: invalid configuration:\n      - ADOS_TOKEN: is required\n    fix: set it\n1 check(s) failed\n"
        );
        assert_eq!(exit_code(&checks), 1);
        assert_eq!(exit_code(&checks[..1]), 0);
        assert!(render(&checks[..1]).ends_with("all checks passed\n"));
    }

    /// `check` never runs a custom agent with `--version`: the demo agent
    /// took that as a prompt and went to work. Found on PATH is enough.
    #[test]
    fn check_does_not_run_a_custom_agent_without_a_version_command() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("doctor-custom");
        let marker = dir.join("ran");
        let script = dir.join("doer");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let defs = dir.join("agents.json");
        std::fs::write(&defs, r#"{"agents":[{"name":"doer","command":["doer"]}]}"#).unwrap();
        let ws = temp_dir("doctor-ws");
        let path = format!("{}:/usr/bin:/bin", dir.display());
        let env = RawEnv::from_pairs([
            ("ADOS_API_URL", "http://127.0.0.1:9"),
            ("ADOS_TOKEN", "tok_0123456789abcdef"),
            ("ADOS_RUNNER_ID", "runner-1"),
            ("WORKSPACE_DIR", ws.to_str().unwrap()),
            ("ADOS_CUSTOM_AGENTS", defs.to_str().unwrap()),
            ("PATH", path.as_str()),
        ]);
        let checks = run_checks_with(&env, &|p| match p {
            "git" => Ok("git version 2.43.0".into()),
            _ => Err("not found on PATH".into()),
        });
        assert!(!marker.exists(), "check ran the custom agent");
        let agents = checks.iter().find(|c| c.name == "agent CLIs").unwrap();
        assert!(agents.ok, "{agents:?}");
        assert!(agents.detail.starts_with("doer at "), "{agents:?}");
        assert!(
            agents.detail.contains("\nclaude: not found on PATH\n"),
            "{agents:?}"
        );
    }

    #[test]
    fn invalid_configuration_skips_dependent_checks() {
        let checks = run_checks_with(&RawEnv::default(), &|p| match p {
            "git" => Ok("git version 2.43.0".into()),
            "codex" => Ok("codex-cli 0.46.0".into()),
            _ => Err("not found on PATH".into()),
        });
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["configuration", "git", "agent CLIs"]);
        assert!(!checks[0].ok && checks[0].detail.contains("ADOS_TOKEN"));
        assert!(checks[1].ok && checks[2].ok);
    }
}
