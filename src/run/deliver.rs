//! The deliver step: commit what the agent (and the repairs) changed,
//! let the secret guard scan it, push it where `merge_mode` says, and turn
//! each outcome into the job's result. The commit → scan → push sequence
//! itself is [`crate::vcs::delivery`]'s (the trust boundary); this step
//! adds the statuses, the logs and the result. With `merge_mode: pr` the
//! pull request is opened by the next step, [`super::pull_request`].

use super::context::{fail_with, outcome, JobRunner, Stop};
use super::prepare::Prepared;
use super::test_repair::Tested;
use crate::git::{Author, ChangedFile, PushMode, PushOutcome};
use crate::job::event::{JobResult, LocalCopy, LocalCopyKind, LogStream, ResultStatus, Status};
use crate::job::spec::JobSpec;
use crate::job::Reporter;
use crate::redact::Redactor;
use crate::vcs::delivery::{self, Scanned};
use crate::vcs::guard;
use crate::workspace::file_name_word;
use std::path::Path;

/// The summary of a job whose agent changed nothing.
const NO_CHANGES: &str = "agent made no changes";

/// Commit, scan and push the job's work; the job's result either way.
///
/// `changed` is what the agent changed (asked again when tests ran: they
/// and the repairs may have changed the tree since).
///
/// # Errors
/// `failed` / `cancelled` results of a git step or the push.
pub fn deliver(
    job: &JobRunner,
    r: &mut Reporter,
    mut res: JobResult,
    p: &mut Prepared,
    changed: Vec<ChangedFile>,
    tested: &Tested,
    summary: &str,
) -> Result<JobResult, Stop> {
    let spec = job.spec;
    job.check_cancel(r, &res)?;
    r.status(Status::Committing, None);
    let changed = if tested.ran {
        job.git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
            .map_err(|e| job.git_failure(&res, "status", e))?
    } else {
        changed
    };
    let mut changed: Vec<String> = changed.into_iter().map(|c| c.path).collect();
    if changed.is_empty() {
        return Err(outcome(&res, ResultStatus::NeedsHuman, NO_CHANGES.into()));
    }
    let author = Author {
        name: spec.commit.author_name.clone(),
        email: spec.commit.author_email.clone(),
    };
    let message = commit_message(spec, summary);
    let Some(sha) = job
        .git(r, &p.genv, &p.redactor, |g| {
            delivery::commit(g, &mut p.checkout, &author, &message)
        })
        .map_err(|e| job.git_failure(&res, "commit", e))?
    else {
        return Err(outcome(&res, ResultStatus::NeedsHuman, NO_CHANGES.into()));
    };
    res.commit_sha = Some(sha.clone());
    // Scanned after the commit (the diff is base..HEAD), before any push.
    // The scan sees real values: its git runs with an empty redactor.
    let known = p.redactor.with(p.genv.secrets());
    let scanned = job
        .git(r, &p.genv, &Redactor::empty(), |g| {
            delivery::scan(g, &p.checkout, &sha, &known, delivery::SCAN_DIFF_MAX)
        })
        .map_err(|e| job.git_failure(&res, "secret scan of the diff", e))?;
    let cleared = match scanned {
        Scanned::Clear(c) => c,
        Scanned::Blocked(findings) => {
            let why = delivery::blocked_summary(&findings);
            r.log(LogStream::Runner, &format!("secret guard: {why}\n"));
            // A name that holds a secret is not repeated in the result.
            changed.retain(|path| !guard::holds_secret(path, &known));
            res.changed_files = changed;
            return Err(outcome(&res, ResultStatus::NeedsHuman, why));
        }
    };
    res.changed_files = changed;

    let Some(target) = delivery::push_target(
        job.merge_mode(),
        &spec.branch,
        &spec.repo.target_branch,
        p.replaced.as_deref(),
    ) else {
        res.status = green_status(tested.green);
        let kept = match &job.ctx.keep_local {
            Some(dir) => {
                job.check_cancel(r, &res)?;
                let copy = keep_locally(job, r, p, &sha, dir);
                let kept = match &copy {
                    Ok(c) => format!("; kept {}", where_kept(c)),
                    Err(why) => format!("; it could not be kept: {why}"),
                };
                res.branch = Some(spec.branch.clone());
                res.local_copy = copy.ok();
                kept
            }
            None => String::new(),
        };
        res.summary = format!(
            "{}committed {} locally on {} (merge_mode none: nothing pushed){kept}. {summary}",
            if tested.green {
                ""
            } else {
                "tests still fail; "
            },
            short_sha(&sha),
            spec.branch,
        );
        return Ok(res);
    };
    job.check_cancel(r, &res)?;
    r.status(Status::Pushing, Some(target.branch.clone()));
    res.branch = Some(target.branch.clone());
    let pushed = job
        .git(r, &p.genv, &p.redactor, |g| {
            delivery::push(g, &p.checkout, &cleared, &target)
        })
        .map_err(|e| job.git_failure(&res, "push", e))?;
    let branch = &target.branch;
    match pushed {
        PushOutcome::Pushed { .. } => {}
        PushOutcome::Rejected { protected, message } => {
            let by = if protected {
                " by branch protection"
            } else {
                ""
            };
            return Err(outcome(
                &res,
                ResultStatus::NeedsHuman,
                format!("the push of {branch} was refused{by}: {message}"),
            ));
        }
        PushOutcome::AuthFailed { message } => {
            return Err(fail_with(
                &res,
                format!("bad credentials: the push was refused ({message}); check the VCS token's write access"),
            ));
        }
        PushOutcome::Failed { message } => {
            return Err(fail_with(&res, format!("push failed: {message}")));
        }
    }
    let summary = if tested.green {
        format!("pushed {} to {branch}. {summary}", short_sha(&sha))
    } else {
        format!(
            "tests still fail after {} repair attempt(s); pushed {} to {branch} for a person to look at. {summary}",
            spec.max_repair_attempts,
            short_sha(&sha)
        )
    };
    res.status = green_status(tested.green);
    res.summary = summary;
    Ok(res)
}

/// `exec`'s `merge_mode: none`: the job's directory (and the runner's git
/// directory with the commit in it) is removed when the job ends, so the
/// commit is kept where the user can take it: as the job's branch in the
/// `--repo` repository when that is a local path (a plain fast-forward
/// push: git refuses to move a branch checked out there, or one that went
/// elsewhere), else, or when that is refused, as a bundle in `dir`.
/// Says where on the job's log.
fn keep_locally(
    job: &JobRunner,
    r: &mut Reporter,
    p: &Prepared,
    sha: &str,
    dir: &Path,
) -> Result<LocalCopy, String> {
    let spec = job.spec;
    let branch = &spec.branch;
    let repo = Path::new(&spec.repo.clone_url);
    if repo.is_absolute() {
        let pushed = job.git(r, &p.genv, &p.redactor, |g| {
            p.checkout.push(g, branch, &PushMode::FastForward)
        });
        let refused = match pushed {
            Ok(PushOutcome::Pushed { .. }) => {
                let copy = LocalCopy {
                    kind: LocalCopyKind::Repository,
                    path: spec.repo.clone_url.clone(),
                    branch: branch.clone(),
                };
                r.log(LogStream::Runner, &format!("kept {}\n", where_kept(&copy)));
                return Ok(copy);
            }
            Ok(
                PushOutcome::Rejected { message, .. }
                | PushOutcome::AuthFailed { message }
                | PushOutcome::Failed { message },
            ) => message,
            Err(e) => e.to_string(),
        };
        r.log(
            LogStream::Runner,
            &format!(
                "{} in {} was not updated ({refused}): writing a bundle instead\n",
                branch,
                repo.display()
            ),
        );
    }
    let name = file_name_word(&format!("ados-{}-{}.bundle", spec.job_id, short_sha(sha)));
    let file = dir.join(name);
    job.git(r, &p.genv, &p.redactor, |g| {
        p.checkout.bundle(g, branch, &file)
    })
    .map_err(|e| e.to_string())?;
    let copy = LocalCopy {
        kind: LocalCopyKind::Bundle,
        path: file.display().to_string(),
        branch: branch.clone(),
    };
    r.log(LogStream::Runner, &format!("kept {}\n", where_kept(&copy)));
    Ok(copy)
}

/// Where a kept commit is and how to take it, in a sentence.
fn where_kept(copy: &LocalCopy) -> String {
    let (path, branch) = (&copy.path, &copy.branch);
    match copy.kind {
        LocalCopyKind::Repository => {
            format!("as branch {branch} in {path} (`git -C {path} log {branch}`)")
        }
        LocalCopyKind::Bundle => {
            format!("in the bundle {path} (take it with `git fetch {path} {branch}:{branch}`)")
        }
    }
}

/// `completed` when the tests are green (or none ran), else `needs-human`.
fn green_status(green: bool) -> ResultStatus {
    if green {
        ResultStatus::Completed
    } else {
        ResultStatus::NeedsHuman
    }
}

pub(crate) fn short_sha(sha: &str) -> &str {
    sha.get(..10).unwrap_or(sha)
}

/// The commit message: the spec's, or `<issue title> (#N)` with the agent's
/// summary and `Closes #N`.
pub fn commit_message(spec: &JobSpec, agent_summary: &str) -> String {
    if let Some(m) = &spec.commit.message {
        if !m.trim().is_empty() {
            return m.clone();
        }
    }
    let (subject, closes) = match &spec.issue {
        Some(i) if i.number > 0 => (
            format!("{} (#{})", one_line(&i.title), i.number),
            format!("\n\nCloses #{}", i.number),
        ),
        _ => ("Changes by the ADOS agent".to_string(), String::new()),
    };
    // Prose only: a JSON line an agent printed is no commit message.
    let body: String = crate::agents::prose(agent_summary)
        .chars()
        .take(4000)
        .collect();
    if body.is_empty() {
        format!("{subject}{closes}\n")
    } else {
        format!("{subject}\n\n{body}{closes}\n")
    }
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    line.chars().take(120).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec::RemotePolicy;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> JobSpec {
        let mut v = json!({"job_id":"j","repo":{"owner":"o","name":"r"},
            "issue":{"number":42,"title":"Fix the parser\nsecond line","body":"b"}});
        for (k, x) in extra.as_object().expect("object") {
            v[k] = x.clone();
        }
        JobSpec::from_json(&v, RemotePolicy::default()).expect("valid spec")
    }

    #[test]
    fn default_commit_message_has_title_number_summary_and_closes() {
        let m = commit_message(&spec(json!({})), "Rewrote the tokenizer.");
        assert_eq!(
            m,
            "Fix the parser (#42)\n\nRewrote the tokenizer.\n\nCloses #42\n"
        );
        let m = commit_message(
            &spec(json!({})),
            "{\"type\":\"result\",\"ok\":true}\nRewrote the tokenizer.\n[1, 2]",
        );
        assert_eq!(
            m, "Fix the parser (#42)\n\nRewrote the tokenizer.\n\nCloses #42\n",
            "a JSON line is no commit message"
        );
        let m = commit_message(&spec(json!({})), "{\"a\":1}");
        assert_eq!(m, "Fix the parser (#42)\n\nCloses #42\n");
        let m = commit_message(&spec(json!({})), "  ");
        assert_eq!(m, "Fix the parser (#42)\n\nCloses #42\n");
        let m = commit_message(&spec(json!({"commit":{"message":"custom"}})), "x");
        assert_eq!(m, "custom");
    }

    #[test]
    fn short_shas_and_statuses() {
        assert_eq!(short_sha("0123456789abcdef"), "0123456789");
        assert_eq!(short_sha("abc"), "abc");
        assert_eq!(green_status(true), ResultStatus::Completed);
        assert_eq!(green_status(false), ResultStatus::NeedsHuman);
    }
}
