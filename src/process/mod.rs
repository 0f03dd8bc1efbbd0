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
//!   That only matters for a process that escaped the group with `setsid`
//!   and was not found by its marker (below): it cannot be killed through
//!   the group, but it can no longer hold `run` (or its threads) hostage
//!   either. Every thread is joined.
//!
//! - **Escapees** (`sweep.rs`): a process that calls `setsid`/`setpgid`
//!   leaves the group and survives the group kill. Every run's leader
//!   carries a marker of its own in its environment ([`MARKER_VAR`]); each
//!   time the group is SIGKILLed, and always at the end, `/proc` is scanned
//!   and every live process started since the run began that carries the
//!   marker, and everything below it, is SIGKILLed. The runner binary is a
//!   child subreaper ([`become_subreaper`]): orphans come back to it, and
//!   it reaps zombie children that are no live run's leader, by pid, so a
//!   waiter thread's exit status is never taken. Limits (in `sweep.rs`): a
//!   process that clears its environment and loses its parent is not
//!   found. Without the subreaper, orphans go to PID 1; a PID 1 that never
//!   reaps leaves zombies, which [`group_alive`] ignores.
//! - **The runner's own secrets**: the binary makes itself non-dumpable
//!   ([`make_non_dumpable`]) so a same-uid child cannot read its
//!   environment; children are dumpable again after `execve`.
//!
//! [`CancelReason::Kill`]: crate::cancel::CancelReason::Kill

mod env;
mod output;
mod spec;
mod supervise;
mod sweep;
mod unix;

pub use env::{allowlisted_env, is_forbidden_name};
pub use output::{truncation_note, MAX_LINE, READ_CHUNK};
pub use spec::{
    Captured, CommandSpec, Ended, OutputStream, ProcessOutcome, RunOptions, SpawnError,
    SpawnObserver, Stdin, DEFAULT_KILL_GRACE,
};
pub use supervise::{run, run_captured, ABANDON_AFTER, LEAK_TIMEOUT};
pub use sweep::{become_subreaper, MARKER_VAR};
pub use unix::{group_alive, kill_group, make_non_dumpable};
