//! The API hosts each built-in agent needs, allowed for a job while that
//! agent is one of the job's agents. One table; docs/egress.md repeats it
//! with where each entry came from, and a test keeps the two equal.
//!
//! Only what the agent needs to work with the credential the runner gives
//! it (an API key or token, never an interactive login) is listed:
//! telemetry and update checks are refused, and their refusals show in
//! the job's stream like any other. Custom agents get nothing here: their
//! hosts go in `ADOS_EGRESS_ALLOW`.

use super::allow::{authority, Allowlist, Entry};
use crate::job::spec::RegistrySpec;
use crate::net::Url;

/// (agent, host entries), every entry on port 443.
pub const AGENT_HOSTS: &[(&str, &[&str])] = &[
    ("claude", &["api.anthropic.com:443"]),
    ("codex", &["api.openai.com:443"]),
    (
        "copilot",
        &[
            "api.github.com:443",
            "*.githubcopilot.com:443",
            "copilot-proxy.githubusercontent.com:443",
        ],
    ),
];

/// The allowlist entries of the agent `name` (none for a custom agent).
pub fn agent_entries(name: &str) -> Vec<Entry> {
    AGENT_HOSTS
        .iter()
        .filter(|(agent, _)| *agent == name)
        .flat_map(|(_, hosts)| hosts.iter())
        .filter_map(|h| Entry::parse(h).ok())
        .collect()
}

/// The `host:port` of every registry of a job (`registries[].url`): the
/// job's package manager reaches them, and only this job's.
pub fn registry_entries(registries: &[RegistrySpec]) -> Vec<Entry> {
    registries
        .iter()
        .filter_map(|r| {
            let url = Url::parse(&r.url).ok()?;
            let port = url.port_or_default()?;
            Entry::parse(&authority(url.host(), port)).ok()
        })
        .collect()
}

/// A job's allowlist: `global` (`ADOS_EGRESS_ALLOW`), the API hosts of
/// each agent it may run, the hosts of its registries.
pub fn job_allowlist<'a>(
    global: &Allowlist,
    agents: impl IntoIterator<Item = &'a str>,
    registries: &[RegistrySpec],
) -> Allowlist {
    let mut entries: Vec<Entry> = global.entries().to_vec();
    for agent in agents {
        entries.extend(agent_entries(agent));
    }
    entries.extend(registry_entries(registries));
    Allowlist::of(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(url: &str) -> RegistrySpec {
        RegistrySpec {
            kind: "npm".into(),
            url: url.into(),
            scope: None,
            token: "reg-secret".into(),
        }
    }

    #[test]
    fn every_table_entry_parses() {
        for (agent, hosts) in AGENT_HOSTS {
            assert_eq!(agent_entries(agent).len(), hosts.len(), "{agent}");
        }
        assert!(agent_entries("my-custom-agent").is_empty());
    }

    #[test]
    fn a_job_gets_its_agents_and_its_registries_and_nothing_more() {
        let global = Allowlist::parse("ADOS_EGRESS_ALLOW", "pypi.org").unwrap();
        let regs = [
            registry("https://npm.corp.example/repo/"),
            registry("http://10.0.0.9:8081/maven"),
        ];
        let a = job_allowlist(&global, ["claude", "codex"], &regs);
        let ip = |s: &str| vec![s.parse().unwrap()];
        assert!(a.allows("api.anthropic.com", 443, &ip("1.1.1.1")));
        assert!(a.allows("api.openai.com", 443, &ip("1.1.1.1")));
        assert!(!a.allows("api.anthropic.com", 80, &ip("1.1.1.1")));
        assert!(!a.allows("api.githubcopilot.com", 443, &ip("1.1.1.1")));
        assert!(a.allows("npm.corp.example", 443, &ip("1.1.1.1")));
        assert!(!a.allows("npm.corp.example", 80, &ip("1.1.1.1")));
        assert!(a.allows("10.0.0.9", 8081, &ip("10.0.0.9")));
        assert!(a.allows("pypi.org", 443, &ip("1.1.1.1")));
        let other = job_allowlist(&global, ["copilot"], &[]);
        assert!(!other.allows("npm.corp.example", 443, &ip("1.1.1.1")));
        assert!(other.allows("x.business.githubcopilot.com", 443, &ip("1.1.1.1")));
    }
}
