//! Configuration loading seen from outside the crate: every problem is
//! reported in one go, each naming its variable, and secrets never appear.

use ados_work_runner::config::{Config, Purpose, RawEnv};

#[test]
fn every_problem_is_reported_at_once() {
    let env = RawEnv::from_pairs([
        ("ADOS_API_URL", "ftp://api.ados.dev"),
        ("ADOS_TOKEN", "tok with space"),
        // ADOS_RUNNER_ID missing.
        ("WORKSPACE_DIR", "relative/dir"),
        ("ADOS_MODE", "sometimes"),
        ("ADOS_CPUS", "zero"),
        ("ADOS_MEMORY", "8X"),
        ("ADOS_MAX_JOBS", "1000"),
        ("ADOS_HEALTH_ADDR", "nowhere"),
        ("ADOS_LOG_FORMAT", "yaml"),
        ("HTTPS_PROXY", "proxy.internal"),
        ("ADOS_SHUTDOWN_GRACE", "forever"),
        ("BITBUCKET_USERNAME", "bot"),
        ("GITHUB_TOKEN", "ghp_abc\n"),
    ]);
    let errs = Config::from_raw(&env, Purpose::Daemon).unwrap_err();
    let vars: Vec<&str> = errs.0.iter().map(|e| e.var).collect();
    let expected = [
        "ADOS_API_URL",
        "ADOS_TOKEN",
        "ADOS_RUNNER_ID",
        "WORKSPACE_DIR",
        "ADOS_MODE",
        "ADOS_CPUS",
        "ADOS_MEMORY",
        "ADOS_MAX_JOBS",
        "ADOS_HEALTH_ADDR",
        "ADOS_LOG_FORMAT",
        "HTTPS_PROXY",
        "ADOS_SHUTDOWN_GRACE",
        "BITBUCKET_APP_PASSWORD",
        "GITHUB_TOKEN",
    ];
    for var in expected {
        assert!(vars.contains(&var), "{var} not reported; got {vars:?}");
    }
    assert_eq!(
        vars.len(),
        expected.len(),
        "unexpected extra problems: {vars:?}"
    );

    let text = errs.to_string();
    assert!(text.starts_with(&format!(
        "invalid configuration ({} problem(s)):",
        expected.len()
    )));
    // Each line gives an example of a right value.
    assert!(text.contains("(example: ADOS_API_URL=https://api.ados.dev)"));
    // Secrets are described, never shown.
    assert!(!text.contains("tok with space") && !text.contains("ghp_abc"));
}

#[test]
fn a_valid_environment_loads() {
    let ws = std::env::temp_dir().join(format!("ados-config-it-{}", std::process::id()));
    let env = RawEnv::from_pairs([
        ("ADOS_API_URL", "https://api.ados.dev"),
        ("ADOS_TOKEN", "tok_1"),
        ("ADOS_RUNNER_ID", "runner-001"),
        ("WORKSPACE_DIR", ws.to_str().unwrap()),
        ("ADOS_CPUS", "2"),
        ("ADOS_MEMORY", "8G"),
    ]);
    let c = Config::from_raw(&env, Purpose::Daemon).unwrap();
    assert!(ws.is_dir(), "WORKSPACE_DIR is created");
    assert_eq!(c.max_jobs, 2);
    assert!(!format!("{c:?}").contains("tok_1"));
    let _ = std::fs::remove_dir_all(ws);
}
