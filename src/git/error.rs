//! Errors of git operations; each names the step that failed.

use crate::cancel::CancelReason;
use crate::workspace::LockError;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The git step an error comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitStep {
    /// `git --version`.
    Version,
    /// Creating a repository's mirror.
    MirrorClone,
    /// Updating an existing mirror.
    MirrorFetch,
    /// Cloning the job's checkout from the mirror.
    Checkout,
    /// Setting up a branch in the checkout.
    Branch,
    /// Asking the remote about a branch (`ls-remote`).
    LsRemote,
    /// Listing changed files (`status`).
    Status,
    /// Writing `.git/info/exclude`.
    Exclude,
    /// `add -A` and `commit`.
    Commit,
    /// Reading the diff for the secret scan.
    Diff,
    /// Pushing a branch.
    Push,
    /// Writing a git bundle of the job's branch (`exec`, `merge_mode: none`).
    Bundle,
    /// Verifying, before a push, that the job's base is on its branch upstream.
    Verify,
}

impl GitStep {
    /// A short name for messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GitStep::Version => "git version",
            GitStep::MirrorClone => "mirror clone",
            GitStep::MirrorFetch => "mirror fetch",
            GitStep::Checkout => "checkout",
            GitStep::Branch => "branch",
            GitStep::LsRemote => "ls-remote",
            GitStep::Status => "status",
            GitStep::Exclude => "exclude",
            GitStep::Commit => "commit",
            GitStep::Bundle => "bundle",
            GitStep::Diff => "diff",
            GitStep::Push => "push",
            GitStep::Verify => "base verification",
        }
    }
}

impl fmt::Display for GitStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A git operation that could not be done. Messages never hold a secret:
/// git's output is redacted before it is kept.
#[derive(Debug)]
pub enum GitError {
    /// git could not be started (not installed, not in PATH).
    Spawn {
        /// The step.
        step: GitStep,
        /// Why.
        message: String,
    },
    /// The job was cancelled while git ran.
    Cancelled {
        /// The step.
        step: GitStep,
        /// Why.
        reason: CancelReason,
    },
    /// git ran longer than its timeout and was killed.
    TimedOut {
        /// The step.
        step: GitStep,
        /// The timeout.
        after: Duration,
    },
    /// The remote refused the credential (or none was given and one is needed).
    AuthFailed {
        /// The step.
        step: GitStep,
        /// git's last error lines.
        message: String,
    },
    /// git failed for another reason.
    Failed {
        /// The step.
        step: GitStep,
        /// Exit code (`None`: killed by a signal).
        exit_code: Option<i32>,
        /// git's last error lines.
        message: String,
    },
    /// The target branch does not exist on the remote.
    BranchNotFound {
        /// The branch.
        branch: String,
    },
    /// A force push was asked for a branch outside `ados/`.
    ForcePushRefused {
        /// The branch.
        branch: String,
    },
    /// The clone URL carries a password or token.
    CredentialsInUrl,
    /// The commit the job's branch started from is not on its branch
    /// upstream: the shared mirror was tampered with. Nothing is pushed.
    BaseNotUpstream {
        /// The upstream branch the base was taken from.
        branch: String,
        /// The job's base commit.
        base: String,
        /// The branch's upstream tip (`None`: the branch is gone).
        tip: Option<String>,
    },
    /// A file or directory operation failed.
    Io {
        /// The step.
        step: GitStep,
        /// The path.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// The repository lock could not be taken.
    Lock(LockError),
}

impl GitError {
    /// The step, when the error belongs to one.
    pub fn step(&self) -> Option<GitStep> {
        match self {
            GitError::Spawn { step, .. }
            | GitError::Cancelled { step, .. }
            | GitError::TimedOut { step, .. }
            | GitError::AuthFailed { step, .. }
            | GitError::Failed { step, .. }
            | GitError::Io { step, .. } => Some(*step),
            GitError::BranchNotFound { .. } => Some(GitStep::Checkout),
            GitError::ForcePushRefused { .. } => Some(GitStep::Push),
            GitError::BaseNotUpstream { .. } => Some(GitStep::Verify),
            GitError::CredentialsInUrl | GitError::Lock(_) => None,
        }
    }

    /// Whether the remote refused the credential.
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, GitError::AuthFailed { .. })
    }
}

impl fmt::Display for GitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GitError::Spawn { step, message } => {
                write!(f, "git {step}: {message} (is git >= 2.31 installed and in PATH?)")
            }
            GitError::Cancelled { step, reason } => write!(f, "git {step}: {}", reason.describe()),
            GitError::TimedOut { step, after } => {
                write!(f, "git {step}: timed out after {}s", after.as_secs())
            }
            GitError::AuthFailed { step, message } => write!(
                f,
                "git {step}: authentication failed; check the job's credentials.vcs_token or \
                 GITHUB_TOKEN/GITLAB_TOKEN/BITBUCKET_APP_PASSWORD and its access to the repository: {message}"
            ),
            GitError::Failed {
                step,
                exit_code,
                message,
            } => match exit_code {
                Some(c) => write!(f, "git {step}: exit code {c}: {message}"),
                None => write!(f, "git {step}: killed by a signal: {message}"),
            },
            GitError::BranchNotFound { branch } => write!(
                f,
                "git checkout: branch `{branch}` does not exist on the remote (check repo.target_branch)"
            ),
            GitError::ForcePushRefused { branch } => write!(
                f,
                "git push: force push to `{branch}` refused: only branches under `ados/` may be force-pushed"
            ),
            GitError::CredentialsInUrl => f.write_str(
                "repo.clone_url contains a password or token; pass it in credentials.vcs_token instead",
            ),
            GitError::BaseNotUpstream { branch, base, tip } => {
                let short = |s: &str| s.chars().take(10).collect::<String>();
                let upstream = match tip {
                    Some(tip) => format!("its tip {} does not contain it", short(tip)),
                    None => "the branch no longer exists there".to_string(),
                };
                write!(
                    f,
                    "nothing was pushed: the job started from {} but that commit is not on `{branch}` \
                     upstream ({upstream}); the runner's mirror of the repository was changed by \
                     something other than the runner (an earlier job's agent?) and is fetched \
                     afresh by the next job",
                    short(base)
                )
            }
            GitError::Io { step, path, error } => {
                write!(f, "git {step}: {}: {error}", path.display())
            }
            GitError::Lock(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for GitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            GitError::Io { error, .. } => Some(error),
            GitError::Lock(e) => Some(e),
            _ => None,
        }
    }
}

impl From<LockError> for GitError {
    fn from(e: LockError) -> GitError {
        GitError::Lock(e)
    }
}

/// Whether git's error output says the credential was missing or refused.
pub(crate) fn looks_like_auth_failure(stderr: &str) -> bool {
    const MARKERS: &[&str] = &[
        "Authentication failed",
        "could not read Username",
        "could not read Password",
        "terminal prompts disabled",
        "The requested URL returned error: 401",
        "The requested URL returned error: 403",
        "HTTP Basic: Access denied",
        "Invalid username or password",
        "Permission denied (publickey",
        "Write access to repository not granted",
    ];
    MARKERS.iter().any(|m| stderr.contains(m))
}
