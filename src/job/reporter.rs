//! The one door every job event goes through on its way out.
//!
//! [`Reporter`] numbers events (`seq` from 1, result last), stamps them,
//! splits long log text so no frame exceeds 1 MiB, serialises the frame and
//! passes the *serialised text* through the redactor before any
//! [`EventSink`] sees it. Redacting the final text, not each field, makes
//! this the single choke point: nothing a job says can skip it.

use crate::job::event::{Event, JobResult, LogStream, Status};
use crate::job::spec::JobId;
use crate::redact::Redactor;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Log text is cut into pieces of at most this many bytes. JSON escaping
/// can grow text up to 6× (`\u0001`), so 128 KiB keeps a frame under 1 MiB.
pub const MAX_LOG_CHUNK: usize = 128 * 1024;

/// Where a job's frames go: the journal and the link in the daemon, the
/// terminal in `exec`.
pub trait EventSink: Send {
    /// Deliver event `seq`. `frame` is the redacted `job.event` JSON text.
    fn event(&mut self, seq: u64, event: &Event, frame: &str);
    /// Deliver the final result. `frame` is the redacted `job.result` JSON.
    fn result(&mut self, seq: u64, result: &JobResult, frame: &str);
    /// Why the last frame delivered could not be stored (a full disk), if
    /// it could not. The reporter then stops numbering events and ends the
    /// job `failed` with this reason under the seq that failed, so the
    /// control plane never sees a gap. Sinks that cannot fail keep the
    /// default.
    fn take_write_error(&mut self) -> Option<String> {
        None
    }
}

/// Numbers, stamps, redacts and delivers one job's events.
pub struct Reporter {
    job_id: JobId,
    next_seq: u64,
    sink: Box<dyn EventSink>,
    redactor: Arc<Redactor>,
    started: Instant,
    finished: bool,
    /// The sink could not store an event: why. Later events are dropped
    /// and the result is `failed` with this reason.
    write_error: Option<String>,
    /// Events dropped after the write error.
    dropped: u64,
}

#[derive(Serialize)]
struct EventFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    job_id: &'a JobId,
    seq: u64,
    ts: String,
    event: &'a Event,
}

#[derive(Serialize)]
struct ResultFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    job_id: &'a JobId,
    seq: u64,
    #[serde(flatten)]
    result: &'a JobResult,
}

impl Reporter {
    /// A reporter whose first event is `seq` 1.
    pub fn new(job_id: JobId, sink: Box<dyn EventSink>, redactor: Arc<Redactor>) -> Reporter {
        Reporter::resume(job_id, 1, sink, redactor)
    }

    /// A reporter that continues a journal at `next_seq` (restart recovery).
    pub fn resume(
        job_id: JobId,
        next_seq: u64,
        sink: Box<dyn EventSink>,
        redactor: Arc<Redactor>,
    ) -> Reporter {
        Reporter {
            job_id,
            next_seq,
            sink,
            redactor,
            started: Instant::now(),
            finished: false,
            write_error: None,
            dropped: 0,
        }
    }

    /// The job this reporter speaks for.
    pub fn job_id(&self) -> &JobId {
        &self.job_id
    }

    /// The redactor in use (process output is redacted with it as it streams).
    pub fn redactor(&self) -> &Arc<Redactor> {
        &self.redactor
    }

    /// Replace the redactor, e.g. once the job's own secrets are known.
    pub fn set_redactor(&mut self, redactor: Arc<Redactor>) {
        self.redactor = redactor;
    }

    /// Time since the reporter was made (the job's wall time).
    pub fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// The last seq handed out (0 before the first event).
    pub fn last_seq(&self) -> u64 {
        self.next_seq - 1
    }

    /// Whether the result was sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Why events can no longer be stored (a full disk), once one could
    /// not be: the job's result will be `failed` with it, so a job may as
    /// well stop at its next step.
    pub fn write_error(&self) -> Option<&str> {
        self.write_error.as_deref()
    }

    /// A `status` event.
    pub fn status(&mut self, status: Status, detail: impl Into<Option<String>>) {
        self.emit(Event::Status {
            status,
            detail: detail.into(),
        });
    }

    /// A `log` event; long text is split into several events.
    pub fn log(&mut self, stream: LogStream, text: &str) {
        for piece in split_text(text, MAX_LOG_CHUNK) {
            self.emit(Event::Log {
                stream,
                text: piece.to_string(),
            });
        }
    }

    /// The `chat.reply` events answering message `message_id`: `text` in
    /// pieces of at most [`MAX_LOG_CHUNK`], the last one `done` when
    /// `done` is asked (a reply with more to follow says `done: false`).
    pub fn chat_reply(&mut self, message_id: &str, text: &str, done: bool) {
        let pieces = split_text(text, MAX_LOG_CHUNK);
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.into_iter().enumerate() {
            self.emit(Event::ChatReply {
                message_id: message_id.to_string(),
                text: piece.to_string(),
                done: done && i == last,
            });
        }
    }

    /// Any event. `log` text longer than [`MAX_LOG_CHUNK`] is split; other
    /// events carrying huge text (a tool result) are truncated with a note.
    pub fn emit(&mut self, event: Event) {
        if self.finished {
            log::warn!("job {}: event after the result dropped", self.job_id);
            return;
        }
        if self.write_error.is_some() {
            self.dropped += 1;
            return;
        }
        let event = match event {
            Event::Log { stream, text } if text.len() > MAX_LOG_CHUNK => {
                return self.log(stream, &text);
            }
            Event::Agent(mut a) => {
                if let Some(t) = &mut a.text {
                    truncate_with_note(t, MAX_LOG_CHUNK);
                }
                Event::Agent(a)
            }
            other => other,
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let frame = EventFrame {
            kind: "job.event",
            job_id: &self.job_id,
            seq,
            ts: rfc3339_now(),
            event: &event,
        };
        let text = match serde_json::to_string(&frame) {
            Ok(t) => t,
            Err(e) => {
                log::error!("job {}: event {seq} not serialisable: {e}", self.job_id);
                return;
            }
        };
        let text = redacted(&self.redactor, text);
        self.sink.event(seq, &event, &text);
        if let Some(e) = self.sink.take_write_error() {
            // The seq was not stored: the result takes it, so no gap.
            log::error!(
                "job {}: event {seq} not stored ({e}); the job ends failed and its later events are dropped",
                self.job_id
            );
            self.next_seq = seq;
            self.write_error = Some(e);
        }
    }

    /// The result: exactly once, last. `duration_ms` is filled in when 0.
    pub fn finish(&mut self, mut result: JobResult) {
        if self.finished {
            log::error!("job {}: a second result was dropped", self.job_id);
            return;
        }
        if result.duration_ms == 0 {
            result.duration_ms = self.started.elapsed().as_millis() as u64;
        }
        if let Some(e) = &self.write_error {
            result = write_error_result(e, self.dropped, result);
        }
        truncate_with_note(&mut result.summary, MAX_LOG_CHUNK);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.finished = true;
        let frame = ResultFrame {
            kind: "job.result",
            job_id: &self.job_id,
            seq,
            result: &result,
        };
        let text = match serde_json::to_string(&frame) {
            Ok(t) => t,
            Err(e) => {
                log::error!("job {}: result not serialisable: {e}", self.job_id);
                format!(
                    r#"{{"type":"job.result","job_id":"{}","seq":{seq},"status":"failed","summary":"result not serialisable","error":"result not serialisable"}}"#,
                    self.job_id
                )
            }
        };
        let text = redacted(&self.redactor, text);
        self.sink.result(seq, &result, &text);
    }
}

/// The result of a job whose events could not all be stored: `failed`
/// with the reason, keeping what says where the work went (branch,
/// commit) and what it cost; the lists are left out, so the result stays
/// small enough for the space the journal keeps for it.
fn write_error_result(error: &str, dropped: u64, ended: JobResult) -> JobResult {
    let status = serde_json::to_value(ended.status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let error = format!(
        "{error}; {dropped} later event(s) were not recorded and the job's own result \
         ({status}: {}) is replaced by this one",
        ended.summary.chars().take(200).collect::<String>()
    );
    JobResult {
        branch: ended.branch,
        commit_sha: ended.commit_sha,
        pr_url: ended.pr_url,
        pr_number: ended.pr_number,
        agent: ended.agent,
        model: ended.model,
        usage: ended.usage,
        duration_ms: ended.duration_ms,
        local_copy: ended.local_copy,
        ..JobResult::failed(error)
    }
}

/// `text` redacted, reusing its allocation when there is nothing to mask
/// (the common case, on the per-line hot path).
fn redacted(redactor: &Redactor, text: String) -> String {
    let masked = match redactor.redact(&text) {
        std::borrow::Cow::Owned(masked) => Some(masked),
        std::borrow::Cow::Borrowed(_) => None,
    };
    masked.unwrap_or(text)
}

/// Split `text` into pieces of at most `max` bytes, on char boundaries.
pub fn split_text(text: &str, max: usize) -> Vec<&str> {
    if text.len() <= max {
        return vec![text];
    }
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while end < rest.len() && !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            // max smaller than one char: take the whole char.
            end = rest
                .chars()
                .next()
                .map(char::len_utf8)
                .unwrap_or(rest.len());
        }
        out.push(&rest[..end]);
        rest = &rest[end..];
    }
    out
}

fn truncate_with_note(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let total = text.len();
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(&format!("… [truncated: {total} bytes in all]"));
}

/// Now as RFC 3339 UTC with milliseconds: `2026-11-24T10:00:00.123Z`.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_millis())
}

/// Format unix seconds + millis as RFC 3339 UTC.
pub fn rfc3339(secs: i64, millis: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// A sink that keeps everything in memory (tests and tools).
#[derive(Clone, Default)]
pub struct MemorySink {
    /// Every frame delivered, in order.
    pub frames: Arc<std::sync::Mutex<Vec<String>>>,
}

impl EventSink for MemorySink {
    fn event(&mut self, _seq: u64, _event: &Event, frame: &str) {
        if let Ok(mut f) = self.frames.lock() {
            f.push(frame.to_string());
        }
    }
    fn result(&mut self, _seq: u64, _result: &JobResult, frame: &str) {
        if let Ok(mut f) = self.frames.lock() {
            f.push(frame.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_514_400, 123), "2026-11-24T10:00:00.123Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
    }

    #[test]
    fn seq_grows_by_one_and_result_is_last() {
        let sink = MemorySink::default();
        let mut r = Reporter::new(
            JobId::parse("j1").expect("id"),
            Box::new(sink.clone()),
            Arc::new(Redactor::new(vec!["s3cr3t-value".to_string()])),
        );
        r.status(Status::Preparing, None);
        r.log(LogStream::Runner, "token s3cr3t-value here\n");
        r.finish(JobResult::failed("x"));
        r.log(LogStream::Runner, "late");
        let frames = sink.frames.lock().expect("lock").clone();
        assert_eq!(frames.len(), 3);
        let seqs: Vec<u64> = frames
            .iter()
            .map(|f| {
                serde_json::from_str::<serde_json::Value>(f).expect("json")["seq"]
                    .as_u64()
                    .expect("seq")
            })
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert!(frames[1].contains("[REDACTED]") && !frames[1].contains("s3cr3t"));
        assert!(frames[2].contains(r#""type":"job.result""#));
    }

    /// Stores frames (in a [`MemorySink`]) until event `fail_at`, then
    /// cannot store any event.
    struct FullDiskSink {
        stored: MemorySink,
        fail_at: u64,
        error: Option<String>,
    }

    impl EventSink for FullDiskSink {
        fn event(&mut self, seq: u64, event: &Event, frame: &str) {
            if seq >= self.fail_at {
                self.error = Some("the disk is full".into());
            } else {
                self.stored.event(seq, event, frame);
            }
        }
        fn result(&mut self, seq: u64, result: &JobResult, frame: &str) {
            self.stored.result(seq, result, frame);
        }
        fn take_write_error(&mut self) -> Option<String> {
            self.error.take()
        }
    }

    #[test]
    fn an_event_not_stored_fails_the_job_under_its_seq() {
        let stored = MemorySink::default();
        let sink = FullDiskSink {
            stored: stored.clone(),
            fail_at: 3,
            error: None,
        };
        let mut r = Reporter::new(
            JobId::parse("j1").expect("id"),
            Box::new(sink),
            Arc::new(Redactor::new(Vec::new())),
        );
        for _ in 0..5 {
            r.log(LogStream::Agent, "line");
        }
        assert_eq!(r.write_error(), Some("the disk is full"));
        let mut done = JobResult::failed("");
        done.status = crate::job::event::ResultStatus::Completed;
        r.finish(done);
        let frames: Vec<serde_json::Value> = stored
            .frames
            .lock()
            .expect("lock")
            .iter()
            .map(|f| serde_json::from_str(f).expect("json"))
            .collect();
        let seqs: Vec<u64> = frames
            .iter()
            .map(|f| f["seq"].as_u64().expect("seq"))
            .collect();
        assert_eq!(seqs, vec![1, 2, 3], "the result takes the seq that failed");
        assert_eq!(frames[2]["status"], "failed");
        assert!(frames[2]["error"]
            .as_str()
            .expect("error")
            .starts_with("the disk is full; 2 later event(s)"));
    }

    #[test]
    fn long_log_is_split_under_one_mib() {
        let sink = MemorySink::default();
        let mut r = Reporter::new(
            JobId::parse("j1").expect("id"),
            Box::new(sink.clone()),
            Arc::new(Redactor::new(Vec::new())),
        );
        let text = "\u{1}".repeat(3 * MAX_LOG_CHUNK);
        r.log(LogStream::Agent, &text);
        let frames = sink.frames.lock().expect("lock").clone();
        assert_eq!(frames.len(), 3);
        assert!(frames.iter().all(|f| f.len() < 1 << 20));
    }

    #[test]
    fn a_long_chat_reply_goes_in_pieces_and_only_the_last_is_done() {
        let sink = MemorySink::default();
        let mut r = Reporter::new(
            JobId::parse("c1").expect("id"),
            Box::new(sink.clone()),
            Arc::new(Redactor::new(Vec::new())),
        );
        let text = "an answer line\n".repeat(MAX_LOG_CHUNK / 5);
        r.chat_reply("m-1", &text, true);
        let frames = sink.frames.lock().expect("lock").clone();
        let events: Vec<serde_json::Value> = frames
            .iter()
            .map(|f| serde_json::from_str::<serde_json::Value>(f).expect("json")["event"].clone())
            .collect();
        assert!(events.len() > 1, "one piece for {} bytes", text.len());
        assert!(events
            .iter()
            .all(|e| e["kind"] == "chat.reply" && e["message_id"] == "m-1"));
        let done: Vec<bool> = events.iter().map(|e| e["done"] == true).collect();
        assert_eq!(done.iter().filter(|d| **d).count(), 1, "{done:?}");
        assert_eq!(done.last(), Some(&true));
        let joined: String = events.iter().filter_map(|e| e["text"].as_str()).collect();
        assert_eq!(joined, text, "the pieces are the whole reply");
    }
}
