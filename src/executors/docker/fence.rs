//! The egress fence of job containers (`ADOS_JOB_EGRESS=allowlist`):
//! each job container has no network at all (`--network none`: only its
//! own loopback), so nothing in it can reach the internet, the host's
//! addresses (docker0, the gateway) or another container. Its one way out
//! is the runner's egress proxy (`crate::egress`), reached through a unix
//! socket of the job's own bind-mounted into the container, to which the
//! runner's binary, mounted read-only and run as the container's main
//! process (`egress-forward`), relays the container's `127.0.0.1:3128`.
//! The proxy variables of every command point there. docs/egress.md says
//! why this design and not an internal network with firewall rules.
//!
//! Nothing here outlives the runner: the proxy is a thread of it, each
//! job's socket is in the job's directory (removed with it, and swept at
//! start with it after a SIGKILL), the containers are labelled and swept
//! like every job container, and no Docker network is created.

use super::super::placement::Placement;
use crate::egress::{Allowlist, EgressProxy, JobEgress, Limits};
use crate::metrics::Metrics;
use crate::net::ProxySettings;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The port the forwarder listens on inside each job container.
pub const FORWARD_PORT: u16 = 3128;

/// Where a job container sees its job's socket directory.
pub(super) const SOCKET_DIR: &str = "/run/ados-egress";

/// Where a job container sees the runner's binary (read-only).
pub(super) const FORWARDER: &str = "/run/ados-egress-forward";

/// The daemon's forwarder binary under `WORKSPACE_DIR/state/egress`.
pub const FORWARDER_NAME: &str = "ados-work-runner";

/// How long a job's end waits for its connections to be decided: a
/// refusal takes a name lookup at most, a few seconds when DNS is slow.
const DECIDE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The socket's name in both directories.
const SOCKET: &str = "proxy.sock";

/// The runner-wide side of the fence: the proxy and the forwarder binary.
pub struct EgressFence {
    proxy: EgressProxy,
    /// The forwarder binary (runner's path), removed when the runner stops.
    forwarder: PathBuf,
    /// `ADOS_EGRESS_ALLOW`.
    pub(super) global: Allowlist,
    /// The forwarder binary as the daemon sees it (bind-mount source).
    pub(super) forwarder_source: PathBuf,
}

impl std::fmt::Debug for EgressFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressFence")
            .field("proxy", &self.proxy.addr())
            .finish_non_exhaustive()
    }
}

impl EgressFence {
    /// Start the proxy (upstream through the runner's own `upstream`
    /// settings) and place the forwarder binary where the daemon can
    /// mount it: a link to (else a copy of) the running binary at
    /// `WORKSPACE_DIR/state/egress/<name>`, so it works for a runner in a
    /// container too, whose own binary the daemon cannot see. The daemon's
    /// is [`FORWARDER_NAME`], replaced at each start.
    ///
    /// # Errors
    /// A message saying what failed.
    pub fn start(
        workspace: &Path,
        placement: &Placement,
        global: Allowlist,
        upstream: ProxySettings,
        metrics: Arc<Metrics>,
        name: &str,
        cli_env: &[(String, String)],
    ) -> Result<EgressFence, String> {
        let dir = workspace.join("state").join("egress");
        let place = |e: std::io::Error| {
            format!(
                "cannot place the egress forwarder in {}: {e}",
                dir.display()
            )
        };
        std::fs::create_dir_all(&dir).map_err(place)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(place)?;
        if name == FORWARDER_NAME {
            sweep_killed_checks(&dir);
        }
        let exe = std::env::current_exe().map_err(place)?;
        let forwarder = dir.join(name);
        let _ = std::fs::remove_file(&forwarder);
        if std::fs::hard_link(&exe, &forwarder).is_err() {
            std::fs::copy(&exe, &forwarder).map_err(place)?;
        }
        std::fs::set_permissions(&forwarder, std::fs::Permissions::from_mode(0o755))
            .map_err(place)?;
        let forwarder_source = placement
            .daemon_path(&forwarder)
            .map_err(|e| e.to_string())?;
        let proxy = EgressProxy::start(
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream,
            metrics,
            Limits::default(),
        )
        .map_err(|e| format!("cannot start the egress proxy: {e}"))?;
        proxy.protect_docker(docker_endpoints(cli_env));
        // A runner in a container: its own interfaces are the container's;
        // the Docker host, where the runner's published health port and
        // the host's services answer, is behind its networks' gateways.
        if let Some(c) = placement.own_container() {
            proxy.protect_host(c.gateways.clone());
        }
        Ok(EgressFence {
            proxy,
            forwarder,
            global,
            forwarder_source,
        })
    }

    /// Register a job with the proxy: its allowlist `allow`, its token.
    /// Its socket is made when its first container starts
    /// ([`JobFence::listen`]), once the job's directory exists.
    pub(super) fn register(&self, job_id: &str, job_dir: PathBuf, allow: Allowlist) -> JobFence {
        JobFence {
            egress: self.proxy.register(job_id, allow),
            dir: job_dir.join("egress"),
        }
    }

    /// Stop accepting connections (at shutdown).
    pub fn stop(&self) {
        self.proxy.stop();
    }
}

/// Remove the forwarders `check` placed (`check-<pid>`, a copy of the
/// binary each) whose process is gone: a `check` killed before its end
/// could not remove its own. One that still runs keeps its file.
fn sweep_killed_checks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(10_000) {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("check-"))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// The addresses of the Docker daemon when the `docker` CLI's environment
/// (`cli_env`) points it at TCP (`DOCKER_HOST=tcp://host:port`); a unix
/// socket is out of a TCP proxy's reach anyway.
fn docker_endpoints(cli_env: &[(String, String)]) -> Vec<SocketAddr> {
    let Some((_, host)) = cli_env.iter().find(|(k, _)| k == "DOCKER_HOST") else {
        return Vec::new();
    };
    let Some(authority) = host.trim().strip_prefix("tcp://") else {
        return Vec::new();
    };
    let authority = authority.split('/').next().unwrap_or_default();
    authority
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

impl Drop for EgressFence {
    fn drop(&mut self) {
        self.proxy.stop();
        let _ = std::fs::remove_file(&self.forwarder);
    }
}

/// One job container's fence: its registration with the proxy and its
/// socket directory. Dropping it closes the socket.
pub(super) struct JobFence {
    egress: JobEgress,
    /// The job's socket directory (runner's path).
    pub(super) dir: PathBuf,
}

impl std::fmt::Debug for JobFence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobFence")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl JobFence {
    /// Serve the job's socket in its directory (made reachable by the
    /// container's user, whoever that is: the directory is the job's own).
    ///
    /// # Errors
    /// The socket cannot be made.
    pub(super) fn listen(&self) -> Result<(), String> {
        let dir = &self.dir;
        let fail = |e: std::io::Error| {
            format!(
                "cannot make the job's egress socket in {}: {e}",
                dir.display()
            )
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(fail)?;
        self.egress.listen_unix(&dir.join(SOCKET)).map_err(fail)
    }

    /// The proxy variables of every command in the container.
    pub(super) fn env(&self) -> Vec<(String, String)> {
        self.egress.env(&format!("127.0.0.1:{FORWARD_PORT}"))
    }

    /// The job's proxy token (a secret).
    pub(super) fn token(&self) -> &str {
        self.egress.token()
    }

    /// The job's container is gone: close its socket once what came in
    /// is decided (see `JobEgress::close`). A connection still resolving
    /// a name past [`DECIDE_WAIT`] is reported in the runner's log only.
    pub(super) fn close(&self) {
        self.egress.close(DECIDE_WAIT);
    }

    /// Refusal lines waiting for the job's stream.
    pub(super) fn take_refusals(&self) -> Vec<String> {
        self.egress.take_refusals()
    }

    /// The forwarder's command line inside the container.
    pub(super) fn forwarder_args() -> Vec<String> {
        vec![
            "egress-forward".into(),
            "--listen".into(),
            format!("127.0.0.1:{FORWARD_PORT}"),
            "--socket".into(),
            format!("{SOCKET_DIR}/{SOCKET}"),
        ]
    }
}

impl super::runtime::DockerRuntime {
    /// `check`'s line about egress: the mode, and with `allowlist` whether
    /// the fence can be made here: the proxy starts, the forwarder is
    /// placed, and the job image runs it with no network.
    pub fn egress_finding(&self, cfg: &crate::config::Config) -> super::CheckFinding {
        const NAME: &str = "egress";
        let global = match &cfg.egress {
            crate::config::EgressSetting::Open => {
                return super::CheckFinding {
                    name: NAME,
                    detail: "open: job containers reach what their Docker network reaches (ADOS_JOB_EGRESS=allowlist fences them in)".into(),
                    fix: None,
                }
            }
            crate::config::EgressSetting::Allowlist(global) => global.clone(),
        };
        let fail = |detail: String| {
            super::CheckFinding {
            name: NAME,
            detail: format!("allowlist, but the fence cannot be made: {detail}"),
            fix: Some("the job image must run the runner's binary (the static build of `make static` runs in any image); or set ADOS_JOB_EGRESS=open".into()),
        }
        };
        let fence = match EgressFence::start(
            &self.workspace,
            &self.placement,
            global.clone(),
            cfg.proxy.clone(),
            Arc::new(Metrics::new()),
            &format!("check-{}", std::process::id()),
            &self.cli_env,
        ) {
            Ok(f) => f,
            Err(e) => return fail(e),
        };
        let mut argv: Vec<String> = [
            "run",
            "--rm",
            "--pull",
            "never",
            "--network",
            "none",
            "--label",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        argv.push(self.runner_label());
        argv.push("--mount".into());
        argv.push(format!(
            "type=bind,source={},target={FORWARDER},readonly",
            fence.forwarder_source.display()
        ));
        argv.extend([
            "--entrypoint".into(),
            FORWARDER.into(),
            self.image.clone(),
            "version".into(),
        ]);
        match self.run_cli(argv, std::time::Duration::from_secs(60)) {
            Ok(out) if out.starts_with("ados-work-runner") => {
                let allowed: Vec<String> =
                    global.entries().iter().map(ToString::to_string).collect();
                super::CheckFinding {
                    name: NAME,
                    detail: format!(
                        "allowlist: job containers have no network but the runner's proxy, which allows each job's agent API and registries, and {}",
                        if allowed.is_empty() { "nothing else (ADOS_EGRESS_ALLOW is empty)".to_string() } else { allowed.join(", ") }
                    ),
                    fix: None,
                }
            }
            Ok(out) => fail(format!(
                "the job image ran the forwarder, which said {:?}",
                out.trim()
            )),
            Err(e) => fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &str) -> Vec<(String, String)> {
        vec![("DOCKER_HOST".to_string(), v.to_string())]
    }

    #[test]
    fn a_docker_daemon_on_tcp_is_protected_and_a_socket_needs_nothing() {
        let want: Vec<SocketAddr> = vec!["10.1.2.3:2376".parse().unwrap()];
        assert_eq!(docker_endpoints(&env("tcp://10.1.2.3:2376")), want);
        assert_eq!(docker_endpoints(&env(" tcp://10.1.2.3:2376/ ")), want);
        assert!(docker_endpoints(&env("unix:///var/run/docker.sock")).is_empty());
        assert!(docker_endpoints(&env("tcp://no-port")).is_empty());
        assert!(docker_endpoints(&[]).is_empty());
    }
}
