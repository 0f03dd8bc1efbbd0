//! The job side of the journal: [`JournalSink`] appends each frame to the
//! job's newest segment and wakes the link.
//!
//! # Write path
//!
//! Each frame becomes one record (see [`super::record`]), built in a
//! reused buffer and written with a single `write(2)` on a file opened
//! `O_APPEND`: the line is in the page cache (visible to the link's reader)
//! when the call returns, with no user-space buffer to flush. Only then is
//! `written` published and the link woken, so the reader never sees half a
//! line.
//!
//! # Reserved space
//!
//! A segment reserves its space when it is opened (`fallocate`, keeping
//! the file's size): the segment size, the one record that may cross it,
//! and room for the result, which never rolls. So a full disk is met when
//! a new segment is created, not mid-record, and the result still fits.
//!
//! # fsync policy
//!
//! - The result frame: `fdatasync` before it is published. A result the
//!   server may acknowledge is always on disk.
//! - A segment roll: `fdatasync` the full segment, then fsync the directory
//!   holding the new one.
//! - Other events: `fdatasync` at most once a second, when an append finds
//!   the last sync older than [`SYNC_INTERVAL`].
//!
//! So a power cut costs at most the events of the last second a job was
//! writing (and, for a job that went quiet after writing, what the kernel
//! had not written back yet, normally at most ~30 s: `vm.dirty_expire_centisecs`).
//! Those events may already be acknowledged by the server; the journal then
//! ends below the server's ack, which [`crate::link::Outbox::on_welcome`]
//! detects and repairs for finished jobs (the restart result's seq is
//! settled there too). See `docs/journal.md`.
//!
//! # Write errors
//!
//! A frame that cannot be written (disk full, I/O error) is logged (the
//! first time per job at `error`, then at `debug`), counted in
//! [`JobStream::write_errors`], and reported to the reporter through
//! [`EventSink::take_write_error`]: the reporter numbers no more events and
//! ends the job `failed` under the seq that failed, so the server never
//! sees a gap. A partial line is cut off so later frames stay readable.

use super::record::{self, MAX_FRAME_BYTES, MAX_RECORD_BYTES};
use super::store::{sync_dir, JobStream};
use crate::job::event::{Event, JobResult};
use crate::job::reporter::EventSink;
use crate::link::Waker;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events are fdatasync'ed at most this often (results and rolls always).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The line buffer is shrunk back to this after a large frame.
const LINE_BUF_KEEP: usize = 64 * 1024;

/// The job side: an [`EventSink`] that appends to the journal, then wakes
/// the link.
///
/// There must be at most one sink per stream at a time. It also serves to
/// continue a recovered journal (`Reporter::resume(id, stream.next_seq(), …)`).
pub struct JournalSink {
    stream: Arc<JobStream>,
    waker: Waker,
    /// The newest segment, open for append; `None` after an error until the
    /// next append reopens it.
    file: Option<File>,
    /// First seq of `file`'s segment.
    seg_first: u64,
    /// Bytes in `file`'s segment (all whole lines).
    seg_len: u64,
    /// Whether `file` holds writes not yet fdatasync'ed.
    dirty: bool,
    /// The newest segment ends in a torn line that could not be cut off:
    /// the next append starts a new segment instead of reopening it.
    broken: bool,
    last_sync: Instant,
    line: Vec<u8>,
    error_logged: bool,
    /// Why the last append failed, until the reporter takes it.
    write_error: Option<String>,
    /// When a private journal's ack last made this sink roll.
    last_ack_roll: Option<Instant>,
}

impl JournalSink {
    /// A sink writing `stream`'s journal and waking the link after each write.
    pub fn new(stream: Arc<JobStream>, waker: Waker) -> JournalSink {
        let mut sink = JournalSink {
            stream,
            waker,
            file: None,
            seg_first: 0,
            seg_len: 0,
            dirty: false,
            broken: false,
            last_sync: Instant::now(),
            line: Vec::with_capacity(4096),
            error_logged: false,
            write_error: None,
            last_ack_roll: None,
        };
        if let Err(e) = sink.open_last() {
            sink.failed(&e, "open");
        }
        sink
    }

    /// The stream this sink writes.
    pub fn stream(&self) -> &Arc<JobStream> {
        &self.stream
    }

    /// Open the newest segment for append (a recovered journal's newest
    /// segment ends with a whole line: recovery cut any torn tail).
    fn open_last(&mut self) -> io::Result<()> {
        let Some(first) = self.stream.last_segment() else {
            return Ok(()); // created by the first append
        };
        let path = self.stream.segment_path(first);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        self.seg_len = file.metadata()?.len();
        if let Err(e) = reserve(&file, self.reserve_len()) {
            // Not fatal: appends go on until the disk is really full.
            log::warn!(
                "job {}: {}: space for the journal not reserved: {e}",
                self.stream.job_id(),
                path.display()
            );
        }
        self.seg_first = first;
        self.file = Some(file);
        Ok(())
    }

    /// The bytes reserved for a segment: its size, the one record that may
    /// cross it, and room for the result, which never rolls. So a full
    /// disk is met when a segment is created, and the result still fits.
    fn reserve_len(&self) -> u64 {
        self.stream.segment_bytes() + 2 * MAX_RECORD_BYTES as u64
    }

    /// Start segment `seq`: sync the one before (it is complete), create
    /// the new file and make its name durable.
    ///
    /// The new segment's space is reserved first: when the disk cannot
    /// hold it, the new file is removed and the error returned, and the
    /// current segment stays open with its reserve for the result.
    fn roll(&mut self, seq: u64) -> io::Result<()> {
        let path = self.stream.segment_path(seq);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        match reserve(&file, self.reserve_len()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {}
            Err(e) => {
                drop(file);
                if let Err(rm) = std::fs::remove_file(&path) {
                    log::warn!("{}: not removed: {rm}", path.display());
                }
                return Err(e);
            }
        }
        if let Some(old) = self.file.take() {
            if self.dirty {
                old.sync_data()?;
            }
            release_reserve(&old, self.seg_len, self.reserve_len());
        }
        sync_dir(self.stream.dir());
        self.file = Some(file);
        self.seg_first = seq;
        self.seg_len = 0;
        self.dirty = false;
        self.broken = false;
        self.last_sync = Instant::now();
        self.stream.push_segment(seq);
        Ok(())
    }

    /// Append one frame; publish it and wake the link when stored.
    fn append(&mut self, seq: u64, is_result: bool, frame: &str) {
        // Held until `written` covers the frame: a private journal's reader
        // side replaces the newest segment only when no frame is on its way
        // (`super::private`).
        let stream = Arc::clone(&self.stream);
        let _appending = stream.appending.lock().unwrap_or_else(|p| p.into_inner());
        let written = self.stream.written.load(Ordering::Relaxed);
        if seq <= written {
            // Recovery and readers rely on strictly growing seqs.
            log::error!(
                "job {}: frame seq {seq} not above the journal's last seq {written}; dropped",
                self.stream.job_id()
            );
            self.stream.write_errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let oversize;
        let frame = if frame.len() > MAX_FRAME_BYTES {
            oversize =
                oversize_stand_in(self.stream.job_id().as_str(), seq, is_result, frame.len());
            oversize.as_str()
        } else {
            frame
        };
        match self.write_line(seq, is_result, frame) {
            Ok(()) => {
                self.stream.written.store(seq, Ordering::Release);
                if is_result {
                    self.stream.finished.store(true, Ordering::Release);
                }
                self.waker.wake();
            }
            Err(e) => {
                self.stream.write_errors.fetch_add(1, Ordering::Relaxed);
                self.failed(&e, "append to");
                self.write_error = Some(write_error_reason(&e, seq, self.stream.dir()));
            }
        }
        if self.line.capacity() > LINE_BUF_KEEP {
            self.line.clear();
            self.line.shrink_to(LINE_BUF_KEEP);
        }
    }

    fn write_line(&mut self, seq: u64, is_result: bool, frame: &str) -> io::Result<()> {
        if self.file.is_some() && self.stream.last_segment() != Some(self.seg_first) {
            // The reader side replaced the segment once everything in it
            // was acknowledged (a private journal): append to the new one.
            self.file = None;
        }
        if self.file.is_none() && !self.broken {
            if let Err(e) = self.open_last() {
                log::debug!("job {}: reopening the segment: {e}", self.stream.job_id());
            }
        }
        // The result never rolls: it goes into the current segment's
        // reserve, so it can be written when the disk is full.
        let needs_roll = match self.file {
            None => true,
            Some(_) => {
                !is_result
                    && self.seg_first < seq
                    && (self.seg_len >= self.stream.segment_bytes() || self.ack_roll_due())
            }
        };
        if needs_roll {
            self.roll(seq)?;
        }
        self.line.clear();
        record::encode(&mut self.line, seq, is_result, frame.as_bytes());
        let reserved = self.reserve_len();
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("segment not open"))?;
        if let Err(e) = file.write_all(&self.line) {
            // Cut off whatever part of the line made it, so the segment
            // ends with a whole line; if even that fails, drop the handle
            // and start a new segment next time (readers skip a torn tail
            // once a later segment exists).
            if file.set_len(self.seg_len).is_err() {
                self.file = None;
                self.broken = true;
            }
            return Err(e);
        }
        self.seg_len += self.line.len() as u64;
        self.dirty = true;
        if is_result || self.last_sync.elapsed() >= SYNC_INTERVAL {
            file.sync_data()?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        if is_result {
            release_reserve(file, self.seg_len, reserved);
        }
        Ok(())
    }

    /// A private journal's ack found frames above it in this segment
    /// (`super::private`): roll now, unless an ack made this sink roll less
    /// than a [`SYNC_INTERVAL`] ago (then at a later append).
    fn ack_roll_due(&mut self) -> bool {
        if !self.stream.roll_wanted.load(Ordering::Relaxed)
            || self
                .last_ack_roll
                .is_some_and(|at| at.elapsed() < SYNC_INTERVAL)
        {
            return false;
        }
        self.stream.roll_wanted.store(false, Ordering::Relaxed);
        self.last_ack_roll = Some(Instant::now());
        true
    }

    fn failed(&mut self, e: &io::Error, what: &str) {
        let path = self.stream.segment_path(self.seg_first.max(1));
        if !self.error_logged {
            self.error_logged = true;
            log::error!(
                "job {}: cannot {what} the journal {}: {e}; its events are not stored or sent \
                 (check free space and permissions under the workspace)",
                self.stream.job_id(),
                path.display()
            );
        } else {
            log::debug!(
                "job {}: journal write failed again: {e}",
                self.stream.job_id()
            );
        }
    }
}

impl JobStream {
    /// A sink appending to this journal (the same as [`JournalSink::new`]);
    /// continue a recovered journal with
    /// `Reporter::resume(id, stream.next_seq(), Box::new(stream.sink(waker)), …)`.
    pub fn sink(self: &Arc<Self>, waker: Waker) -> JournalSink {
        JournalSink::new(self.clone(), waker)
    }
}

impl EventSink for JournalSink {
    fn event(&mut self, seq: u64, _event: &Event, frame: &str) {
        self.append(seq, false, frame);
    }
    fn result(&mut self, seq: u64, _result: &JobResult, frame: &str) {
        self.append(seq, true, frame);
    }
    fn take_write_error(&mut self) -> Option<String> {
        self.write_error.take()
    }
}

/// What the job's `failed` result says when event `seq` could not be
/// stored.
fn write_error_reason(e: &io::Error, seq: u64, dir: &std::path::Path) -> String {
    let full = matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT));
    if full {
        format!(
            "the disk is full: the runner could not store event {seq} in its journal ({}): \
             free space under WORKSPACE_DIR",
            dir.display()
        )
    } else {
        format!(
            "the runner could not store event {seq} in its journal ({}): {e}; \
             check the disk and permissions under WORKSPACE_DIR",
            dir.display()
        )
    }
}

/// Reserve `len` bytes of disk for a segment without changing its size
/// (`FALLOC_FL_KEEP_SIZE`: appends and readers still see only what was
/// written).
///
/// # Errors
/// `ENOSPC` when the disk cannot hold it; `EOPNOTSUPP` on a file system
/// without `fallocate` (then nothing is reserved).
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let len = libc::off_t::try_from(len).map_err(io::Error::other)?;
    // SAFETY: fallocate on a file descriptor we own; no memory is passed.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Give back what a finished segment of `len` bytes did not use of the
/// `reserved` bytes (best effort: truncating to the same size frees it on
/// ext4 and XFS, punching a hole past the end on tmpfs).
fn release_reserve(file: &File, len: u64, reserved: u64) {
    use std::os::fd::AsRawFd as _;
    if len >= reserved {
        return;
    }
    let _ = file.set_len(len);
    let (Ok(start), Ok(span)) = (
        libc::off_t::try_from(len),
        libc::off_t::try_from(reserved - len),
    ) else {
        return;
    };
    // SAFETY: as in `reserve`. A failure only means the space stays
    // reserved until the segment is deleted.
    unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            start,
            span,
        )
    };
}

/// A small frame standing in for one over the 1 MiB limit (the reporter
/// splits text so this should never happen; if it does, the server still
/// gets a frame for the seq, and a result stays a result).
fn oversize_stand_in(job_id: &str, seq: u64, is_result: bool, len: usize) -> String {
    log::error!("job {job_id}: frame {seq} is {len} bytes, over the 1 MiB limit; replaced");
    let note = format!("frame of {len} bytes over the 1 MiB limit dropped");
    record::stand_in(job_id, seq, is_result, &note)
}
