//! Running one git command through [`crate::process`].

use super::env::{Access, GitEnv};
use super::error::{looks_like_auth_failure, GitError, GitStep};
use crate::cancel::CancelToken;
use crate::process::{self, CommandSpec, Ended, OutputStream, RunOptions, Stdin};
use crate::redact::Redactor;
use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

/// The oldest git the runner supports: `GIT_CONFIG_COUNT` needs 2.31.
pub const MIN_GIT_VERSION: (u32, u32, u32) = (2, 31, 0);

/// How many of git's last stderr lines an error keeps.
const STDERR_TAIL: usize = 12;
/// Bytes of stdout a query keeps; past this the output is cut (and said so).
const STDOUT_CAP: usize = 64 << 20;
/// SIGTERM → SIGKILL grace for git: it holds no state worth a long wait.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Runs git commands for one job: its environment, cancel token, redactor
/// and timeout, and the callback that receives git's output lines (the
/// pipeline logs them as stream `git`). Lines are redacted before the
/// callback sees them.
pub struct Git<'a> {
    env: &'a GitEnv,
    cancel: &'a CancelToken,
    redactor: Redactor,
    timeout: Option<Duration>,
    on_line: &'a mut dyn FnMut(&str),
}

/// What a git command is asked to do with its stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Capture {
    /// Forward every line to the callback.
    Forward,
    /// Keep stdout (redacted) for parsing; do not forward it.
    Keep,
    /// Keep stdout unredacted (the secret scan must see real values); it is
    /// never forwarded, logged or put in an error.
    KeepRaw,
}

/// One git command.
pub(crate) struct Invocation<'p> {
    pub step: GitStep,
    pub cwd: &'p Path,
    pub args: Vec<String>,
    pub access: Access,
    pub extra_env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub capture: Capture,
    /// Bytes of stdout kept; past it the output is marked cut.
    pub stdout_cap: usize,
}

impl<'p> Invocation<'p> {
    pub fn new(step: GitStep, cwd: &'p Path, access: Access, args: &[&str]) -> Invocation<'p> {
        Invocation {
            step,
            cwd,
            args: args.iter().map(|s| s.to_string()).collect(),
            access,
            extra_env: Vec::new(),
            stdin: None,
            capture: Capture::Forward,
            stdout_cap: STDOUT_CAP,
        }
    }

    pub fn capture(mut self, c: Capture) -> Self {
        self.capture = c;
        self
    }
}

/// A finished git command (it exited by itself).
#[derive(Debug)]
pub(crate) struct GitOutput {
    pub step: GitStep,
    pub access: Access,
    pub exit_code: Option<i32>,
    pub stdout: Vec<String>,
    pub stdout_cut: bool,
    /// git's last stderr lines, redacted.
    pub stderr: String,
}

impl GitOutput {
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// `Ok(self)` on exit 0, else the typed error.
    pub fn check(self) -> Result<GitOutput, GitError> {
        if self.success() {
            return Ok(self);
        }
        Err(self.into_error())
    }

    pub fn into_error(self) -> GitError {
        if self.access == Access::Network && looks_like_auth_failure(&self.stderr) {
            return GitError::AuthFailed {
                step: self.step,
                message: self.stderr,
            };
        }
        GitError::Failed {
            step: self.step,
            exit_code: self.exit_code,
            message: self.stderr,
        }
    }
}

impl<'a> Git<'a> {
    /// A runner for one job. `redactor` is the job's; the credential in
    /// `env` is added to it.
    pub fn new(
        env: &'a GitEnv,
        cancel: &'a CancelToken,
        redactor: &Redactor,
        on_line: &'a mut dyn FnMut(&str),
    ) -> Git<'a> {
        Git {
            env,
            cancel,
            redactor: redactor.with(env.secrets()),
            timeout: None,
            on_line,
        }
    }

    /// Kill any single git command that runs longer than `timeout`.
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Git<'a> {
        self.timeout = timeout;
        self
    }

    /// The environment.
    pub fn env(&self) -> &GitEnv {
        self.env
    }

    /// The cancel token.
    pub fn cancel(&self) -> &CancelToken {
        self.cancel
    }

    /// Runs `git <args>` in `cwd` as a local command (no credential; the
    /// protocol allowlist applies). Returns stdout's lines; stderr goes to
    /// the callback.
    ///
    /// # Errors
    /// Any [`GitError`] of a command, tagged with `step`.
    pub fn run_local(
        &mut self,
        step: GitStep,
        cwd: &Path,
        args: &[&str],
    ) -> Result<Vec<String>, GitError> {
        let inv = Invocation::new(step, cwd, Access::Local, args).capture(Capture::Keep);
        Ok(self.exec(inv)?.check()?.stdout)
    }

    /// Runs one command; `Ok` whenever git exited by itself (any code).
    pub(crate) fn exec(&mut self, inv: Invocation<'_>) -> Result<GitOutput, GitError> {
        // A cancelled job starts no new git command, however quick.
        if let Some(reason) = self.cancel.reason() {
            return Err(GitError::Cancelled {
                step: inv.step,
                reason,
            });
        }
        let spec = CommandSpec {
            program: self.env.program().to_string(),
            args: inv.args,
            cwd: inv.cwd.to_path_buf(),
            env: {
                let mut env = self.env.vars(inv.access, &inv.extra_env);
                // git looks for a repository in cwd only, never in a parent:
                // a broken mirror or checkout must fail, not silently act on
                // whatever repository encloses WORKSPACE_DIR.
                if let Some(parent) = inv.cwd.parent() {
                    env.push((
                        "GIT_CEILING_DIRECTORIES".into(),
                        parent.display().to_string(),
                    ));
                }
                env
            },
            stdin: match inv.stdin {
                Some(b) => Stdin::Bytes(b),
                None => Stdin::Null,
            },
            timeout: self.timeout,
            kill_grace: KILL_GRACE,
            // git runs as the runner: the credential and the mirror are its.
            run_as: None,
            // `--progress` rewrites its line with `\r`.
            stderr_cr_ends_line: true,
            // git cannot leave its group: no hooks, no fsmonitor, no
            // detached gc (env.rs). Its group is still killed whole.
            sweep_escapees: false,
        };
        let empty = Redactor::empty();
        let opts = RunOptions {
            cancel: self.cancel,
            redactor: if inv.capture == Capture::KeepRaw {
                &empty
            } else {
                &self.redactor
            },
            observer: None,
        };
        let mut stdout = Vec::new();
        let mut stdout_bytes = 0usize;
        let mut stdout_cut = false;
        let mut tail: VecDeque<String> = VecDeque::new();
        let redactor = &self.redactor;
        let forward = &mut *self.on_line;
        let mut on_line = |stream: OutputStream, line: &str| match (stream, inv.capture) {
            (OutputStream::Stdout, Capture::Keep | Capture::KeepRaw) => {
                stdout_bytes += line.len() + 1;
                if stdout_bytes > inv.stdout_cap {
                    stdout_cut = true;
                } else {
                    stdout.push(line.to_string());
                }
            }
            _ => {
                let clean = redactor.redact(line);
                forward(&clean);
                // Progress states are not what went wrong: they would push
                // git's real message out of the error's tail.
                if stream == OutputStream::Stderr
                    && !clean.trim().is_empty()
                    && super::progress::parse(&clean).is_none()
                {
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(clean.into_owned());
                }
            }
        };
        let outcome = process::run(&spec, &opts, &mut on_line).map_err(|e| GitError::Spawn {
            step: inv.step,
            message: redactor.redact(&e.to_string()).into_owned(),
        })?;
        match outcome.ended {
            Ended::Cancelled(reason) => Err(GitError::Cancelled {
                step: inv.step,
                reason,
            }),
            Ended::TimedOut => Err(GitError::TimedOut {
                step: inv.step,
                after: self.timeout.unwrap_or_default(),
            }),
            Ended::Exited => Ok(GitOutput {
                step: inv.step,
                access: inv.access,
                exit_code: outcome.exit_code,
                stdout,
                // A line cut at the process layer's line cap is a cut
                // output too: a parser must not take it for the whole.
                stdout_cut: stdout_cut
                    || (inv.capture != Capture::Forward && outcome.lines_truncated > 0),
                stderr: tail.into_iter().collect::<Vec<_>>().join("\n"),
            }),
        }
    }
}

/// The first line of `git --version`, run exactly as the runner runs git
/// for a job (its environment, its process handling): `check` reports
/// what the daemon will find.
///
/// # Errors
/// git cannot be run, or printed nothing.
pub fn git_version_line() -> Result<String, String> {
    let tmp = std::env::temp_dir();
    let env = GitEnv::local(&tmp, None);
    let cancel = CancelToken::never();
    let mut sink = |_: &str| {};
    let mut git = Git::new(&env, &cancel, &Redactor::empty(), &mut sink)
        .with_timeout(Some(Duration::from_secs(10)));
    let out = git
        .run_local(GitStep::Version, &tmp, &["--version"])
        .map_err(|e| e.to_string())?;
    out.first()
        .map(|l| l.trim().to_string())
        .ok_or_else(|| "`git --version` printed nothing".to_string())
}

/// The installed git's version (`None`: no usable git).
pub fn git_version() -> Option<(u32, u32, u32)> {
    parse_version(&git_version_line().ok()?)
}

/// `git version 2.39.2.windows.1` → `(2, 39, 2)`.
pub fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    let v = line.trim().strip_prefix("git version ")?;
    let v = v.split_whitespace().next()?;
    let mut parts = v.split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u32>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next()??;
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_lines_parse() {
        assert_eq!(parse_version("git version 2.47.3"), Some((2, 47, 3)));
        assert_eq!(
            parse_version("git version 2.39.2.windows.1\n"),
            Some((2, 39, 2))
        );
        assert_eq!(
            parse_version("git version 2.37.1 (Apple Git-137.1)"),
            Some((2, 37, 1))
        );
        assert_eq!(parse_version("git version 2.40"), Some((2, 40, 0)));
        assert_eq!(parse_version("hub version 1"), None);
    }

    #[test]
    fn installed_git_is_found() {
        let v = git_version().expect("git is installed on the build machine");
        assert!(v >= MIN_GIT_VERSION, "{v:?}");
    }
}
