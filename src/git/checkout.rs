//! A job's working copy: cloned from the repository's mirror, then branch,
//! status, exclude, commit, diff and push.
//!
//! The checkout shares the mirror's objects (`git clone --shared`: no
//! history is copied or downloaded again) and its `origin` is the real URL,
//! without credentials. The agent works here, so nothing that carries the
//! credential runs here: [`Checkout::push`] first fetches the branch into
//! the mirror over the local file transport and pushes from the mirror.
//!
//! # Two git directories
//!
//! The checkout's own `.git` belongs to the agent: it may commit, branch,
//! and also plant configuration (`filter.<x>.clean`, attributes, hooks,
//! `core.*`) that a git process run there would obey. So once the agent
//! has run, the runner never runs git in that `.git` again. It keeps a git
//! directory of its own beside the checkout (`jobs/<id>/git`), written
//! only by the runner: its config is the runner's, its objects borrow the
//! mirror's, its index and `HEAD` are copied from the checkout *before* the
//! agent starts. Status, staging, commit, the diff for the secret scan and
//! the push all use it with the checkout as work tree (`GIT_DIR` +
//! `GIT_WORK_TREE`); git never treats the agent's `.git` as content. The
//! change is what the work tree holds compared with the branch's start,
//! whatever the agent did to its own `.git` (its own commits included).

use super::env::{Access, Author};
use super::error::{GitError, GitStep};
use super::mirror::Mirror;
use super::parse::{
    parse_added_lines, parse_created_paths, parse_status, push_rejection, AddedLine, ChangedFile,
};
use super::run::{Capture, Git, GitOutput, Invocation};
use crate::workspace::{read_regular, MirrorLock};

/// The most read of a small file in a `.git` (`HEAD`, a loose ref,
/// `info/exclude`): the agent can write in its own.
const REF_FILE_MAX: usize = 64 * 1024;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary ref in the mirror that holds the commit being pushed.
const PUSH_REF: &str = "refs/ados-push/head";

/// The temporary ref in the mirror that holds the upstream tip the job's
/// base is verified against.
const VERIFY_REF: &str = "refs/ados-verify/tip";

/// The runner's git directory, beside the checkout in the job directory.
const RUNNER_GIT_DIR: &str = "git";

/// Only branches under this prefix may be force-pushed: they are the
/// runner's own.
const FORCE_PREFIX: &str = "ados/";

/// The lines a set of commits adds, for the secret guard.
#[derive(Clone, Debug, Default)]
pub struct ScanDiff {
    /// Added lines, in diff order.
    pub lines: Vec<AddedLine>,
    /// Paths of added files (renamed ones included).
    pub added_paths: Vec<String>,
    /// The diff was larger than the cap and was cut: the guard should
    /// treat the change as not fully scanned.
    pub truncated: bool,
}

/// How to push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushMode {
    /// Fast-forward only.
    FastForward,
    /// Replace the remote branch, but only if it is still at `expected`
    /// (`None`: only if it does not exist). Only for `ados/` branches.
    ForceWithLease {
        /// The sha the remote branch had when the job looked.
        expected: Option<String>,
    },
}

/// What the remote said to a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The branch now points at `sha`.
    Pushed {
        /// The pushed commit.
        sha: String,
    },
    /// The remote (or the lease) refused the update.
    Rejected {
        /// The branch is protected on the server.
        protected: bool,
        /// git's reason and last error lines.
        message: String,
    },
    /// The credential was missing or refused.
    AuthFailed {
        /// git's last error lines.
        message: String,
    },
    /// Anything else (network, server error).
    Failed {
        /// git's last error lines.
        message: String,
    },
}

/// A job's checkout.
#[derive(Debug)]
pub struct Checkout {
    dir: PathBuf,
    /// The runner's own git directory for `dir` (see the module docs).
    git_dir: PathBuf,
    mirror: Mirror,
    target: String,
    /// Where the current branch started: the diff for the scan begins here.
    base: String,
    /// The remote branch `base` was taken from: before a push, `base` must
    /// still be on it upstream.
    base_branch: String,
}

impl Checkout {
    /// Clones `dest` from `mirror` (sharing its objects), points `origin`
    /// at the mirror's real URL and checks out `target_branch`.
    ///
    /// # Errors
    /// [`GitError::BranchNotFound`] when the remote has no `target_branch`;
    /// any git failure tagged `checkout`.
    pub fn clone(
        git: &mut Git<'_>,
        mirror: &Mirror,
        dest: &Path,
        target_branch: &str,
    ) -> Result<Checkout, GitError> {
        let step = GitStep::Checkout;
        let parent = dest.parent().unwrap_or(Path::new("/"));
        clone_from_mirror(git, step, mirror, dest, target_branch, &[])?;
        local(
            git,
            step,
            dest,
            &["remote", "set-url", "origin", mirror.url()],
        )?;
        let base = match head_from_files(dest) {
            Some(sha) => sha,
            None => rev_parse(git, step, dest, "HEAD")?,
        };
        let checkout = Checkout {
            dir: dest.to_path_buf(),
            git_dir: parent.join(RUNNER_GIT_DIR),
            mirror: mirror.clone(),
            target: target_branch.to_string(),
            base,
            base_branch: target_branch.to_string(),
        };
        checkout.init_runner_git_dir()?;
        checkout.sync_runner_git_dir(target_branch)?;
        Ok(checkout)
    }

    /// Creates the runner's git directory: a fresh config of the runner's,
    /// the mirror's objects borrowed (read only: nothing is written there
    /// but through the mirror's own fetches), no hooks, no attributes.
    fn init_runner_git_dir(&self) -> Result<(), GitError> {
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
    fn sync_runner_git_dir(&self, branch: &str) -> Result<(), GitError> {
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
    fn runner_git(
        &self,
        git: &mut Git<'_>,
        step: GitStep,
        args: &[&str],
    ) -> Result<Vec<String>, GitError> {
        let mut inv = Invocation::new(step, &self.dir, Access::Local, args).capture(Capture::Keep);
        inv.extra_env = self.runner_git_env();
        Ok(git.exec(inv)?.check()?.stdout)
    }

    fn runner_git_env(&self) -> Vec<(String, String)> {
        vec![
            ("GIT_DIR".into(), self.git_dir.display().to_string()),
            ("GIT_WORK_TREE".into(), self.dir.display().to_string()),
        ]
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The runner's git directory (`jobs/<id>/git`): the job's commits
    /// are made here, not in the agent's `.git`.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The target branch.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The commit the current branch started from.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The sha of `HEAD`.
    ///
    /// # Errors
    /// When git fails (no commit yet, broken repository).
    pub fn head(&self, git: &mut Git<'_>) -> Result<String, GitError> {
        if let Some(sha) = self.runner_head() {
            return Ok(sha);
        }
        let verify = "HEAD^{commit}";
        let out = self.runner_git(git, GitStep::Branch, &["rev-parse", "--verify", verify])?;
        first_sha(out, GitStep::Branch, "HEAD")
    }

    /// `HEAD` of the runner's git directory, from its files.
    fn runner_head(&self) -> Option<String> {
        let head = read_regular(&self.git_dir.join("HEAD"), REF_FILE_MAX).ok()?;
        let head = String::from_utf8(head).ok()?;
        loose_ref_in(&self.git_dir, head.trim().strip_prefix("ref: ")?)
    }

    /// The remote's current sha of `branch`, asked of the server now
    /// (`None`: the branch does not exist).
    ///
    /// # Errors
    /// [`GitError::AuthFailed`] and other `ls-remote` failures.
    pub fn remote_branch(
        &self,
        git: &mut Git<'_>,
        branch: &str,
    ) -> Result<Option<String>, GitError> {
        // The mirror was fetched (with --prune) moments ago for this job:
        // its branch is the remote's as the job saw it, and asking it is a
        // local lookup instead of a network round trip. A push that races a
        // newer remote update is refused by its lease.
        let verify = format!("refs/heads/{branch}^{{commit}}");
        let out = git.exec(
            Invocation::new(
                GitStep::LsRemote,
                self.mirror.path(),
                Access::Local,
                &["rev-parse", "--verify", "--quiet", &verify],
            )
            .capture(Capture::Keep),
        )?;
        match out.exit_code {
            Some(0) => Ok(out.stdout.first().map(|l| l.trim().to_string())),
            Some(1) => Ok(None),
            _ => Err(out.into_error()),
        }
    }

    /// Whether `branch` exists on the remote now.
    ///
    /// # Errors
    /// As [`Checkout::remote_branch`].
    pub fn remote_branch_exists(&self, git: &mut Git<'_>, branch: &str) -> Result<bool, GitError> {
        Ok(self.remote_branch(git, branch)?.is_some())
    }

    /// Creates (or resets) local `branch` at the target branch's tip, even
    /// when a branch of that name exists remotely: a re-run starts over
    /// from the target.
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn start_branch(&mut self, git: &mut Git<'_>, branch: &str) -> Result<(), GitError> {
        let start = format!("refs/remotes/origin/{}", self.target);
        self.switch(git, branch, &start)?;
        self.base_branch = self.target.clone();
        Ok(())
    }

    /// Checks out an existing remote branch (repair and review stages work
    /// on the PR's branch), as of the mirror's last fetch.
    ///
    /// # Errors
    /// [`GitError::BranchNotFound`] when the mirror does not have it.
    pub fn checkout_existing(&mut self, git: &mut Git<'_>, branch: &str) -> Result<(), GitError> {
        let start = format!("refs/remotes/origin/{branch}");
        let verify = format!("{start}^{{commit}}");
        if local(
            git,
            GitStep::Branch,
            &self.dir,
            &["rev-parse", "--verify", "--quiet", &verify],
        )
        .is_err()
        {
            return Err(GitError::BranchNotFound {
                branch: branch.to_string(),
            });
        }
        self.switch(git, branch, &start)?;
        self.base_branch = branch.to_string();
        Ok(())
    }

    /// Runs in the agent's `.git`, so only before the agent has run.
    fn switch(&mut self, git: &mut Git<'_>, branch: &str, start: &str) -> Result<(), GitError> {
        let step = GitStep::Branch;
        local(
            git,
            step,
            &self.dir,
            &["switch", "--quiet", "--no-track", "-C", branch, start],
        )?;
        self.base = match head_from_files(&self.dir) {
            Some(sha) => sha,
            None => rev_parse(git, step, &self.dir, "HEAD")?,
        };
        self.sync_runner_git_dir(branch)
    }

    /// Copies the borrowed objects into the checkout and drops its link to
    /// the mirror (what `git clone --dissociate` does), for executors that
    /// cannot see `mirrors/` (a container that mounts only the checkout).
    ///
    /// # Errors
    /// Git failures tagged `checkout`; I/O errors removing the link.
    pub fn dissociate(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        let step = GitStep::Checkout;
        local(git, step, &self.dir, &["repack", "-a", "-d", "-q"])?;
        let alternates = self.dir.join(".git/objects/info/alternates");
        match fs::remove_file(&alternates) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(GitError::Io {
                step,
                path: alternates,
                error: e,
            }),
            _ => Ok(()),
        }
    }

    /// Files that differ from the branch's start point: what the work tree
    /// holds now, whatever the agent did to its own `.git` (its own commits
    /// included). Files matched by `.gitignore` or the runner's exclude
    /// list are left out.
    ///
    /// # Errors
    /// Git failures tagged `status`.
    pub fn changed_files(&self, git: &mut Git<'_>) -> Result<Vec<ChangedFile>, GitError> {
        let out = self.runner_git(
            git,
            GitStep::Status,
            &[
                "status",
                "--porcelain=v1",
                "--untracked-files=all",
                "--no-renames",
            ],
        )?;
        let mut files = parse_status(&out);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Back to the branch's start point with a clean tree (untracked and
    /// ignored files removed) and a fresh `.git` for the next agent: every
    /// agent attempt starts from here. Nothing runs in the previous
    /// agent's `.git`: the tree is reset through the runner's git directory
    /// and the agent's `.git` is replaced by a new clone's.
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn reset_clean(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        let step = GitStep::Branch;
        self.runner_git(git, step, &["reset", "--quiet", "--hard", &self.base])?;
        self.runner_git(git, step, &["clean", "-q", "-ffdx"])?;
        self.fresh_agent_git_dir(git)
    }

    /// Replaces the checkout's `.git` with a new one from the mirror, on
    /// the current branch at [`Checkout::base`], its index the runner's.
    fn fresh_agent_git_dir(&self, git: &mut Git<'_>) -> Result<(), GitError> {
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
            &self.target,
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

    /// Point local branch `name` at `HEAD` (for `merge_mode: direct`, which
    /// pushes the work as the target branch).
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn point_branch_at_head(&self, git: &mut Git<'_>, name: &str) -> Result<(), GitError> {
        self.runner_git(
            git,
            GitStep::Branch,
            &["branch", "--force", "--no-track", name, "HEAD"],
        )?;
        Ok(())
    }

    /// Adds `patterns` to the exclude list of the runner's git directory
    /// (which decides what is committed) and of the agent's `.git` (so the
    /// agent's own `git status` does not offer them), once each: files the
    /// runner writes (registry configs) are never committed.
    ///
    /// # Errors
    /// I/O errors on an exclude file.
    pub fn add_exclude(&self, patterns: &[&str]) -> Result<(), GitError> {
        add_exclude_in(&self.git_dir.join("info"), patterns)?;
        add_exclude_in(&self.dir.join(".git").join("info"), patterns)
    }

    /// Stages everything (`add -A`, so ignored and excluded files stay
    /// out) and commits as `author`. Returns the new sha, or `None` when
    /// there was nothing to commit.
    ///
    /// # Errors
    /// Git failures tagged `commit`.
    pub fn commit(
        &self,
        git: &mut Git<'_>,
        author: &Author,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        let step = GitStep::Commit;
        // Staged through the runner's git directory: commits the agent made
        // on its own are folded into this one (the work tree holds their
        // content), and nothing the agent configured runs.
        self.runner_git(git, step, &["add", "--all"])?;
        let mut inv = Invocation::new(
            step,
            &self.dir,
            Access::Local,
            // The message goes on stdin: it may be long, and argv is for options.
            &[
                "commit",
                "--quiet",
                "--no-verify",
                "--cleanup=verbatim",
                "--file=-",
            ],
        );
        inv.extra_env = author.vars();
        inv.extra_env.extend(self.runner_git_env());
        inv.stdin = Some(message.as_bytes().to_vec());
        let inv = inv.capture(Capture::Keep);
        let out = git.exec(inv)?;
        if !out.success() {
            // Nothing staged: git says so on stdout (LC_ALL=C) and exits 1.
            // Asked this way instead of a `diff --cached` before every commit.
            let nothing = out.stdout.iter().any(|l| {
                l.starts_with("nothing to commit") || l.starts_with("nothing added to commit")
            });
            if out.exit_code == Some(1) && nothing {
                return Ok(None);
            }
            return Err(out.into_error());
        }
        let sha = self.head(git)?;
        Ok(Some(sha))
    }

    /// The lines and file names added between the branch's start point and
    /// `HEAD`, with file and line numbers, for the secret guard. The text
    /// is not redacted (the guard must see real values) and never logged.
    ///
    /// Every file is diffed as text whatever its content or attributes say
    /// (`--text`: a NUL byte or a `-diff` attribute would otherwise show a
    /// secret as "Binary files differ"), with no textconv or external diff
    /// (programs the repository could name). Past `max_bytes` of output
    /// the diff is marked [`ScanDiff::truncated`].
    ///
    /// # Errors
    /// Git failures tagged `diff`.
    pub fn diff_for_scan(&self, git: &mut Git<'_>, max_bytes: usize) -> Result<ScanDiff, GitError> {
        let mut inv = Invocation::new(
            GitStep::Diff,
            &self.dir,
            Access::Local,
            &[
                "diff",
                "--no-color",
                "--no-ext-diff",
                "--no-textconv",
                "--text",
                "--no-renames",
                "--unified=0",
                // ` create mode … <path>` lines first: every added file's
                // name (a rename is an add here), even one with no line.
                "--summary",
                &self.base,
                "HEAD",
                "--",
            ],
        )
        .capture(Capture::KeepRaw);
        inv.stdout_cap = max_bytes;
        inv.extra_env = self.runner_git_env();
        let out = git.exec(inv)?.check()?;
        Ok(ScanDiff {
            lines: parse_added_lines(&out.stdout),
            added_paths: parse_created_paths(&out.stdout),
            truncated: out.stdout_cut,
        })
    }

    /// Pushes local `branch` to the remote branch of the same name.
    ///
    /// Force (with lease) is only done for `ados/` branches; asking it for
    /// any other branch is an error, whatever the caller wants.
    ///
    /// # Errors
    /// [`GitError::ForcePushRefused`]; spawn, cancel, timeout and lock
    /// errors. What the remote answers is a [`PushOutcome`].
    pub fn push(
        &self,
        git: &mut Git<'_>,
        branch: &str,
        mode: &PushMode,
    ) -> Result<PushOutcome, GitError> {
        let step = GitStep::Push;
        if matches!(mode, PushMode::ForceWithLease { .. }) && !branch.starts_with(FORCE_PREFIX) {
            return Err(GitError::ForcePushRefused {
                branch: branch.to_string(),
            });
        }
        let local_ref = format!("refs/heads/{branch}");
        let sha = match loose_ref_in(&self.git_dir, &local_ref) {
            Some(sha) => sha,
            None => {
                let verify = format!("{local_ref}^{{commit}}");
                let out = self.runner_git(git, step, &["rev-parse", "--verify", &verify])?;
                first_sha(out, step, &local_ref)?
            }
        };
        let _lock = MirrorLock::acquire(self.mirror.lock_path(), git.cancel())?;
        // The mirror's configuration is the runner's before every command
        // that carries the credential (an agent may have found the mirror).
        self.mirror.restore_config()?;
        self.verify_base(git)?;
        let mirror = self.mirror.path();
        // From the runner's git directory, never from the agent's `.git`.
        let dir_s = self.git_dir.display().to_string();
        let into_mirror = format!("+{local_ref}:{PUSH_REF}");
        let fetch = Invocation::new(
            step,
            mirror,
            Access::LocalFile,
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                &dir_s,
                &into_mirror,
            ],
        );
        git.exec(fetch)?.check()?;
        let refspec = format!("{PUSH_REF}:{local_ref}");
        let mut args = vec![
            "push".to_string(),
            "--porcelain".into(),
            "--no-verify".into(),
        ];
        if let PushMode::ForceWithLease { expected } = mode {
            args.push(format!(
                "--force-with-lease={local_ref}:{}",
                expected.as_deref().unwrap_or("")
            ));
        }
        args.extend(["--".to_string(), self.mirror.url().to_string(), refspec]);
        let mut inv = Invocation::new(step, mirror, Access::Network, &[]).capture(Capture::Keep);
        inv.args = args;
        let result = git.exec(inv);
        // The ref only pins objects until the push is done. It is a loose
        // ref written by the fetch above: removing the file spares a git
        // process (a packed one would be overwritten by the next push).
        let _ = fs::remove_file(mirror.join(PUSH_REF));
        let out = result?;
        if out.success() {
            return Ok(PushOutcome::Pushed { sha });
        }
        if let Some(reason) = push_rejection(&out.stdout) {
            let message = format!("{reason}\n{}", out.stderr);
            let protected = refused_by_protection(&message);
            return Ok(PushOutcome::Rejected { protected, message });
        }
        Ok(match out.into_error() {
            GitError::AuthFailed { message, .. } => PushOutcome::AuthFailed { message },
            GitError::Failed { message, .. } => PushOutcome::Failed { message },
            other => PushOutcome::Failed {
                message: other.to_string(),
            },
        })
    }
}

/// What servers say when branch protection refuses a push: GitHub's
/// `GH006: Protected branch update failed`, GitLab's `You are not allowed
/// to push code to protected branches`, and a `pre-receive hook declined`
/// (how git reports any server-side hook refusing the ref, which is how
/// GitLab and self-hosted servers enforce protection).
/// (`protected` covers `protected branch` and GitLab's wording.)
const PROTECTION_MARKERS: [&str; 3] = ["protected", "gh006", "pre-receive hook declined"];

/// The push was refused by branch protection (see [`PROTECTION_MARKERS`]).
pub(crate) fn refused_by_protection(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    PROTECTION_MARKERS.iter().any(|m| lower.contains(m))
}

impl Checkout {
    /// Before anything is pushed: the commit this job's branch started from
    /// must still be on its branch upstream (the tip, or an ancestor of a
    /// tip that moved on while the job ran). The base came from the shared
    /// mirror, which an earlier job's agent could have reached and poisoned
    /// (a commit of its own on `main`): such a base is refused here, so no
    /// later job carries the poisoned commit upstream. The caller holds the
    /// mirror's lock.
    fn verify_base(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        let step = GitStep::Verify;
        let mirror = self.mirror.path();
        let refname = format!("refs/heads/{}", self.base_branch);
        let out = git
            .exec(
                Invocation::new(
                    step,
                    mirror,
                    Access::Network,
                    &["ls-remote", "--refs", "--", self.mirror.url(), &refname],
                )
                .capture(Capture::Keep),
            )?
            .check()?;
        let tip = out.stdout.iter().find_map(|l| {
            let (sha, name) = l.split_once('\t')?;
            (name.trim() == refname).then(|| sha.trim().to_string())
        });
        let not_upstream = |tip: Option<String>| GitError::BaseNotUpstream {
            branch: self.base_branch.clone(),
            base: self.base.clone(),
            tip,
        };
        let Some(tip) = tip else {
            return Err(not_upstream(None));
        };
        if tip == self.base {
            return Ok(());
        }
        // Upstream moved on while the job ran: fetch its tip and ask
        // whether the base is one of its ancestors.
        let into = format!("+{refname}:{VERIFY_REF}");
        let fetch = Invocation::new(
            step,
            mirror,
            Access::Network,
            &[
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--",
                self.mirror.url(),
                &into,
            ],
        );
        let fetched = git.exec(fetch).and_then(GitOutput::check);
        let answer = fetched.and_then(|_| {
            git.exec(
                Invocation::new(
                    step,
                    mirror,
                    Access::Local,
                    &["merge-base", "--is-ancestor", &self.base, VERIFY_REF],
                )
                .capture(Capture::Keep),
            )
        });
        let _ = fs::remove_file(mirror.join(VERIFY_REF));
        match answer?.exit_code {
            Some(0) => Ok(()),
            Some(1) => Err(not_upstream(Some(tip))),
            code => Err(GitError::Failed {
                step,
                exit_code: code,
                message: format!("git merge-base could not compare {} with {tip}", self.base),
            }),
        }
    }
}

/// `HEAD`'s sha read from `.git/HEAD` and a loose ref, or `None` when that
/// is not simple (detached, packed ref, anything unusual): the caller then
/// asks git.
fn head_from_files(dir: &Path) -> Option<String> {
    let git_dir = dir.join(".git");
    let head = read_regular(&git_dir.join("HEAD"), REF_FILE_MAX).ok()?;
    let head = String::from_utf8(head).ok()?;
    loose_ref_in(&git_dir, head.trim().strip_prefix("ref: ")?)
}

/// A branch's sha from its loose ref file in `git_dir`, or `None` (packed,
/// missing, unusual name: ask git).
fn loose_ref_in(git_dir: &Path, refname: &str) -> Option<String> {
    if !refname.starts_with("refs/heads/") || refname.split('/').any(|c| c == ".." || c.is_empty())
    {
        return None;
    }
    // The agent can write its `.git`: a ref file may be a link or a FIFO.
    let sha = read_regular(&git_dir.join(refname), REF_FILE_MAX).ok()?;
    let sha = String::from_utf8(sha).ok()?;
    let sha = sha.trim();
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
}

/// `git clone --shared` of `branch` from the mirror into `dest`, under the
/// mirror's lock (a concurrent mirror fetch may rewrite refs while the
/// clone reads them).
fn clone_from_mirror(
    git: &mut Git<'_>,
    step: GitStep,
    mirror: &Mirror,
    dest: &Path,
    branch: &str,
    extra: &[&str],
) -> Result<(), GitError> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    let mirror_s = mirror.path().display().to_string();
    let dest_s = dest.display().to_string();
    let mut args = vec!["clone", "--quiet", "--shared", "--no-tags"];
    args.extend_from_slice(extra);
    args.extend(["--branch", branch, "--", &mirror_s, &dest_s]);
    let _lock = MirrorLock::acquire(mirror.lock_path(), git.cancel())?;
    let out = git.exec(Invocation::new(step, parent, Access::LocalFile, &args))?;
    if out.success() {
        return Ok(());
    }
    if out.stderr.contains("not found in upstream") {
        return Err(GitError::BranchNotFound {
            branch: branch.to_string(),
        });
    }
    Err(out.into_error())
}

/// Appends the patterns not yet in `info/exclude`.
fn add_exclude_in(info: &Path, patterns: &[&str]) -> Result<(), GitError> {
    let path = info.join("exclude");
    let io = |error| GitError::Io {
        step: GitStep::Exclude,
        path: path.clone(),
        error,
    };
    fs::create_dir_all(info).map_err(io)?;
    let existing = match read_regular(&path, REF_FILE_MAX) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io(e)),
    };
    let mut add = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        add.push('\n');
    }
    for p in patterns {
        if !existing.lines().any(|l| l == *p) && !add.lines().any(|l| l == *p) {
            add.push_str(p);
            add.push('\n');
        }
    }
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io)?;
    f.write_all(add.as_bytes()).map_err(io)
}

fn local(
    git: &mut Git<'_>,
    step: GitStep,
    dir: &Path,
    args: &[&str],
) -> Result<Vec<String>, GitError> {
    git.run_local(step, dir, args)
}

fn rev_parse(git: &mut Git<'_>, step: GitStep, dir: &Path, rev: &str) -> Result<String, GitError> {
    let verify = format!("{rev}^{{commit}}");
    let out = local(git, step, dir, &["rev-parse", "--verify", &verify])?;
    first_sha(out, step, rev)
}

fn first_sha(out: Vec<String>, step: GitStep, rev: &str) -> Result<String, GitError> {
    out.into_iter().next().ok_or_else(|| GitError::Failed {
        step,
        exit_code: Some(0),
        message: format!("git rev-parse printed no sha for {rev}"),
    })
}

#[cfg(test)]
mod tests {
    use super::refused_by_protection;

    #[test]
    fn branch_protection_is_recognised_by_each_servers_words() {
        for refused in [
            "[remote rejected] (protected branch hook declined)",
            "remote: error: GH006: Protected branch update failed for refs/heads/main.",
            "remote: GitLab: You are not allowed to push code to protected branches on this project.",
            "[remote rejected] (pre-receive hook declined)",
        ] {
            assert!(refused_by_protection(refused), "{refused}");
        }
        assert!(!refused_by_protection("[rejected] (fetch first)"));
        assert!(!refused_by_protection("[rejected] (non-fast-forward)"));
    }
}
