//! The journal: every job event and result is appended to an on-disk file
//! for its job *before* it is sent, and stays there until the control plane
//! acknowledges it. It is the buffer between jobs and the link: memory does
//! not grow with unacknowledged volume, and a runner restart loses nothing.
//!
//! (Interface fixed by the skeleton; implementation in progress.)

use crate::job::spec::JobId;
use std::sync::Arc;

/// One job's journal as seen by its writer (the job) and its reader (the
/// link's outbox).
#[derive(Debug)]
pub struct JobStream {
    job_id: JobId,
}

impl JobStream {
    /// The job.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }
}

/// Keeps the link's per-job delivery cursors (owned by the link thread).
#[derive(Default)]
pub struct Outbox {
    streams: Vec<Arc<JobStream>>,
}
