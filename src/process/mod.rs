//! The only module that starts child processes.
//!
//! # Design
//!
//! [`run`] spawns one child and supervises it on the calling thread until
//! the child and every process of its group are gone:
//!
//! - **Spawn** (`supervise.rs`): argv as a vector (never a shell), explicit
//!   cwd, `env_clear()` plus exactly [`CommandSpec::env`], stdin `/dev/null`
//!   or bytes-then-close, and `process_group(0)`: the child leads a new
//!   group and every signal goes to the whole group (`kill(-pgid)`). The
//!   observer hears the pgid before anything else happens.
//! - **Output** (`output.rs`): one named reader thread per pipe reads raw
//!   64 KiB chunks, redacts them with a `StreamRedactor` (a secret split
//!   across two reads is still caught), splits lines (lossy UTF-8, no
//!   trailing `\n`, a last line without `\n` counts) and sends them over a
//!   bounded channel; `on_line` runs on the caller's thread. A line over
//!   [`MAX_LINE`] (1 MiB) is cut: the rest of it is discarded as it
//!   streams, it is delivered cut, then a note line
//!   `[ados: line truncated: N bytes dropped]`, and counted in
//!   [`ProcessOutcome::lines_truncated`]. Memory per stream is bounded by
//!   the cap, whatever a child prints.
//! - **Supervision** (`supervise.rs`): a waiter thread reaps the leader and
//!   sends its status. The loop `select_biased!`s over cancel (first), exit,
//!   output and the next timer. Timeout or cancel: SIGTERM the group, keep
//!   draining, SIGKILL after `kill_grace`; [`CancelReason::Kill`] (or a
//!   second, stronger cancel, or a zero grace) SIGKILLs at once.
//! - **Leaks**: after the leader exits the pipes get 100 ms to reach EOF;
//!   if a descendant still holds them the run is `leaked` and the group is
//!   SIGKILLed. In every case the group is SIGKILLed once more at the end,
//!   so no process of the run outlives [`run`] (a member that closed its
//!   pipes and ran on in the background included).
//! - **Nothing blocks forever**: readers and the stdin writer poll with a
//!   short timeout and give up one second after the group was SIGKILLed.
//!   That only matters for a process that escaped the group with `setsid`:
//!   it cannot be killed through the group, but it can no longer hold
//!   `run` (or its threads) hostage either. Every thread is joined.
//!
//! Limits: a process that calls `setsid`/`setpgid` leaves the group and
//! survives the group kill (containers bound that; the runner does not
//! trace descendants). Orphans are reparented to PID 1, which reaps them;
//! a PID 1 that never reaps leaves zombies, which [`group_alive`] ignores.
//!
//! [`CancelReason::Kill`]: crate::job::CancelReason::Kill

mod env;
mod output;
mod spec;
mod supervise;
mod unix;

pub use env::{allowlisted_env, is_forbidden_name};
pub use output::{truncation_note, MAX_LINE, READ_CHUNK};
pub use spec::{
    Captured, CommandSpec, Ended, OutputStream, ProcessOutcome, RunOptions, SpawnError,
    SpawnObserver, Stdin, DEFAULT_KILL_GRACE,
};
pub use supervise::{run, run_captured, ABANDON_AFTER, LEAK_TIMEOUT};
pub use unix::{group_alive, kill_group};
