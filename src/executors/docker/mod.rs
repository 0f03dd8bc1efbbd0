//! The Docker executor: each job's agent and test commands run in a
//! container of the job's own, started from `ADOS_JOB_IMAGE` at the job's
//! first command and removed when the job ends, whatever happened.
//!
//! - `runtime.rs`: [`DockerRuntime`], what every job container shares (the
//!   resolved image, limits, the runner's id, where the daemon finds the
//!   workspace, the `docker` CLI's own environment), built once at start.
//! - `command.rs`: the `docker` argv of each operation (`run`, `exec`,
//!   `stop`, `rm`, `ps`, the agent probe); the only place they are spelt.
//! - `container.rs`: one job container's life: created, stopped on a
//!   cancel or timeout, removed (explicitly, and by `Drop` as a guard).
//! - `executor.rs`: [`DockerExecutor`], the [`Executor`](super::Executor)
//!   of one job: `docker exec` through `crate::process`, and the hook that
//!   stops the container when `process::run` is about to signal.
//! - `probe.rs`: which agent CLIs the image holds; what `check` says.
//! - `sweep.rs`: containers a killed runner left behind, removed at start.
//! - `fence.rs`: the egress fence (`ADOS_JOB_EGRESS=allowlist`): no
//!   network but a forwarder to the runner's egress proxy.
//!
//! Every `docker` command is a `crate::process` child like any other; the
//! values of a command's environment travel only in the `docker` CLI's own
//! environment (`-e NAME` on its command line), so no secret is ever on a
//! command line, in a file, or in the container's configuration.

mod command;
mod container;
mod executor;
pub mod fence;
mod probe;
mod runtime;
mod sweep;

pub use executor::DockerExecutor;
pub use fence::EgressFence;
pub use probe::{CheckFinding, DockerCheck};
pub use runtime::DockerRuntime;

/// The name of this executor in `hello` and logs.
pub const NAME: &str = "docker";
