//! Where the Docker daemon finds this runner's files.
//!
//! A job container's bind mounts are resolved by the Docker daemon, on the
//! daemon's host, not in the runner's file system. On a host runner the two
//! are the same. When the runner itself runs in a container with the Docker
//! socket mounted (the ADOS docs' `docker run … -v ados-workspace:/workspace`),
//! `/workspace/jobs/<id>/repo` exists only inside the runner's container: the
//! daemon must be given the path of the same directory on its host (the
//! named volume's or the bind mount's source).
//!
//! [`Placement`] answers that question once, at start-up, and every job
//! container's mounts go through [`Placement::daemon_path`].
//!
//! Today only the host case is implemented ([`Placement::host`]);
//! detecting the runner's own container (from `/proc/self/mountinfo` and the
//! cgroup, never `$HOSTNAME`) and mapping through its mounts is the part of
//! the runner-in-a-container work that fills in [`Placement::detect`].

use std::path::{Path, PathBuf};

/// How runner paths under `WORKSPACE_DIR` map to paths the Docker daemon
/// can mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The runner's own container, when it runs in one.
    container: Option<OwnContainer>,
    /// `WORKSPACE_DIR` as the runner sees it.
    workspace: PathBuf,
    /// The same directory as the daemon sees it.
    daemon_workspace: PathBuf,
}

/// The container this runner runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnContainer {
    /// The full container id.
    pub id: String,
    /// The image id it was started from (what `ADOS_JOB_IMAGE=self` uses).
    pub image: String,
}

/// Why the daemon cannot be given a runner path; the text says what to
/// change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementError(pub String);

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlacementError {}

impl Placement {
    /// A runner on the daemon's own host: paths are the same on both sides.
    pub fn host(workspace: &Path) -> Placement {
        Placement {
            container: None,
            workspace: workspace.to_path_buf(),
            daemon_workspace: workspace.to_path_buf(),
        }
    }

    /// Find out where this runner runs (host, or a container whose mounts
    /// hold `workspace`).
    ///
    /// # Errors
    ///
    /// A [`PlacementError`] naming what to change when the runner is in a
    /// container but `workspace` is not on a volume or bind mount the
    /// daemon can mount again.
    pub fn detect(workspace: &Path) -> Result<Placement, PlacementError> {
        Ok(Placement::host(workspace))
    }

    /// The runner's own container, if it runs in one.
    pub fn own_container(&self) -> Option<&OwnContainer> {
        self.container.as_ref()
    }

    /// The daemon's path for `path`, which must be under `WORKSPACE_DIR`.
    ///
    /// # Errors
    ///
    /// A [`PlacementError`] when `path` is outside `WORKSPACE_DIR`.
    pub fn daemon_path(&self, path: &Path) -> Result<PathBuf, PlacementError> {
        let rel = path.strip_prefix(&self.workspace).map_err(|_| {
            PlacementError(format!(
                "{} is not under WORKSPACE_DIR ({}): only the workspace can be mounted into job containers",
                path.display(),
                self.workspace.display()
            ))
        })?;
        Ok(self.daemon_workspace.join(rel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_the_host_a_path_is_its_own_daemon_path() {
        let p = Placement::host(Path::new("/srv/ados"));
        assert_eq!(
            p.daemon_path(Path::new("/srv/ados/jobs/j1/repo")),
            Ok(PathBuf::from("/srv/ados/jobs/j1/repo"))
        );
        assert!(p.daemon_path(Path::new("/etc")).is_err());
        assert!(p.own_container().is_none());
    }
}
