//! The journal: every job event and result is appended to an on-disk file
//! for its job *before* it is sent, and stays there until the control plane
//! acknowledges it. It is the buffer between jobs and the link: memory does
//! not grow with unacknowledged volume, and a runner restart loses nothing.
//!
//! - [`store`]: the on-disk layout, [`Journal`] (create, recover) and the
//!   [`JobStream`] a job's writer and reader share.
//! - [`record`]: one record on disk (length, checksum) and its check.
//! - [`sink`]: [`JournalSink`], the job side (append, fsync policy).
//! - [`private`]: a chat's journal, where nothing acknowledged stays on
//!   disk.
//!
//! The reading side, the link's [`crate::link::outbox::Outbox`] (cursors,
//! resend, acks, pruning), reads these files through [`store`].
//!
//! `docs/journal.md` describes the write path and what a power cut costs.

pub mod private;
pub mod record;
pub mod sink;
pub mod store;

pub use sink::JournalSink;
pub use store::{JobStream, Journal, RecoveredJob};

/// A job's journal records the process groups the job starts, so a runner
/// restarted after a crash can kill what is left of them.
impl crate::process::SpawnObserver for JobStream {
    fn spawned(&self, pgid: i32) {
        self.record_pgid(pgid);
    }

    fn finished(&self, pgid: i32) {
        self.forget_pgid(pgid);
    }
}
