//! Typed git invocations, built on [`crate::process`]: this module owns
//! every git argv and environment the runner uses.
//!
//! - [`GitEnv`]: the environment of every git process (allowlisted env,
//!   per-job `HOME`, no system/global config, `GIT_ALLOW_PROTOCOL`, and the
//!   credential as an `http.<remote>.extraHeader` passed through
//!   `GIT_CONFIG_*` variables: never argv, URL, `.git/config` or a file).
//! - [`Git`]: runs one git command with cancel, timeout and redaction, and
//!   hands stdout/stderr lines to the caller (stream `git`).
//! - [`Mirror`]: one bare mirror per repository under `mirrors/`, updated
//!   under the repository's flock; its clone and fetch run with
//!   `--progress`, read by [`progress`] into the step's status detail.
//! - [`Checkout`]: a job's working copy, cloned from the mirror (no history
//!   downloaded twice); branch, status, commit, diff, push.
//!
//! Trust boundary: the checkout is the agent's playground, so its
//! `.git/config` and hooks are not trusted. No process that carries the
//! credential ever runs inside it: pushes and remote queries run in the
//! runner-owned mirror (the checkout's commits are first fetched into the
//! mirror over the local file transport, without the credential).

mod auth;
mod checkout;
mod env;
mod error;
mod mirror;
mod parse;
mod progress;
mod push;
mod run;
mod runner_dir;

pub use auth::GitAuth;
pub use checkout::{BranchDiff, Checkout, ScanDiff};
pub use env::{Author, GitEnv};
pub use error::{GitError, GitStep};
pub use mirror::Mirror;
pub use parse::{AddedLine, ChangeKind, ChangedFile};
pub use progress::{parse as parse_progress, Progress, ProgressThrottle};
pub use push::{PushMode, PushOutcome};
pub use run::{git_version, git_version_line, parse_version, Git, MIN_GIT_VERSION};
