//! One job's directory tree ([`JobDir`]): created by [`super::Workspace`],
//! handed to the job's own user, removed whatever happened to the job.

use super::files::{chown_tree, remove_tree};
use super::with_path;
use crate::process::RunAs;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The directory tree of one job; removed when dropped (whatever happened
/// to the job) or by [`JobDir::remove`].
#[derive(Debug)]
pub struct JobDir {
    pub(super) root: PathBuf,
    pub(super) repo: PathBuf,
    pub(super) home: PathBuf,
    pub(super) tmp: PathBuf,
    pub(super) removed: bool,
}

impl JobDir {
    /// `jobs/<job_id>/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `jobs/<job_id>/repo`: the checkout (absent until cloned).
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// `jobs/<job_id>/home`: HOME for git and the agent.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `jobs/<job_id>/tmp`: TMPDIR for the job.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Gives the job's part of its directory to `user`, who runs its agent
    /// and tests: `repo/`, `home/` and `tmp/` (and everything in them,
    /// symlinks not followed) become `user`'s, mode 0700, so no other job's
    /// user can read them. `jobs/<id>/` itself stays the runner's with mode
    /// 0711: the job's user can reach its own directories but cannot list,
    /// rename or replace anything there, such as the runner's own git
    /// directory beside the checkout. Called again whenever the runner
    /// wrote in those directories (a fresh checkout, a reset between
    /// agents). `None`: the job runs as the runner, nothing changes.
    ///
    /// # Errors
    /// I/O errors changing an owner or a mode, with the path.
    pub fn hand_to(&self, user: Option<RunAs>) -> io::Result<()> {
        let Some(user) = user else {
            return Ok(());
        };
        fs::set_permissions(&self.root, fs::Permissions::from_mode(0o711))
            .map_err(|e| with_path(e, "cannot set the mode of", &self.root))?;
        for top in [&self.repo, &self.home, &self.tmp] {
            if fs::symlink_metadata(top).is_err() {
                continue;
            }
            chown_tree(top, user)?;
            fs::set_permissions(top, fs::Permissions::from_mode(0o700))
                .map_err(|e| with_path(e, "cannot set the mode of", top))?;
        }
        Ok(())
    }

    /// Removes the tree now, reporting errors (`Drop` can only log them).
    ///
    /// # Errors
    /// When the tree exists and cannot be removed.
    pub fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        remove_tree(&self.root)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove_tree(&self.root) {
                log::warn!("cannot remove job dir {}: {e}", self.root.display());
            }
        }
    }
}
