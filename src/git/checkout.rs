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
use super::parse::{parse_added_lines, parse_created_paths, parse_status, AddedLine, ChangedFile};
use super::run::{Capture, Git, Invocation};
use crate::workspace::{read_regular, MirrorLock};

/// The most read of a small file in a `.git` (`HEAD`, a loose ref,
/// `info/exclude`): the agent can write in its own.
pub(super) const REF_FILE_MAX: usize = 64 * 1024;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The runner's git directory, beside the checkout in the job directory.
const RUNNER_GIT_DIR: &str = "git";

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

/// What a branch changes against the target branch, as text for a
/// reviewer (redacted), cut at a bound.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BranchDiff {
    /// The diff's whole lines, up to the bound.
    pub text: String,
    /// The diff was longer than the bound: `text` is its beginning.
    pub cut: bool,
}

/// A job's checkout.
#[derive(Debug)]
pub struct Checkout {
    pub(super) dir: PathBuf,
    /// The runner's own git directory for `dir` (see the module docs).
    pub(super) git_dir: PathBuf,
    pub(super) mirror: Mirror,
    target: String,
    /// Where the current branch started: the diff for the scan begins here.
    pub(super) base: String,
    /// The remote branch `base` was taken from: before a push, `base` must
    /// still be on it upstream.
    pub(super) base_branch: String,
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

    /// Moves the branch back to `to` (an earlier `HEAD`), keeping the work
    /// tree and the index: the commits after it are undone, their changes
    /// are still there to commit again. A chat undoes a commit it could
    /// not push, so no unpushed commit stays in the history of a later one.
    ///
    /// # Errors
    /// Git failures tagged `branch`.
    pub fn undo_commits(&self, git: &mut Git<'_>, to: &str) -> Result<(), GitError> {
        self.runner_git(git, GitStep::Branch, &["reset", "--quiet", "--soft", to])?;
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
}

impl Checkout {
    /// What the checked-out branch changes against the target branch
    /// (`git diff origin/<target>...HEAD`: since their merge base), as
    /// text, redacted, at most `max_bytes` of whole lines. Runs in the
    /// checkout's own `.git`, so only before the agent has run; no
    /// external diff or textconv program runs.
    ///
    /// # Errors
    /// Git failures tagged `diff`.
    pub fn diff_against_target(
        &self,
        git: &mut Git<'_>,
        max_bytes: usize,
    ) -> Result<BranchDiff, GitError> {
        let range = format!("refs/remotes/origin/{}...HEAD", self.target);
        let args = [
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            &range,
            "--",
        ];
        let mut inv =
            Invocation::new(GitStep::Diff, &self.dir, Access::Local, &args).capture(Capture::Keep);
        inv.stdout_cap = max_bytes;
        let out = git.exec(inv)?.check()?;
        let mut text = out.stdout.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        Ok(BranchDiff {
            text,
            cut: out.stdout_cut,
        })
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
pub(super) fn loose_ref_in(git_dir: &Path, refname: &str) -> Option<String> {
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
pub(super) fn clone_from_mirror(
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

pub(super) fn local(
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

pub(super) fn first_sha(out: Vec<String>, step: GitStep, rev: &str) -> Result<String, GitError> {
    out.into_iter().next().ok_or_else(|| GitError::Failed {
        step,
        exit_code: Some(0),
        message: format!("git rev-parse printed no sha for {rev}"),
    })
}
