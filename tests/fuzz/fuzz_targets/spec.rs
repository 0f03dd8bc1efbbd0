//! Fuzz target `spec`: bytes parsed as JSON and validated as a job spec
//! under every remote policy never panic `JobSpec::from_json`, and an
//! accepted spec holds the §5 rules (checked again here, independently of
//! the validator's own code paths where possible).

#![no_main]

use ados_work_runner::job::spec::{check_branch, JobSpec, Provider, RemotePolicy};
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

/// Exactly one normal path component: safe as a directory name.
fn one_component(s: &str) -> bool {
    let mut c = Path::new(s).components();
    matches!((c.next(), c.next()), (Some(Component::Normal(n)), None) if n == s)
        && !s.contains(['/', '\0'])
}

fn check_accepted(spec: &JobSpec, policy: RemotePolicy) {
    assert!(one_component(spec.job_id.as_str()));
    assert!(one_component(&spec.repo.name));
    for seg in spec.repo.owner.split('/') {
        assert!(one_component(seg));
    }
    if spec.repo.provider != Provider::Gitlab {
        assert!(!spec.repo.owner.contains('/'));
    }
    for agent in spec.agents_in_order() {
        assert!(one_component(&agent.name));
    }
    let path = Path::new(&spec.repo.path);
    assert!(path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)));
    for b in [&spec.branch, &spec.repo.target_branch] {
        assert!(!b.starts_with('-'));
        assert!(check_branch("branch", b).is_ok());
    }
    let url = spec.repo.clone_url.to_ascii_lowercase();
    assert!(!url.starts_with("ext::") && !url.starts_with("fd::") && !url.starts_with('-'));
    if url.starts_with("file://") || url.starts_with('/') {
        assert!(policy.allow_file);
    }
    if let Some(rest) = url.strip_prefix("http://") {
        assert!(policy.allow_http || is_loopback(rest), "http to {url}");
    }
}

/// Whether git (curl) would connect to a loopback host: the authority ends
/// at the first `/`, `?` or `#` (RFC 3986), the host follows its last `@`.
fn is_loopback(after_scheme: &str) -> bool {
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let hostport = after_scheme[..end].rsplit('@').next().unwrap_or("");
    let host = match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => hostport.split(':').next().unwrap_or(""),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = JobSpec::raw_job_id(&raw);
    for (allow_http, allow_file) in [(false, false), (true, true)] {
        let policy = RemotePolicy {
            allow_http,
            allow_file,
        };
        if let Ok(spec) = JobSpec::from_json(&raw, policy) {
            check_accepted(&spec, policy);
        }
    }
});
