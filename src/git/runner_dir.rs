//! The runner's own git directory of a checkout (`jobs/<id>/git`; see the
//! `checkout` module docs): created and pointed at the branch's start
//! before the agent runs, used with the checkout as work tree for
//! everything the runner does after it, and the source of a fresh `.git`
//! for a fallback agent.

use super::checkout::{clone_from_mirror, local, loose_ref_in, Checkout, REF_FILE_MAX};
use super::env::Access;
use super::error::{GitError, GitStep};
use super::run::{Capture, Git, Invocation};
use crate::workspace::read_regular;
use std::fs;
use std::path::{Path, PathBuf};

impl Checkout {
    /// Creates the runner's git directory: a fresh config of the runner's,
    /// the mirror's objects borrowed (read only: nothing is written there
    /// but through the mirror's own fetches), no hooks, no attributes.
    pub(super) fn init_runner_git_dir(&self) -> Result<(), GitError> {
        let gd = &self.git_dir;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |error| GitError::Io {
                step: GitStep::Checkout,
                path,
                error,
            }
        };
        if gd.exists() {
            fs::remove_dir_all(gd).map_err(io(gd))?;
        }
        for d in [
            "objects/info",
            "objects/pack",
            "refs/heads",
            "refs/tags",
            "info",
        ] {
            let p = gd.join(d);
            fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let config = gd.join("config");
        fs::write(
            &config,
            "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = false\n",
        )
        .map_err(io(&config))?;
        let alternates = gd.join("objects/info/alternates");
        let objects = self.mirror.path().join("objects");
        fs::write(&alternates, format!("{}\n", objects.display())).map_err(io(&alternates))?;
        Ok(())
    }

    /// Points the runner's git directory at `branch` = [`Checkout::base`]
    /// and copies the checkout's index (its stat data spares hashing every
    /// file on the first status). Only called before the agent runs, or
    /// after the runner itself reset the tree.
    pub(super) fn sync_runner_git_dir(&self, branch: &str) -> Result<(), GitError> {
        let gd = &self.git_dir;
        let io = |path: PathBuf| {
            move |error| GitError::Io {
                step: GitStep::Branch,
                path,
                error,
            }
        };
        let refname = format!("refs/heads/{branch}");
        let ref_path = gd.join(&refname);
        if let Some(parent) = ref_path.parent() {
            fs::create_dir_all(parent).map_err(io(parent.to_path_buf()))?;
        }
        fs::write(&ref_path, format!("{}\n", self.base)).map_err(io(ref_path.clone()))?;
        let head = gd.join("HEAD");
        fs::write(&head, format!("ref: {refname}\n")).map_err(io(head.clone()))?;
        let index = gd.join("index");
        match fs::copy(self.dir.join(".git").join("index"), &index) {
            Ok(_) => Ok(()),
            // An empty repository has no index yet: git starts one.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&index);
                Ok(())
            }
            Err(e) => Err(io(index)(e)),
        }
    }

    /// Runs git with the runner's git directory and the checkout as its
    /// work tree (see the module docs).
    pub(super) fn runner_git(
        &self,
        git: &mut Git<'_>,
        step: GitStep,
        args: &[&str],
    ) -> Result<Vec<String>, GitError> {
        let mut inv = Invocation::new(step, &self.dir, Access::Local, args).capture(Capture::Keep);
        inv.extra_env = self.runner_git_env();
        Ok(git.exec(inv)?.check()?.stdout)
    }

    pub(super) fn runner_git_env(&self) -> Vec<(String, String)> {
        vec![
            ("GIT_DIR".into(), self.git_dir.display().to_string()),
            ("GIT_WORK_TREE".into(), self.dir.display().to_string()),
        ]
    }

    /// `HEAD` of the runner's git directory, from its files.
    pub(super) fn runner_head(&self) -> Option<String> {
        let head = read_regular(&self.git_dir.join("HEAD"), REF_FILE_MAX).ok()?;
        let head = String::from_utf8(head).ok()?;
        loose_ref_in(&self.git_dir, head.trim().strip_prefix("ref: ")?)
    }

    /// Replaces the checkout's `.git` with a new one from the mirror, on
    /// the current branch at [`Checkout::base`], its index the runner's.
    pub(super) fn fresh_agent_git_dir(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        let step = GitStep::Branch;
        let parent = self.git_dir.parent().unwrap_or(Path::new("/"));
        let tmp = parent.join("agent-git.tmp");
        let io = |path: PathBuf| {
            move |error| GitError::Io {
                step: GitStep::Branch,
                path,
                error,
            }
        };
        if tmp.exists() {
            crate::workspace::remove_tree(&tmp).map_err(io(tmp.clone()))?;
        }
        clone_from_mirror(
            git,
            step,
            &self.mirror,
            &tmp,
            self.target(),
            &["--no-checkout"],
        )?;
        // While the new `.git` is still the runner's, in a directory of the
        // runner's (the checkout may belong to the job's user by now).
        local(
            git,
            step,
            &tmp,
            &["remote", "set-url", "origin", self.mirror.url()],
        )?;
        let dot_git = self.dir.join(".git");
        crate::workspace::remove_tree(&dot_git).map_err(io(dot_git.clone()))?;
        fs::rename(tmp.join(".git"), &dot_git).map_err(io(dot_git.clone()))?;
        let _ = crate::workspace::remove_tree(&tmp);
        let head =
            fs::read_to_string(self.git_dir.join("HEAD")).map_err(io(self.git_dir.join("HEAD")))?;
        let refname = head
            .trim()
            .strip_prefix("ref: ")
            .unwrap_or("HEAD")
            .to_string();
        let ref_path = dot_git.join(&refname);
        if let Some(p) = ref_path.parent() {
            fs::create_dir_all(p).map_err(io(p.to_path_buf()))?;
        }
        fs::write(&ref_path, format!("{}\n", self.base)).map_err(io(ref_path.clone()))?;
        fs::write(dot_git.join("HEAD"), format!("ref: {refname}\n"))
            .map_err(io(dot_git.join("HEAD")))?;
        let index = self.git_dir.join("index");
        if index.exists() {
            fs::copy(&index, dot_git.join("index")).map_err(io(index.clone()))?;
        }
        Ok(())
    }
}
