//! Egress control (`ADOS_JOB_EGRESS=allowlist`): a fenced job container
//! reaches the network only through the runner's own proxy, which lets
//! each job reach its agent's API, its registries and `ADOS_EGRESS_ALLOW`,
//! and nothing else. docs/egress.md has the design and why.
//!
//! - [`allow`]: the allowlist entries, their parser and matcher.
//! - [`rules`]: what no entry lifts (metadata, the runner's own host) and
//!   the one decision.
//! - [`agents`]: each agent's API hosts; a job's allowlist.
//! - [`head`]: the request head a client sends the proxy.
//! - [`relay`]: bytes copied both ways, with an idle timeout.
//! - [`proxy`]: the proxy (listeners, jobs and their tokens, bounds).
//! - `conn`: one connection, from head to tunnel.
//! - [`forward`]: the in-container loopback-to-socket forwarder.

pub mod agents;
pub mod allow;
mod conn;
pub mod forward;
pub mod head;
pub mod proxy;
pub mod relay;
pub mod rules;

pub use allow::Allowlist;
pub use proxy::{EgressProxy, JobEgress, Limits};
