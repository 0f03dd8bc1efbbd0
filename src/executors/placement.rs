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
//! [`Placement::detect`] finds the runner's own container from the kernel's
//! view of the process (`own_container`: `/proc/self/mountinfo`, then the
//! cgroup; never `$HOSTNAME`), asks the daemon for its mounts, and maps
//! `WORKSPACE_DIR` through the one that holds it: a named volume's or a bind
//! mount's `Source` on the daemon's host. Each job container is then given
//! only its own job's directories (`daemon_path` of `jobs/<id>/…`), never
//! the volume as a whole. A workspace on the container's own layer (or a
//! tmpfs, or a read-only mount) cannot be shared with job containers: the
//! error says what to change, and `check` and the start-up log show it.

use std::path::{Path, PathBuf};

use super::own_container::{self, Inspected, Mount};

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
    /// Mounts at or below `WORKSPACE_DIR` other than the one holding it
    /// (runner path, daemon path), longest first: a path below one of
    /// them maps through it.
    nested: Vec<(PathBuf, PathBuf)>,
    /// What holds the workspace, for the start-up log and `check`.
    holder: String,
}

/// The container this runner runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnContainer {
    /// The full container id.
    pub id: String,
    /// The image id it was started from (what `ADOS_JOB_IMAGE=self` uses).
    pub image: String,
    /// The Docker host's addresses on the container's networks (their
    /// gateways): the runner's host, out of a job's reach.
    pub gateways: Vec<std::net::IpAddr>,
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
            nested: Vec::new(),
            holder: "the runner's host".to_string(),
        }
    }

    /// Find out where this runner runs (host, or a container whose mounts
    /// hold `workspace`).
    ///
    /// # Errors
    ///
    /// A [`PlacementError`] naming what to change when the runner is in a
    /// container but `workspace` is not on a volume or bind mount the
    /// daemon can mount again, or the daemon cannot be asked (no socket).
    pub fn detect(workspace: &Path) -> Result<Placement, PlacementError> {
        let Some(id) = own_container::own_id() else {
            return Ok(Placement::host(workspace));
        };
        let inspected = own_container::inspect(&id).map_err(PlacementError)?;
        Placement::in_container(workspace, inspected)
    }

    /// The placement of a runner in the container `inspected`: `workspace`
    /// must be on one of its volumes or bind mounts, writable.
    ///
    /// # Errors
    ///
    /// As [`Placement::detect`].
    pub fn in_container(
        workspace: &Path,
        inspected: Inspected,
    ) -> Result<Placement, PlacementError> {
        let holding = inspected
            .mounts
            .iter()
            .filter(|m| workspace.starts_with(&m.destination))
            .max_by_key(|m| m.destination.components().count());
        let short = own_container::short(&inspected.id);
        let ws = workspace.display();
        let Some(mount) = holding else {
            return Err(PlacementError(format!(
                "WORKSPACE_DIR ({ws}) is on the runner container's own layer ({short}), which the Docker daemon cannot mount into job containers: put it on a volume, `-v ados-workspace:{ws}`, or a bind mount, `-v /srv/ados:{ws}`"
            )));
        };
        if !is_shareable(mount) {
            return Err(PlacementError(format!(
                "WORKSPACE_DIR ({ws}) is on a {} mount of the runner's container, which job containers cannot share: use a named volume, `-v ados-workspace:{}`, or a bind mount",
                mount.kind,
                mount.destination.display()
            )));
        }
        if !mount.rw {
            return Err(PlacementError(format!(
                "WORKSPACE_DIR ({ws}) is on a read-only mount ({}): mount it writable (drop `:ro`)",
                mount.destination.display()
            )));
        }
        let daemon_workspace = through(mount, workspace);
        let mut nested: Vec<(PathBuf, PathBuf)> = inspected
            .mounts
            .iter()
            .filter(|m| {
                m.destination != mount.destination
                    && m.destination.starts_with(workspace)
                    && is_shareable(m)
            })
            .map(|m| (m.destination.clone(), m.source.clone()))
            .collect();
        nested.sort_by_key(|(dest, _)| std::cmp::Reverse(dest.components().count()));
        let holder = match &mount.name {
            Some(name) if mount.kind == "volume" => format!(
                "the volume {name} ({} on the Docker host)",
                daemon_workspace.display()
            ),
            _ => format!(
                "the bind mount of {} on the Docker host",
                daemon_workspace.display()
            ),
        };
        Ok(Placement {
            container: Some(OwnContainer {
                id: inspected.id,
                image: inspected.image,
                gateways: inspected.gateways,
            }),
            workspace: workspace.to_path_buf(),
            daemon_workspace,
            nested,
            holder,
        })
    }

    /// The runner's own container, if it runs in one.
    pub fn own_container(&self) -> Option<&OwnContainer> {
        self.container.as_ref()
    }

    /// One line for the start-up log and `check`: where the runner runs and
    /// where the daemon finds `WORKSPACE_DIR`.
    pub fn describe(&self) -> String {
        match &self.container {
            None => format!(
                "the runner runs on the Docker host: job containers mount {} as is",
                self.workspace.display()
            ),
            Some(c) => format!(
                "the runner runs in container {} (image {}); WORKSPACE_DIR {} is {}",
                own_container::short(&c.id),
                c.image,
                self.workspace.display(),
                self.holder
            ),
        }
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
        if let Some((dest, source)) = self.nested.iter().find(|(dest, _)| path.starts_with(dest)) {
            if let Ok(below) = path.strip_prefix(dest) {
                return Ok(source.join(below));
            }
        }
        Ok(self.daemon_workspace.join(rel))
    }
}

/// Whether a job container can mount the same directory again.
fn is_shareable(m: &Mount) -> bool {
    (m.kind == "volume" || m.kind == "bind") && m.source.is_absolute()
}

/// `path` (at or below `m.destination`) as the daemon sees it.
fn through(m: &Mount, path: &Path) -> PathBuf {
    match path.strip_prefix(&m.destination) {
        // `join("")` would add a trailing `/` to the name shown in the log.
        Ok(rel) if !rel.as_os_str().is_empty() => m.source.join(rel),
        _ => m.source.clone(),
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

    const ID: &str = "b8f229a022fcfa638905279d9501effa0cafaa02c25c6828bd43dff5dfe8482c";

    fn mount(kind: &str, name: Option<&str>, source: &str, dest: &str, rw: bool) -> Mount {
        Mount {
            kind: kind.into(),
            name: name.map(str::to_string),
            source: source.into(),
            destination: dest.into(),
            rw,
        }
    }

    fn container(mounts: Vec<Mount>) -> Inspected {
        Inspected {
            id: ID.into(),
            image: "sha256:abc".into(),
            mounts,
            gateways: Vec::new(),
        }
    }

    fn socket() -> Mount {
        mount(
            "bind",
            None,
            "/var/run/docker.sock",
            "/var/run/docker.sock",
            true,
        )
    }

    #[test]
    fn a_named_volume_maps_each_job_directory_to_its_source() {
        let vol = mount(
            "volume",
            Some("ados-workspace"),
            "/var/lib/docker/volumes/ados-workspace/_data",
            "/workspace",
            true,
        );
        let p = Placement::in_container(Path::new("/workspace"), container(vec![socket(), vol]))
            .expect("a volume works");
        assert_eq!(
            p.daemon_path(Path::new("/workspace/jobs/j1/repo")),
            Ok(PathBuf::from(
                "/var/lib/docker/volumes/ados-workspace/_data/jobs/j1/repo"
            ))
        );
        assert_eq!(
            p.own_container().map(|c| c.image.as_str()),
            Some("sha256:abc")
        );
        let line = p.describe();
        assert!(
            line.contains("b8f229a022fc") && line.contains("volume ados-workspace"),
            "{line}"
        );
        // The volume's own directory, with no trailing `/`.
        assert!(
            line.contains("(/var/lib/docker/volumes/ados-workspace/_data on"),
            "{line}"
        );
    }

    #[test]
    fn a_bind_mount_and_a_workspace_below_a_mount_map_through_it() {
        let bind = mount("bind", None, "/srv/ados", "/data", true);
        let p = Placement::in_container(Path::new("/data/ws"), container(vec![bind]))
            .expect("a bind mount works");
        assert_eq!(
            p.daemon_path(Path::new("/data/ws/jobs/7/home")),
            Ok(PathBuf::from("/srv/ados/ws/jobs/7/home"))
        );
        assert!(
            p.describe().contains("bind mount of /srv/ados/ws"),
            "{}",
            p.describe()
        );
        // Outside the workspace, even on the same mount: refused.
        assert!(p.daemon_path(Path::new("/data/other")).is_err());
    }

    #[test]
    fn a_mount_nested_in_the_workspace_wins_for_paths_below_it() {
        let ws = mount("volume", Some("ws"), "/v/ws/_data", "/workspace", true);
        let jobs = mount("bind", None, "/fast/jobs", "/workspace/jobs", true);
        let p = Placement::in_container(Path::new("/workspace"), container(vec![ws, jobs]))
            .expect("nested mounts work");
        assert_eq!(
            p.daemon_path(Path::new("/workspace/jobs/1/repo")),
            Ok(PathBuf::from("/fast/jobs/1/repo"))
        );
        assert_eq!(
            p.daemon_path(Path::new("/workspace/mirrors/a.git")),
            Ok(PathBuf::from("/v/ws/_data/mirrors/a.git"))
        );
    }

    #[test]
    fn a_workspace_the_daemon_cannot_mount_says_what_to_change() {
        let layer = Placement::in_container(Path::new("/workspace"), container(vec![socket()]))
            .expect_err("the container's own layer cannot be shared");
        assert!(
            layer.0.contains("own layer") && layer.0.contains("-v ados-workspace:/workspace"),
            "{layer}"
        );
        let tmpfs = mount("tmpfs", None, "", "/workspace", true);
        let err = Placement::in_container(Path::new("/workspace"), container(vec![tmpfs]))
            .expect_err("a tmpfs cannot be shared");
        assert!(
            err.0.contains("tmpfs") && err.0.contains("named volume"),
            "{err}"
        );
        let ro = mount("bind", None, "/srv/ados", "/workspace", false);
        let err = Placement::in_container(Path::new("/workspace"), container(vec![ro]))
            .expect_err("a read-only mount cannot hold jobs");
        assert!(err.0.contains("read-only"), "{err}");
    }
}
