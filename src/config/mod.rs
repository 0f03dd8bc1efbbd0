//! Configuration: the ADOS environment variables turned into a validated
//! [`Config`]. Reading (`raw`) is separate from checking (`resolved`) so that
//! every problem can be reported at once.

mod custom;
mod detect;
mod memory;
mod raw;
mod resolved;
mod validate;

pub use custom::{CustomAgent, BUILTIN_AGENTS};
pub use memory::{format_memory, parse_memory};
pub use raw::RawEnv;
pub use resolved::{
    default_max_jobs, AgentKeys, Config, ConfigError, ConfigErrors, LogFormat, Mode, ProxySettings,
    Purpose, VcsCredentials, DEFAULT_MIN_FREE_DISK, MAX_JOBS_LIMIT, MEMORY_PER_JOB,
};
pub use validate::parse_http_url;
