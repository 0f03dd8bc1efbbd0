//! Jobs: what the control plane asks for ([`spec`]), what a job says while
//! it runs ([`event`], [`reporter`]), and the steps that do the work
//! ([`pipeline`]).

pub mod event;
pub mod pipeline;
pub mod prompt;
pub mod reporter;
pub mod spec;

/// Cancellation lives at the crate root ([`crate::cancel`]) so `process/`,
/// `git/` and `workspace` need not import `job/`; re-exported here for the
/// job pipeline.
pub use crate::cancel::{CancelReason, CancelToken};
pub use event::{Event, JobResult, ResultStatus, Status};
pub use reporter::{EventSink, Reporter};
pub use spec::{JobId, JobSpec, SpecError};
