//! What the dispatcher reacts to, and the one place that waits for it.
//!
//! [`Inbox::next_event`] is the dispatcher's only blocking call: one
//! `select_biased!` over the receivers of the other threads, with a tick
//! for time-driven work. It decides nothing; [`super::Dispatcher::handle`]
//! does, so the two can be tested apart (the rust-analyzer main-loop shape).

use crate::link::FromLink;
use crate::pool::WorkerReport;
use crate::signal::SignalEvent;
use crossbeam_channel::{never, select_biased, Receiver};
use std::time::Duration;

/// Everything the dispatcher reacts to.
#[derive(Debug)]
pub enum Event {
    /// The link said something.
    Link(FromLink),
    /// A signal arrived.
    Signal(SignalEvent),
    /// A worker finished a job (its result is in the journal) or died.
    Worker(WorkerReport),
    /// Time passed (shutdown deadlines, disk checks).
    Tick,
}

/// The receiving ends of the channels other threads talk to the
/// dispatcher on.
pub struct Inbox {
    signals: Receiver<SignalEvent>,
    workers: Receiver<WorkerReport>,
    link: Receiver<FromLink>,
}

impl Inbox {
    /// An inbox over the link's, the signal thread's and the workers'
    /// channels.
    pub fn new(
        link: Receiver<FromLink>,
        signals: Receiver<SignalEvent>,
        workers: Receiver<WorkerReport>,
    ) -> Inbox {
        Inbox {
            signals,
            workers,
            link,
        }
    }

    /// Wait for the next event, at most `tick`. Signals first, then
    /// workers, then the link (style.md: `select_biased!`).
    ///
    /// A closed channel is not an event: a disconnected receiver is ready
    /// forever, and turning it into a `Tick` would make this loop spin at
    /// full CPU and starve the others. The first time one is seen closed
    /// it is swapped for `never()` (as `process/supervise.rs` does with a
    /// reaped child) and the wait goes on.
    pub fn next_event(&mut self, tick: Duration) -> Event {
        loop {
            select_biased! {
                recv(self.signals) -> s => match s {
                    Ok(s) => return Event::Signal(s),
                    Err(_) => {
                        log::warn!("the signal thread has ended: signals are no longer handled");
                        self.signals = never();
                    }
                },
                recv(self.workers) -> w => match w {
                    Ok(w) => return Event::Worker(w),
                    Err(_) => {
                        log::error!("every worker thread has ended: no job can finish");
                        self.workers = never();
                    }
                },
                recv(self.link) -> m => match m {
                    Ok(m) => return Event::Link(m),
                    Err(_) => {
                        log::error!("the control-plane link thread has ended: nothing more is received");
                        self.link = never();
                    }
                },
                default(tick) => return Event::Tick,
            }
        }
    }
}
