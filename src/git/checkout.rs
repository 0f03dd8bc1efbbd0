//! A job's working copy: cloned from the repository's mirror, then branch,
//! status, exclude, commit, diff and push.
//!
//! The checkout shares the mirror's objects (`git clone --shared`: no
//! history is copied or downloaded again) and its `origin` is the real URL,
//! without credentials. The agent works here, so nothing that carries the
//! credential runs here: [`Checkout::push`] first fetches the branch into
//! the mirror over the local file transport and pushes from the mirror.

use super::env::{Access, Author};
use super::error::{GitError, GitStep};
use super::mirror::Mirror;
use super::parse::{parse_added_lines, parse_created_paths, parse_status, push_rejection};
use super::run::{Capture, Git, Invocation};
use crate::workspace::{read_regular, MirrorLock};

/// The most read of a small file in the checkout's `.git` (`HEAD`, a loose
/// ref, `info/exclude`): the agent can write there.
const REF_FILE_MAX: usize = 64 * 1024;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary ref in the mirror that holds the commit being pushed.
const PUSH_REF: &str = "refs/ados-push/head";

/// Only branches under this prefix may be force-pushed: they are the
/// runner's own.
const FORCE_PREFIX: &str = "ados/";

/// How a changed file changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// New and staged.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
    /// New and not yet known to git (not ignored).
    Untracked,
}

/// One file that differs from `HEAD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// Path relative to the repository root.
    pub path: String,
    /// How it changed.
    pub kind: ChangeKind,
}

/// One line added since the branch's start point.
#[derive(Clone, PartialEq, Eq)]
pub struct AddedLine {
    /// File, relative to the repository root.
    pub path: String,
    /// Line number in the new file (1-based).
    pub line: u32,
    /// The line's text (may hold a secret: never log it).
    pub text: String,
}

impl std::fmt::Debug for AddedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text is what the secret guard inspects: keep it out of logs.
        write!(f, "AddedLine({}:{})", self.path, self.line)
    }
}

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
    mirror: Mirror,
    target: String,
    /// Where the current branch started: the diff for the scan begins here.
    base: String,
    /// The last commit [`Checkout::commit`] made, if any.
    last_commit: Option<String>,
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
        let mirror_s = mirror.path().display().to_string();
        let dest_s = dest.display().to_string();
        {
            // A concurrent mirror fetch may rewrite refs while we read them.
            let _lock = MirrorLock::acquire(mirror.lock_path(), git.cancel())?;
            let inv = Invocation::new(
                step,
                parent,
                Access::LocalFile,
                &[
                    "clone",
                    "--quiet",
                    "--shared",
                    "--no-tags",
                    "--branch",
                    target_branch,
                    "--",
                    &mirror_s,
                    &dest_s,
                ],
            );
            let out = git.exec(inv)?;
            if !out.success() {
                if out.stderr.contains("not found in upstream") {
                    return Err(GitError::BranchNotFound {
                        branch: target_branch.to_string(),
                    });
                }
                return Err(out.into_error());
            }
        }
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
        Ok(Checkout {
            dir: dest.to_path_buf(),
            mirror: mirror.clone(),
            target: target_branch.to_string(),
            base,
            last_commit: None,
        })
    }

    /// The working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
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
        rev_parse(git, GitStep::Branch, &self.dir, "HEAD")
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
        self.switch(git, branch, &start)
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
        self.switch(git, branch, &start)
    }

    fn switch(&mut self, git: &mut Git<'_>, branch: &str, start: &str) -> Result<(), GitError> {
        let step = GitStep::Branch;
        local(
            git,
            step,
            &self.dir,
            &["switch", "--quiet", "--no-track", "-C", branch, start],
        )?;
        self.last_commit = None;
        self.base = match head_from_files(&self.dir) {
            Some(sha) => sha,
            None => rev_parse(git, step, &self.dir, "HEAD")?,
        };
        Ok(())
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

    /// Files that differ from the branch's start point: changes in the
    /// working tree, untracked files, and commits the agent made itself.
    /// Files matched by `.gitignore` or `.git/info/exclude` are left out.
    ///
    /// # Errors
    /// Git failures tagged `status`.
    pub fn changed_files(&self, git: &mut Git<'_>) -> Result<Vec<ChangedFile>, GitError> {
        let out = local(
            git,
            GitStep::Status,
            &self.dir,
            &[
                "status",
                "--porcelain=v1",
                "--untracked-files=all",
                "--no-renames",
            ],
        )?;
        let mut files = parse_status(&out);
        // An agent that committed on its own moved HEAD away from the base:
        // what it committed is part of the change too. (Checked from the
        // ref files first, to spare a git process on every job.)
        if head_from_files(&self.dir).as_deref() == Some(self.base.as_str()) {
            return Ok(files);
        }
        let committed = local(
            git,
            GitStep::Status,
            &self.dir,
            &[
                "diff",
                "--name-only",
                "--no-renames",
                &self.base,
                "HEAD",
                "--",
            ],
        )?;
        for path in committed {
            if !path.is_empty() && !files.iter().any(|f| f.path == path) {
                files.push(ChangedFile {
                    path,
                    kind: ChangeKind::Modified,
                });
            }
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Back to the branch's start point with a clean tree (untracked and
    /// ignored files removed): every agent attempt starts from here.
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn reset_clean(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        local(
            git,
            GitStep::Branch,
            &self.dir,
            &["reset", "--quiet", "--hard", &self.base],
        )?;
        local(git, GitStep::Branch, &self.dir, &["clean", "-q", "-ffdx"])?;
        Ok(())
    }

    /// Point local branch `name` at `HEAD` (for `merge_mode: direct`, which
    /// pushes the work as the target branch).
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn point_branch_at_head(&self, git: &mut Git<'_>, name: &str) -> Result<(), GitError> {
        local(
            git,
            GitStep::Branch,
            &self.dir,
            &["branch", "--force", "--no-track", name, "HEAD"],
        )?;
        Ok(())
    }

    /// Adds `patterns` to `.git/info/exclude` (once each), so files the
    /// runner writes (registry configs) are never committed.
    ///
    /// # Errors
    /// I/O errors on the exclude file.
    pub fn add_exclude(&self, patterns: &[&str]) -> Result<(), GitError> {
        let info = self.dir.join(".git").join("info");
        let path = info.join("exclude");
        let io = |error| GitError::Io {
            step: GitStep::Exclude,
            path: path.clone(),
            error,
        };
        fs::create_dir_all(&info).map_err(io)?;
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

    /// Stages everything (`add -A`, so ignored and excluded files stay
    /// out) and commits as `author`. Returns the new sha, or `None` when
    /// there was nothing to commit.
    ///
    /// # Errors
    /// Git failures tagged `commit`.
    pub fn commit(
        &mut self,
        git: &mut Git<'_>,
        author: &Author,
        message: &str,
    ) -> Result<Option<String>, GitError> {
        let step = GitStep::Commit;
        // Commits the agent made on its own (HEAD moved past the branch's
        // start, or past this checkout's last commit) are folded into this
        // one, which carries the spec's author and message.
        let since = self
            .last_commit
            .clone()
            .unwrap_or_else(|| self.base.clone());
        if head_from_files(&self.dir).as_deref() != Some(since.as_str()) {
            local(
                git,
                step,
                &self.dir,
                &["reset", "--soft", "--quiet", &since],
            )?;
        }
        local(git, step, &self.dir, &["add", "--all"])?;
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
        let sha = match head_from_files(&self.dir) {
            Some(sha) => sha,
            None => rev_parse(git, step, &self.dir, "HEAD")?,
        };
        self.last_commit = Some(sha.clone());
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
        let sha = match loose_ref(&self.dir, &local_ref) {
            Some(sha) => sha,
            None => rev_parse(git, step, &self.dir, &local_ref)?,
        };
        let _lock = MirrorLock::acquire(self.mirror.lock_path(), git.cancel())?;
        let mirror = self.mirror.path();
        let dir_s = self.dir.display().to_string();
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
            let protected = message.to_ascii_lowercase().contains("protected");
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

/// `HEAD`'s sha read from `.git/HEAD` and a loose ref, or `None` when that
/// is not simple (detached, packed ref, anything unusual): the caller then
/// asks git.
fn head_from_files(dir: &Path) -> Option<String> {
    let head = read_regular(&dir.join(".git").join("HEAD"), REF_FILE_MAX).ok()?;
    let head = String::from_utf8(head).ok()?;
    loose_ref(dir, head.trim().strip_prefix("ref: ")?)
}

/// A branch's sha from its loose ref file in `dir/.git`, or `None` (packed,
/// missing, unusual name: ask git).
fn loose_ref(dir: &Path, refname: &str) -> Option<String> {
    if !refname.starts_with("refs/heads/") || refname.split('/').any(|c| c == ".." || c.is_empty())
    {
        return None;
    }
    // The checkout is the agent's: its ref files may be links or FIFOs.
    let sha = read_regular(&dir.join(".git").join(refname), REF_FILE_MAX).ok()?;
    let sha = String::from_utf8(sha).ok()?;
    let sha = sha.trim();
    (sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit())).then(|| sha.to_string())
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
    out.into_iter().next().ok_or_else(|| GitError::Failed {
        step,
        exit_code: Some(0),
        message: format!("git rev-parse printed no sha for {rev}"),
    })
}
