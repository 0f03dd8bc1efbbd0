//! Cancellation of a running job, from the dispatcher to the job's thread.
//!
//! A [`CancelToken`] is cheap to clone and is checked by the process
//! supervisor in its `select!` loop, so a cancel reaches a running child
//! within one loop turn. The severity order matters: a later, stronger
//! request (a second SIGTERM) upgrades an earlier one, never the reverse.
//!
//! It sits at the crate root, below everything that uses it: `process/`,
//! `git/` and `workspace` take a token without importing the job layer.

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// Why a job is being stopped, ordered by severity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CancelReason {
    /// The control plane sent `job.cancel`.
    Server,
    /// The runner is shutting down and the grace period ran out.
    Shutdown,
    /// A second signal: kill every process group at once (no SIGTERM grace).
    Kill,
}

impl CancelReason {
    fn code(self) -> u8 {
        match self {
            CancelReason::Server => 1,
            CancelReason::Shutdown => 2,
            CancelReason::Kill => 3,
        }
    }

    fn from_code(code: u8) -> Option<CancelReason> {
        match code {
            1 => Some(CancelReason::Server),
            2 => Some(CancelReason::Shutdown),
            3 => Some(CancelReason::Kill),
            _ => None,
        }
    }

    /// The text used in a `cancelled` result.
    pub fn describe(self) -> &'static str {
        match self {
            CancelReason::Server => "cancelled by the control plane",
            CancelReason::Shutdown => "cancelled: the runner is shutting down",
            CancelReason::Kill => "cancelled: the runner was told to stop at once",
        }
    }
}

/// The sending side: held by the dispatcher (or by `exec`'s Ctrl-C handler).
#[derive(Clone, Debug)]
pub struct Canceller {
    state: Arc<AtomicU8>,
    wake_tx: Sender<()>,
}

/// The receiving side: held by the job and everything it spawns.
#[derive(Clone, Debug)]
pub struct CancelToken {
    state: Arc<AtomicU8>,
    wake_rx: Receiver<()>,
    /// Keeps the wake channel connected even after every [`Canceller`] is
    /// dropped: a disconnected receiver would make `select!` spin.
    _keep_connected: Sender<()>,
}

/// A connected canceller/token pair.
pub fn cancel_pair() -> (Canceller, CancelToken) {
    let state = Arc::new(AtomicU8::new(0));
    // Unbounded but tiny: at most a few wake-ups per job.
    let (wake_tx, wake_rx) = crossbeam_channel::unbounded();
    (
        Canceller {
            state: state.clone(),
            wake_tx: wake_tx.clone(),
        },
        CancelToken {
            state,
            wake_rx,
            _keep_connected: wake_tx,
        },
    )
}

impl Canceller {
    /// Ask the job to stop. A weaker reason never overrides a stronger one.
    pub fn cancel(&self, reason: CancelReason) {
        self.state.fetch_max(reason.code(), Ordering::SeqCst);
        // The receiver may be gone (job already ended): nothing to wake.
        let _ = self.wake_tx.send(());
    }
}

impl CancelToken {
    /// A token that is never cancelled (tests, tools).
    pub fn never() -> CancelToken {
        cancel_pair().1
    }

    /// The strongest reason asked so far, if any.
    pub fn reason(&self) -> Option<CancelReason> {
        CancelReason::from_code(self.state.load(Ordering::SeqCst))
    }

    /// Whether any cancel was asked.
    pub fn is_cancelled(&self) -> bool {
        self.reason().is_some()
    }

    /// A channel that receives one message per cancel request; use it in
    /// `select!` next to a child's output, then read [`CancelToken::reason`].
    pub fn wake_rx(&self) -> &Receiver<()> {
        &self.wake_rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stronger_reason_wins_and_weaker_does_not_downgrade() {
        let (c, t) = cancel_pair();
        assert_eq!(t.reason(), None);
        c.cancel(CancelReason::Kill);
        c.cancel(CancelReason::Server);
        assert_eq!(t.reason(), Some(CancelReason::Kill));
        assert!(t.wake_rx().try_recv().is_ok());
    }
}
