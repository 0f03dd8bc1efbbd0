//! Private journals (chat sessions): what the control plane acknowledged
//! leaves the disk at the ack, the newest segment included.
//!
//! Pruning alone keeps the newest segment, since the writer appends to
//! it: mid-turn, a chat's acknowledged events would stay on disk until
//! the writer next rolled. So at an ack that covers everything written,
//! the reader side puts a new, empty segment (named after the next seq)
//! in the newest one's place and deletes it; the writer, which holds
//! `JobStream::appending` from its write until it publishes the frame,
//! sees the newest segment changed and appends to the new one.
//!
//! While frames above the ack share the newest segment (the writer is
//! busy, or the link has not caught up), the ack asks the writer to start
//! a new segment at its next append, at most once a
//! [`SYNC_INTERVAL`](super::sink::SYNC_INTERVAL)
//! (a roll costs an fdatasync and a directory fsync): the ack of the rest
//! then deletes the old one as any closed segment. So a turn that prints
//! without pause keeps its acknowledged events on disk for about a second
//! at most; a quiet one not at all.
//!
//! Order on disk: the new segment's name is made durable before the old
//! file goes, so after a power cut the journal still says which seq comes
//! next (recovery drops an empty newest segment only when an older one
//! holds records). The old file is then cut to nothing through a
//! descriptor opened before the delete: a writer or reader still holding
//! it open cannot keep its content on disk.

use super::store::{sync_dir, JobStream};
use std::fs::OpenOptions;
use std::sync::atomic::Ordering;
use std::sync::TryLockError;

impl JobStream {
    /// Keep nothing the control plane acknowledged on disk (a chat: its
    /// content must not be stored once the control plane has it).
    pub fn mark_private(&self) {
        self.private.store(true, Ordering::Relaxed);
    }

    /// Whether this journal keeps nothing acknowledged (see
    /// [`JobStream::mark_private`]).
    pub fn is_private(&self) -> bool {
        self.private.load(Ordering::Relaxed)
    }

    /// `acked` covers everything written: replace the newest segment by an
    /// empty one and delete it. Best effort: a failure leaves it for a
    /// later ack (or the job's end), logged at debug.
    pub(crate) fn replace_newest(&self, acked: u64) {
        if self.is_finished() {
            return; // the result's ack deletes the whole journal
        }
        let writer_idle = match self.appending.try_lock() {
            Ok(guard) => Some(guard),
            // A panic mid-append cannot leave the unit value half set.
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        };
        let (Some(newest), Some(next)) = (self.last_segment(), acked.checked_add(1)) else {
            return;
        };
        if newest >= next {
            return; // it holds nothing acknowledged
        }
        if writer_idle.is_none() || self.last_written() != acked {
            // Frames above the ack share the segment: the writer starts a
            // new one at its next append, and the ack of the rest deletes
            // this one.
            self.roll_wanted.store(true, Ordering::Relaxed);
            return;
        }
        let old_path = self.segment_path(newest);
        let new_path = self.segment_path(next);
        let created = OpenOptions::new().create(true).append(true).open(&new_path);
        if let Err(e) = created {
            log::debug!(
                "job {}: {}: not created, the acknowledged segment stays for now: {e}",
                self.job_id(),
                new_path.display()
            );
            return;
        }
        sync_dir(self.dir());
        let old = OpenOptions::new().write(true).open(&old_path);
        self.push_segment(next);
        self.prune_closed(acked);
        if let Ok(old) = old {
            if !old_path.exists() {
                if let Err(e) = old.set_len(0) {
                    log::debug!("{}: not emptied: {e}", old_path.display());
                }
            }
        }
    }
}
