//! The on-disk layout of the journals, and the state a job's writer and
//! reader share.
//!
//! ```text
//! <root>/<job_id>/00000000000000000001.jsonl   segment: first seq in its name
//! <root>/<job_id>/00000000000000041237.jsonl   next segment (rolled at ~8 MiB)
//! <root>/<job_id>/pgids                        process groups, one a line
//! ```
//!
//! A segment holds one record a line, each with its length and a checksum
//! (see [`super::record`]). Recovery trusts a record only when it is
//! whole and intact and its seq is above the previous one. A damaged record
//! in the middle of a segment is skipped alone (the reader reports it);
//! what follows the last good record (a torn last line, or a zero-filled
//! tail, after a power cut) is cut off so appends resume after it. See
//! `docs/journal.md` for the write path and what a power cut can cost.

use super::record::{self, MAX_RECORD_BYTES};
use crate::job::spec::JobId;
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A segment is closed and a new one started once it holds this many bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

pub use super::record::MAX_FRAME_BYTES;

/// Segment file names end in this.
const SEGMENT_EXT: &str = ".jsonl";

/// The file listing a job's live process groups.
const PGIDS_FILE: &str = "pgids";

/// Present while the job's result was written by restart recovery and no
/// `welcome` has been seen since: see [`JobStream::result_unconfirmed`].
const RESTART_RESULT_FILE: &str = "restart-result";

/// All journals of a runner, under `WORKSPACE_DIR/state/journal`.
#[derive(Clone, Debug)]
pub struct Journal {
    root: PathBuf,
    segment_bytes: u64,
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
    ///
    /// # Errors
    /// The directory cannot be created (permissions, a file in the way).
    pub fn open(root: &Path) -> io::Result<Journal> {
        Journal::with_segment_bytes(root, DEFAULT_SEGMENT_BYTES)
    }

    /// Like [`Journal::open`], with segments rolled at `segment_bytes`
    /// (tests use a tiny size to exercise pruning).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn with_segment_bytes(root: &Path, segment_bytes: u64) -> io::Result<Journal> {
        fs::create_dir_all(root).map_err(|e| with_path(e, "create the journal directory", root))?;
        Ok(Journal {
            root: root.to_path_buf(),
            segment_bytes: segment_bytes.max(1),
        })
    }

    /// Where the journals live.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Start the journal of a new job.
    ///
    /// A directory left for the same id is removed first: a job id the
    /// server re-assigns after it was released is a new job. The caller
    /// (the dispatcher) must not create a journal for a job it still holds.
    ///
    /// # Errors
    /// The job directory or its first segment cannot be created.
    pub fn create(&self, job_id: &JobId) -> io::Result<Arc<JobStream>> {
        let dir = self.root.join(job_id.as_str());
        match fs::remove_dir_all(&dir) {
            Ok(()) => log::warn!("job {job_id}: an old journal was left; starting a new one"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(with_path(e, "remove the old journal", &dir)),
        }
        fs::create_dir(&dir).map_err(|e| with_path(e, "create the job journal", &dir))?;
        let first = segment_path(&dir, 1);
        File::create(&first).map_err(|e| with_path(e, "create the journal segment", &first))?;
        // The job is held from now on: make its directory survive a power cut.
        sync_dir(&dir);
        sync_dir(&self.root);
        Ok(Arc::new(JobStream::new(
            job_id.clone(),
            dir,
            self.segment_bytes,
            VecDeque::from([1]),
            0,
            false,
            Vec::new(),
        )))
    }

    /// Every journal left on disk by an earlier run.
    ///
    /// Only the newest segment of each job is read (to find the last seq),
    /// so recovery costs at most one segment per job, not the whole journal.
    /// A torn last line is cut off. A directory that is not a journal is
    /// skipped with a warning.
    ///
    /// # Errors
    /// The journal directory cannot be listed.
    pub fn recover(&self) -> io::Result<Vec<RecoveredJob>> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.root).map_err(|e| with_path(e, "list journals", &self.root))?;
        for entry in entries {
            let entry = entry.map_err(|e| with_path(e, "list journals", &self.root))?;
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let name = entry.file_name();
            let Some(job_id) = name.to_str().and_then(|n| JobId::parse(n).ok()) else {
                log::warn!("{}: not a job journal; skipped", path.display());
                continue;
            };
            match self.recover_job(job_id, path.clone()) {
                Ok(job) => out.push(job),
                Err(e) => log::error!("{}: journal not recovered: {e}", path.display()),
            }
        }
        out.sort_by(|a, b| a.stream.job_id.cmp(&b.stream.job_id));
        Ok(out)
    }

    fn recover_job(&self, job_id: JobId, dir: PathBuf) -> io::Result<RecoveredJob> {
        let mut segments = list_segments(&dir)?;
        let mut written = 0;
        let mut finished = false;
        // From the newest segment back to the first with a good line; an
        // empty newest segment (a roll just before the crash) is dropped
        // unless it is the only one.
        while let Some(&first) = segments.back() {
            let path = segment_path(&dir, first);
            let scan = scan_segment(&path, first)?;
            if scan.damaged_bytes > 0 {
                log::warn!(
                    "{}: {} damaged bytes between intact records; they are skipped \
                     (reported to the control plane as they are reached)",
                    path.display(),
                    scan.damaged_bytes
                );
            }
            if scan.good_len < scan.file_len {
                log::warn!(
                    "{}: {} bytes after the last intact record cut off (torn write)",
                    path.display(),
                    scan.file_len - scan.good_len
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| with_path(e, "open the segment", &path))?;
                f.set_len(scan.good_len)
                    .map_err(|e| with_path(e, "truncate the segment", &path))?;
                if let Err(e) = f.sync_data() {
                    log::warn!("{}: fdatasync failed: {e}", path.display());
                }
            }
            if let Some((seq, is_result)) = scan.last {
                written = seq;
                finished = is_result;
                break;
            }
            if segments.len() == 1 {
                // Nothing valid at all: everything before this segment was
                // acknowledged and pruned.
                written = first - 1;
                break;
            }
            fs::remove_file(&path).map_err(|e| with_path(e, "remove the empty segment", &path))?;
            segments.pop_back();
        }
        if segments.is_empty() {
            File::create(segment_path(&dir, 1))
                .map_err(|e| with_path(e, "create the journal segment", &dir))?;
            segments.push_back(1);
        }
        let pgids = read_pgids(&dir.join(PGIDS_FILE));
        let result_unconfirmed = dir.join(RESTART_RESULT_FILE).exists();
        let acked = segments.front().map_or(0, |f| f - 1);
        let stream = JobStream::new(
            job_id,
            dir,
            self.segment_bytes,
            segments,
            written,
            finished,
            pgids.clone(),
        );
        stream.acked.store(acked.min(written), Ordering::Relaxed);
        stream
            .result_unconfirmed
            .store(result_unconfirmed, Ordering::Relaxed);
        Ok(RecoveredJob {
            stream: Arc::new(stream),
            finished,
            pgids,
        })
    }
}

/// One job's journal, shared by its writer (the job) and its reader (the
/// link's outbox).
///
/// The writer publishes progress through `written` (release) after the
/// line is in the page cache; the reader never reads past it, so it never
/// sees half a line.
#[derive(Debug)]
pub struct JobStream {
    job_id: JobId,
    dir: PathBuf,
    segment_bytes: u64,
    /// Highest seq whose line is written and flushed to the OS.
    pub(crate) written: AtomicU64,
    /// Set (after `written`) once the result line is written and synced.
    pub(crate) finished: AtomicBool,
    /// Highest seq the server has acknowledged (the outbox's view).
    pub(crate) acked: AtomicU64,
    /// Frames the writer could not store (a metric; see [`JobStream::write_errors`]).
    pub(crate) write_errors: AtomicU64,
    /// First seq of every segment on disk, oldest first. The writer pushes
    /// on a roll; the pruner pops from the front.
    segments: Mutex<VecDeque<u64>>,
    pgids: Mutex<Vec<i32>>,
    /// The result was written by restart recovery under the seq after the
    /// journal's last, and the server may hold that seq already (events
    /// it acknowledged before a power cut took them from the journal).
    /// Cleared, on disk first, when a `welcome` has put the result above
    /// the server's ack.
    result_unconfirmed: AtomicBool,
    /// A chat's journal: nothing acknowledged stays on disk, the newest
    /// segment included (see `super::private`).
    pub(crate) private: AtomicBool,
    /// A private journal's ack found frames above it in the newest
    /// segment: the writer starts a new one at its next append.
    pub(crate) roll_wanted: AtomicBool,
    /// Held by the writer from the write of a line until `written` covers
    /// it, so the reader side never takes away the segment under a frame
    /// it has not published (see `super::private`).
    pub(crate) appending: Mutex<()>,
}

impl JobStream {
    fn new(
        job_id: JobId,
        dir: PathBuf,
        segment_bytes: u64,
        segments: VecDeque<u64>,
        written: u64,
        finished: bool,
        pgids: Vec<i32>,
    ) -> JobStream {
        JobStream {
            job_id,
            dir,
            segment_bytes,
            written: AtomicU64::new(written),
            finished: AtomicBool::new(finished),
            acked: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            segments: Mutex::new(segments),
            pgids: Mutex::new(pgids),
            result_unconfirmed: AtomicBool::new(false),
            private: AtomicBool::new(false),
            roll_wanted: AtomicBool::new(false),
            appending: Mutex::new(()),
        }
    }

    /// The job.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The job's journal directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The highest seq durably appended (0 before the first).
    pub fn last_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// The seq a writer continuing this journal must use next
    /// (`Reporter::resume(job_id, stream.next_seq(), …)`).
    pub fn next_seq(&self) -> u64 {
        self.last_written() + 1
    }

    /// Whether the result has been appended.
    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The highest seq the control plane has acknowledged, as far as the
    /// outbox knows.
    pub fn last_acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Frames that could not be written (disk full, I/O error) and are
    /// therefore missing from the journal and never sent.
    pub fn write_errors(&self) -> u64 {
        self.write_errors.load(Ordering::Relaxed)
    }

    /// Segment size at which the writer rolls to a new file.
    pub(crate) fn segment_bytes(&self) -> u64 {
        self.segment_bytes
    }

    pub(crate) fn segments(&self) -> MutexGuard<'_, VecDeque<u64>> {
        // A panic while holding this lock cannot leave the deque half
        // updated (push/pop only), so a poisoned lock is still usable.
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The path of the segment starting at `first`.
    pub(crate) fn segment_path(&self, first: u64) -> PathBuf {
        segment_path(&self.dir, first)
    }

    /// The first seq of the newest segment.
    pub(crate) fn last_segment(&self) -> Option<u64> {
        self.segments().back().copied()
    }

    /// The segment holding `seq`: the newest whose first seq is <= `seq`
    /// (or the oldest, when `seq` was pruned already).
    pub(crate) fn segment_for(&self, seq: u64) -> Option<u64> {
        let segs = self.segments();
        segs.iter()
            .rev()
            .find(|&&f| f <= seq)
            .or(segs.front())
            .copied()
    }

    /// The segment after the one starting at `first`, if one exists yet.
    pub(crate) fn segment_after(&self, first: u64) -> Option<u64> {
        self.segments().iter().find(|&&f| f > first).copied()
    }

    /// Record a new segment (the writer rolled).
    pub(crate) fn push_segment(&self, first: u64) {
        let mut segs = self.segments();
        if segs.back().is_none_or(|&b| b < first) {
            segs.push_back(first);
        }
    }

    /// Delete every segment whose frames are all at or below `acked`. The
    /// newest segment is kept (the writer appends to it), except in a
    /// private journal, where a new empty one takes its place first.
    pub(crate) fn prune(&self, acked: u64) {
        self.prune_closed(acked);
        if self.private.load(Ordering::Relaxed) {
            self.replace_newest(acked);
        }
    }

    /// Delete every segment but the newest whose frames are all at or
    /// below `acked`.
    pub(crate) fn prune_closed(&self, acked: u64) {
        let mut segs = self.segments();
        while segs.len() >= 2 && segs[1] <= acked + 1 {
            let path = segment_path(&self.dir, segs[0]);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    log::warn!("{}: acknowledged segment not removed: {e}", path.display());
                    return;
                }
            }
            segs.pop_front();
        }
    }

    /// Whether the result was written by restart recovery and no `welcome`
    /// has confirmed its seq yet: until then the server may already hold
    /// that seq, so the result must not be sent (nor count as
    /// acknowledged).
    pub fn result_unconfirmed(&self) -> bool {
        self.result_unconfirmed.load(Ordering::Acquire)
    }

    /// Restart recovery is about to write the result of a job it found
    /// running. Recorded on disk first, so a second restart still knows
    /// the result's seq was chosen without the server's ack.
    ///
    /// # Errors
    /// The marker file cannot be written and synced.
    pub fn mark_result_unconfirmed(&self) -> io::Result<()> {
        let path = self.dir.join(RESTART_RESULT_FILE);
        File::create(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| with_path(e, "create", &path))?;
        sync_dir(&self.dir);
        self.result_unconfirmed.store(true, Ordering::Release);
        Ok(())
    }

    /// A `welcome` has put the result above the server's ack: from now on
    /// an ack covering the result means the server has it. Removed on disk
    /// before the result can be sent.
    pub(crate) fn confirm_result(&self) {
        let path = self.dir.join(RESTART_RESULT_FILE);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::error!(
                "job {}: {} not removed ({e}); after another restart its result may be \
                 sent twice",
                self.job_id,
                path.display()
            ),
        }
        self.result_unconfirmed.store(false, Ordering::Release);
    }

    /// Append the result again under `new_seq` (which must be above the
    /// last seq). Used when the server acknowledged more than the journal
    /// kept (a power cut ate the newest events after they were sent): the
    /// result must reach the server under a seq it has not stored. Only for
    /// a finished job, so no writer is appending at the same time.
    ///
    /// # Errors
    /// The segment cannot be read or written, or its last line is not a
    /// result.
    pub(crate) fn renumber_result(&self, new_seq: u64) -> io::Result<()> {
        let first = self
            .last_segment()
            .ok_or_else(|| io::Error::other("no segment"))?;
        let path = self.segment_path(first);
        let mut reader = open_segment_at(&path, 0).map_err(|e| with_path(e, "open", &path))?;
        let mut line = Vec::new();
        let mut last_result: Option<Vec<u8>> = None;
        while let LineRead::Line | LineRead::TooLong =
            read_line(&mut reader, &mut line).map_err(|e| with_path(e, "read", &path))?
        {
            if let Some(r) = record::decode(&line) {
                last_result = r.is_result.then(|| r.frame.to_vec());
            }
        }
        let frame = last_result.ok_or_else(|| {
            io::Error::other(format!(
                "{}: the last frame is not a result",
                path.display()
            ))
        })?;
        let mut value: serde_json::Value = serde_json::from_slice(&frame)
            .map_err(|e| io::Error::other(format!("{}: result frame: {e}", path.display())))?;
        value["seq"] = serde_json::Value::from(new_seq);
        let mut out = Vec::new();
        record::encode(&mut out, new_seq, true, value.to_string().as_bytes());
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| with_path(e, "open", &path))?;
        io::Write::write_all(&mut file, &out).map_err(|e| with_path(e, "append to", &path))?;
        file.sync_data()
            .map_err(|e| with_path(e, "fdatasync", &path))?;
        self.written.store(new_seq, Ordering::Release);
        Ok(())
    }

    /// Note a process group the job started (for restart recovery).
    pub fn record_pgid(&self, pgid: i32) {
        let mut pgids = self.pgids.lock().unwrap_or_else(|p| p.into_inner());
        if !pgids.contains(&pgid) {
            pgids.push(pgid);
            self.save_pgids(&pgids);
        }
    }

    /// Note that a process group has ended.
    pub fn forget_pgid(&self, pgid: i32) {
        let mut pgids = self.pgids.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = pgids.iter().position(|&p| p == pgid) {
            pgids.remove(i);
            self.save_pgids(&pgids);
        }
    }

    /// The process groups recorded and not forgotten.
    pub fn pgids(&self) -> Vec<i32> {
        self.pgids.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rewrite the pgids file atomically (temp file, fsync, rename): a
    /// restart must find either the old or the new list, never half. Rare
    /// (a few per job), so the fsyncs do not matter.
    fn save_pgids(&self, pgids: &[i32]) {
        let path = self.dir.join(PGIDS_FILE);
        let tmp = self.dir.join("pgids.tmp");
        let text: String = pgids.iter().map(|p| format!("{p}\n")).collect();
        let result = (|| {
            fs::write(&tmp, text.as_bytes())?;
            File::open(&tmp)?.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        match result {
            Ok(()) => sync_dir(&self.dir),
            Err(e) => log::error!(
                "job {}: {}: process groups not saved ({e}); a restart may not find them",
                self.job_id,
                path.display()
            ),
        }
    }
}

/// `<dir>/<first:020>.jsonl`.
fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}{SEGMENT_EXT}"))
}

/// The first seqs of a job's segments, sorted.
fn list_segments(dir: &Path) -> io::Result<VecDeque<u64>> {
    let mut firsts = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| with_path(e, "list the journal", dir))? {
        let entry = entry.map_err(|e| with_path(e, "list the journal", dir))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(SEGMENT_EXT))
            .filter(|n| n.len() == 20)
            .and_then(|n| n.parse::<u64>().ok())
            .filter(|&f| f > 0)
        else {
            continue;
        };
        // Only a regular file is a segment: a directory or a symlink named
        // like one was not written by the runner and cannot be read as one.
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            log::warn!(
                "{}: not a regular file, so not a journal segment; ignored",
                entry.path().display()
            );
            continue;
        }
        firsts.push(first);
    }
    firsts.sort_unstable();
    Ok(firsts.into())
}

/// What a scan of one segment found.
struct Scan {
    /// The last good record's seq and whether it is the result.
    last: Option<(u64, bool)>,
    /// Bytes up to the end of the last good record.
    good_len: u64,
    /// Damaged bytes before the last good record (kept: the reader skips
    /// and reports them).
    damaged_bytes: u64,
    /// The file's length.
    file_len: u64,
}

/// Find the last good record of a segment. A damaged line does not end the
/// scan: intact records after it still count.
fn scan_segment(path: &Path, first: u64) -> io::Result<Scan> {
    let mut reader =
        open_segment_at(path, 0).map_err(|e| with_path(e, "open the segment", path))?;
    let file_len = reader
        .get_ref()
        .metadata()
        .map_err(|e| with_path(e, "read the segment", path))?
        .len();
    let mut line = Vec::new();
    let mut offset = 0;
    let mut good_len = 0;
    let mut intact = 0;
    let mut last: Option<(u64, bool)> = None;
    while let LineRead::Line | LineRead::TooLong =
        read_line(&mut reader, &mut line).map_err(|e| with_path(e, "read", path))?
    {
        offset += line.len() as u64;
        let floor = last.map_or(first, |(s, _)| s + 1);
        if let Some(r) = record::decode(&line).filter(|r| r.seq >= floor) {
            last = Some((r.seq, r.is_result));
            good_len = offset;
            intact += line.len() as u64;
        }
    }
    let damaged_bytes = good_len.saturating_sub(intact);
    Ok(Scan {
        last,
        good_len,
        damaged_bytes,
        file_len,
    })
}

/// How a [`read_line`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineRead {
    /// A whole line, `\n` included, is in the buffer.
    Line,
    /// Nothing left.
    Eof,
    /// Bytes without a final `\n` (a torn write, or one in progress).
    Partial,
    /// More than [`MAX_RECORD_BYTES`] without a `\n`: not a record.
    TooLong,
}

/// Read one line into `line` (cleared first), never more than
/// [`MAX_RECORD_BYTES`], so a corrupt file cannot make memory grow.
pub(crate) fn read_line<R: BufRead>(reader: &mut R, line: &mut Vec<u8>) -> io::Result<LineRead> {
    line.clear();
    let n = reader
        .take(MAX_RECORD_BYTES as u64 + 1)
        .read_until(b'\n', line)?;
    Ok(if n == 0 {
        LineRead::Eof
    } else if line.last() == Some(&b'\n') {
        LineRead::Line
    } else if line.len() > MAX_RECORD_BYTES {
        LineRead::TooLong
    } else {
        LineRead::Partial
    })
}

/// Open a segment for reading at byte `offset`.
///
/// # Errors
/// Besides I/O errors: the path is not a regular file (a symlink, a
/// directory or a device named like a segment, which the runner never
/// writes; `/dev/zero` would never end).
pub(crate) fn open_segment_at(path: &Path, offset: u64) -> io::Result<BufReader<File>> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a regular file, so not a journal segment",
        ));
    }
    if offset > 0 {
        file.seek(SeekFrom::Start(offset))?;
    }
    // 32 KiB: a few hundred typical frames per read(2), and little memory
    // per job being delivered.
    Ok(BufReader::with_capacity(32 * 1024, file))
}

fn read_pgids(path: &Path) -> Vec<i32> {
    match fs::read_to_string(path) {
        Ok(text) => text
            .lines()
            .filter_map(|l| l.trim().parse::<i32>().ok())
            .filter(|&p| p > 1)
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            log::warn!("{}: not read: {e}", path.display());
            Vec::new()
        }
    }
}

/// fsync a directory so a created, renamed or removed entry survives a
/// power cut (fsync(2): syncing a file does not sync its directory entry).
pub(crate) fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("{}: directory fsync failed: {e}", dir.display());
    }
}

/// Add the action and the path to an I/O error, so it says what to fix.
pub(crate) fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_line_caps_length() {
        let long = vec![b'x'; MAX_RECORD_BYTES + 10];
        let mut r = BufReader::new(&long[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut line).expect("read"),
            LineRead::TooLong
        ));
        assert!(line.len() <= MAX_RECORD_BYTES + 1);
        let mut r = BufReader::new(&b"a\nb"[..]);
        assert!(matches!(
            read_line(&mut r, &mut line).expect("read"),
            LineRead::Line
        ));
        assert!(matches!(
            read_line(&mut r, &mut line).expect("read"),
            LineRead::Partial
        ));
        assert!(matches!(
            read_line(&mut r, &mut line).expect("read"),
            LineRead::Eof
        ));
    }
}
