//! The per-repository lock ([`MirrorLock`]): flock(2), released by the
//! kernel when its holder dies.

use crate::cancel::{CancelReason, CancelToken};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a repository lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The job was cancelled while waiting.
    Cancelled(CancelReason),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Io { path, error } => write!(
                f,
                "cannot lock {}: {error} (check that WORKSPACE_DIR is writable)",
                path.display()
            ),
            LockError::Cancelled(r) => {
                write!(f, "waiting for a repository lock: {}", r.describe())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// An exclusive flock(2) on `locks/<key>.lock`, released when dropped (the
/// file closes) or when the process dies (the kernel closes it).
#[derive(Debug)]
pub struct MirrorLock {
    // Held only for its descriptor: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

/// How often a blocked acquire re-tries `LOCK_NB`: short enough that a
/// cancel is seen quickly, long enough to cost nothing.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// How often a blocked acquire logs that it is still waiting.
const LOCK_LOG_EVERY: Duration = Duration::from_secs(10);

impl MirrorLock {
    /// Takes the lock, waiting as long as needed; logs every 10 s while it
    /// waits and gives up when `cancel` fires.
    ///
    /// # Errors
    /// [`LockError::Cancelled`] when cancelled; [`LockError::Io`] when the
    /// lock file cannot be opened or flock fails for another reason.
    pub fn acquire(path: &Path, cancel: &CancelToken) -> Result<MirrorLock, LockError> {
        let start = Instant::now();
        let mut next_log = start + LOCK_LOG_EVERY;
        loop {
            if let Some(lock) = MirrorLock::try_acquire(path)? {
                return Ok(lock);
            }
            if let Some(reason) = cancel.reason() {
                return Err(LockError::Cancelled(reason));
            }
            if Instant::now() >= next_log {
                log::info!(
                    "waiting for repository lock {} ({}s so far; another job is using this repository)",
                    path.display(),
                    start.elapsed().as_secs()
                );
                next_log += LOCK_LOG_EVERY;
            }
            // The wake channel doubles as an interruptible sleep.
            let _ = cancel.wake_rx().recv_timeout(LOCK_POLL);
        }
    }

    /// Takes the lock if it is free right now.
    ///
    /// # Errors
    /// [`LockError::Io`] when the file cannot be opened or flock fails with
    /// anything but "would block".
    pub fn try_acquire(path: &Path) -> Result<Option<MirrorLock>, LockError> {
        let io_err = |error| LockError::Io {
            path: path.to_path_buf(),
            error,
        };
        // std opens with O_CLOEXEC, so children never inherit (and never
        // prolong) the lock.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        loop {
            // SAFETY: flock(2) on a descriptor we own for the call's duration.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Some(MirrorLock {
                    _file: file,
                    path: path.to_path_buf(),
                }));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(io_err(e)),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
