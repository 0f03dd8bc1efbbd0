//! The dispatcher: the daemon's main loop and the sole owner of its job
//! table, its disk state and its shutdown state.
//!
//! Every other thread talks to it through messages: the link forwards what
//! the server says, workers report finished jobs (and their own death), the
//! signal thread reports signals. The loop is two calls, the rust-analyzer
//! way: [`Inbox::next_event`] waits (the only blocking call) and
//! [`Dispatcher::handle`] decides, mutating state only the dispatcher owns.
//! `handle` is given the time (`now`) rather than reading a clock, and
//! reaches the other threads through seams ([`Workers`] for the pool, the
//! channel end inside [`Link`]), so every decision (accept, reject, drain,
//! shut down, replace a dead worker) is unit-tested without threads or
//! sleeps. See `docs/architecture.md`.

mod event;
mod state;
#[cfg(test)]
mod tests;

pub use event::{Event, Inbox};
pub use state::{Decision, JobTable};

use crate::cancel::CancelReason;
use crate::config::Config;
use crate::job::chat::{ChatAction, ChatInput, ChatMsg, CHAT_QUEUE};
use crate::job::spec::{JobId, JobKind, JobSpec};
use crate::journal::Journal;
use crate::link::proto::{self, RunnerState, ServerMessage};
use crate::link::{FromLink, Link, ToLink};
use crate::metrics::Metrics;
use crate::pool::{Pool, Task, WorkerReport};
use crate::signal::SignalEvent;
use crossbeam_channel::{Sender, TrySendError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the dispatcher wakes without an event.
const TICK: Duration = Duration::from_millis(500);
/// How long unsent frames may take to flush at shutdown.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);
/// How often free disk space is measured.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(5);
/// How often a shutdown that waits for jobs says which ones it waits for.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);

/// Where the dispatcher starts jobs: the worker [`Pool`], or a fake that
/// records tasks in tests.
pub trait Workers {
    /// Hand a task to a free worker (the dispatcher has counted a free
    /// slot, so this does not block).
    fn submit(&mut self, task: Task);
    /// Start a new worker in place of dead worker `worker`.
    ///
    /// # Errors
    /// The thread cannot be created.
    fn replace(&mut self, worker: usize) -> std::io::Result<()>;
}

impl Workers for Pool {
    fn submit(&mut self, task: Task) {
        Pool::submit(self, task);
    }

    fn replace(&mut self, worker: usize) -> std::io::Result<()> {
        Pool::replace(self, worker)
    }
}

/// Measures free space under a directory, in bytes: the disk guard's probe
/// ([`crate::workspace::free_space`]; tests give a fixed answer).
pub type DiskProbe = Box<dyn FnMut(&Path) -> std::io::Result<u64> + Send>;

/// Where shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Running normally.
    No,
    /// First signal: draining, waiting for jobs until `deadline` (`None`:
    /// a grace too long to represent, so no deadline).
    Draining { deadline: Option<Instant> },
    /// Jobs were cancelled; waiting for their results.
    Cancelling,
    /// Every job is done: close the link.
    Done,
}

/// The disk guard's state: when it last measured, and what it found.
struct Disk {
    probe: DiskProbe,
    last_check: Option<Instant>,
    /// Why new jobs are refused for lack of space, if they are.
    problem: Option<String>,
}

/// The dispatcher's state and its connections to the other threads.
pub struct Dispatcher<W: Workers = Pool> {
    cfg: Arc<Config>,
    table: JobTable,
    link: Link,
    workers: W,
    journal: Journal,
    /// Exported to: the dispatcher writes, never reads back.
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    disk: Disk,
    /// Why the runner is degraded (a worker thread died), if it is.
    degraded: Option<String>,
    /// `ADOS_ONCE`: where the one job of an ephemeral runner is.
    once: Once,
    /// When a shutdown last said which jobs it waits for (`None`: not
    /// shutting down).
    wait_logged: Option<Instant>,
    /// The channel to each live chat session's thread: `chat.input`,
    /// `chat.end` and drains go there, in the order they arrived.
    chats: BTreeMap<JobId, Sender<ChatMsg>>,
}

/// An ephemeral runner's one job (`ADOS_ONCE`, `run --once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Once {
    /// Not ephemeral: jobs come and go.
    Off,
    /// Waiting for its job; a drain or a signal ends the runner at once.
    Waiting,
    /// The job was taken; no other is. Once it ended (at `ended`) and its
    /// result was acked, or [`ONCE_ACK_WAIT`] later, the runner exits.
    Taken {
        /// When the job's worker reported it ended.
        ended: Option<Instant>,
    },
}

/// How long an ephemeral runner waits for the acks of its job's events
/// after the job ended, before it exits anyway (its journal keeps what was
/// not acked, for a runner started on the same WORKSPACE_DIR).
const ONCE_ACK_WAIT: Duration = Duration::from_secs(60);

impl<W: Workers> Dispatcher<W> {
    /// A dispatcher over a started link and pool, measuring disk space with
    /// [`crate::workspace::free_space`].
    pub fn new(
        cfg: Arc<Config>,
        table: JobTable,
        link: Link,
        workers: W,
        journal: Journal,
        metrics: Arc<Metrics>,
    ) -> Dispatcher<W> {
        let cfg_once = cfg.once;
        Dispatcher {
            cfg,
            table,
            link,
            workers,
            journal,
            metrics,
            shutdown: Shutdown::No,
            disk: Disk {
                probe: Box::new(crate::workspace::free_space),
                last_check: None,
                problem: None,
            },
            degraded: None,
            once: if cfg_once { Once::Waiting } else { Once::Off },
            wait_logged: None,
            chats: BTreeMap::new(),
        }
    }

    /// The same dispatcher measuring free space with `probe`.
    pub fn with_disk_probe(mut self, probe: DiskProbe) -> Dispatcher<W> {
        self.disk.probe = probe;
        self
    }

    /// Run until shutdown completes. Returns the workers (to be joined)
    /// when every job is done and the link has been told to close.
    pub fn run(mut self, mut inbox: Inbox) -> W {
        self.push_state();
        while !self.is_done() {
            let event = inbox.next_event(TICK);
            self.handle(event, Instant::now());
        }
        log::info!("all jobs done; closing the control-plane link");
        let now = Instant::now();
        self.link.send(ToLink::Close {
            deadline: now.checked_add(FLUSH_DEADLINE).unwrap_or(now),
        });
        self.workers
    }

    /// Whether shutdown is complete: no job left, the link may close.
    pub fn is_done(&self) -> bool {
        self.shutdown == Shutdown::Done
    }

    /// React to one event that happened at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Link(FromLink::Message(msg)) => self.on_message(msg),
            Event::Link(FromLink::Connected) => {
                log::info!("connected to the control plane");
                self.push_state();
            }
            Event::Link(FromLink::Disconnected) => {
                log::warn!("lost the control-plane connection; reconnecting");
            }
            Event::Link(FromLink::Released(id)) => self.table.release(&id),
            Event::Worker(WorkerReport::Done(id, status)) => {
                log::debug!("job {id} ended: {}", status.as_str());
                self.table.finished(&id);
                self.chats.remove(&id);
                if let Once::Taken { ended: None } = self.once {
                    self.once = Once::Taken { ended: Some(now) };
                }
                self.push_state();
            }
            Event::Worker(WorkerReport::Died { worker, job }) => self.on_worker_died(worker, job),
            Event::Signal(s) => self.on_signal(s, now),
            Event::Tick => {}
        }
        self.check_disk(now);
        self.advance_shutdown(now);
    }

    fn on_message(&mut self, msg: ServerMessage) {
        match msg {
            ServerMessage::Assign(raw) => self.on_assign(raw),
            ServerMessage::Cancel { job_id, reason } => {
                let Ok(id) = JobId::parse(&job_id) else {
                    log::debug!("cancel for an invalid job id ignored");
                    return;
                };
                if self.table.cancel(&id, CancelReason::Server) {
                    log::info!(
                        "job {id}: cancel requested by the control plane ({})",
                        reason.as_deref().unwrap_or("no reason given")
                    );
                } else {
                    log::debug!("cancel for job {id}, which is not running: ignored");
                }
            }
            ServerMessage::Drain => {
                log::info!("drain: no new jobs until undrain");
                self.table.draining = true;
                self.drain_chats();
                self.push_state();
            }
            ServerMessage::Undrain => {
                if self.shutdown != Shutdown::No {
                    log::info!("undrain ignored: the runner is shutting down");
                    return;
                }
                log::info!("undrain: taking jobs again");
                self.table.draining = false;
                self.push_state();
            }
            ServerMessage::ChatInput {
                job_id,
                message_id,
                text,
                action,
            } => {
                let input = ChatInput {
                    message_id,
                    text,
                    action: ChatAction::parse(action.as_deref()),
                };
                self.tell_chat(&job_id, ChatMsg::Input(input));
            }
            ServerMessage::ChatEnd { job_id } => self.tell_chat(&job_id, ChatMsg::End),
            ServerMessage::Welcome { .. } | ServerMessage::Ack { .. } => {
                // Handled inside the link.
            }
            ServerMessage::Unknown(kind) => log::debug!("unknown message type {kind:?} ignored"),
        }
    }

    /// Hand `msg` to the live chat session `job_id`. A message for no live
    /// session (an issue job, an ended chat, an unknown id) is dropped: the
    /// protocol has no answer for it.
    fn tell_chat(&self, job_id: &str, msg: ChatMsg) {
        let Some(tx) = JobId::parse(job_id).ok().and_then(|id| self.chats.get(&id)) else {
            log::debug!("chat message for {job_id} ignored: no live chat session by that id");
            return;
        };
        match tx.try_send(msg) {
            Ok(()) => log::debug!("job {job_id}: chat message queued"),
            Err(TrySendError::Full(_)) => log::warn!(
                "job {job_id}: {CHAT_QUEUE} chat messages are already waiting; this one was dropped"
            ),
            // The session's thread has ended; its worker's report follows.
            Err(TrySendError::Disconnected(_)) => {
                log::debug!("job {job_id}: chat message after the session ended ignored")
            }
        }
    }

    /// A drain reaches every live chat: it finishes the turn under way,
    /// then ends with its result (an issue job simply runs on).
    fn drain_chats(&mut self) {
        for (id, tx) in &self.chats {
            if tx.try_send(ChatMsg::Drain).is_err() {
                log::debug!("job {id}: drain not queued (session ending or queue full)");
            }
        }
    }

    fn on_assign(&mut self, raw: serde_json::Value) {
        let raw_id = JobSpec::raw_job_id(&raw);
        match self
            .table
            .decide(&raw, &self.cfg, self.disk.problem.as_deref())
        {
            Decision::AlreadyHeld(id) => {
                log::info!("job {id} assigned again: already held, answering accepted");
                self.link.send(ToLink::Frame(proto::accepted(id.as_str())));
            }
            Decision::Reject { reason, retryable } => {
                log::warn!(
                    "job {} rejected ({}): {reason}",
                    raw_id.as_deref().unwrap_or("<no id>"),
                    if retryable {
                        "retryable"
                    } else {
                        "not retryable"
                    }
                );
                self.link.send(ToLink::Frame(proto::rejected(
                    raw_id.as_deref(),
                    &reason,
                    retryable,
                )));
            }
            Decision::Accept(spec) => {
                self.start(*spec);
                if self.once == Once::Waiting && self.table.running_count() > 0 {
                    // Ephemeral: this is the one job; the server is told no
                    // other is taken (heartbeats say draining).
                    log::info!("ADOS_ONCE: this runner's one job is taken; no other will be");
                    self.once = Once::Taken { ended: None };
                    self.table.draining = true;
                    self.push_state();
                }
            }
        }
    }

    fn start(&mut self, spec: JobSpec) {
        let id = spec.job_id.clone();
        let stream = match self.journal.create(&id) {
            Ok(s) => s,
            Err(e) => {
                log::error!("job {id}: cannot create its journal: {e}");
                self.link.send(ToLink::Frame(proto::rejected(
                    Some(id.as_str()),
                    &format!("runner cannot write its journal under WORKSPACE_DIR: {e}"),
                    true,
                )));
                return;
            }
        };
        // accepted goes out before any event of the job (the link sends
        // channel frames before journal frames it has not yet seen).
        self.link.send(ToLink::Frame(proto::accepted(id.as_str())));
        self.link.send(ToLink::Track(stream.clone()));
        let (canceller, token) = crate::cancel::cancel_pair();
        self.table.started(id.clone(), canceller);
        let chat = match spec.kind {
            JobKind::Chat => {
                let (tx, rx) = crossbeam_channel::bounded(CHAT_QUEUE);
                self.chats.insert(id.clone(), tx);
                Some(rx)
            }
            JobKind::Issue => None,
        };
        log::info!(
            "job {id} accepted: {} {}/{} with {}",
            match spec.kind {
                JobKind::Issue => "issue job",
                JobKind::Chat => "chat session",
            },
            spec.repo.owner,
            spec.repo.name,
            spec.agent.name
        );
        self.workers.submit(Task {
            spec,
            stream,
            cancel: token,
            chat,
        });
        self.push_state();
    }

    /// A worker thread died outside its job's `catch_unwind` (a bug). Its
    /// job already has its `failed` result; replace the thread so the slot
    /// is not lost, and say the runner is degraded until restarted.
    fn on_worker_died(&mut self, worker: usize, job: Option<JobId>) {
        let why = match &job {
            Some(id) => format!(
                "worker thread {worker} died running job {id} (reported failed); restart the runner and report the bug with its log"
            ),
            None => format!(
                "worker thread {worker} died; restart the runner and report the bug with its log"
            ),
        };
        log::error!("{why}");
        if let Some(id) = &job {
            self.table.finished(id);
            self.chats.remove(id);
        }
        if let Err(e) = self.workers.replace(worker) {
            log::error!("cannot start a worker thread in its place: {e}; one job slot fewer");
            self.table.lose_slot();
        }
        self.degraded = Some(why);
        self.metrics.set_degraded(self.degraded.clone());
        self.push_state();
    }

    fn on_signal(&mut self, s: SignalEvent, now: Instant) {
        match s {
            SignalEvent::Shutdown => {
                let grace = self.cfg.shutdown_grace;
                log::info!(
                    "shutdown requested: draining; waiting up to {} for {} (signal again to cancel them now)",
                    crate::words::duration(grace),
                    crate::words::count(self.table.running_count(), "running job")
                );
                self.table.draining = true;
                self.drain_chats();
                self.shutdown = Shutdown::Draining {
                    deadline: now.checked_add(grace),
                };
                self.wait_logged = Some(now);
                self.push_state();
            }
            SignalEvent::Kill => {
                log::warn!("second signal: cancelling every running job now");
                self.table.draining = true;
                self.table.cancel_all(CancelReason::Kill);
                self.shutdown = Shutdown::Cancelling;
                self.push_state();
            }
            SignalEvent::Exit => {
                log::error!("third signal: exiting at once");
                self.table.cancel_all(CancelReason::Kill);
                std::process::exit(130);
            }
        }
    }

    fn advance_shutdown(&mut self, now: Instant) {
        if self.shutdown == Shutdown::No {
            self.advance_once(now);
        }
        if let Some(note) = self.wait_note(now) {
            log::info!("{note}");
        }
        match self.shutdown {
            Shutdown::No | Shutdown::Done => {}
            Shutdown::Draining { deadline } => {
                if self.table.running_count() == 0 {
                    self.shutdown = Shutdown::Done;
                } else if deadline.is_some_and(|d| now >= d) {
                    log::warn!(
                        "shutdown grace period over: cancelling {}",
                        crate::words::count(self.table.running_count(), "job")
                    );
                    self.table.cancel_all(CancelReason::Shutdown);
                    self.shutdown = Shutdown::Cancelling;
                }
            }
            Shutdown::Cancelling => {
                if self.table.running_count() == 0 {
                    self.shutdown = Shutdown::Done;
                }
            }
        }
    }

    /// An ephemeral runner ends when its one job ended and everything it
    /// said was acked (bounded by [`ONCE_ACK_WAIT`]), or at once when a
    /// drain comes before any job.
    fn advance_once(&mut self, now: Instant) {
        let done = match self.once {
            Once::Off => false,
            Once::Waiting => self.table.draining,
            Once::Taken { ended: Some(at) } => {
                self.table.is_empty()
                    || at
                        .checked_add(ONCE_ACK_WAIT)
                        .is_none_or(|limit| now >= limit)
            }
            Once::Taken { ended: None } => false,
        };
        if done {
            log::info!("ADOS_ONCE: done; exiting");
            self.shutdown = Shutdown::Done;
        }
    }

    /// Every [`WAIT_LOG_EVERY`] while a shutdown waits for jobs: which
    /// ones, and how much of the grace is left, so a long wait is not a
    /// silent one.
    fn wait_note(&mut self, now: Instant) -> Option<String> {
        let since = self.wait_logged?;
        let running = self.table.runner_state().running;
        if running.is_empty() || now.saturating_duration_since(since) < WAIT_LOG_EVERY {
            return None;
        }
        self.wait_logged = Some(now);
        let then = match self.shutdown {
            Shutdown::Draining {
                deadline: Some(deadline),
            } => format!(
                "; {} of the grace left, then they are cancelled",
                crate::words::duration(deadline.saturating_duration_since(now))
            ),
            Shutdown::Cancelling => "; cancelled, waiting for them to stop".to_string(),
            _ => String::new(),
        };
        Some(format!(
            "shutdown: still waiting for {}: {}{then}",
            crate::words::count(running.len(), "running job"),
            running.join(", ")
        ))
    }

    /// Disk guard: below `ADOS_MIN_FREE_DISK`, new jobs are rejected as
    /// retryable and `/health` says why. Measured at most every 5 s; the
    /// finding is the dispatcher's, exported to [`Metrics`] for `/health`.
    fn check_disk(&mut self, now: Instant) {
        let due = self
            .disk
            .last_check
            .is_none_or(|t| now.saturating_duration_since(t) >= DISK_CHECK_EVERY);
        if !due {
            return;
        }
        self.disk.last_check = Some(now);
        let problem = match (self.disk.probe)(&self.cfg.workspace_dir) {
            Ok(free) if free < self.cfg.min_free_disk => Some(format!(
                "only {} free in WORKSPACE_DIR {} (ADOS_MIN_FREE_DISK is {}): new jobs are refused until space is freed",
                crate::config::format_memory(free),
                self.cfg.workspace_dir.display(),
                crate::config::format_memory(self.cfg.min_free_disk)
            )),
            Ok(_) => None,
            Err(e) => {
                log::debug!("free space of WORKSPACE_DIR unknown: {e}");
                None
            }
        };
        if problem == self.disk.problem {
            return;
        }
        match (&problem, &self.disk.problem) {
            (Some(p), None) => log::warn!("{p}"),
            (None, Some(_)) => {
                log::info!("free space in WORKSPACE_DIR is back above ADOS_MIN_FREE_DISK")
            }
            _ => {}
        }
        self.disk.problem = problem;
        self.metrics.set_disk_problem(self.disk.problem.clone());
    }

    fn push_state(&mut self) {
        let state: RunnerState = self.table.runner_state();
        self.metrics.set_slots(
            self.table.running_count() as u64,
            state.free_slots as u64,
            state.draining,
        );
        self.link.send(ToLink::State(state));
    }
}
