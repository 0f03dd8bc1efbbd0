//! The link thread: connect, run a session, reconnect with backoff, until
//! shut down. One connection's life is [`super::session`]; how a
//! connection is opened is [`super::connect`].
//!
//! # What is dropped
//!
//! Control frames ([`ToLink::Frame`]: `job.accepted`, `job.rejected`) that
//! arrive while no connection is up (from [`FromLink::Disconnected`] to
//! the next `welcome`, i.e. [`FromLink::Connected`]) are dropped: on
//! reconnect the server re-assigns what it has not seen accepted. Job
//! events are never dropped: they live in the journal until acknowledged.
//!
//! # Shutdown
//!
//! [`ToLink::Close`] makes the thread deliver the outbox until everything
//! is sent and acknowledged (or the deadline passes), close with a proper
//! close handshake, and end. While disconnected it keeps trying to connect
//! until the deadline, but only if something is left to deliver. A
//! connection attempt already under way is not interrupted: it is bounded
//! by its own timeouts (10 s connect, 10 s per handshake read or write),
//! and no attempt starts after the deadline.

use super::backoff::{Backoff, Failure, XorShift};
use super::connect::{self, ConnectError, Target, Ws, CONNECT_TIMEOUT};
use super::proto::RunnerState;
use super::Outbox;
use super::{FromLink, LinkConfig, ToLink};
use crate::metrics::Metrics;
use crate::net::url::without_credentials;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use polling::{Events, Poller};
use rustls::ClientConfig;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Why a session (one connection) ended.
pub(super) enum End {
    /// We closed for shutdown: the thread ends.
    Shutdown,
    /// Lost or refused: reconnect after a backoff.
    Lost {
        /// How to back off.
        failure: Failure,
        /// How long the connection was up after `welcome` (zero if never).
        up: Duration,
    },
}

/// The state of the link thread.
pub(crate) struct Worker {
    pub(super) cfg: LinkConfig,
    pub(super) url: String,
    pub(super) target: Target,
    pub(super) tls: Arc<ClientConfig>,
    pub(super) outbox: Outbox,
    pub(super) metrics: Arc<Metrics>,
    pub(super) from_link: Sender<FromLink>,
    pub(super) rx: Receiver<ToLink>,
    pub(super) poller: Arc<Poller>,
    pub(super) events: Events,
    pub(super) state: RunnerState,
    pub(super) backoff: Backoff,
    /// Shutdown requested: flush until this deadline, then exit.
    pub(super) closing: Option<Instant>,
}

impl Worker {
    /// A worker for `cfg`; `target` was checked by the caller.
    #[expect(clippy::too_many_arguments, reason = "one call site, in `start`")]
    pub(crate) fn new(
        cfg: LinkConfig,
        target: Target,
        tls: Arc<ClientConfig>,
        outbox: Outbox,
        metrics: Arc<Metrics>,
        from_link: Sender<FromLink>,
        rx: Receiver<ToLink>,
        poller: Arc<Poller>,
    ) -> Worker {
        let backoff = Backoff::new(cfg.max_backoff, XorShift::from_time());
        Worker {
            url: without_credentials(&cfg.url),
            cfg,
            target,
            tls,
            outbox,
            metrics,
            from_link,
            rx,
            poller,
            events: Events::new(),
            state: RunnerState::default(),
            backoff,
            closing: None,
        }
    }

    /// The thread body: connect, serve, reconnect, until shut down.
    pub(crate) fn run(mut self) {
        let mut after_failure = false;
        loop {
            self.take_messages_offline();
            if self.should_exit_offline() {
                break;
            }
            if after_failure {
                self.metrics.inc_reconnects();
            }
            let end = match self.connect() {
                Ok(ws) => self.session(ws),
                Err(e) => {
                    let failure = if e.is_auth() {
                        Failure::Auth
                    } else {
                        Failure::Ordinary
                    };
                    let delay = self.backoff.next_delay(failure);
                    if e.is_auth() {
                        log::error!(
                            "cannot connect to the control plane at {}: {e}; retrying in {:.1}s",
                            self.url,
                            delay.as_secs_f64()
                        );
                    } else {
                        log::warn!(
                            "cannot connect to the control plane at {}: {e}; retrying in {:.1}s",
                            self.url,
                            delay.as_secs_f64()
                        );
                    }
                    after_failure = true;
                    self.wait_offline(delay);
                    continue;
                }
            };
            match end {
                End::Shutdown => break,
                End::Lost { failure, up } => {
                    if Backoff::should_reset(up) {
                        self.backoff.reset();
                    }
                    let delay = self.backoff.next_delay(failure);
                    log::info!(
                        "reconnecting to {} in {:.1}s",
                        self.url,
                        delay.as_secs_f64()
                    );
                    after_failure = true;
                    self.wait_offline(delay);
                }
            }
        }
        log::info!("control-plane link closed");
    }

    /// Whether the thread may end while disconnected: shutdown requested
    /// and its deadline passed, or nothing left to deliver.
    fn should_exit_offline(&self) -> bool {
        match self.closing {
            None => false,
            Some(deadline) => {
                Instant::now() >= deadline
                    || (self.outbox.unacked() == 0 && self.outbox.held_jobs().is_empty())
            }
        }
    }

    /// Note a shutdown request (the earliest deadline wins).
    pub(super) fn close_by(&mut self, deadline: Instant) {
        self.closing = Some(self.closing.map_or(deadline, |d| d.min(deadline)));
    }

    /// Take every waiting message while no connection is up: control
    /// frames are dropped (the server re-assigns on reconnect).
    fn take_messages_offline(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(ToLink::Frame(frame)) => {
                    log::debug!(
                        "not connected: dropping a control frame of {} bytes",
                        frame.len()
                    );
                }
                Ok(ToLink::Track(stream)) => self.outbox.track(stream),
                Ok(ToLink::State(state)) => self.state = state,
                Ok(ToLink::Close { deadline }) => self.close_by(deadline),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    // Every `Link` is gone: nobody can ask us to close any more.
                    self.close_by(Instant::now());
                    break;
                }
            }
        }
    }

    /// Wait `delay` (or until shutdown makes waiting pointless) while
    /// still taking messages.
    fn wait_offline(&mut self, delay: Duration) {
        let until = Instant::now() + delay;
        loop {
            let until = self.closing.map_or(until, |d| d.min(until));
            let now = Instant::now();
            if now >= until || self.should_exit_offline() {
                return;
            }
            self.events.clear();
            if let Err(e) = self.poller.wait(&mut self.events, Some(until - now)) {
                log::debug!("poller wait: {e}");
            }
            self.take_messages_offline();
        }
    }

    /// One connection attempt (see [`connect::open`]), bounded by the
    /// shutdown deadline when one is set.
    fn connect(&self) -> Result<Ws, ConnectError> {
        let budget = match self.closing {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(CONNECT_TIMEOUT),
            None => CONNECT_TIMEOUT,
        };
        if budget.is_zero() {
            return Err(ConnectError::Timeout(
                "connecting before the shutdown deadline",
            ));
        }
        let dial = connect::Dial {
            url: &self.cfg.url,
            token: &self.cfg.token,
            runner_id: &self.cfg.runner_id,
            tenant_id: self.cfg.tenant_id.as_deref(),
            proxy: &self.cfg.proxy,
            tls: &self.tls,
        };
        connect::open(&dial, &self.target, budget).map(|(ws, _response)| ws)
    }

    pub(super) fn notify(&self, msg: FromLink) {
        if self.from_link.send(msg).is_err() {
            log::debug!("dispatcher gone; link message dropped");
        }
    }
}
