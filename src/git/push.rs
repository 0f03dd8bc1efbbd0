//! Pushing a job's commit: from the runner's git directory into the mirror
//! over the local file transport, then from the mirror (the only git that
//! carries the credential) to the remote, once the job's base is verified
//! upstream. Force (with lease) only for the runner's own `ados/` branches.

use super::checkout::{first_sha, loose_ref_in, Checkout};
use super::env::Access;
use super::error::{GitError, GitStep};
use super::parse::push_rejection;
use super::run::{Capture, Git, GitOutput, Invocation};
use crate::workspace::MirrorLock;
use std::fs;

/// The temporary ref in the mirror that holds the commit being pushed.
const PUSH_REF: &str = "refs/ados-push/head";

/// The temporary ref in the mirror that holds the upstream tip the job's
/// base is verified against.
const VERIFY_REF: &str = "refs/ados-verify/tip";

/// Only branches under this prefix may be force-pushed: they are the
/// runner's own.
const FORCE_PREFIX: &str = "ados/";

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

impl Checkout {
    /// Writes local `branch` (the commits since the job's start point, or
    /// all of them when the repository was empty) to the git bundle file
    /// `path`: the work of a run that pushes nothing, kept after the job's
    /// directory is gone. The runner's git directory is the source, never
    /// the agent's `.git`.
    ///
    /// # Errors
    /// Git failures tagged `bundle`.
    pub fn bundle(
        &self,
        git: &mut Git<'_>,
        branch: &str,
        path: &std::path::Path,
    ) -> Result<(), GitError> {
        let local_ref = format!("refs/heads/{branch}");
        let path = path.display().to_string();
        let not_base = format!("^{}", self.base());
        let mut args = vec!["bundle", "create", "--quiet", &path, &local_ref];
        if !self.base().is_empty() {
            args.push(&not_base);
        }
        self.runner_git(git, GitStep::Bundle, &args)?;
        Ok(())
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

/// What servers say when branch protection refuses a push: GitHub's
/// `GH006: Protected branch update failed`, GitLab's `You are not allowed
/// to push code to protected branches`, and a `pre-receive hook declined`
/// (how git reports any server-side hook refusing the ref, which is how
/// GitLab and self-hosted servers enforce protection). `protected` covers
/// `protected branch` and GitLab's wording.
const PROTECTION_MARKERS: [&str; 3] = ["protected", "gh006", "pre-receive hook declined"];

/// The push was refused by branch protection (see [`PROTECTION_MARKERS`]).
fn refused_by_protection(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    PROTECTION_MARKERS.iter().any(|m| lower.contains(m))
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
