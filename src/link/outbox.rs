//! The link side of the journal: per-job delivery cursors.
//!
//! The journal (`crate::journal`) is the on-disk store and its writing
//! side; this is its reading side, owned by the link thread.
//!
//! The [`Outbox`] is owned by the link thread. For each tracked job it keeps
//! the next seq to send and, while there is something to send, one open
//! segment reader (a 32 KiB buffer). Frames are read from the page cache one
//! line at a time into a single line buffer shared by all jobs, so memory
//! does not depend on how much is unsent or unacknowledged: the journal on
//! disk is the buffer.

use crate::job::spec::JobId;
use crate::journal::record;
use crate::journal::store::{open_segment_at, read_line, JobStream, LineRead};
use crate::link::proto::HeldJob;
use std::fs::File;
use std::io::{BufReader, Seek, SeekFrom};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Frames taken from one job before the next job gets its turn, so a job
/// printing without pause cannot starve the others.
const FAIR_SHARE: u32 = 64;

/// The line buffer is shrunk back to this after a large frame.
const LINE_BUF_KEEP: usize = 64 * 1024;

/// Where a job's reader stands.
struct ReadPos {
    /// First seq of the segment being read.
    seg_first: u64,
    reader: BufReader<File>,
    /// Byte offset of the next line in that segment.
    offset: u64,
}

/// One tracked job.
struct Cursor {
    stream: Arc<JobStream>,
    /// The next seq to send.
    next_seq: u64,
    /// `None` until something must be read, and again once a finished job
    /// is fully sent (the file is closed: nothing more will come).
    pos: Option<ReadPos>,
    /// A read error was logged (log once, not once per wake-up).
    error_logged: bool,
    /// Damaged bytes skipped since the last frame returned (reported in
    /// the stand-in for what they held).
    damaged: u64,
    /// The seqs from `next_seq` up to (not including) this one are not in
    /// the journal: a stand-in goes out for each before reading on.
    missing_until: Option<u64>,
}

/// The link side: per-job delivery cursors over the journals. Owned by the
/// link thread; no locks.
#[derive(Default)]
pub struct Outbox {
    cursors: Vec<Cursor>,
    /// The job whose turn it is.
    turn: usize,
    /// Frames the job whose turn it is may still send.
    share: u32,
    line: Vec<u8>,
    /// Jobs released by a `welcome` (their result was already stored).
    released: Vec<JobId>,
}

impl Outbox {
    /// An outbox tracking nothing.
    pub fn new() -> Outbox {
        Outbox {
            share: FAIR_SHARE,
            ..Outbox::default()
        }
    }

    /// Start delivering a job's journal.
    ///
    /// Delivery starts after what is known to be acknowledged (seq 1 for a
    /// new job); a `welcome` repositions it. A stream for a job already
    /// tracked replaces the old one.
    pub fn track(&mut self, stream: Arc<JobStream>) {
        let cursor = Cursor {
            next_seq: stream.last_acked() + 1,
            stream,
            pos: None,
            error_logged: false,
            damaged: 0,
            missing_until: None,
        };
        match self
            .cursors
            .iter_mut()
            .find(|c| c.stream.job_id() == cursor.stream.job_id())
        {
            Some(old) => *old = cursor,
            None => self.cursors.push(cursor),
        }
    }

    /// Whether the outbox tracks `job_id`.
    pub fn is_tracked(&self, job_id: &str) -> bool {
        self.cursors
            .iter()
            .any(|c| c.stream.job_id().as_str() == job_id)
    }

    /// The jobs to list in `hello.jobs`.
    pub fn held_jobs(&self) -> Vec<HeldJob> {
        self.cursors
            .iter()
            .map(|c| {
                // `finished` first: once set, `written` is the result's seq.
                let finished = c.stream.is_finished();
                HeldJob {
                    job_id: c.stream.job_id().as_str().to_string(),
                    state: if finished { "finished" } else { "running" },
                    last_seq: c.stream.last_written(),
                }
            })
            .collect()
    }

    /// A `welcome` arrived: resend everything after each ack; a held job
    /// missing from `acks` is resent from seq 1.
    ///
    /// Acks also prune, and a finished job whose result is acknowledged is
    /// released (see [`Outbox::take_released`]). An ack above what the
    /// journal holds (events lost to a power cut after the server stored
    /// them) is logged; for a finished job the result is appended again
    /// with the seq after the ack, so the server gets it under a number it
    /// does not have yet.
    pub fn on_welcome(&mut self, acks: &[(String, u64)]) {
        let mut released = Vec::new();
        for c in &mut self.cursors {
            let ack = acks
                .iter()
                .rev()
                .find(|(j, _)| j == c.stream.job_id().as_str())
                .map(|&(_, s)| s);
            let mut written = c.stream.last_written();
            // A result restart recovery wrote took the seq after the
            // journal's last; the server may hold that seq already (events
            // it stored that a power cut took from the journal), and an
            // ack at or above it must not count as the result's.
            let unconfirmed = c.stream.is_finished() && c.stream.result_unconfirmed();
            let clash = |a: u64| a > written || (unconfirmed && a == written);
            let mut unsettled = false;
            if let Some(ack) = ack.filter(|&a| clash(a)) {
                if c.stream.is_finished() {
                    log::warn!(
                        "job {}: the server holds seq {ack} but the journal ends at {written} \
                         (events lost in a power cut?); resending the result as seq {}",
                        c.stream.job_id(),
                        ack + 1
                    );
                    match c.stream.renumber_result(ack + 1) {
                        Ok(()) => {
                            written = ack + 1;
                            c.stream.confirm_result();
                        }
                        Err(e) => {
                            // Kept, not released: the next welcome tries again.
                            log::error!("job {}: result not renumbered: {e}", c.stream.job_id());
                            unsettled = true;
                        }
                    }
                } else {
                    log::error!(
                        "job {}: the server holds seq {ack} but the journal ends at {written}; \
                         seqs {}..={ack} will not be sent again",
                        c.stream.job_id(),
                        written + 1
                    );
                }
            }
            if unconfirmed && ack.is_none_or(|a| a < written) {
                c.stream.confirm_result();
            }
            let ack = ack.unwrap_or(0);
            c.next_seq = ack + 1;
            c.pos = None;
            c.error_logged = false;
            c.damaged = 0;
            c.missing_until = None;
            let acked = ack.min(written);
            c.stream.acked.store(acked, Ordering::Relaxed);
            c.stream.prune(acked);
            if c.stream.is_finished() && ack >= written && !unsettled {
                released.push(c.stream.job_id().clone());
            }
        }
        for job in &released {
            self.release(job.as_str());
        }
        self.released.extend(released);
        self.turn = 0;
        self.share = FAIR_SHARE;
    }

    /// Jobs released by [`Outbox::on_welcome`] since the last call: their
    /// result was acknowledged and their journal deleted. The link reports
    /// each as released, like an [`Outbox::on_ack`] that returned it.
    pub fn take_released(&mut self) -> Vec<JobId> {
        std::mem::take(&mut self.released)
    }

    /// The connection dropped: nothing in flight counts as sent.
    ///
    /// Every reconnect starts with a `welcome`, whose acks reposition every
    /// cursor; until then the readers are closed, so a long outage holds no
    /// buffers or file descriptors.
    pub fn on_disconnect(&mut self) {
        for c in &mut self.cursors {
            c.pos = None;
            c.damaged = 0;
            c.missing_until = None;
        }
    }

    /// An `ack`: prune the journal. Returns the job id when this ack covered
    /// the job's result, so the job is forgotten for good.
    pub fn on_ack(&mut self, job_id: &str, seq: u64) -> Option<JobId> {
        let c = self
            .cursors
            .iter()
            .find(|c| c.stream.job_id().as_str() == job_id)?;
        let finished = c.stream.is_finished();
        let written = c.stream.last_written();
        if seq > written {
            log::warn!("job {job_id}: ack {seq} is above the last seq written ({written})");
        }
        let acked = seq.min(written);
        if acked > c.stream.last_acked() {
            c.stream.acked.store(acked, Ordering::Relaxed);
            c.stream.prune(acked);
        }
        if finished && seq >= written {
            let id = c.stream.job_id().clone();
            self.release(job_id);
            return Some(id);
        }
        None
    }

    /// Forget a job and delete its journal.
    fn release(&mut self, job_id: &str) {
        let Some(i) = self
            .cursors
            .iter()
            .position(|c| c.stream.job_id().as_str() == job_id)
        else {
            return;
        };
        let c = self.cursors.remove(i);
        let dir = c.stream.dir();
        if let Err(e) = std::fs::remove_dir_all(dir) {
            log::error!(
                "job {job_id}: acknowledged journal {} not removed: {e}; remove it by hand",
                dir.display()
            );
        } else if let Some(root) = dir.parent() {
            // Without this a power cut could bring the journal back, and
            // the job would be listed in `hello` again.
            crate::journal::store::sync_dir(root);
        }
        if i < self.turn {
            self.turn -= 1;
        } else if i == self.turn {
            self.share = FAIR_SHARE;
        }
    }

    /// The next frame to send, if any: per job in seq order, jobs taken in
    /// turn. Call until `None` after every wake-up.
    pub fn next_frame(&mut self) -> Option<String> {
        let n = self.cursors.len();
        if n == 0 {
            return None;
        }
        // Each job gets one chance; a job with nothing to send passes.
        for _ in 0..=n {
            if self.turn >= n {
                self.turn = 0;
                self.share = FAIR_SHARE;
            }
            if self.share > 0 {
                let c = &mut self.cursors[self.turn];
                if let Some(frame) = c.read_next(&mut self.line) {
                    self.share -= 1;
                    if self.line.capacity() > LINE_BUF_KEEP {
                        self.line = Vec::new();
                    }
                    return Some(frame);
                }
            }
            self.turn += 1;
            self.share = FAIR_SHARE;
        }
        None
    }

    /// Events written but not yet acknowledged, over all jobs (a metric).
    pub fn unacked(&self) -> u64 {
        self.cursors
            .iter()
            .map(|c| {
                c.stream
                    .last_written()
                    .saturating_sub(c.stream.last_acked())
            })
            .sum()
    }
}

impl Cursor {
    /// The frame `next_seq`, if written yet.
    ///
    /// Seqs grow by exactly one on the wire, so a seq the journal does not
    /// hold (its record damaged on disk, or never written) goes out as a
    /// stand-in `log` event on stream `runner` saying so, or as a `failed`
    /// result when it is the result. Only intact records are sent: a frame
    /// is never anything but the JSON the job wrote.
    fn read_next(&mut self, line: &mut Vec<u8>) -> Option<String> {
        loop {
            let finished = self.stream.is_finished();
            let written = self.stream.last_written();
            if let Some(until) = self.missing_until {
                if self.next_seq < until {
                    let seq = self.next_seq;
                    self.next_seq += 1;
                    return Some(self.stand_in(seq, finished && seq == written));
                }
                self.missing_until = None;
                self.damaged = 0;
            }
            if self.next_seq > written {
                if finished {
                    self.pos = None; // fully sent: close the file
                }
                return None;
            }
            if finished && self.next_seq == written && self.stream.result_unconfirmed() {
                return None; // its seq is settled by the next `welcome`
            }
            if self.pos.is_none() {
                self.pos = Some(self.open_at(self.next_seq)?);
            }
            let pos = self.pos.as_mut()?;
            let read = match read_line(&mut pos.reader, line) {
                Ok(r) => r,
                Err(e) => {
                    self.read_failed(&e.to_string());
                    self.pos = None;
                    return None;
                }
            };
            if let LineRead::Line | LineRead::TooLong = read {
                let start = pos.offset;
                pos.offset += line.len() as u64;
                let Some(r) = record::decode(line) else {
                    self.damaged += line.len() as u64;
                    continue;
                };
                if r.seq < self.next_seq {
                    self.damaged = 0; // what it held was sent already
                    continue; // positioning after an ack, or a resend
                }
                if r.seq > self.next_seq {
                    // Seqs before this record are missing: stand-ins first,
                    // then this record, read again.
                    self.missing_until = Some(r.seq);
                    if let Err(e) = pos.reader.seek(SeekFrom::Start(start)) {
                        self.read_failed(&e.to_string());
                        self.pos = None;
                    } else {
                        pos.offset = start;
                    }
                    continue;
                }
                if self.damaged > 0 {
                    log::warn!(
                        "job {}: {} damaged bytes of the journal skipped before seq {}",
                        self.stream.job_id(),
                        self.damaged,
                        r.seq
                    );
                    self.damaged = 0;
                }
                self.next_seq = r.seq + 1;
                return Some(String::from_utf8_lossy(r.frame).into_owned());
            }
            // The end of what this segment holds so far. The writer
            // finishes a segment before it starts the next: once a later
            // segment exists, whatever follows here is a torn tail.
            if let Some(next) = self.stream.segment_after(pos.seg_first) {
                if read == LineRead::Partial {
                    self.damaged += line.len() as u64;
                }
                let path = self.stream.segment_path(next);
                match open_segment_at(&path, 0) {
                    Ok(reader) => {
                        *pos = ReadPos {
                            seg_first: next,
                            reader,
                            offset: 0,
                        };
                        continue;
                    }
                    Err(e) => {
                        self.read_failed(&format!("{}: {e}", path.display()));
                        self.pos = None;
                        return None;
                    }
                }
            }
            if read == LineRead::Partial {
                // A line still being written (or a torn one recovery has
                // not cut yet): read it again from its start next time.
                if let Err(e) = pos.reader.seek(SeekFrom::Start(pos.offset)) {
                    self.read_failed(&e.to_string());
                    self.pos = None;
                    return None;
                }
            }
            if self.next_seq <= written {
                // Every record up to `written` was whole before `written`
                // was published: what is not here was damaged.
                self.missing_until = Some(written + 1);
                continue;
            }
            return None;
        }
    }

    /// The frame standing in for `seq`, which the journal does not hold.
    fn stand_in(&mut self, seq: u64, is_result: bool) -> String {
        let job_id = self.stream.job_id().as_str();
        let why = if self.damaged > 0 {
            format!(
                "the runner's journal was damaged on disk ({} bytes skipped)",
                self.damaged
            )
        } else {
            "the runner's journal does not hold it".to_string()
        };
        log::warn!("job {job_id}: seq {seq} is not in the journal ({why}); a stand-in is sent");
        let note = if is_result {
            format!("the job's result was lost: {why}")
        } else {
            format!("event {seq} was lost: {why}")
        };
        record::stand_in(job_id, seq, is_result, &note)
    }

    /// A reader on the segment holding `seq`, at the segment's start (the
    /// lines before `seq` are skipped as they are read).
    fn open_at(&mut self, seq: u64) -> Option<ReadPos> {
        let first = self.stream.segment_for(seq)?;
        if first > seq {
            log::warn!(
                "job {}: seqs from {seq} were already pruned; resending from {first}",
                self.stream.job_id()
            );
            self.next_seq = first;
        }
        let path = self.stream.segment_path(first);
        match open_segment_at(&path, 0) {
            Ok(reader) => Some(ReadPos {
                seg_first: first,
                reader,
                offset: 0,
            }),
            Err(e) => {
                self.read_failed(&format!("{}: {e}", path.display()));
                None
            }
        }
    }

    fn read_failed(&mut self, what: &str) {
        if !self.error_logged {
            self.error_logged = true;
            log::error!("job {}: journal read: {what}", self.stream.job_id());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::event::{Event, LogStream};
    use crate::job::reporter::EventSink;
    use crate::journal::{Journal, JournalSink};
    use crate::link::Waker;
    use std::path::PathBuf;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(name: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("ados-outbox-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ev() -> Event {
        Event::Log {
            stream: LogStream::Agent,
            text: String::new(),
        }
    }

    #[test]
    fn memory_does_not_grow_with_what_is_unsent() {
        let tmp = TempDir::new("memory");
        let journal = Journal::with_segment_bytes(&tmp.0, 1024 * 1024).expect("journal");
        let stream = journal
            .create(&JobId::parse("m").expect("id"))
            .expect("create");
        let mut sink = JournalSink::new(stream.clone(), Waker::noop());
        let small = r#"{"type":"job.event","seq":0,"event":{"kind":"log","text":"0123456789"}}"#;
        for seq in 1..=50_000 {
            sink.event(seq, &ev(), small);
        }
        let big = format!("{{\"pad\":\"{}\"}}", "y".repeat(1000 * 1024));
        sink.event(50_001, &ev(), &big);
        sink.result(
            50_002,
            &crate::job::event::JobResult::failed("x"),
            r#"{"type":"job.result"}"#,
        );

        let mut outbox = Outbox::new();
        outbox.track(stream);
        // 50k frames unsent: the outbox holds one reader, not the frames.
        assert_eq!(outbox.next_frame().as_deref(), Some(small));
        let pos = outbox.cursors[0].pos.as_ref().expect("reader open");
        assert_eq!(pos.reader.capacity(), 32 * 1024);
        assert!(outbox.line.capacity() <= LINE_BUF_KEEP);
        let mut n = 1;
        while let Some(f) = outbox.next_frame() {
            n += 1;
            assert!(
                outbox.line.capacity() <= LINE_BUF_KEEP,
                "shrunk after {} bytes",
                f.len()
            );
        }
        assert_eq!(n, 50_002);
        // Fully sent and finished: the file is closed until a resend.
        assert!(outbox.cursors[0].pos.is_none());
    }
}
