//! The run of a job, from its spec to its result, above the vocabulary of
//! [`crate::job`] (which imports nothing from here).
//!
//! - [`context`]: [`JobContext`] (what every job shares) and [`JobRunner`]
//!   (one job: spec, cancel token, deadline, its executor, journal stream).
//! - [`stage`]: one small sequencer per stage (implement, repair, plan,
//!   review), each picking its steps; [`chat`]: chat sessions, which
//!   reuse the prepare, agent, deliver and pull-request steps.
//! - The steps, each a function taking what it needs and returning a
//!   small struct: [`prepare`] (workspace, mirror, checkout, registries,
//!   working directory), [`agent`] (attempts, fallbacks),
//!   [`test_repair`] (tests, repair runs), [`deliver`] (commit, scan and
//!   push through [`crate::vcs::delivery`], then the result),
//!   [`pull_request`] (`merge_mode: pr`: open or update the PR through
//!   [`crate::vcs::forge`] with [`JobContext`]'s one network).
//! - [`review`]: the review's diff in its prompt and its verdict, and
//!   the discarding of what a read-only agent wrote anyway.
//! - [`prompt`]: the agent's prompt and the test command; [`repo_file`]:
//!   bounded reads of repository files that stay inside the checkout.

pub mod agent;
pub mod chat;
pub mod context;
pub mod deliver;
pub mod prepare;
pub mod prompt;
pub mod pull_request;
pub mod repo_file;
pub mod review;
pub mod stage;
pub mod test_repair;

pub use context::{JobContext, JobRunner};
pub use prepare::workdir_of;
