//! What every job container of this runner shares, resolved once at start:
//! the image (`self` made concrete), the limits, the labels' runner id,
//! the workspace as the daemon sees it, and the `docker` CLI's own
//! environment; and the one helper that runs a short `docker` command.

use super::super::placement::Placement;
use crate::config::{Config, DockerSettings, JobImage};
use crate::job::CancelToken;
use crate::process::{self, CommandSpec, RunAs, RunOptions};
use crate::redact::Redactor;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How much of a `docker` command's output is kept (ids, names, errors).
const CLI_OUTPUT_MAX: usize = 64 * 1024;

/// The runner-wide side of the Docker executor.
#[derive(Debug)]
pub struct DockerRuntime {
    pub(super) settings: DockerSettings,
    /// The image every job container starts from.
    pub(super) image: String,
    /// `ados.runner=<this>` on every container.
    pub(super) runner_id: String,
    /// `WORKSPACE_DIR`, resolved (mount targets are the runner's paths).
    pub(super) workspace: PathBuf,
    pub(super) placement: Placement,
    /// The `docker` CLI's environment: `PATH`, `DOCKER_CONFIG`, and the
    /// `DOCKER_*` variables the runner was given.
    pub(super) cli_env: Vec<(String, String)>,
    /// Who the runner is: job containers run as this when no job user is
    /// leased (files they write stay the runner's).
    pub(super) runner_user: RunAs,
    /// The egress fence, with `ADOS_JOB_EGRESS=allowlist`.
    pub(super) fence: Option<super::fence::EgressFence>,
}

impl DockerRuntime {
    /// The runtime for `cfg`'s Docker `settings`: where the runner runs
    /// (its own container, if any) and which image jobs use.
    ///
    /// # Errors
    ///
    /// A message saying what to change: the workspace cannot be mounted
    /// into job containers, or `ADOS_JOB_IMAGE=self` outside a container.
    pub fn new(cfg: &Config, settings: &DockerSettings) -> Result<DockerRuntime, String> {
        let workspace = cfg
            .workspace_dir
            .canonicalize()
            .unwrap_or_else(|_| cfg.workspace_dir.clone());
        let placement = Placement::detect(&workspace).map_err(|e| e.to_string())?;
        let image = match &settings.image {
            JobImage::Named(name) => name.clone(),
            JobImage::OwnContainer => match placement.own_container() {
                Some(own) => own.image.clone(),
                None => {
                    return Err(
                        "ADOS_JOB_IMAGE=self needs the runner to run in a container (its image is the jobs' image), \
                         but it runs on the host: set ADOS_JOB_IMAGE to an image name, such as ados-work-runner:latest"
                            .to_string(),
                    )
                }
            },
        };
        let path = std::env::var("PATH")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| {
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
            });
        let mut cli_env = vec![("PATH".to_string(), path)];
        cli_env.extend(settings.cli_env.iter().cloned());
        if !cli_env.iter().any(|(k, _)| k == "DOCKER_CONFIG") {
            // The CLI would otherwise read `$HOME/.docker`, and `HOME` in
            // its environment is the job's (passed into the container with
            // `-e HOME`): a directory the job's agent writes.
            let config = std::env::var_os("HOME")
                .map(|h| Path::new(&h).join(".docker"))
                .unwrap_or_else(|| workspace.join("state/docker-cli"));
            cli_env.push((
                "DOCKER_CONFIG".to_string(),
                config.to_string_lossy().into_owned(),
            ));
        }
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let runner_user = unsafe {
            RunAs {
                uid: libc::getuid(),
                gid: libc::getgid(),
            }
        };
        Ok(DockerRuntime {
            settings: settings.clone(),
            image,
            runner_id: cfg.runner_id.clone(),
            workspace,
            placement,
            cli_env,
            runner_user,
            fence: None,
        })
    }

    /// Fence every job container in (`ADOS_JOB_EGRESS=allowlist`).
    pub fn with_fence(mut self, fence: super::fence::EgressFence) -> DockerRuntime {
        self.fence = Some(fence);
        self
    }

    /// Where the runner runs and where the daemon finds the workspace.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// A fenced job's allowlist: `ADOS_EGRESS_ALLOW`, the API hosts of
    /// `agents`, the hosts of its `registries`.
    pub fn job_allowlist<'a>(
        &self,
        agents: impl IntoIterator<Item = &'a str>,
        registries: &[crate::job::spec::RegistrySpec],
    ) -> crate::egress::Allowlist {
        let global = self
            .fence
            .as_ref()
            .map(|f| f.global.clone())
            .unwrap_or_default();
        crate::egress::agents::job_allowlist(&global, agents, registries)
    }

    /// The `docker` CLI's environment (`DOCKER_HOST`, …).
    pub fn cli_env(&self) -> &[(String, String)] {
        &self.cli_env
    }

    /// Whether job containers are fenced in.
    pub fn fenced(&self) -> bool {
        self.fence.is_some()
    }

    /// The image job containers start from.
    pub fn image(&self) -> &str {
        &self.image
    }

    /// The label that marks this runner's containers (`ados.runner=<id>`).
    pub fn runner_label(&self) -> String {
        format!("ados.runner={}", self.runner_id)
    }

    /// `docker <args>` as a child of the runner: the CLI's environment
    /// only, in `/`, with `timeout`.
    pub(super) fn cli(&self, args: Vec<String>, timeout: Option<Duration>) -> CommandSpec {
        let mut spec = CommandSpec::new("docker", "/")
            .envs(self.cli_env.iter().cloned())
            .timeout(timeout)
            .kill_grace(Duration::from_secs(2));
        spec.args = args;
        spec
    }

    /// Run a short `docker` command to its end: its stdout, or what went
    /// wrong (its stderr's words) for a message.
    pub(super) fn run_cli(&self, args: Vec<String>, timeout: Duration) -> Result<String, String> {
        let spec = self.cli(args, Some(timeout));
        let shown = format!("docker {}", spec.args.first().map_or("", String::as_str));
        // Never cancelled: a container must be removed even when (above
        // all when) its job was cancelled.
        let opts = RunOptions {
            cancel: &CancelToken::never(),
            redactor: &Redactor::empty(),
            observer: None,
        };
        let out = process::run_captured(&spec, &opts, CLI_OUTPUT_MAX)
            .map_err(|e| format!("{e} (the Docker executor needs the docker CLI on PATH)"))?;
        if out.outcome.success() {
            Ok(out.stdout)
        } else {
            let why = out
                .stderr
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("no error message")
                .to_string();
            Err(format!(
                "`{shown}` failed ({}): {why}",
                out.outcome.describe()
            ))
        }
    }
}
