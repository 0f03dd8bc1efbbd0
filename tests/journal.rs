//! The journal end to end on real files: a real `Reporter` writes through a
//! `JournalSink`, the `Outbox` reads back, acks prune, `recover` rebuilds
//! after a simulated restart.

use ados_test_support::fixtures::files_containing;
use ados_work_runner::job::event::{JobResult, LogStream, Status};
use ados_work_runner::job::{JobId, Reporter};
use ados_work_runner::journal::store::MAX_FRAME_BYTES;
use ados_work_runner::journal::{JobStream, Journal, JournalSink};
use ados_work_runner::link::Outbox;
use ados_work_runner::link::Waker;
use ados_work_runner::redact::Redactor;
use serde_json::Value;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A directory removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ados-journal-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn id(s: &str) -> JobId {
    JobId::parse(s).unwrap()
}

fn reporter(stream: &Arc<JobStream>, waker: Waker) -> Reporter {
    Reporter::resume(
        stream.job_id().clone(),
        stream.next_seq(),
        Box::new(JournalSink::new(stream.clone(), waker)),
        Arc::new(Redactor::empty()),
    )
}

fn parse(frame: &str) -> Value {
    serde_json::from_str(frame).unwrap()
}

/// (job_id, seq, type) of every frame until `None`.
fn drain(outbox: &mut Outbox) -> Vec<(String, u64, String)> {
    std::iter::from_fn(|| outbox.next_frame())
        .map(|f| {
            let v = parse(&f);
            (
                v["job_id"].as_str().unwrap().to_string(),
                v["seq"].as_u64().unwrap(),
                v["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn seqs_of(frames: &[(String, u64, String)], job: &str) -> Vec<u64> {
    frames
        .iter()
        .filter(|(j, _, _)| j == job)
        .map(|(_, s, _)| *s)
        .collect()
}

fn segments(dir: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".jsonl").map(|n| n.parse().unwrap())
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn reporter_frames_come_back_in_order() {
    let tmp = TempDir::new("order");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("j-1")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    r.status(Status::Preparing, None);
    for i in 0..1000 {
        r.log(LogStream::Agent, &format!("line {i}\n"));
    }
    r.finish(JobResult::failed("boom"));

    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    let held = outbox.held_jobs();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].job_id.as_str(), held[0].state, held[0].last_seq),
        ("j-1", "finished", 1002)
    );
    assert_eq!(outbox.unacked(), 1002);

    let frames: Vec<String> = std::iter::from_fn(|| outbox.next_frame()).collect();
    assert_eq!(frames.len(), 1002);
    for (i, f) in frames.iter().enumerate() {
        assert_eq!(parse(f)["seq"], (i + 1) as u64);
    }
    assert_eq!(parse(&frames[5])["event"]["text"], "line 4\n");
    assert_eq!(parse(&frames[1001])["type"], "job.result");
    assert_eq!(parse(&frames[1001])["error"], "boom");
    assert!(outbox.next_frame().is_none());
}

#[test]
fn reader_sees_each_frame_as_soon_as_written() {
    let tmp = TempDir::new("live");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("live")).unwrap();
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    let mut r = reporter(
        &stream,
        Waker::new(move || {
            w.fetch_add(1, Ordering::Relaxed);
        }),
    );
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert!(outbox.next_frame().is_none());
    for i in 1..=100u64 {
        r.log(LogStream::Runner, &format!("{i}"));
        assert_eq!(wakes.load(Ordering::Relaxed), i as usize);
        assert_eq!(stream.last_written(), i);
        let f = outbox.next_frame().expect("frame visible at once");
        assert_eq!(parse(&f)["seq"], i);
        assert!(outbox.next_frame().is_none());
    }
    assert_eq!(outbox.held_jobs()[0].state, "running");
    r.finish(JobResult::failed("x"));
    assert_eq!(parse(&outbox.next_frame().unwrap())["type"], "job.result");
    assert!(stream.is_finished());
}

#[test]
fn welcome_resends_after_each_ack_and_a_missing_job_from_one() {
    let tmp = TempDir::new("welcome");
    let journal = Journal::open(&tmp.0).unwrap();
    let mut outbox = Outbox::new();
    for job in ["a", "b"] {
        let s = journal.create(&id(job)).unwrap();
        let mut r = reporter(&s, Waker::noop());
        for _ in 0..10 {
            r.log(LogStream::Agent, job);
        }
        outbox.track(s);
    }
    assert_eq!(drain(&mut outbox).len(), 20);
    outbox.on_disconnect();
    assert!(outbox.next_frame().is_none(), "nothing new to send");
    outbox.on_welcome(&[("a".into(), 4), ("zzz".into(), 3)]);
    let frames = drain(&mut outbox);
    assert_eq!(seqs_of(&frames, "a"), (5..=10).collect::<Vec<_>>());
    assert_eq!(seqs_of(&frames, "b"), (1..=10).collect::<Vec<_>>());
    assert_eq!(outbox.unacked(), 6 + 10);
    // Another reconnect with nothing new acknowledged: the same again.
    outbox.on_welcome(&[("a".into(), 10), ("b".into(), 9)]);
    let frames = drain(&mut outbox);
    assert_eq!(frames, vec![("b".to_string(), 10, "job.event".to_string())]);
    assert!(outbox.take_released().is_empty(), "running jobs stay held");
}

#[test]
fn acks_prune_whole_segments_and_release_the_job_after_its_result() {
    let tmp = TempDir::new("prune");
    // ~2 frames a segment.
    let journal = Journal::with_segment_bytes(&tmp.0, 300).unwrap();
    let stream = journal.create(&id("p")).unwrap();
    let dir = stream.dir().to_path_buf();
    let mut r = reporter(&stream, Waker::noop());
    for i in 0..20 {
        r.log(LogStream::Git, &format!("event {i}"));
    }
    r.finish(JobResult::failed("done"));
    let before = segments(&dir);
    assert!(before.len() >= 5, "segments rolled: {before:?}");

    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(drain(&mut outbox).len(), 21);

    assert_eq!(outbox.on_ack("p", 10), None);
    let after = segments(&dir);
    // Every segment left holds a seq above 10; every one removed held
    // only seqs at or below 10.
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert!(
        after[0] <= 11 && after.get(1).is_none_or(|&s| s > 11),
        "{after:?}"
    );
    for gone in before.iter().filter(|s| !after.contains(s)) {
        let next = before.iter().find(|&&s| s > *gone).unwrap();
        assert!(*next <= 11, "segment {gone} held seqs above the ack");
    }
    assert_eq!(outbox.unacked(), 11);

    // After pruning, a reconnect still resends everything after the ack.
    outbox.on_welcome(&[("p".into(), 10)]);
    assert_eq!(
        seqs_of(&drain(&mut outbox), "p"),
        (11..=21).collect::<Vec<_>>()
    );

    assert_eq!(outbox.on_ack("unknown-job", 5), None);
    assert_eq!(outbox.on_ack("p", 20), None, "result not yet acked");
    assert!(dir.exists());
    assert_eq!(outbox.on_ack("p", 21), Some(id("p")));
    assert!(!dir.exists(), "journal deleted once the result is acked");
    assert!(outbox.held_jobs().is_empty());
    assert_eq!(outbox.unacked(), 0);
    assert!(outbox.next_frame().is_none());
    assert_eq!(outbox.on_ack("p", 21), None, "released for good");
}

#[test]
fn welcome_that_acks_the_result_releases_the_job() {
    let tmp = TempDir::new("welcome-release");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("done")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    r.log(LogStream::Runner, "x");
    r.finish(JobResult::failed("x"));
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    outbox.on_welcome(&[("done".into(), 2)]);
    assert_eq!(outbox.take_released(), vec![id("done")]);
    assert!(outbox.take_released().is_empty());
    assert!(!stream.dir().exists());
    assert!(outbox.next_frame().is_none());
    assert!(outbox.held_jobs().is_empty());
}

#[test]
fn recover_after_a_restart_and_finish_the_job() {
    let tmp = TempDir::new("recover");
    {
        let journal = Journal::with_segment_bytes(&tmp.0, 400).unwrap();
        let stream = journal.create(&id("run")).unwrap();
        stream.record_pgid(100);
        stream.record_pgid(200);
        stream.forget_pgid(100);
        let mut r = reporter(&stream, Waker::noop());
        for i in 0..9 {
            r.log(LogStream::Agent, &format!("e{i}"));
        }
        let done = journal.create(&id("done")).unwrap();
        let mut r = reporter(&done, Waker::noop());
        r.log(LogStream::Agent, "x");
        r.finish(JobResult::failed("x"));
        // Everything dropped here: the runner "dies".
    }
    let journal = Journal::with_segment_bytes(&tmp.0, 400).unwrap();
    let jobs = journal.recover().unwrap();
    assert_eq!(jobs.len(), 2);
    let done = &jobs[0];
    assert_eq!(done.stream.job_id().as_str(), "done");
    assert!(done.finished && done.stream.is_finished());
    assert_eq!(done.stream.last_written(), 2);
    let run = &jobs[1];
    assert_eq!(run.stream.job_id().as_str(), "run");
    assert!(!run.finished);
    assert_eq!(run.stream.last_written(), 9);
    assert_eq!(run.pgids, vec![200]);

    // The daemon closes the interrupted job with a failed result.
    let mut r = Reporter::resume(
        run.stream.job_id().clone(),
        run.stream.next_seq(),
        Box::new(run.stream.sink(Waker::noop())),
        Arc::new(Redactor::empty()),
    );
    r.finish(JobResult::failed(
        "the runner restarted while the job was running",
    ));
    assert!(run.stream.is_finished());

    let mut outbox = Outbox::new();
    for j in &jobs {
        outbox.track(j.stream.clone());
    }
    outbox.on_welcome(&[]);
    let frames = drain(&mut outbox);
    assert_eq!(seqs_of(&frames, "run"), (1..=10).collect::<Vec<_>>());
    assert_eq!(frames.iter().filter(|f| f.2 == "job.result").count(), 2);

    // And a second restart sees the result.
    let again = journal.recover().unwrap();
    assert!(again[1].finished);
    assert_eq!(again[1].stream.last_written(), 10);
}

#[test]
fn a_torn_last_line_is_ignored_by_the_reader_and_cut_by_recovery() {
    let tmp = TempDir::new("torn");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("t")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    for _ in 0..5 {
        r.log(LogStream::Agent, "ok");
    }
    let seg = stream.dir().join(format!("{:020}.jsonl", 1));
    let good_len = fs::metadata(&seg).unwrap().len();
    // A power cut in the middle of frame 6.
    fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(br#"6	e	{"type":"job.event","job_id":"t","se"#)
        .unwrap();

    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(seqs_of(&drain(&mut outbox), "t"), vec![1, 2, 3, 4, 5]);
    drop((r, outbox, stream));

    let jobs = journal.recover().unwrap();
    assert_eq!(jobs[0].stream.last_written(), 5);
    assert!(!jobs[0].finished);
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len, "torn tail cut");
    let mut r = reporter(&jobs[0].stream, Waker::noop());
    r.finish(JobResult::failed("restarted"));
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    let frames = drain(&mut outbox);
    assert_eq!(seqs_of(&frames, "t"), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(frames[5].2, "job.result");
}

#[test]
fn a_zero_filled_tail_is_cut_by_recovery() {
    let tmp = TempDir::new("zeros");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("z")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    r.log(LogStream::Agent, "a");
    r.log(LogStream::Agent, "b");
    let seg = stream.dir().join(format!("{:020}.jsonl", 1));
    fs::OpenOptions::new()
        .append(true)
        .open(&seg)
        .unwrap()
        .write_all(&[0u8; 4096])
        .unwrap();
    drop((r, stream));
    let jobs = journal.recover().unwrap();
    assert_eq!(jobs[0].stream.last_written(), 2);
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    assert_eq!(seqs_of(&drain(&mut outbox), "z"), vec![1, 2]);
}

#[test]
fn jobs_take_turns() {
    let tmp = TempDir::new("turns");
    let journal = Journal::open(&tmp.0).unwrap();
    let mut outbox = Outbox::new();
    for job in ["a", "b"] {
        let s = journal.create(&id(job)).unwrap();
        let mut r = reporter(&s, Waker::noop());
        for _ in 0..200 {
            r.log(LogStream::Agent, job);
        }
        outbox.track(s);
    }
    let frames = drain(&mut outbox);
    assert_eq!(frames.len(), 400);
    let order: Vec<&str> = frames.iter().map(|f| f.0.as_str()).collect();
    // Runs of at most 64 frames from one job while both have frames.
    let mut runs = Vec::new();
    for job in &order {
        match runs.last_mut() {
            Some((j, n)) if j == job => *n += 1,
            _ => runs.push((*job, 1)),
        }
    }
    assert!(runs.len() >= 6, "{runs:?}");
    assert!(runs.iter().all(|(_, n)| *n <= 64), "{runs:?}");
    assert_eq!(seqs_of(&frames, "a"), (1..=200).collect::<Vec<_>>());
    assert_eq!(seqs_of(&frames, "b"), (1..=200).collect::<Vec<_>>());
}

#[test]
fn a_one_mib_frame_goes_through_and_a_bigger_one_is_replaced() {
    let tmp = TempDir::new("big");
    let journal = Journal::with_segment_bytes(&tmp.0, 1024 * 1024).unwrap();
    let stream = journal.create(&id("big")).unwrap();
    let mut sink = JournalSink::new(stream.clone(), Waker::noop());
    use ados_work_runner::job::event::Event;
    use ados_work_runner::job::EventSink;
    let head = r#"{"type":"job.event","job_id":"big","seq":1,"event":{"kind":"log","stream":"agent","text":""#;
    let tail = r#""}}"#;
    let exact = format!(
        "{head}{}{tail}",
        "x".repeat(MAX_FRAME_BYTES - head.len() - tail.len())
    );
    assert_eq!(exact.len(), MAX_FRAME_BYTES);
    let ev = Event::Log {
        stream: LogStream::Agent,
        text: String::new(),
    };
    sink.event(1, &ev, &exact);
    let over = format!("{exact} ");
    sink.event(2, &ev, &over);
    sink.event(3, &ev, r#"{"type":"job.event","seq":3}"#);

    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(outbox.next_frame().unwrap(), exact);
    let stand_in = outbox.next_frame().unwrap();
    assert!(stand_in.len() < 1024, "replaced by a short frame");
    let v = parse(&stand_in);
    assert_eq!(v["seq"], 2);
    assert!(v["event"]["text"]
        .as_str()
        .unwrap()
        .contains("over the 1 MiB limit"));
    assert_eq!(parse(&outbox.next_frame().unwrap())["seq"], 3);
    assert!(outbox.next_frame().is_none());

    // A seq that does not grow is refused, not written.
    sink.event(3, &ev, r#"{"type":"job.event","seq":3}"#);
    assert_eq!(stream.last_written(), 3);
    assert_eq!(stream.write_errors(), 1);
}

#[test]
fn long_output_is_split_into_frames_under_one_mib() {
    let tmp = TempDir::new("split");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("s")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    // Control characters escape to 6 bytes each: the worst case.
    let text: String = "\u{1}é".repeat(600 * 1024);
    r.log(LogStream::Agent, &text);
    let mut outbox = Outbox::new();
    outbox.track(stream);
    let mut joined = String::new();
    let mut n = 0;
    while let Some(f) = outbox.next_frame() {
        assert!(f.len() <= MAX_FRAME_BYTES, "{}", f.len());
        joined.push_str(parse(&f)["event"]["text"].as_str().unwrap());
        n += 1;
    }
    assert!(n > 1);
    assert_eq!(joined, text);
}

#[test]
fn create_starts_fresh_over_an_old_journal() {
    let tmp = TempDir::new("fresh");
    let journal = Journal::open(&tmp.0).unwrap();
    let old = journal.create(&id("again")).unwrap();
    let mut r = reporter(&old, Waker::noop());
    r.log(LogStream::Agent, "old");
    old.record_pgid(42);
    drop(r);
    let new = journal.create(&id("again")).unwrap();
    assert_eq!(new.last_written(), 0);
    let jobs = journal.recover().unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].stream.last_written(), 0);
    assert!(jobs[0].pgids.is_empty());
}

#[test]
fn events_lost_after_the_server_stored_them_do_not_hide_the_result() {
    // A power cut ate events 3..=8 after the server stored them; the
    // restarted runner closed the job with result seq 3.
    let tmp = TempDir::new("renumber");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("r")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    r.log(LogStream::Agent, "1");
    r.log(LogStream::Agent, "2");
    r.finish(JobResult::failed("the runner restarted"));
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    outbox.on_welcome(&[("r".into(), 8)]);
    assert!(outbox.take_released().is_empty());
    let f = outbox.next_frame().expect("the result, renumbered");
    let v = parse(&f);
    assert_eq!(
        (v["type"].as_str(), v["seq"].as_u64()),
        (Some("job.result"), Some(9))
    );
    assert_eq!(v["error"], "the runner restarted");
    assert!(outbox.next_frame().is_none());
    assert_eq!(outbox.held_jobs()[0].last_seq, 9);
    // The renumbered result survives a restart too.
    let jobs = journal.recover().unwrap();
    assert_eq!(jobs[0].stream.last_written(), 9);
    assert!(jobs[0].finished);
    assert_eq!(outbox.on_ack("r", 9), Some(id("r")));
}

/// A tmpfs of `bytes` mounted for one test: a real disk that fills up.
struct SmallDisk(TempDir);

impl SmallDisk {
    /// `None` (with the reason) where mounting is not permitted (not
    /// root, or a container without `CAP_SYS_ADMIN`). CI runs as root: a
    /// test on CI fails instead of skipping.
    fn mount(name: &str, bytes: u64) -> Option<SmallDisk> {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let dir = TempDir::new(name);
        let target = CString::new(dir.0.as_os_str().as_bytes()).unwrap();
        let opts = CString::new(format!("size={bytes},mode=0700")).unwrap();
        // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                opts.as_ptr().cast(),
            )
        };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            assert!(
                std::env::var_os("CI").is_none(),
                "CI runs as root: mounting a tmpfs must work there ({e})"
            );
            eprintln!("SKIPPED: cannot mount a small tmpfs to fill ({e}); run as root to test a full disk");
            return None;
        }
        Some(SmallDisk(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let target = std::ffi::CString::new(self.0 .0.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: umount2(2) with a NUL-terminated path.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

#[test]
fn a_full_disk_fails_the_job_instead_of_leaving_a_gap() {
    let Some(disk) = SmallDisk::mount("full", 8 << 20) else {
        return;
    };
    let journal = Journal::with_segment_bytes(&disk.0 .0, 64 * 1024).unwrap();
    let stream = journal.create(&id("full")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    // 10 MiB of output onto an 8 MiB disk.
    let line = "x".repeat(1000);
    for _ in 0..10_000 {
        r.log(LogStream::Agent, &line);
    }
    assert!(r.write_error().is_some(), "the job was not told");
    let mut done = JobResult::failed("");
    done.status = ados_work_runner::job::event::ResultStatus::Completed;
    done.summary = "all done".into();
    done.error = None;
    r.finish(done);

    assert!(stream.is_finished(), "the result was not stored");
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    let frames = drain_json(&mut outbox);
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "a gap");
    assert!(seqs.len() > 100 && seqs.len() < 10_000, "{}", seqs.len());
    let result = frames.last().unwrap();
    assert_eq!(result["type"], "job.result");
    assert_eq!(result["status"], "failed", "{result}");
    assert!(
        result["error"]
            .as_str()
            .unwrap()
            .contains("the disk is full"),
        "{result}"
    );
}

#[test]
#[ignore = "a measurement, not a check"]
fn throughput() {
    let tmp = TempDir::new("speed");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("speed")).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    let mut outbox = Outbox::new();
    outbox.track(stream);
    let n = 200_000;
    let line = "test result: ok. 12 passed; 0 failed; finished in 0.42s\n";
    let start = std::time::Instant::now();
    let mut read = 0;
    for i in 0..n {
        r.log(LogStream::Test, line);
        if i % 100 == 99 {
            while outbox.next_frame().is_some() {
                read += 1;
            }
        }
    }
    while outbox.next_frame().is_some() {
        read += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(read, n);
    println!(
        "reporter + journal: {n} events appended and read in {secs:.2} s: {:.0} events/s",
        n as f64 / secs
    );

    // The journal alone: the same frame appended, then read.
    use ados_work_runner::job::event::Event;
    use ados_work_runner::job::EventSink;
    let stream = journal.create(&id("speed-raw")).unwrap();
    let mut sink = JournalSink::new(stream.clone(), Waker::noop());
    let mut outbox = Outbox::new();
    outbox.track(stream);
    let frame = format!(
        r#"{{"type":"job.event","job_id":"speed-raw","seq":1,"ts":"2026-11-24T10:00:00.123Z","event":{{"kind":"log","stream":"test","text":{}}}}}"#,
        serde_json::to_string(line).unwrap()
    );
    let ev = Event::Log {
        stream: LogStream::Test,
        text: String::new(),
    };
    let start = std::time::Instant::now();
    for seq in 1..=n as u64 {
        sink.event(seq, &ev, &frame);
    }
    let appended = start.elapsed().as_secs_f64();
    let mut read = 0;
    while outbox.next_frame().is_some() {
        read += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(read, n);
    println!(
        "journal alone: append {:.0} events/s, read {:.0} events/s, both {:.0} events/s",
        n as f64 / appended,
        n as f64 / (secs - appended),
        n as f64 / secs
    );
}

/// Every frame until `None`, each checked to be JSON.
fn drain_json(outbox: &mut Outbox) -> Vec<Value> {
    std::iter::from_fn(|| outbox.next_frame())
        .map(|f| {
            serde_json::from_str(&f)
                .unwrap_or_else(|e| panic!("a frame that is not JSON was sent ({e}): {f:?}"))
        })
        .collect()
}

/// A new job `job` with `n` log events written through a real reporter.
fn running_job(journal: &Journal, job: &str, n: usize) -> (Arc<JobStream>, Reporter) {
    let stream = journal.create(&id(job)).unwrap();
    let mut r = reporter(&stream, Waker::noop());
    for i in 0..n {
        r.log(LogStream::Agent, &format!("line {i} of the agent's output"));
    }
    (stream, r)
}

/// A job `job` with `n` log events and a result; returns its first segment.
fn finished_job(journal: &Journal, job: &str, n: usize) -> PathBuf {
    let (stream, mut r) = running_job(journal, job, n);
    r.finish(JobResult::failed("x"));
    stream.dir().join(format!("{:020}.jsonl", 1))
}

/// Close a recovered job as the daemon does (a `failed` result after its
/// last seq), then every frame its journal sends.
fn close_and_send(stream: &Arc<JobStream>) -> Vec<Value> {
    reporter(stream, Waker::noop()).finish(JobResult::failed("restarted"));
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    drain_json(&mut outbox)
}

/// The stand-ins among `frames`: `log` events on stream `runner` that say
/// the journal was damaged.
fn damage_notes(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| {
            f["event"]["kind"] == "log"
                && f["event"]["stream"] == "runner"
                && f["event"]["text"].as_str().unwrap().contains("damaged")
        })
        .collect()
}

#[test]
fn damage_in_the_middle_of_a_segment_skips_only_the_damaged_record() {
    const N: usize = 3000;
    let tmp = TempDir::new("damage");
    let journal = Journal::open(&tmp.0).unwrap();
    let seg = finished_job(&journal, "d", N);
    // 16 bytes of garbage in the middle of the segment.
    let mut bytes = fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 16].copy_from_slice(b"\0\xff\0garbage\0\x01\x02\x03\x04\x05");
    fs::write(&seg, &bytes).unwrap();

    let jobs = journal.recover().unwrap();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].finished, "the result after the damage was kept");
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    let frames = drain_json(&mut outbox);
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=N as u64 + 1).collect::<Vec<_>>(),
        "every seq once"
    );
    assert_eq!(frames.last().unwrap()["type"], "job.result");
    assert_eq!(frames.last().unwrap()["status"], "failed");
    // Only the damaged record (two if the garbage spans a line end) is
    // replaced, by a note that says so; every other frame is the agent's.
    let notes = damage_notes(&frames);
    assert!(matches!(notes.len(), 1 | 2), "{notes:?}");
    let agent_lines = frames
        .iter()
        .filter(|f| f["event"]["stream"] == "agent")
        .count();
    assert_eq!(agent_lines + notes.len(), N);
}

#[test]
fn a_damaged_frame_is_never_sent() {
    let tmp = TempDir::new("badjson");
    let journal = Journal::open(&tmp.0).unwrap();
    let seg = finished_job(&journal, "b", 10);
    // Damage inside the JSON of seq 5: the line still starts `5\te\t` and
    // its frame with `{`.
    let text = fs::read(&seg).unwrap();
    let start = text
        .split_inclusive(|&b| b == b'\n')
        .take(4)
        .map(<[u8]>::len)
        .sum::<usize>();
    let mut bytes = text.clone();
    let quote = start + bytes[start..].iter().position(|&b| b == b'"').unwrap();
    bytes[quote] = b'\0';
    fs::write(&seg, &bytes).unwrap();

    let jobs = journal.recover().unwrap();
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    let frames = drain_json(&mut outbox);
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=11).collect::<Vec<_>>());
    assert_eq!(damage_notes(&frames).len(), 1);
    assert_eq!(damage_notes(&frames)[0]["seq"], 5);
}

#[test]
fn a_directory_named_like_a_segment_does_not_stop_recovery() {
    let tmp = TempDir::new("segdir");
    let journal = Journal::open(&tmp.0).unwrap();
    let (stream, r) = running_job(&journal, "s", 5);
    fs::create_dir(stream.dir().join(format!("{:020}.jsonl", 99))).unwrap();
    drop((r, stream));

    let jobs = journal.recover().unwrap();
    assert_eq!(jobs.len(), 1, "the job was not recovered");
    assert_eq!(jobs[0].stream.last_written(), 5);
    assert!(!jobs[0].finished);
    let frames = close_and_send(&jobs[0].stream);
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(frames[5]["type"], "job.result");
}

#[test]
fn a_journal_written_before_checksums_is_still_read_and_continued() {
    let tmp = TempDir::new("oldformat");
    let journal = Journal::open(&tmp.0).unwrap();
    let dir = tmp.0.join("old");
    fs::create_dir(&dir).unwrap();
    let mut old = String::new();
    for seq in 1..=3 {
        old.push_str(&format!(
            "{seq}\te\t{{\"type\":\"job.event\",\"job_id\":\"old\",\"seq\":{seq},\
             \"ts\":\"2026-11-24T10:00:00.000Z\",\"event\":{{\"kind\":\"log\",\"stream\":\"agent\",\"text\":\"x\"}}}}\n"
        ));
    }
    fs::write(dir.join(format!("{:020}.jsonl", 1)), old).unwrap();

    let jobs = journal.recover().unwrap();
    assert_eq!(jobs[0].stream.last_written(), 3);
    let frames = close_and_send(&jobs[0].stream);
    let seqs: Vec<u64> = frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    assert!(damage_notes(&frames).is_empty());
    assert_eq!(frames[3]["type"], "job.result");
}

#[test]
fn a_restart_result_is_sent_above_the_welcome_ack_even_after_a_second_restart() {
    let tmp = TempDir::new("restart-result");
    let journal = Journal::open(&tmp.0).unwrap();
    drop(running_job(&journal, "r", 5));
    // The first restart closes the job as the daemon does.
    let jobs = journal.recover().unwrap();
    jobs[0].stream.mark_result_unconfirmed().unwrap();
    reporter(&jobs[0].stream, Waker::noop()).finish(JobResult::failed("restarted"));
    assert_eq!(jobs[0].stream.last_written(), 6);
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    // Before a welcome the result's seq is not settled: it is held back.
    assert_eq!(seqs_of(&drain(&mut outbox), "r"), vec![1, 2, 3, 4, 5]);
    drop(outbox);

    // A second restart before any welcome still knows.
    let jobs = journal.recover().unwrap();
    assert!(jobs[0].finished && jobs[0].stream.result_unconfirmed());
    let mut outbox = Outbox::new();
    outbox.track(jobs[0].stream.clone());
    // The server stored seq 6 (an event the journal lost in a power cut).
    outbox.on_welcome(&[("r".to_string(), 6)]);
    assert!(
        outbox.take_released().is_empty(),
        "released without a result"
    );
    let frames = drain(&mut outbox);
    assert_eq!(frames, vec![("r".to_string(), 7, "job.result".to_string())]);
    assert!(!jobs[0].stream.result_unconfirmed());
    assert_eq!(outbox.on_ack("r", 7), Some(id("r")));
}

#[test]
fn a_chats_events_leave_the_disk_at_their_ack_even_mid_turn() {
    let tmp = TempDir::new("chat");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("c")).unwrap();
    stream.mark_private();
    let dir = stream.dir().to_path_buf();
    let mut r = reporter(&stream, Waker::noop());
    r.status(Status::WaitingInput, None);
    r.status(Status::RunningAgent, None);
    r.log(LogStream::Agent, "the first private words\n");
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(seqs_of(&drain(&mut outbox), "c"), [1, 2, 3]);
    // An ack below what is written leaves the frames above it.
    outbox.on_ack("c", 2);
    assert_eq!(files_containing(&dir, b"first private").len(), 1);
    // Mid-turn, the acknowledged words leave the disk at once.
    outbox.on_ack("c", 3);
    assert!(files_containing(&dir, b"first private").is_empty());
    assert_eq!(segments(&dir), [4], "an empty segment in its place");

    // The writer and the reader follow into the new segment.
    r.log(LogStream::Agent, "the second private words\n");
    r.status(Status::WaitingInput, None);
    assert_eq!(seqs_of(&drain(&mut outbox), "c"), [4, 5]);
    outbox.on_ack("c", 5);
    assert!(files_containing(&dir, b"private words").is_empty());
    assert_eq!(segments(&dir), [6]);

    // A restart finds the journal whole: the next seq follows the ack.
    drop(r);
    let recovered = Journal::open(&tmp.0).unwrap().recover().unwrap();
    assert_eq!(recovered[0].stream.next_seq(), 6);
}

#[test]
fn a_chats_acked_events_leave_the_disk_while_the_link_lags_behind_the_writer() {
    let tmp = TempDir::new("chat-lag");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("c")).unwrap();
    stream.mark_private();
    let dir = stream.dir().to_path_buf();
    let mut r = reporter(&stream, Waker::noop());
    r.status(Status::RunningAgent, None);
    r.log(LogStream::Agent, "the first private words\n");
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(seqs_of(&drain(&mut outbox), "c"), [1, 2]);
    // The agent goes on printing: each ack is behind the writer.
    r.log(LogStream::Agent, "more words\n");
    outbox.on_ack("c", 2);
    assert_eq!(segments(&dir), [1], "seq 3 shares the segment");
    // So the writer starts a new segment at its next append, and the ack
    // of the rest of the old one deletes it, though seq 4 is unacked.
    r.log(LogStream::Agent, "the last words\n");
    assert_eq!(seqs_of(&drain(&mut outbox), "c"), [3, 4]);
    outbox.on_ack("c", 3);
    assert!(files_containing(&dir, b"first private").is_empty());
    assert!(files_containing(&dir, b"more words").is_empty());
    assert_eq!(files_containing(&dir, b"the last words").len(), 1);
    assert_eq!(segments(&dir), [4]);
}

#[test]
fn an_issue_jobs_acknowledged_newest_segment_stays_for_its_writer() {
    let tmp = TempDir::new("issue");
    let journal = Journal::open(&tmp.0).unwrap();
    let stream = journal.create(&id("i")).unwrap();
    let dir = stream.dir().to_path_buf();
    let mut r = reporter(&stream, Waker::noop());
    r.log(LogStream::Agent, "kept until the job ends\n");
    let mut outbox = Outbox::new();
    outbox.track(stream.clone());
    assert_eq!(seqs_of(&drain(&mut outbox), "i"), [1]);
    outbox.on_ack("i", 1);
    assert_eq!(segments(&dir), [1], "not private: no roll at the ack");
}
