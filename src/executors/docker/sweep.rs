//! Containers an earlier run of this runner left behind (it was killed,
//! or lost power, before it could remove them): found by the label
//! `ados.runner=<id>` and removed at start, before the jobs they belonged
//! to are reported `failed`. No job runs yet, so every one is a leftover.

use super::command;
use super::runtime::DockerRuntime;
use std::time::Duration;

/// `docker ps` and `docker rm -f` of a handful of containers.
const SWEEP_TIMEOUT: Duration = Duration::from_secs(60);

impl DockerRuntime {
    /// Remove every container labelled with this runner's id; returns how
    /// many were removed.
    ///
    /// # Errors
    ///
    /// The daemon could not be asked, or would not remove them.
    pub fn remove_leftovers(&self) -> Result<usize, String> {
        let out = self.run_cli(command::list_labelled(&self.runner_label()), SWEEP_TIMEOUT)?;
        let ids: Vec<String> = out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string)
            .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.run_cli(command::remove(&ids), SWEEP_TIMEOUT)?;
        Ok(ids.len())
    }
}
