//! The types of the process API: what to run ([`CommandSpec`]), how to run
//! it ([`RunOptions`]) and what happened ([`ProcessOutcome`]).

use crate::cancel::{CancelReason, CancelToken};
use crate::redact::Redactor;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// How long a group gets between SIGTERM and SIGKILL unless a spec says
/// otherwise.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);

/// A command to run: argv, working directory and the *whole* environment.
///
/// Nothing is inherited from the runner: the child starts from an empty
/// environment plus [`CommandSpec::env`] (use
/// [`allowlisted_env`](super::allowlisted_env) as a base).
#[derive(Clone)]
pub struct CommandSpec {
    /// The program, looked up on the `PATH` given in `env` when it has no `/`.
    pub program: String,
    /// Arguments, never passed through a shell.
    pub args: Vec<String>,
    /// The working directory (always explicit).
    pub cwd: PathBuf,
    /// The whole environment of the child (`env_clear()` then these).
    pub env: Vec<(String, String)>,
    /// What the child reads on stdin.
    pub stdin: Stdin,
    /// Wall-clock limit; `None` means no limit.
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL of the group (zero: SIGKILL at once).
    pub kill_grace: Duration,
    /// The unprivileged user the child runs as (`None`: the runner's own).
    pub run_as: Option<RunAs>,
    /// A `\r` ends a stderr line too (a `\r\n` is still one end): git's
    /// progress rewrites its line with `\r`, and each state must arrive
    /// as it happens, not as one long line at the end.
    pub stderr_cr_ends_line: bool,
    /// Whether the end of the run searches `/proc` for processes that left
    /// its group (`setsid`) and kills them (`sweep.rs`). On for everything
    /// a job controls (agents, tests, custom commands). Off only for a
    /// program the runner trusts not to leave its group: the scan reads
    /// every process's `/proc/<pid>/stat` on the machine, twice, and git
    /// (hooks, fsmonitor and detached gc turned off by `git/env.rs`) runs
    /// about 25 times a job — with 32 jobs at once the scans were most of
    /// the runner's own CPU (BENCHMARKS.md, benchmark 7).
    pub sweep_escapees: bool,
}

/// A user and group a child is started as (`setgid`, `setuid`, and no
/// supplementary groups). Only a runner started as root can give one: it
/// is how a job's agent and tests are kept from the runner's files and
/// from the jobs running beside it (see `workspace::JobDir::hand_to`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user id.
    pub uid: u32,
    /// The group id.
    pub gid: u32,
}

/// Debug shows env *names* only: values may hold credentials.
impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("CommandSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env_names", &names)
            .field("stdin", &self.stdin)
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .field("run_as", &self.run_as)
            .finish()
    }
}

impl CommandSpec {
    /// `program` in `cwd`, no arguments, an empty environment, stdin null,
    /// no timeout, the default kill grace.
    pub fn new(program: impl Into<String>, cwd: impl Into<PathBuf>) -> CommandSpec {
        CommandSpec {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
            stdin: Stdin::Null,
            timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
            run_as: None,
            stderr_cr_ends_line: false,
            sweep_escapees: true,
        }
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl Into<String>) -> CommandSpec {
        self.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> CommandSpec
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set one variable, replacing an earlier value of the same name.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> CommandSpec {
        self.set_env(name, value);
        self
    }

    /// Add variables (each replaces an earlier value of the same name).
    pub fn envs<I, K, V>(mut self, vars: I) -> CommandSpec
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        for (k, v) in vars {
            self.set_env(k, v);
        }
        self
    }

    /// Set one variable in place (replacing an earlier value).
    pub fn set_env(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.env.iter_mut().find(|(k, _)| *k == name) {
            Some(slot) => slot.1 = value,
            None => self.env.push((name, value)),
        }
    }

    /// Remove a variable, if present.
    pub fn remove_env(&mut self, name: &str) {
        self.env.retain(|(k, _)| k != name);
    }

    /// The value of a variable in this spec's environment.
    pub fn get_env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Set what the child reads on stdin.
    pub fn stdin(mut self, stdin: Stdin) -> CommandSpec {
        self.stdin = stdin;
        self
    }

    /// Set the wall-clock limit.
    pub fn timeout(mut self, timeout: Option<Duration>) -> CommandSpec {
        self.timeout = timeout;
        self
    }

    /// Set the SIGTERM→SIGKILL grace period.
    pub fn kill_grace(mut self, grace: Duration) -> CommandSpec {
        self.kill_grace = grace;
        self
    }

    /// The command as a person would read it (program and args, space
    /// separated; for messages, not for a shell).
    pub fn display(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }
}

/// What the child reads on stdin.
#[derive(Clone, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`: agent CLIs hang forever on a pipe that is never closed.
    Null,
    /// These bytes are written, then stdin is closed.
    Bytes(Vec<u8>),
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stdin::Null => f.write_str("Null"),
            // The bytes may be a prompt holding anything: show the size only.
            Stdin::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputStream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
}

impl OutputStream {
    /// `stdout` or `stderr`, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// Why the child stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited (or died of a signal) on its own.
    Exited,
    /// The spec's timeout expired and the group was terminated.
    TimedOut,
    /// A cancel request terminated the group.
    Cancelled(CancelReason),
}

/// What happened to a child. A failure of the child is data, not an `Err`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessOutcome {
    /// The exit code, when the leader exited normally.
    pub exit_code: Option<i32>,
    /// The signal that killed the leader, when one did.
    pub signal: Option<i32>,
    /// Why it stopped.
    pub ended: Ended,
    /// Wall time from spawn to the end of `run`.
    pub duration: Duration,
    /// The spec's timeout, so that a timeout can say its limit.
    pub timeout: Option<Duration>,
    /// A descendant still held stdout/stderr 100 ms after the leader
    /// exited (it was then killed with the group).
    pub leaked: bool,
    /// How many lines were cut at the line cap (each is followed by a note
    /// line `[ados: line truncated: N bytes dropped]`).
    pub lines_truncated: u64,
}

impl ProcessOutcome {
    /// Exited on its own with code 0.
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited && self.exit_code == Some(0)
    }

    /// A short description for messages: `exit code 1`, `killed by signal
    /// 9`, `timed out after 30m`, `cancelled by the control plane`.
    pub fn describe(&self) -> String {
        match self.ended {
            Ended::TimedOut => match self.timeout {
                Some(limit) => format!("timed out after {}", crate::words::duration(limit)),
                None => "timed out".to_string(),
            },
            Ended::Cancelled(r) => r.describe().to_string(),
            Ended::Exited => match (self.exit_code, self.signal) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => format!("killed by signal {s}"),
                (None, None) => "ended without an exit status".to_string(),
            },
        }
    }
}

/// Told about each process group as it starts and ends, so the daemon can
/// SIGKILL every group on a second signal.
pub trait SpawnObserver: Send + Sync {
    /// A group started; called before any output is read.
    fn spawned(&self, pgid: i32);
    /// The group is gone (every member dead).
    fn finished(&self, pgid: i32);
    /// `signal` is about to be sent to the group (timeout, cancel, a
    /// leaked descendant). An executor whose processes are not plain host
    /// processes acts here (a container is stopped with `docker stop`).
    fn signalling(&self, pgid: i32, signal: i32) {
        let _ = (pgid, signal);
    }
}

/// How to run: the cancel token to watch, the redactor applied to every
/// byte of output, and an optional observer.
pub struct RunOptions<'a> {
    /// Checked while the child runs; a cancel terminates the group.
    pub cancel: &'a CancelToken,
    /// Applied to the raw output before it is split into lines.
    pub redactor: &'a Redactor,
    /// Told the group id at spawn and when the group is gone.
    pub observer: Option<&'a dyn SpawnObserver>,
}

/// The child could not be started (or its plumbing could not be set up).
#[derive(Debug)]
pub struct SpawnError {
    /// The program that was to run.
    pub program: String,
    /// Why it could not start.
    pub source: io::Error,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not start `{}`: {}", self.program, self.source)?;
        if self.source.kind() == io::ErrorKind::NotFound {
            f.write_str(", is it installed and on PATH?")?;
        }
        Ok(())
    }
}

impl std::error::Error for SpawnError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The result of [`run_captured`](super::run_captured).
#[derive(Clone, Debug)]
pub struct Captured {
    /// What happened to the child.
    pub outcome: ProcessOutcome,
    /// Stdout lines, each followed by `\n`, up to the byte limit.
    pub stdout: String,
    /// Stderr lines, each followed by `\n`, up to the byte limit.
    pub stderr: String,
    /// Bytes dropped because a stream passed the limit.
    pub dropped_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_error_names_program_and_hints_at_path() {
        let e = SpawnError {
            program: "git".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        let s = e.to_string();
        assert!(s.starts_with("could not start `git`: "), "{s}");
        assert!(s.ends_with(", is it installed and on PATH?"), "{s}");
    }

    #[test]
    fn env_setters_replace_and_debug_hides_values() {
        let s = CommandSpec::new("x", "/")
            .env("A", "1")
            .env("TOKENISH", "hunter2-secret")
            .env("A", "2");
        assert_eq!(s.get_env("A"), Some("2"));
        assert_eq!(s.env.len(), 2);
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2") && d.contains("TOKENISH"), "{d}");
    }
}
