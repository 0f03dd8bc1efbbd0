//! Configuration: the ADOS environment variables turned into a validated
//! [`Config`]. Reading (`raw`) is separate from checking (`resolved`) so that
//! every problem can be reported at once.

mod memory;
mod raw;
mod resolved;

pub use memory::{format_memory, parse_memory};
pub use raw::RawEnv;
pub use resolved::{
    AgentKeys, Config, ConfigError, ConfigErrors, CustomAgent, LogFormat, Mode, ProxySettings,
    Purpose, VcsCredentials,
};
