//! The trust boundary between a job's checkout and the remote: commit,
//! then the secret scan, then the push. [`push`] takes a [`Cleared`]
//! commit, and only [`scan`] makes one — after it has seen the whole
//! change (every added line as text, every added file name) and found
//! nothing. A scan that could not see everything is a finding, not a pass.

use super::guard::{self, Finding};
use crate::git::{Author, Checkout, Git, GitError, PushMode, PushOutcome};
use crate::job::spec::MergeMode;
use crate::redact::Redactor;

/// The most diff output the scan reads; past it the change is not pushed.
pub const SCAN_DIFF_MAX: usize = 64 << 20;

/// A commit the guard scanned whole and found clean.
#[derive(Debug)]
pub struct Cleared {
    sha: String,
}

impl Cleared {
    /// The scanned commit.
    pub fn sha(&self) -> &str {
        &self.sha
    }
}

/// What the scan decided.
#[derive(Debug)]
pub enum Scanned {
    /// Nothing found: the commit may be pushed.
    Clear(Cleared),
    /// Something stops the push (never empty).
    Blocked(Vec<Finding>),
}

/// Commit every change in the checkout as `author` with `message`;
/// `None` when there was nothing to commit.
///
/// # Errors
/// Git failures of the commit.
pub fn commit(
    git: &mut Git<'_>,
    checkout: &mut Checkout,
    author: &Author,
    message: &str,
) -> Result<Option<String>, GitError> {
    checkout.commit(git, author, message)
}

/// Scan what the branch adds since its start (up to `sha`, the commit just
/// made) for `known` secrets and token shapes, reading at most `max_bytes`
/// of diff. `git` must run with an empty redactor: the scan has to see the
/// real values (it never shows them).
///
/// # Errors
/// Git failures of the diff.
pub fn scan(
    git: &mut Git<'_>,
    checkout: &Checkout,
    sha: &str,
    known: &Redactor,
    max_bytes: usize,
) -> Result<Scanned, GitError> {
    let diff = checkout.diff_for_scan(git, max_bytes)?;
    let findings = guard::scan(&diff, known);
    Ok(if findings.is_empty() {
        Scanned::Clear(Cleared {
            sha: sha.to_string(),
        })
    } else {
        Scanned::Blocked(findings)
    })
}

/// The result summary of a blocked push, naming every finding (never a
/// value).
pub fn blocked_summary(findings: &[Finding]) -> String {
    let list: Vec<String> = findings.iter().map(ToString::to_string).collect();
    if findings.iter().any(Finding::is_secret) {
        format!(
            "a secret was found in the diff, nothing was pushed: {}",
            list.join("; ")
        )
    } else {
        format!(
            "nothing was pushed: {}; a person must check the change",
            list.join("; ")
        )
    }
}

/// Where and how a job's commit is pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushTarget {
    /// The remote branch.
    pub branch: String,
    /// Fast-forward or force-with-lease.
    pub mode: PushMode,
    /// The local branch of that name is first pointed at `HEAD` (a push
    /// to the target branch: the job branch started from it).
    pub move_branch: bool,
}

/// Where `merge_mode` sends the job's commit on `job_branch`: `None` for
/// `merge_mode: none` (commit only). `replaced` is where the job branch
/// was on the remote when a job that started it afresh from the target
/// began: that branch is replaced, with a lease on that sha. `None` when
/// it did not exist or the job builds on it (repair): a plain push.
pub fn push_target(
    merge_mode: MergeMode,
    job_branch: &str,
    target_branch: &str,
    replaced: Option<&str>,
) -> Option<PushTarget> {
    match merge_mode {
        MergeMode::None => None,
        MergeMode::Direct => Some(PushTarget {
            branch: target_branch.to_string(),
            mode: PushMode::FastForward,
            move_branch: true,
        }),
        MergeMode::Pr => Some(PushTarget {
            branch: job_branch.to_string(),
            mode: match replaced {
                Some(sha) => PushMode::ForceWithLease {
                    expected: Some(sha.to_string()),
                },
                _ => PushMode::FastForward,
            },
            move_branch: false,
        }),
    }
}

/// Push the cleared commit to `target`.
///
/// # Errors
/// Git failures; what the remote answers is a [`PushOutcome`].
pub fn push(
    git: &mut Git<'_>,
    checkout: &Checkout,
    cleared: &Cleared,
    target: &PushTarget,
) -> Result<PushOutcome, GitError> {
    log::debug!(
        "pushing scanned commit {} to {}",
        cleared.sha,
        target.branch
    );
    if target.move_branch {
        checkout.point_branch_at_head(git, &target.branch)?;
    }
    checkout.push(git, &target.branch, &target.mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_merge_mode_pushes_where_it_should() {
        assert_eq!(push_target(MergeMode::None, "ados/a", "main", None), None);
        let direct = push_target(MergeMode::Direct, "ados/a", "main", Some("s"));
        assert_eq!(
            direct,
            Some(PushTarget {
                branch: "main".into(),
                mode: PushMode::FastForward,
                move_branch: true
            })
        );
        let fresh = push_target(MergeMode::Pr, "ados/a", "main", None);
        assert_eq!(fresh.map(|t| t.mode), Some(PushMode::FastForward));
        let replace = push_target(MergeMode::Pr, "ados/a", "main", Some("abc"));
        assert_eq!(
            replace.map(|t| t.mode),
            Some(PushMode::ForceWithLease {
                expected: Some("abc".into())
            })
        );
    }

    #[test]
    fn a_blocked_summary_says_why_without_values() {
        let secret = [Finding::Line {
            file: "a.txt".into(),
            line: 2,
            what: "a GitHub token",
        }];
        assert_eq!(
            blocked_summary(&secret),
            "a secret was found in the diff, nothing was pushed: a GitHub token in a.txt line 2"
        );
        let cut = blocked_summary(&[Finding::Incomplete]);
        assert!(
            cut.starts_with("nothing was pushed: the secret guard could not scan the whole change"),
            "{cut}"
        );
    }
}
