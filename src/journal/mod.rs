//! The journal: every job event and result is appended to an on-disk file
//! for its job *before* it is sent, and stays there until the control plane
//! acknowledges it. It is the buffer between jobs and the link: memory does
//! not grow with unacknowledged volume, and a runner restart loses nothing.
//!
//! SKELETON: the signatures below are the contract between the job side
//! ([`JournalSink`]), the link side ([`Outbox`]) and the daemon
//! ([`Journal`]); the bodies are placeholders that hold nothing.

use crate::job::event::{Event, JobResult};
use crate::job::reporter::EventSink;
use crate::job::spec::JobId;
use crate::link::proto::HeldJob;
use crate::link::Waker;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// All journals of a runner, under `WORKSPACE_DIR/state/journal`.
#[derive(Clone, Debug)]
pub struct Journal {
    root: PathBuf,
}

/// A journal found at startup (restart recovery).
#[derive(Debug)]
pub struct RecoveredJob {
    /// The job's stream, ready to be tracked by the outbox.
    pub stream: Arc<JobStream>,
    /// Whether the journal holds the job's result. If not, the job was
    /// running when the runner died.
    pub finished: bool,
    /// Process groups the job had started and not seen end.
    pub pgids: Vec<i32>,
}

impl Journal {
    /// Open (create) the journal directory.
    pub fn open(root: &Path) -> io::Result<Journal> {
        Ok(Journal {
            root: root.to_path_buf(),
        })
    }

    /// Where the journals live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Start the journal of a new job.
    pub fn create(&self, job_id: &JobId) -> io::Result<Arc<JobStream>> {
        Ok(Arc::new(JobStream {
            job_id: job_id.clone(),
        }))
    }

    /// Every journal left on disk by an earlier run.
    pub fn recover(&self) -> io::Result<Vec<RecoveredJob>> {
        Ok(Vec::new())
    }
}

/// One job's journal, shared by its writer (the job) and its reader (the
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

    /// The highest seq durably appended (0 before the first).
    pub fn last_written(&self) -> u64 {
        0
    }

    /// Whether the result has been appended.
    pub fn is_finished(&self) -> bool {
        false
    }

    /// Note a process group the job started (for restart recovery).
    pub fn record_pgid(&self, pgid: i32) {
        let _ = pgid;
    }

    /// Note that a process group has ended.
    pub fn forget_pgid(&self, pgid: i32) {
        let _ = pgid;
    }
}

/// The job side: an [`EventSink`] that appends to the journal, then wakes
/// the link.
pub struct JournalSink {
    stream: Arc<JobStream>,
    waker: Waker,
}

impl JournalSink {
    /// A sink writing `stream`'s journal and waking the link after each write.
    pub fn new(stream: Arc<JobStream>, waker: Waker) -> JournalSink {
        JournalSink { stream, waker }
    }
}

impl EventSink for JournalSink {
    fn event(&mut self, seq: u64, _event: &Event, frame: &str) {
        let _ = (seq, frame, &self.stream);
        self.waker.wake();
    }
    fn result(&mut self, seq: u64, _result: &JobResult, frame: &str) {
        let _ = (seq, frame);
        self.waker.wake();
    }
}

/// The link side: per-job delivery cursors over the journals. Owned by the
/// link thread; no locks.
#[derive(Default)]
pub struct Outbox {
    streams: Vec<Arc<JobStream>>,
}

impl Outbox {
    /// An outbox tracking nothing.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Start delivering a job's journal.
    pub fn track(&mut self, stream: Arc<JobStream>) {
        self.streams.push(stream);
    }

    /// The jobs to list in `hello.jobs`.
    pub fn held_jobs(&self) -> Vec<HeldJob> {
        Vec::new()
    }

    /// A `welcome` arrived: resend everything after each ack; a held job
    /// missing from `acks` is resent from seq 1.
    pub fn on_welcome(&mut self, acks: &[(String, u64)]) {
        let _ = acks;
    }

    /// The connection dropped: nothing in flight counts as sent.
    pub fn on_disconnect(&mut self) {}

    /// An `ack`: prune the journal. Returns the job id when this ack covered
    /// the job's result, so the job is forgotten for good.
    pub fn on_ack(&mut self, job_id: &str, seq: u64) -> Option<JobId> {
        let _ = (job_id, seq);
        None
    }

    /// The next frame to send, if any: per job in seq order, jobs taken in
    /// turn. Call until `None` after every wake-up.
    pub fn next_frame(&mut self) -> Option<String> {
        None
    }

    /// Events written but not yet acknowledged, over all jobs (a metric).
    pub fn unacked(&self) -> u64 {
        0
    }
}
