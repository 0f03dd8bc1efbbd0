//! Delivery of a job's work to its repository host, above the typed git
//! invocations of [`crate::git`]:
//!
//! - [`delivery`]: commit → secret scan → push, the trust boundary (a push
//!   needs a commit the scan cleared).
//! - [`guard`]: the secret scan itself (known secrets, token shapes, file
//!   names, and "could not see everything" as a finding).
//! - [`auth`]: which credential a job's git presents (the job's token or
//!   the runner's), read from the runner's configuration.
//! - [`forge`]: the pull (merge) request on GitHub, GitLab or Bitbucket,
//!   opened or updated after the push.

pub mod auth;
pub mod delivery;
pub mod forge;
pub mod guard;

pub use auth::auth_for;
