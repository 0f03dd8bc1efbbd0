//! Unit tests of the dispatcher: `handle` driven with a fake pool, the
//! link's channel end and a made-up clock; `next_event` over real channels.

use super::*;
use crate::config::{Purpose, RawEnv};
use crate::job::ResultStatus;
use crate::link::Waker;
use crate::testing::TempDir;
use crossbeam_channel::{unbounded, Receiver};
use serde_json::{json, Value};

/// The fake pool: records what the dispatcher asks of it.
#[derive(Default)]
struct FakeWorkers {
    tasks: Vec<Task>,
    replaced: Vec<usize>,
}

impl Workers for FakeWorkers {
    fn submit(&mut self, task: Task) {
        self.tasks.push(task);
    }

    fn replace(&mut self, worker: usize) -> std::io::Result<()> {
        self.replaced.push(worker);
        Ok(())
    }
}

/// A dispatcher with one slot over a fake pool and the link's channel end;
/// `free` is what the disk probe answers (ADOS_MIN_FREE_DISK is 1G).
struct Rig {
    d: Dispatcher<FakeWorkers>,
    link_rx: Receiver<ToLink>,
    metrics: Arc<Metrics>,
    probes: Arc<std::sync::atomic::AtomicUsize>,
    t0: Instant,
    _dir: TempDir,
}

fn rig(free: u64) -> Rig {
    rig_with(free, &[])
}

fn rig_with(free: u64, extra: &[(&str, &str)]) -> Rig {
    let dir = TempDir::new("dispatch");
    let ws = dir.path().join("ws");
    let mut pairs = vec![
        ("ADOS_API_URL", "http://127.0.0.1:9"),
        ("ADOS_TOKEN", "test-token-123"),
        ("ADOS_RUNNER_ID", "r1"),
        ("WORKSPACE_DIR", ws.to_str().unwrap_or("/nonexistent")),
        ("ADOS_MAX_JOBS", "1"),
        ("ADOS_MIN_FREE_DISK", "1G"),
        ("ADOS_SHUTDOWN_GRACE", "60s"),
    ];
    pairs.extend_from_slice(extra);
    let env = RawEnv::from_pairs(pairs);
    let cfg = Arc::new(Config::from_raw(&env, Purpose::Daemon).expect("config"));
    let journal = Journal::open(&dir.path().join("journal")).expect("journal");
    let (tx, link_rx) = unbounded();
    let metrics = Arc::new(Metrics::new());
    let probes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = probes.clone();
    let d = Dispatcher::new(
        cfg,
        JobTable::new(1),
        Link::new(tx, Waker::noop()),
        FakeWorkers::default(),
        journal,
        metrics.clone(),
    )
    .with_disk_probe(Box::new(move |_| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(free)
    }));
    Rig {
        d,
        link_rx,
        metrics,
        probes,
        t0: Instant::now(),
        _dir: dir,
    }
}

const PLENTY: u64 = 100 << 30;

fn assign(id: &str) -> Event {
    Event::Link(FromLink::Message(ServerMessage::Assign(json!({
        "job_id": id, "repo": {"owner": "o", "name": "r"}
    }))))
}

fn at(r: &Rig, secs: u64) -> Instant {
    r.t0 + Duration::from_secs(secs)
}

/// The frames (`job.accepted`, `job.rejected`) sent to the link so far.
fn frames(rx: &Receiver<ToLink>) -> Vec<Value> {
    rx.try_iter()
        .filter_map(|m| match m {
            ToLink::Frame(f) => serde_json::from_str(&f).ok(),
            _ => None,
        })
        .collect()
}

fn id(s: &str) -> JobId {
    JobId::parse(s).expect("job id")
}

#[test]
fn an_assign_is_accepted_submitted_and_a_second_refused_for_lack_of_a_slot() {
    let mut r = rig(PLENTY);
    r.d.handle(assign("a"), at(&r, 0));
    assert_eq!(r.d.workers.tasks.len(), 1);
    assert_eq!(r.d.workers.tasks[0].spec.job_id, id("a"));
    let sent: Vec<ToLink> = r.link_rx.try_iter().collect();
    // accepted, then the journal to deliver, then the new state.
    assert!(matches!(&sent[0], ToLink::Frame(f) if f.contains("job.accepted")));
    assert!(matches!(&sent[1], ToLink::Track(s) if s.job_id() == &id("a")));
    assert!(matches!(&sent[2], ToLink::State(s) if s.running == ["a"] && s.free_slots == 0));
    assert_eq!(r.metrics.health().running_jobs, 1);

    r.d.handle(assign("b"), at(&r, 1));
    let f = frames(&r.link_rx);
    assert_eq!(f[0]["type"], "job.rejected");
    assert_eq!(f[0]["retryable"], true);
    assert_eq!(r.d.workers.tasks.len(), 1);

    r.d.handle(
        Event::Worker(WorkerReport::Done(id("a"), ResultStatus::Completed)),
        at(&r, 2),
    );
    assert_eq!(r.metrics.health().free_slots, 1);
}

#[test]
fn low_disk_is_the_dispatchers_own_finding_measured_on_its_clock() {
    let mut r = rig(1 << 20);
    r.d.handle(Event::Tick, at(&r, 0));
    assert_eq!(r.probes.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Exported for /health...
    let exported = r.metrics.health().disk_problem.expect("exported");
    assert!(exported.contains("ADOS_MIN_FREE_DISK"), "{exported}");
    // ...but the decision uses the dispatcher's own state: clearing the
    // export changes nothing.
    r.metrics.set_disk_problem(None);
    r.d.handle(assign("a"), at(&r, 1));
    let f = frames(&r.link_rx);
    assert_eq!(f[0]["type"], "job.rejected", "{f:?}");
    assert_eq!(f[0]["retryable"], true);
    assert!(
        f[0]["reason"].as_str().unwrap_or("").contains("disk"),
        "{f:?}"
    );
    assert!(r.d.workers.tasks.is_empty());
    // Measured again only once 5 s have passed on the given clock.
    r.d.handle(Event::Tick, at(&r, 4));
    assert_eq!(r.probes.load(std::sync::atomic::Ordering::SeqCst), 1);
    r.d.handle(Event::Tick, at(&r, 5));
    assert_eq!(r.probes.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[test]
fn shutdown_waits_for_the_grace_on_the_given_clock_then_cancels() {
    let mut r = rig(PLENTY);
    r.d.handle(assign("a"), at(&r, 0));
    r.d.handle(Event::Signal(SignalEvent::Shutdown), at(&r, 10));
    let token = r.d.workers.tasks[0].cancel.clone();
    // ADOS_SHUTDOWN_GRACE is 60 s: nothing is cancelled before it ends.
    r.d.handle(Event::Tick, at(&r, 69));
    assert_eq!(token.reason(), None);
    assert!(!r.d.is_done());
    r.d.handle(Event::Tick, at(&r, 70));
    assert_eq!(token.reason(), Some(CancelReason::Shutdown));
    // New work is refused while shutting down.
    let _ = frames(&r.link_rx);
    r.d.handle(assign("b"), at(&r, 71));
    assert_eq!(frames(&r.link_rx)[0]["type"], "job.rejected");
    r.d.handle(
        Event::Worker(WorkerReport::Done(id("a"), ResultStatus::Cancelled)),
        at(&r, 72),
    );
    assert!(r.d.is_done());
}

/// A shutdown that waits for jobs says which ones every 30 s.
#[test]
fn a_shutdown_waiting_for_jobs_names_them_every_30_s() {
    let mut r = rig(PLENTY);
    r.d.handle(assign("a"), at(&r, 0));
    assert_eq!(r.d.wait_note(at(&r, 100)), None, "not shutting down");
    r.d.handle(Event::Signal(SignalEvent::Shutdown), at(&r, 10));
    assert_eq!(r.d.wait_note(at(&r, 39)), None);
    assert_eq!(
        r.d.wait_note(at(&r, 40)).as_deref(),
        Some("shutdown: still waiting for 1 running job: a; 30s of the grace left, then they are cancelled")
    );
    assert_eq!(r.d.wait_note(at(&r, 41)), None, "once per 30 s");
    r.d.handle(Event::Tick, at(&r, 70));
    assert_eq!(
        r.d.wait_note(at(&r, 100)).as_deref(),
        Some("shutdown: still waiting for 1 running job: a; cancelled, waiting for them to stop")
    );
}

#[test]
fn a_dead_worker_is_replaced_its_slot_freed_and_the_runner_degraded() {
    let mut r = rig(PLENTY);
    r.d.handle(assign("a"), at(&r, 0));
    r.d.handle(
        Event::Worker(WorkerReport::Died {
            worker: 0,
            job: Some(id("a")),
        }),
        at(&r, 1),
    );
    assert_eq!(r.d.workers.replaced, [0]);
    let h = r.metrics.health();
    assert_eq!((h.running_jobs, h.free_slots), (0, 1));
    let why = h.degraded.expect("degraded");
    assert!(why.contains("job a"), "{why}");
    // The slot takes a job again.
    r.d.handle(assign("b"), at(&r, 2));
    assert_eq!(r.d.workers.tasks.len(), 2);
}

#[test]
fn a_closed_receiver_is_not_an_event() {
    // The signal thread and every worker are gone; the link still talks.
    let (signal_tx, signal_rx) = unbounded::<SignalEvent>();
    let (worker_tx, worker_rx) = unbounded::<WorkerReport>();
    let (link_tx, link_rx) = unbounded();
    drop(signal_tx);
    drop(worker_tx);
    link_tx.send(FromLink::Connected).expect("send");
    let mut inbox = Inbox::new(link_rx, signal_rx, worker_rx);
    // Were a closed channel an event, the dead ones (polled first) would
    // be answered for ever and the link's message never.
    let tick = Duration::from_secs(3600);
    assert!(matches!(
        inbox.next_event(tick),
        Event::Link(FromLink::Connected)
    ));
    link_tx.send(FromLink::Disconnected).expect("send");
    assert!(matches!(
        inbox.next_event(tick),
        Event::Link(FromLink::Disconnected)
    ));
    // With everything closed, only time passes.
    drop(link_tx);
    assert!(matches!(
        inbox.next_event(Duration::from_millis(1)),
        Event::Tick
    ));
}

#[test]
fn an_ephemeral_runner_ends_when_its_one_job_is_acked_or_the_ack_wait_is_over() {
    let mut r = rig_with(PLENTY, &[("ADOS_ONCE", "1"), ("ADOS_MAX_JOBS", "2")]);
    r.d.handle(assign("a"), at(&r, 0));
    assert_eq!(r.d.workers.tasks.len(), 1);
    r.d.handle(assign("b"), at(&r, 1));
    assert_eq!(
        r.d.workers.tasks.len(),
        1,
        "one job only, even with a free slot"
    );
    r.d.handle(
        Event::Worker(WorkerReport::Done(id("a"), ResultStatus::Completed)),
        at(&r, 2),
    );
    assert!(!r.d.is_done(), "its result is not acked yet");
    r.d.handle(Event::Link(FromLink::Released(id("a"))), at(&r, 3));
    assert!(r.d.is_done());

    // Acks that never come: it exits once the wait is over.
    let mut r = rig_with(PLENTY, &[("ADOS_ONCE", "1")]);
    r.d.handle(assign("a"), at(&r, 0));
    r.d.handle(
        Event::Worker(WorkerReport::Done(id("a"), ResultStatus::Completed)),
        at(&r, 2),
    );
    r.d.handle(Event::Tick, at(&r, 30));
    assert!(!r.d.is_done());
    r.d.handle(Event::Tick, at(&r, 63));
    assert!(r.d.is_done());
}

fn chat_msg(msg: ServerMessage) -> Event {
    Event::Link(FromLink::Message(msg))
}

#[test]
fn chat_messages_reach_their_live_session_in_order_and_a_drain_follows() {
    let mut r = rig(PLENTY);
    r.d.handle(
        Event::Link(FromLink::Message(ServerMessage::Assign(json!({
            "job_id": "c", "kind": "chat", "repo": {"owner": "o", "name": "r"}
        })))),
        at(&r, 0),
    );
    let rx = r.d.workers.tasks[0].chat.clone().expect("a chat's channel");
    let input = |m: &str, action: Option<&str>| ServerMessage::ChatInput {
        job_id: "c".into(),
        message_id: m.into(),
        text: format!("text of {m}"),
        action: action.map(str::to_string),
    };
    r.d.handle(chat_msg(input("m-1", None)), at(&r, 1));
    r.d.handle(chat_msg(input("m-2", Some("create_pr"))), at(&r, 1));
    // For no live session: dropped, nothing queued.
    r.d.handle(
        chat_msg(ServerMessage::ChatEnd {
            job_id: "other".into(),
        }),
        at(&r, 1),
    );
    r.d.handle(chat_msg(ServerMessage::Drain), at(&r, 2));
    r.d.handle(
        chat_msg(ServerMessage::ChatEnd { job_id: "c".into() }),
        at(&r, 2),
    );
    let got: Vec<ChatMsg> = rx.try_iter().collect();
    assert_eq!(
        got,
        [
            ChatMsg::Input(ChatInput {
                message_id: "m-1".into(),
                text: "text of m-1".into(),
                action: ChatAction::Reply
            }),
            ChatMsg::Input(ChatInput {
                message_id: "m-2".into(),
                text: "text of m-2".into(),
                action: ChatAction::CreatePr
            }),
            ChatMsg::Drain,
            ChatMsg::End,
        ]
    );
    // Once the session has ended its channel is gone: nothing is queued.
    r.d.handle(
        Event::Worker(WorkerReport::Done(id("c"), ResultStatus::Completed)),
        at(&r, 3),
    );
    r.d.handle(chat_msg(input("m-3", None)), at(&r, 3));
    assert!(rx.try_recv().is_err());
}

#[test]
fn an_issue_job_has_no_chat_channel_and_a_shutdown_drains_live_chats() {
    let mut r = rig(PLENTY);
    r.d.handle(assign("i"), at(&r, 0));
    assert!(r.d.workers.tasks[0].chat.is_none());
    r.d.handle(
        Event::Worker(WorkerReport::Done(id("i"), ResultStatus::Completed)),
        at(&r, 0),
    );
    r.d.handle(
        Event::Link(FromLink::Message(ServerMessage::Assign(json!({
            "job_id": "c", "kind": "chat", "repo": {"owner": "o", "name": "r"}
        })))),
        at(&r, 0),
    );
    let rx = r.d.workers.tasks[1].chat.clone().expect("a chat's channel");
    r.d.handle(Event::Signal(SignalEvent::Shutdown), at(&r, 1));
    assert_eq!(rx.try_iter().collect::<Vec<_>>(), [ChatMsg::Drain]);
}
