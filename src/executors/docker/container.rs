//! One job container's life: started with the job's own directories
//! mounted, stopped (`docker stop -t 10`) on a cancel or timeout, removed
//! when the job ends; `Drop` removes it too, so no path (an early return,
//! a panic) leaves it running.

use super::command::{self, Mount};
use super::fence::JobFence;
use super::runtime::DockerRuntime;
use crate::process::RunAs;
use std::sync::Arc;
use std::time::Duration;

/// The longest `docker run -d` may take (the image is local: no pull).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// `docker stop -t 10` plus the daemon's own work.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);
/// `docker rm -f`.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(40);

/// The directories of a job that its container sees: the checkout, its
/// `HOME` and its `TMPDIR`. Never the runner's git directory beside them
/// (`jobs/<id>/git`), the mirrors, or another job's directory.
const JOB_DIRS: &[&str] = &["repo", "home", "tmp"];

/// A running job container.
#[derive(Debug)]
pub(super) struct JobContainer {
    rt: Arc<DockerRuntime>,
    name: String,
    gone: bool,
}

impl JobContainer {
    /// Start the `n`th container of job `job_id`, its commands running as
    /// `user`.
    ///
    /// # Errors
    ///
    /// Why it could not start (a job directory the daemon cannot mount,
    /// the image missing, the daemon's own error).
    pub(super) fn start(
        rt: &Arc<DockerRuntime>,
        job_id: &str,
        n: u32,
        user: RunAs,
        fence: Option<&JobFence>,
    ) -> Result<JobContainer, String> {
        let name = format!("ados-{}-{job_id}-{n}", rt.runner_id);
        let mounts = job_mounts(rt, job_id)?;
        let fence = match (fence, &rt.fence) {
            (Some(job), Some(f)) => Some(command::Fence {
                socket_dir: rt
                    .placement
                    .daemon_path(&job.dir)
                    .map_err(|e| e.to_string())?,
                forwarder: f.forwarder_source.clone(),
            }),
            _ => None,
        };
        let container = JobContainer {
            rt: rt.clone(),
            name,
            gone: false,
        };
        let argv = command::run(rt, &container.name, job_id, user, &mounts, fence.as_ref());
        match rt.run_cli(argv, START_TIMEOUT) {
            Ok(_) => {
                log::debug!("job {job_id}: container {} started", container.name);
                Ok(container)
            }
            // Dropped here: a container created but not started is removed.
            Err(e) => Err(format!(
                "cannot start the job's container from ADOS_JOB_IMAGE {}: {e}",
                rt.image
            )),
        }
    }

    /// The container's name (what `docker exec` is given).
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Stop it (SIGTERM to its init, SIGKILL ten seconds later) and remove
    /// it: a cancel or a timeout.
    pub(super) fn stop(mut self) {
        if let Err(e) = self.rt.run_cli(command::stop(&self.name), STOP_TIMEOUT) {
            log::warn!("cannot stop container {}: {e}", self.name);
        }
        self.remove_now();
    }

    /// Remove it now (the job ended).
    pub(super) fn remove(mut self) {
        self.remove_now();
    }

    fn remove_now(&mut self) {
        if self.gone {
            return;
        }
        self.gone = true;
        match self.rt.run_cli(
            command::remove(std::slice::from_ref(&self.name)),
            REMOVE_TIMEOUT,
        ) {
            Ok(_) => log::debug!("container {} removed", self.name),
            // A container that was never created (its start failed early).
            Err(e) if e.contains("No such container") => log::debug!("{e}"),
            Err(e) => log::warn!(
                "cannot remove container {}: {e}; it is removed when the runner starts again",
                self.name
            ),
        }
    }
}

impl Drop for JobContainer {
    fn drop(&mut self) {
        self.remove_now();
    }
}

/// The bind mounts of job `job_id`: each of its directories that exists,
/// at the runner's own path of it, from the daemon's path of it.
fn job_mounts(rt: &DockerRuntime, job_id: &str) -> Result<Vec<Mount>, String> {
    let root = rt.workspace.join("jobs").join(job_id);
    let mut mounts = Vec::new();
    for dir in JOB_DIRS {
        let Ok(target) = root.join(dir).canonicalize() else {
            continue;
        };
        // The checkout could have been replaced by a link out of the job's
        // directory: mount only what is really inside it.
        if !target.starts_with(&root) {
            return Err(format!(
                "{} leads out of the job's directory: it is not mounted",
                root.join(dir).display()
            ));
        }
        let source = rt
            .placement
            .daemon_path(&target)
            .map_err(|e| e.to_string())?;
        for p in [&source, &target] {
            if p.to_string_lossy().contains([',', '"']) {
                return Err(format!(
                    "{} holds a comma or a quote, which a Docker mount cannot name: move WORKSPACE_DIR",
                    p.display()
                ));
            }
        }
        mounts.push(Mount { source, target });
    }
    Ok(mounts)
}
