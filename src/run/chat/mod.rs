//! Chat sessions (`kind: chat`): one checkout, prepared once, and a turn
//! of the job's agent per user message, each resuming the CLI's own
//! session; `create_pr` pushes what changed so far and opens or updates
//! the PR; `chat.end`, the idle timeout or a drain end the session with
//! its result. See `docs/protocol.md` ("Chat sessions").
//!
//! - [`session`]: the session from spec to result.
//! - [`inbox`]: what the session does next (queued messages, drain,
//!   idle timeout, cancel).
//! - [`turn`]: answering one message (turn, reply, PR).
//! - [`prompt`]: the first turn's prompt.

mod inbox;
mod prompt;
mod session;
mod turn;

pub use session::run;
