//! The daemon's info log of a job: one line per step (each status change)
//! and a closing line with status, duration, commit and PR, so an operator
//! following the log sees where a long job is without the control plane.
//!
//! It wraps the sink the events go to and reads only what the lines need:
//! no status detail, no agent output, no chat content (a detail such as a
//! clone's progress changes many times within one step).

use super::event::{Event, JobResult, Status};
use super::reporter::EventSink;
use super::spec::JobId;
use std::time::Duration;

/// An [`EventSink`] that logs a job's steps, then hands every frame on.
pub struct StepLog {
    job_id: JobId,
    inner: Box<dyn EventSink>,
    last: Option<Status>,
}

impl StepLog {
    /// Log the steps of `job_id`, delivering to `inner`.
    pub fn new(job_id: JobId, inner: Box<dyn EventSink>) -> StepLog {
        StepLog {
            job_id,
            inner,
            last: None,
        }
    }
}

impl EventSink for StepLog {
    fn event(&mut self, seq: u64, event: &Event, frame: &str) {
        if let Event::Status { status, .. } = event {
            if self.last != Some(*status) {
                self.last = Some(*status);
                log::info!("job {}: {}", self.job_id, status.as_str());
            }
        }
        self.inner.event(seq, event, frame);
    }

    fn result(&mut self, seq: u64, result: &JobResult, frame: &str) {
        log::info!("job {}: {}", self.job_id, closing_line(result));
        self.inner.result(seq, result, frame);
    }

    fn take_write_error(&mut self) -> Option<String> {
        self.inner.take_write_error()
    }
}

/// `completed in 2m5s, commit 1a2b3c4d5e6f, PR https://…/pull/7`.
fn closing_line(result: &JobResult) -> String {
    let mut line = format!(
        "{} in {}",
        result.status.as_str(),
        crate::words::duration(Duration::from_millis(result.duration_ms))
    );
    if let Some(sha) = &result.commit_sha {
        line.push_str(&format!(", commit {sha}"));
    }
    match (&result.pr_url, result.pr_number) {
        (Some(url), _) => line.push_str(&format!(", PR {url}")),
        (None, Some(n)) => line.push_str(&format!(", PR #{n}")),
        (None, None) => {}
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::event::ResultStatus;

    #[test]
    fn the_closing_line_has_status_duration_commit_and_pr() {
        let mut r = JobResult::failed("x");
        r.status = ResultStatus::Completed;
        r.duration_ms = 125_400;
        r.commit_sha = Some("1a2b3c".into());
        r.pr_url = Some("https://example.test/o/r/pull/7".into());
        assert_eq!(
            closing_line(&r),
            "completed in 2m5s, commit 1a2b3c, PR https://example.test/o/r/pull/7"
        );
        r.commit_sha = None;
        r.pr_url = None;
        r.status = ResultStatus::Failed;
        assert_eq!(closing_line(&r), "failed in 2m5s");
    }
}
