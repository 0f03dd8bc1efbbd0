//! ados-work-runner: the self-hosted job execution engine of ADOS.
//!
//! The module tree is the architecture (see `docs/architecture.md`):
//!
//! - [`config`]: the environment turned into a validated [`config::Config`].
//! - [`link`]: the one thread that owns the control-plane WebSocket.
//! - [`net`]: URLs, `NO_PROXY`, the proxy tunnel, TLS and the HTTP client.
//! - [`dispatch`]: the main loop; sole owner of the daemon's job table.
//! - [`pool`]: the fixed pool of worker threads jobs run on.
//! - [`job`]: the vocabulary of jobs: specs, their validation, events, results.
//! - [`run`]: the run of a job: context, one sequencer per stage, its steps.
//! - [`vcs`]: delivery (commit, secret scan, push) and the choice of
//!   credentials.
//! - [`cancel`]: stopping a running job, from the dispatcher to its processes.
//! - [`process`]: the only place that spawns a child process.
//! - [`git`], [`workspace`]: typed git invocations and the on-disk layout.
//! - [`agents`]: one adapter per agent CLI.
//! - [`executors`]: where a command runs (the host, or a container per job).
//! - [`journal`]: the on-disk record of every job event until it is acked.
//! - [`redact`]: secret redaction applied to everything that leaves a job.
//! - [`health`]: `/health` and `/metrics`.
//! - [`logging`]: text or JSON log lines; [`words`]: counts and durations
//!   as a person reads them.
#![warn(missing_docs)]

pub mod agents;
pub mod base64;
pub mod cancel;
pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod dispatch;
pub mod egress;
pub mod exec;
pub mod exec_input;
pub mod executors;
pub mod git;
pub mod health;
pub mod job;
pub mod journal;
pub mod link;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod pool;
pub mod process;
pub mod recovery;
pub mod redact;
pub mod registries;
pub mod run;
pub mod signal;
#[cfg(test)]
pub(crate) mod testing;
pub mod vcs;
pub mod words;
pub mod workspace;

/// The runner's version, as sent in `hello` and `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
