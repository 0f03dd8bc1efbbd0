//! Jobs, as vocabulary: what the control plane asks for ([`spec`] and its
//! validation), what a job says while it runs ([`event`], [`reporter`]),
//! and how it is stopped ([`cancel`]). Nothing here imports the layers
//! above; the run of a job is [`crate::run`].

pub mod cancel;
pub mod event;
pub mod reporter;
pub mod spec;

pub use cancel::{CancelReason, CancelToken};
pub use event::{Event, JobResult, ResultStatus, Status};
pub use reporter::{EventSink, Reporter};
pub use spec::{JobId, JobSpec, SpecError};
