//! Jobs, as vocabulary: what the control plane asks for ([`spec`] and its
//! validation), what a job says while it runs ([`event`], [`reporter`])
//! and what reaches a live chat session ([`chat`]). Nothing here imports
//! the layers above; the run of a job is [`crate::run`].

pub mod chat;
pub mod event;
pub mod reporter;
pub mod spec;
pub mod step_log;

/// Cancellation lives at the crate root ([`crate::cancel`]) so `process/`,
/// `git/` and `workspace` need not import `job/`; re-exported here as part
/// of the jobs' vocabulary.
pub use crate::cancel::{CancelReason, CancelToken};
pub use event::{Event, JobResult, ResultStatus, Status};
pub use reporter::{EventSink, Reporter};
pub use spec::{JobId, JobSpec, SpecError};
