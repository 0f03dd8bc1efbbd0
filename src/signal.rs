//! OS signals turned into typed [`SignalEvent`]s on a channel, so the
//! dispatcher handles them like any other event (style.md, rule 9).
//!
//! The first SIGTERM or SIGINT asks for a graceful drain, the second for
//! killing every job's process group, the third for exiting at once.
//! SIGTSTP is caught and dropped: the daemon has no terminal and must not
//! be stopped by a stray Ctrl-Z, and it is not forwarded to jobs (a handler,
//! unlike SIG_IGN, is reset on exec, so children keep the default).
//!
//! Handling happens on a named thread reading signal-hook's self-pipe, so
//! nothing here runs inside a signal handler. Note that signal-hook may
//! coalesce two deliveries of the same signal that arrive before the thread
//! reads them; a person pressing Ctrl-C twice is far slower than that.

use crossbeam_channel::Sender;
use signal_hook::consts::{SIGINT, SIGTERM, SIGTSTP};
use signal_hook::iterator::{Handle, Signals};
use std::io;
use std::os::raw::c_int;
use std::thread::JoinHandle;

/// What the daemon should do about the signals received so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SignalEvent {
    /// First SIGTERM/SIGINT: stop taking jobs, cancel gracefully, drain.
    Shutdown,
    /// Second: SIGKILL every job's process group.
    Kill,
    /// Third and later: exit immediately.
    Exit,
}

impl SignalEvent {
    /// What the runner does now, for the log.
    pub fn describe(self) -> &'static str {
        match self {
            SignalEvent::Shutdown => {
                "shutting down: no new jobs, running ones finish (signal again to cancel them)"
            }
            SignalEvent::Kill => {
                "killing every running job's processes (signal again to exit at once)"
            }
            SignalEvent::Exit => "exiting at once",
        }
    }
}

/// The event for the `nth` (1-based) SIGTERM/SIGINT. Pure, so the
/// escalation is tested without sending signals.
pub fn event_for(nth: u32) -> SignalEvent {
    match nth {
        0 | 1 => SignalEvent::Shutdown,
        2 => SignalEvent::Kill,
        _ => SignalEvent::Exit,
    }
}

/// The signal thread. [`SignalHandle::close`] stops it; dropping the
/// handle does the same.
pub struct SignalHandle {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalHandle {
    /// Stop listening and join the thread.
    pub fn close(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the signal thread panicked");
            }
        }
    }
}

impl Drop for SignalHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Listen for SIGTERM and SIGINT (and swallow SIGTSTP) on a thread named
/// `ados-signals`, sending one [`SignalEvent`] per signal to `tx`.
///
/// # Errors
///
/// The handlers cannot be installed or the thread cannot be started.
pub fn spawn(tx: Sender<SignalEvent>) -> io::Result<SignalHandle> {
    spawn_for(&[SIGTERM, SIGINT], &[SIGTSTP], tx)
}

/// [`spawn`] with explicit signal sets, so tests can use SIGUSR1/SIGUSR2
/// instead of signals that would stop the test harness.
fn spawn_for(
    counted: &[c_int],
    ignored: &[c_int],
    tx: Sender<SignalEvent>,
) -> io::Result<SignalHandle> {
    let mut signals = Signals::new(counted.iter().chain(ignored))?;
    let handle = signals.handle();
    let ignored = ignored.to_vec();
    let thread = std::thread::Builder::new()
        .name("ados-signals".into())
        .spawn(move || {
            let mut count = 0u32;
            for sig in signals.forever() {
                if ignored.contains(&sig) {
                    log::debug!("ignoring signal {sig}: the runner is not under job control");
                    continue;
                }
                count = count.saturating_add(1);
                let event = event_for(count);
                log::warn!("received signal {sig} (#{count}): {}", event.describe());
                if tx.send(event).is_err() {
                    log::debug!("signal event {event:?} dropped: nobody listens any more");
                }
            }
        })?;
    Ok(SignalHandle {
        handle,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use signal_hook::consts::{SIGUSR1, SIGUSR2};
    use std::time::Duration;

    #[test]
    fn escalation_once_twice_thrice() {
        assert_eq!(event_for(1), SignalEvent::Shutdown);
        assert_eq!(event_for(2), SignalEvent::Kill);
        assert_eq!(event_for(3), SignalEvent::Exit);
        assert_eq!(event_for(7), SignalEvent::Exit);
        assert!(SignalEvent::Shutdown < SignalEvent::Kill && SignalEvent::Kill < SignalEvent::Exit);
    }

    #[test]
    fn real_signals_are_counted_and_ignored_ones_dropped() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let handle = spawn_for(&[SIGUSR1], &[SIGUSR2], tx).unwrap();
        let wait = Duration::from_secs(5);
        // Each signal is awaited before the next, so none are coalesced.
        signal_hook::low_level::raise(SIGUSR2).unwrap();
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        assert_eq!(rx.recv_timeout(wait), Ok(SignalEvent::Shutdown));
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        assert_eq!(rx.recv_timeout(wait), Ok(SignalEvent::Kill));
        signal_hook::low_level::raise(SIGUSR1).unwrap();
        assert_eq!(rx.recv_timeout(wait), Ok(SignalEvent::Exit));
        handle.close();
        // The thread is gone and dropped its sender: the channel is closed,
        // and the ignored SIGUSR2 produced no event.
        assert!(rx.recv_timeout(wait).is_err());
        assert!(rx.is_empty());
    }
}
