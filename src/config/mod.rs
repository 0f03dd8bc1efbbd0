//! Configuration: the ADOS environment variables turned into a validated
//! [`Config`]. Reading (`raw`) is separate from checking (`resolved`, which
//! assembles the `Config` with the readers in `vars` and collects every
//! `error` before failing) so that every problem can be reported at once.
//! `settings` holds the small types, `executor` where jobs run, `custom` the `ADOS_CUSTOM_AGENTS` file,
//! `variables` the table of every variable (`help env`).

mod custom;
mod detect;
mod egress;
mod error;
mod executor;
mod memory;
mod raw;
mod resolved;
mod settings;
#[cfg(test)]
mod tests;
mod validate;
pub mod variables;
mod vars;

pub use crate::net::ProxySettings;
pub use custom::{CustomAgent, BUILTIN_AGENTS};
pub use egress::EgressSetting;
pub use error::{ConfigError, ConfigErrors};
pub use executor::{
    DockerSettings, ExecutorSetting, JobImage, DEFAULT_JOB_NETWORK, DEFAULT_JOB_PIDS_LIMIT,
    DOCKER_CLI_VARS,
};
pub use memory::{format_binary, format_memory, parse_memory};
pub use raw::RawEnv;
pub use resolved::Config;
pub use settings::{
    default_max_jobs, AgentKeys, LogFormat, Mode, Purpose, VcsCredentials, DEFAULT_MIN_FREE_DISK,
    MAX_JOBS_LIMIT, MEMORY_PER_JOB,
};
pub use validate::parse_http_url;
