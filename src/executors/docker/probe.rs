//! What the Docker side offers: which agent CLIs the job image holds
//! (probed once at start, for `hello.agents`), and the findings of
//! `check` (the daemon answers, its socket is writable, the image is
//! here, the agents it holds).

use super::command;
use super::runtime::DockerRuntime;
use std::ffi::CString;
use std::time::Duration;

/// A probe container runs `sh` once; starting it is most of the time.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// `docker version`, `docker image inspect`.
const QUERY_TIMEOUT: Duration = Duration::from_secs(15);

/// One finding of `check` about Docker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFinding {
    /// What was checked.
    pub name: &'static str,
    /// What was found, or why it failed.
    pub detail: String,
    /// What to do, when it failed.
    pub fix: Option<String>,
}

/// The findings of `check`, in order.
pub type DockerCheck = Vec<CheckFinding>;

impl DockerRuntime {
    /// Which of `programs` are on the job image's `PATH`, from a
    /// throw-away container with no network.
    ///
    /// # Errors
    ///
    /// Why the probe container could not run (the daemon's words).
    pub fn probe_programs(&self, programs: &[String]) -> Result<Vec<String>, String> {
        let out = self.run_cli(command::probe(self, programs), PROBE_TIMEOUT)?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| programs.iter().any(|p| p == l))
            .map(str::to_string)
            .collect())
    }

    /// `check`'s findings: the daemon answers, its socket is writable by
    /// this user, the image exists locally, and which of `agents` (name,
    /// program) it holds.
    pub fn check(&self, agents: &[(String, String)]) -> DockerCheck {
        let mut out = Vec::new();
        match self.run_cli(command::server_version(), QUERY_TIMEOUT) {
            Ok(v) => out.push(pass("Docker daemon", format!("Docker Engine {}", v.trim()))),
            Err(e) => {
                out.push(fail(
                    "Docker daemon",
                    e,
                    "start the Docker daemon, or point DOCKER_HOST at it; in a container, mount the socket: -v /var/run/docker.sock:/var/run/docker.sock",
                ));
                return out;
            }
        }
        out.push(self.socket_finding());
        match self.run_cli(command::image_id(&self.image), QUERY_TIMEOUT) {
            Ok(id) => out.push(pass(
                "job image",
                format!("{} ({})", self.image, short_id(id.trim())),
            )),
            Err(e) => {
                out.push(fail(
                    "job image",
                    format!("{} is not here: {e}", self.image),
                    "build or load the image on this Docker host (docker build / docker load): job containers never pull",
                ));
                return out;
            }
        }
        let programs: Vec<String> = agents.iter().map(|(_, p)| p.clone()).collect();
        out.push(match self.probe_programs(&programs) {
            Ok(found) => {
                let names: Vec<&str> = agents
                    .iter()
                    .filter(|(_, p)| found.contains(p))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if names.is_empty() {
                    fail(
                        "agent CLIs in the job image",
                        format!("none of {} is on the image's PATH", programs.join(", ")),
                        "install at least one agent CLI in ADOS_JOB_IMAGE (npm install -g @anthropic-ai/claude-code)",
                    )
                } else {
                    pass("agent CLIs in the job image", names.join(", "))
                }
            }
            Err(e) => fail(
                "agent CLIs in the job image",
                e,
                "the image must have sh and the agent CLIs on its PATH",
            ),
        });
        out
    }

    /// The daemon's socket, when `DOCKER_HOST` names a local one (or is
    /// unset), must be writable by the runner's user.
    fn socket_finding(&self) -> CheckFinding {
        let host = self
            .cli_env
            .iter()
            .find(|(k, _)| k == "DOCKER_HOST")
            .map(|(_, v)| v.as_str());
        let path = match host {
            None => "/var/run/docker.sock",
            Some(h) => match h.strip_prefix("unix://") {
                Some(p) => p,
                None => {
                    return pass(
                        "Docker socket",
                        format!("DOCKER_HOST={h} (not a local socket)"),
                    )
                }
            },
        };
        let writable = CString::new(path)
            // SAFETY: access(2) reads a NUL-terminated path and nothing else.
            .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
            .unwrap_or(false);
        if writable {
            pass("Docker socket", format!("{path} is writable"))
        } else {
            fail(
                "Docker socket",
                format!("{path} is not writable by this user"),
                "run the runner as a member of the socket's group (docker run --group-add <gid of the socket>), or as root",
            )
        }
    }
}

fn pass(name: &'static str, detail: String) -> CheckFinding {
    CheckFinding {
        name,
        detail,
        fix: None,
    }
}

fn fail(name: &'static str, detail: String, fix: &str) -> CheckFinding {
    CheckFinding {
        name,
        detail,
        fix: Some(fix.to_string()),
    }
}

/// `sha256:0123456789ab…` → `0123456789ab`.
fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.get(..12).unwrap_or(id)
}
