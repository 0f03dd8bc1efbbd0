//! The prepare step: the job directory, the git environment and its
//! credential, the repository mirror, the checkout on the job's branch,
//! the registry credentials, and the resolved working directory. Every
//! stage starts with it (chat will too).

use super::context::{fail_with, JobRunner, Stop};
use super::repo_file::RepoFiles;
use crate::git::{Checkout, GitEnv, Mirror};
use crate::job::event::{JobResult, LogStream, Status};
use crate::job::spec::Stage;
use crate::job::Reporter;
use crate::redact::Redactor;
use crate::workspace::JobDir;
use std::path::PathBuf;

/// Where the job's branch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BranchStart {
    /// Afresh from the target branch; an existing remote branch of that
    /// name is replaced (with a lease) when the work is pushed.
    Fresh,
    /// On the existing remote branch, to build on it (review, repair).
    Existing,
}

impl BranchStart {
    /// The start each stage needs.
    pub fn for_stage(stage: Stage) -> BranchStart {
        match stage {
            Stage::Review | Stage::Repair => BranchStart::Existing,
            Stage::Implement | Stage::Plan => BranchStart::Fresh,
        }
    }
}

/// What the prepare step made: everything later steps work in. Dropping it
/// removes the job directory.
pub struct Prepared {
    /// The job's directory (checkout, `HOME`, `TMPDIR`).
    pub job_dir: JobDir,
    /// The environment of every git process of the job.
    pub genv: GitEnv,
    /// The job's checkout, on the job's branch.
    pub checkout: Checkout,
    /// The checkout's files, for bounded reads that stay inside it.
    pub files: RepoFiles,
    /// Where the agent and the tests run: `repo.path` resolved, inside the
    /// checkout.
    pub workdir: PathBuf,
    /// Where the job's branch was on the remote when a fresh start
    /// replaced it (`None`: it did not exist, or the job builds on it).
    pub replaced: Option<String>,
    /// The job's redactor (the runner's secrets and the job's).
    pub redactor: Redactor,
}

impl Prepared {
    /// The working directory as resolved, checked again before each later
    /// process: an agent can replace a directory with a link out of the
    /// checkout after it was resolved.
    ///
    /// # Errors
    /// A message naming `repo.path` when the directory moved out.
    pub fn workdir(&self, repo_path: &str) -> Result<&std::path::Path, String> {
        if self.files.inside(&self.workdir).as_deref() == Some(self.workdir.as_path()) {
            Ok(&self.workdir)
        } else {
            Err(format!(
                "the working directory of repo.path `{repo_path}` was replaced during the job (now a link out of the checkout, or gone): nothing more runs there"
            ))
        }
    }
}

/// Prepare the job's workspace and checkout, starting the branch as
/// `start` says.
///
/// # Errors
/// A `failed` (or `cancelled`) result when any part cannot be made.
pub fn prepare(
    job: &JobRunner,
    r: &mut Reporter,
    res: &JobResult,
    start: BranchStart,
) -> Result<Prepared, Stop> {
    let spec = job.spec;
    let redactor = r.redactor().as_ref().clone();
    r.status(Status::Preparing, Some(format!("job {}", spec.job_id)));
    let job_dir = job
        .ctx
        .workspace
        .create_job_dir(spec.job_id.as_str())
        .map_err(|e| {
            fail_with(
                res,
                format!("cannot create the job directory under WORKSPACE_DIR: {e}"),
            )
        })?;
    let auth = crate::vcs::auth_for(
        spec.repo.provider,
        spec.vcs_token.as_deref(),
        &job.ctx.cfg.vcs,
    );
    let genv = GitEnv::new(
        job_dir.home(),
        job.ctx.cfg.remote_policy,
        &spec.repo.clone_url,
        auth,
        None,
    );
    job.check_cancel(r, res)?;

    r.status(Status::Cloning, Some(spec.repo.clone_url.clone()));
    let ws = &job.ctx.workspace;
    let url = &spec.repo.clone_url;
    let mirror = job
        .git(r, &genv, &redactor, |g| Mirror::ensure(ws, url, g))
        .map_err(|e| job.git_failure(res, "clone", e))?;
    r.log(
        LogStream::Runner,
        &format!(
            "{} the repository mirror\n",
            if mirror.reused() {
                "updated"
            } else {
                "created"
            }
        ),
    );
    let mut checkout = job
        .git(r, &genv, &redactor, |g| {
            Checkout::clone(g, &mirror, job_dir.repo(), &spec.repo.target_branch)
        })
        .map_err(|e| job.git_failure(res, "clone", e))?;
    job.check_cancel(r, res)?;
    let replaced = match start {
        BranchStart::Existing => {
            job.git(r, &genv, &redactor, |g| {
                checkout.checkout_existing(g, &spec.branch)
            })
            .map_err(|e| job.git_failure(res, "checkout of the existing branch", e))?;
            None
        }
        BranchStart::Fresh => {
            let remote_sha = job
                .git(r, &genv, &redactor, |g| {
                    checkout.remote_branch(g, &spec.branch)
                })
                .map_err(|e| job.git_failure(res, "ls-remote", e))?;
            if remote_sha.is_some() {
                r.log(
                    LogStream::Runner,
                    &format!(
                        "{} already exists on the remote: starting again from {} (it will be replaced with --force-with-lease)\n",
                        spec.branch, spec.repo.target_branch
                    ),
                );
            }
            job.git(r, &genv, &redactor, |g| {
                checkout.start_branch(g, &spec.branch)
            })
            .map_err(|e| job.git_failure(res, "branch creation", e))?;
            remote_sha
        }
    };
    if !job.executor.shares_workspace() {
        // The job's container sees its checkout, not the mirror the clone
        // borrows objects from: the checkout gets its own copies.
        job.git(r, &genv, &redactor, |g| checkout.dissociate(g))
            .map_err(|e| {
                job.git_failure(res, "copying the repository's objects into the checkout", e)
            })?;
    }
    let registry_files = crate::registries::write(&spec.registries, job_dir.repo(), job_dir.home())
        .map_err(|e| fail_with(res, format!("cannot write registry credentials: {e}")))?;
    let patterns = registry_files.exclude_patterns();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    checkout
        .add_exclude(&patterns)
        .map_err(|e| job.git_failure(res, "exclude", e))?;
    let files = RepoFiles::new(job_dir.repo()).map_err(|e| {
        fail_with(
            res,
            format!("cannot resolve the checkout under WORKSPACE_DIR: {e}"),
        )
    })?;
    let workdir = resolve_workdir(&files, &spec.repo.path).map_err(|e| fail_with(res, e))?;
    Ok(Prepared {
        job_dir,
        genv,
        checkout,
        files,
        workdir,
        replaced,
        redactor,
    })
}

/// The directory the agent and the tests run in: `repo.path` in the
/// checkout, resolved (a committed symlink is followed here, once) and
/// required to stay inside the checkout.
///
/// # Errors
/// A message naming `repo.path` when it is missing, not a directory, or
/// leads out of the checkout.
pub fn resolve_workdir(files: &RepoFiles, path: &str) -> Result<PathBuf, String> {
    if path.is_empty() {
        return Ok(files.root().to_path_buf());
    }
    let joined = files.root().join(path);
    let Ok(real) = joined.canonicalize() else {
        return Err(format!(
            "repo.path `{path}` is not a directory in the repository"
        ));
    };
    if !real.starts_with(files.root()) {
        return Err(format!(
            "repo.path `{path}` leads out of the repository (through a symbolic link): the agent runs only inside the checkout; fix the link or repo.path"
        ));
    }
    if !real.is_dir() {
        return Err(format!(
            "repo.path `{path}` is not a directory in the repository"
        ));
    }
    Ok(real)
}

/// Where a job's monorepo subdirectory is, before it is resolved (for
/// callers that only join paths, such as property tests).
pub fn workdir_of(repo: &std::path::Path, path: &str) -> PathBuf {
    if path.is_empty() {
        repo.to_path_buf()
    } else {
        repo.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn stages_start_where_they_build() {
        assert_eq!(BranchStart::for_stage(Stage::Implement), BranchStart::Fresh);
        assert_eq!(BranchStart::for_stage(Stage::Plan), BranchStart::Fresh);
        assert_eq!(BranchStart::for_stage(Stage::Review), BranchStart::Existing);
        assert_eq!(BranchStart::for_stage(Stage::Repair), BranchStart::Existing);
    }

    #[test]
    fn the_working_directory_stays_inside_the_checkout() {
        let base = std::env::temp_dir().join(format!("ados-workdir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("repo");
        std::fs::create_dir_all(root.join("svc/api")).expect("mkdir");
        std::fs::create_dir_all(base.join("elsewhere")).expect("mkdir");
        std::fs::write(root.join("file"), "x").expect("write");
        symlink("svc", root.join("inner")).expect("link");
        symlink("../elsewhere", root.join("out")).expect("link");
        let files = RepoFiles::new(&root).expect("root");
        let root = files.root().to_path_buf();
        assert_eq!(resolve_workdir(&files, ""), Ok(root.clone()));
        assert_eq!(resolve_workdir(&files, "svc/api"), Ok(root.join("svc/api")));
        assert_eq!(
            resolve_workdir(&files, "inner/api"),
            Ok(root.join("svc/api"))
        );
        let prepared_dir = root.join("svc/api");
        assert_eq!(files.inside(&prepared_dir), Some(prepared_dir.clone()));
        // Replaced by a link out after it was resolved: no longer inside.
        std::fs::remove_dir_all(&prepared_dir).expect("rm");
        symlink(base.join("elsewhere"), &prepared_dir).expect("link");
        assert_ne!(files.inside(&prepared_dir), Some(prepared_dir.clone()));
        for bad in ["out", "missing", "file"] {
            let err = resolve_workdir(&files, bad).expect_err(bad);
            assert!(err.starts_with(&format!("repo.path `{bad}`")), "{err}");
        }
        assert!(resolve_workdir(&files, "out")
            .expect_err("out")
            .contains("leads out of the repository"));
        let _ = std::fs::remove_dir_all(&base);
    }
}
