//! The dispatcher: the daemon's main loop and the sole owner of its job
//! table.
//!
//! Every other thread talks to it through messages ([`Event`]): the link
//! forwards what the server says, workers report finished jobs, the signal
//! thread reports signals. [`Dispatcher::handle`] is a plain method over
//! owned state, so the decisions (accept, reject, drain, shut down) are
//! testable without threads. See `docs/architecture.md`.

mod state;

pub use state::{Decision, JobTable};

use crate::config::Config;
use crate::job::spec::{JobId, JobSpec};
use crate::job::{CancelReason, ResultStatus};
use crate::journal::Journal;
use crate::link::proto::{self, RunnerState, ServerMessage};
use crate::link::{FromLink, Link, ToLink};
use crate::metrics::Metrics;
use crate::pool::{Pool, Task};
use crate::signal::SignalEvent;
use crossbeam_channel::{select_biased, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything the dispatcher reacts to.
#[derive(Debug)]
pub enum Event {
    /// The link said something.
    Link(FromLink),
    /// A signal arrived.
    Signal(SignalEvent),
    /// A worker finished a job (its result is in the journal).
    JobDone(JobId, ResultStatus),
    /// Time passed (shutdown deadlines, disk checks).
    Tick,
}

/// How often the dispatcher wakes without an event.
const TICK: Duration = Duration::from_millis(500);
/// How long unsent frames may take to flush at shutdown.
const FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Where shutdown is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// Running normally.
    No,
    /// First signal: draining, waiting for jobs until `deadline`.
    Draining { deadline: Instant },
    /// Jobs were cancelled; waiting for their results.
    Cancelling,
    /// Every job is done: close the link.
    Done,
}

/// The dispatcher's state and its connections to the other threads.
pub struct Dispatcher {
    cfg: Arc<Config>,
    table: JobTable,
    link: Link,
    pool: Pool,
    journal: Journal,
    metrics: Arc<Metrics>,
    shutdown: Shutdown,
    last_disk_check: Option<Instant>,
}

impl Dispatcher {
    /// A dispatcher over a started link and pool.
    pub fn new(
        cfg: Arc<Config>,
        table: JobTable,
        link: Link,
        pool: Pool,
        journal: Journal,
        metrics: Arc<Metrics>,
    ) -> Dispatcher {
        Dispatcher {
            cfg,
            table,
            link,
            pool,
            journal,
            metrics,
            shutdown: Shutdown::No,
            last_disk_check: None,
        }
    }

    /// Run until shutdown completes. Returns the pool (to be joined) when
    /// every job is done and the link has been told to close.
    pub fn run(
        mut self,
        link_rx: Receiver<FromLink>,
        signal_rx: Receiver<SignalEvent>,
        done_rx: Receiver<(JobId, ResultStatus)>,
    ) -> Pool {
        self.push_state();
        loop {
            // Signals and control first (style.md: select_biased!).
            let event = select_biased! {
                recv(signal_rx) -> s => match s {
                    Ok(s) => Event::Signal(s),
                    Err(_) => Event::Tick,
                },
                recv(done_rx) -> d => match d {
                    Ok((id, st)) => Event::JobDone(id, st),
                    Err(_) => Event::Tick,
                },
                recv(link_rx) -> m => match m {
                    Ok(m) => Event::Link(m),
                    Err(_) => Event::Tick,
                },
                default(TICK) => Event::Tick,
            };
            self.handle(event);
            if self.shutdown == Shutdown::Done {
                break;
            }
        }
        log::info!("all jobs done; closing the control-plane link");
        self.link.send(ToLink::Close {
            deadline: Instant::now() + FLUSH_DEADLINE,
        });
        self.pool
    }

    /// React to one event.
    pub fn handle(&mut self, event: Event) {
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
            Event::JobDone(id, status) => {
                log::info!("job {id} ended: {}", status.as_str());
                self.table.finished(&id);
                self.push_state();
            }
            Event::Signal(s) => self.on_signal(s),
            Event::Tick => {}
        }
        self.check_disk();
        self.advance_shutdown();
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
            ServerMessage::ChatInput { job_id, .. } | ServerMessage::ChatEnd { job_id } => {
                log::debug!("chat message for {job_id} ignored: no chat session by that id");
            }
            ServerMessage::Welcome { .. } | ServerMessage::Ack { .. } => {
                // Handled inside the link.
            }
            ServerMessage::Unknown(kind) => log::debug!("unknown message type {kind:?} ignored"),
        }
    }

    fn on_assign(&mut self, raw: serde_json::Value) {
        let raw_id = JobSpec::raw_job_id(&raw);
        let disk_problem = self.metrics.health().disk_problem;
        match self.table.decide(&raw, &self.cfg, disk_problem.as_deref()) {
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
            Decision::Accept(spec) => self.start(*spec),
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
        let (canceller, token) = crate::job::cancel::cancel_pair();
        self.table.started(id.clone(), canceller);
        log::info!(
            "job {id} accepted: {} {}/{} with {}",
            match spec.kind {
                crate::job::spec::JobKind::Issue => "issue job",
                crate::job::spec::JobKind::Chat => "chat session",
            },
            spec.repo.owner,
            spec.repo.name,
            spec.agent.name
        );
        self.pool.submit(Task {
            spec,
            stream,
            cancel: token,
        });
        self.push_state();
    }

    fn on_signal(&mut self, s: SignalEvent) {
        match s {
            SignalEvent::Shutdown => {
                let grace = self.cfg.shutdown_grace;
                log::info!(
                    "shutdown requested: draining; waiting up to {}s for {} running job(s) (signal again to cancel them now)",
                    grace.as_secs(),
                    self.table.running_count()
                );
                self.table.draining = true;
                self.shutdown = Shutdown::Draining {
                    deadline: Instant::now() + grace,
                };
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

    fn advance_shutdown(&mut self) {
        match self.shutdown {
            Shutdown::No | Shutdown::Done => {}
            Shutdown::Draining { deadline } => {
                if self.table.running_count() == 0 {
                    self.shutdown = Shutdown::Done;
                } else if Instant::now() >= deadline {
                    log::warn!(
                        "shutdown grace period over: cancelling {} job(s)",
                        self.table.running_count()
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

    /// Disk guard: below `ADOS_MIN_FREE_DISK`, new jobs are rejected as
    /// retryable and `/health` says why. Checked at most every 5 s.
    fn check_disk(&mut self) {
        let due = self
            .last_disk_check
            .map(|t| t.elapsed() >= Duration::from_secs(5))
            .unwrap_or(true);
        if !due {
            return;
        }
        self.last_disk_check = Some(Instant::now());
        let problem = match crate::workspace::free_space(&self.cfg.workspace_dir) {
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
        if problem.is_some() && self.metrics.health().disk_problem.is_none() {
            log::warn!("{}", problem.as_deref().unwrap_or_default());
        }
        self.metrics.set_disk_problem(problem);
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
