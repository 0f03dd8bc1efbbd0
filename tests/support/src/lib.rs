//! Test doubles for ados-work-runner, shared by every integration test and
//! runnable by hand (`ados-control-plane`):
//!
//! - [`control_plane`]: a control plane speaking `protocol.md`.
//! - [`docker`]: locally built Docker images (no registry) and Docker helpers.
//! - [`docker_runner`]: a runner with the Docker executor and its control plane.
//! - [`runner_container`]: the runner's `full` image run as the docs say.
//! - [`git_server`]: a smart-HTTP git server (`git http-backend`) that
//!   demands a token.
//! - [`tls`]: a private CA and a `localhost` certificate for wss tests.
//! - [`proxy`]: an HTTP CONNECT proxy that records its requests.
//! - [`forge`]: stand-ins for the GitHub, GitLab and Bitbucket REST APIs.
//! - [`fixtures`]: temp dirs, bare repositories, the fake agent CLIs.
//! - [`harness`]: the runner binary with all of the above, for pipeline
//!   tests of whole jobs.

pub mod control_plane;
pub mod docker;
pub mod docker_runner;
pub mod fixtures;
pub mod forge;
pub mod git_server;
pub mod harness;
pub mod proxy;
pub mod runner;
pub mod runner_container;
pub mod tls;
