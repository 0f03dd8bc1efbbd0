//! Child processes: the only place that spawns one.
//!
//! MINIMAL STAND-IN written by the git helper so `git/` can be built and
//! tested in parallel; the process helper's real module replaces this file
//! at merge. It keeps to the agreed signatures and nothing more: own process
//! group, `env_clear`, stdin from `/dev/null` (or given bytes), stdout and
//! stderr read on two threads, crude timeout and cancel (SIGKILL the group).

use crate::job::cancel::{CancelReason, CancelToken};
use crate::redact::Redactor;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Everything needed to start one child.
#[derive(Clone, Debug)]
pub struct CommandSpec {
    /// Program name (looked up in the given `PATH`) or absolute path.
    pub program: String,
    /// Arguments, never a shell line.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The whole environment: the child starts from an empty one.
    pub env: Vec<(String, String)>,
    /// What the child reads on stdin.
    pub stdin: Stdin,
    /// Kill the child after this long.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

/// The child's stdin.
#[derive(Clone, Debug)]
pub enum Stdin {
    /// `/dev/null`.
    Null,
    /// These bytes, then EOF.
    Bytes(Vec<u8>),
}

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

/// How a child ended.
#[derive(Clone, Debug)]
pub struct ProcessOutcome {
    /// Exit code, when it exited.
    pub exit_code: Option<i32>,
    /// Signal that ended it, if any.
    pub signal: Option<i32>,
    /// Why it ended.
    pub ended: Ended,
    /// Wall time.
    pub duration: Duration,
    /// A descendant kept the pipes open after the child exited.
    pub leaked: bool,
    /// Lines dropped or cut by the output caps.
    pub lines_truncated: u64,
}

impl ProcessOutcome {
    /// Exited by itself with code 0.
    pub fn success(&self) -> bool {
        matches!(self.ended, Ended::Exited) && self.exit_code == Some(0)
    }
}

/// Why a child ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// On its own.
    Exited,
    /// Killed at its timeout.
    TimedOut,
    /// Killed because the job was cancelled.
    Cancelled(CancelReason),
}

/// Shared per-run settings.
pub struct RunOptions<'a> {
    /// Cancels the child.
    pub cancel: &'a CancelToken,
    /// Applied to every output line.
    pub redactor: &'a Redactor,
    /// Told about spawns (metrics, tests).
    pub observer: Option<&'a dyn SpawnObserver>,
}

/// Told when a child starts.
pub trait SpawnObserver: Sync {
    /// A child started with this process-group id.
    fn spawned(&self, pgid: i32);
}

/// The child could not be started.
#[derive(Debug)]
pub struct SpawnError {
    /// The program.
    pub program: String,
    /// The OS error.
    pub error: std::io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot start `{}`: {}", self.program, self.error)
    }
}

impl std::error::Error for SpawnError {}

/// Run a child to the end, handing each output line to `on_line`.
pub fn run(
    spec: &CommandSpec,
    opts: &RunOptions,
    on_line: &mut dyn FnMut(OutputStream, &str),
) -> Result<ProcessOutcome, SpawnError> {
    let start = Instant::now();
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd.stdin(match spec.stdin {
        Stdin::Null => Stdio::null(),
        Stdin::Bytes(_) => Stdio::piped(),
    });
    let mut child = cmd.spawn().map_err(|error| SpawnError {
        program: spec.program.clone(),
        error,
    })?;
    let pgid = child.id() as i32;
    if let Some(o) = opts.observer {
        o.spawned(pgid);
    }
    let (tx, rx) = crossbeam_channel::unbounded::<(OutputStream, String)>();
    let mut readers = Vec::new();
    if let Some(out) = child.stdout.take() {
        readers.push(spawn_reader(OutputStream::Stdout, out, tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.push(spawn_reader(OutputStream::Stderr, err, tx.clone()));
    }
    drop(tx);
    let writer = match (&spec.stdin, child.stdin.take()) {
        (Stdin::Bytes(b), Some(mut w)) => {
            let b = b.clone();
            Some(std::thread::spawn(move || {
                let _ = w.write_all(&b);
            }))
        }
        _ => None,
    };
    let deadline = spec.timeout.map(|t| start + t);
    let mut ended = Ended::Exited;
    let status = loop {
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok((s, l)) => on_line(s, &opts.redactor.redact(&l)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
        }
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        let cancel = opts.cancel.reason();
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if cancel.is_some() || timed_out {
            ended = match cancel {
                Some(r) => Ended::Cancelled(r),
                None => Ended::TimedOut,
            };
            // SAFETY: plain kill(2) on our own child's process group.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
            match child.wait() {
                Ok(st) => break st,
                Err(error) => {
                    return Err(SpawnError {
                        program: spec.program.clone(),
                        error,
                    })
                }
            }
        }
    };
    // SAFETY: kill(2) on our child's group; ESRCH when already gone is fine.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    for (s, l) in rx.iter() {
        on_line(s, &opts.redactor.redact(&l));
    }
    for r in readers {
        let _ = r.join();
    }
    if let Some(w) = writer {
        let _ = w.join();
    }
    Ok(ProcessOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        ended,
        duration: start.elapsed(),
        leaked: false,
        lines_truncated: 0,
    })
}

fn spawn_reader(
    stream: OutputStream,
    pipe: impl Read + Send + 'static,
    tx: crossbeam_channel::Sender<(OutputStream, String)>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while buf.last() == Some(&b'\n') || buf.last() == Some(&b'\r') {
                        buf.pop();
                    }
                    let _ = tx.send((stream, String::from_utf8_lossy(&buf).into_owned()));
                }
            }
        }
    })
}

/// The variables a child may inherit from the runner's environment, with
/// `extra_path` put first in `PATH`.
pub fn allowlisted_env(extra_path: Option<&Path>) -> Vec<(String, String)> {
    const KEEP: &[&str] = &[
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "TZ",
        "TMPDIR",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    let mut out: Vec<(String, String)> = KEEP
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
        .collect();
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into());
    let path = match extra_path {
        Some(p) => format!("{}:{path}", p.display()),
        None => path,
    };
    out.push(("PATH".into(), path));
    out
}
