//! Unit tests of loading the configuration: every variable, its default
//! and its problems.

use super::*;
use crate::job::spec::RemotePolicy;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A fresh directory under the system temp dir (no tempfile crate).
fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "ados-config-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// A valid daemon environment with explicit cpus/memory (no detection),
/// plus `extra` overriding or adding variables.
fn env_with(extra: &[(&str, &str)]) -> RawEnv {
    let ws = temp_dir("ws");
    let mut pairs: Vec<(String, String)> = vec![
        ("ADOS_API_URL".into(), "https://api.ados.dev/".into()),
        ("ADOS_TOKEN".into(), "tok_secret_123".into()),
        ("ADOS_RUNNER_ID".into(), "runner-001".into()),
        ("WORKSPACE_DIR".into(), ws.display().to_string()),
        ("ADOS_CPUS".into(), "4".into()),
        ("ADOS_MEMORY".into(), "16G".into()),
        ("ADOS_HOSTNAME".into(), "host-1".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push(((*k).into(), (*v).into()));
    }
    RawEnv::from_pairs(pairs)
}

fn ok(extra: &[(&str, &str)]) -> Config {
    Config::from_raw(&env_with(extra), Purpose::Daemon).unwrap()
}

/// The problems reported, as `VAR: problem`.
fn errs(extra: &[(&str, &str)], purpose: Purpose) -> Vec<String> {
    Config::from_raw(&env_with(extra), purpose)
        .unwrap_err()
        .0
        .iter()
        .map(|e| format!("{}: {}", e.var, e.problem))
        .collect()
}

fn err_for(var: &str, extra: &[(&str, &str)]) -> String {
    let all = errs(extra, Purpose::Daemon);
    all.iter()
        .find(|e| e.starts_with(&format!("{var}: ")))
        .unwrap_or_else(|| panic!("no error for {var} in {all:?}"))
        .clone()
}

#[test]
fn defaults() {
    let c = ok(&[]);
    assert_eq!(c.api_url, "https://api.ados.dev");
    assert_eq!(c.mode, Mode::All);
    assert_eq!(c.group, "default");
    assert_eq!(c.max_jobs, 4);
    assert_eq!(c.health_addr, Some("0.0.0.0:8080".parse().unwrap()));
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.log_level, "info");
    assert_eq!(c.shutdown_grace, Duration::from_secs(600));
    assert_eq!(c.min_free_disk, 2 << 30);
    assert_eq!(c.remote_policy, RemotePolicy::default());
    assert_eq!(c.proxy, ProxySettings::default());
    assert!(c.custom_agents.is_empty() && c.ca_cert.is_none());
    assert_eq!(c.ws_url(), "wss://api.ados.dev/api/v1/work/runners/ws");
}

#[test]
fn api_url() {
    assert!(err_for("ADOS_API_URL", &[("ADOS_API_URL", "api.ados.dev")]).contains("https://"));
    assert!(err_for("ADOS_API_URL", &[("ADOS_API_URL", "")]).contains("required"));
    assert_eq!(
        ok(&[("ADOS_API_URL", "http://127.0.0.1:9/api/v1/")]).api_url,
        "http://127.0.0.1:9/api/v1"
    );
}

#[test]
fn token_is_required_and_never_printed() {
    assert!(err_for("ADOS_TOKEN", &[("ADOS_TOKEN", "")]).contains("set but empty"));
    let e = err_for("ADOS_TOKEN", &[("ADOS_TOKEN", "tok_abc\n")]);
    assert!(e.contains("whitespace") && !e.contains("tok_abc"), "{e}");
    let unset = Config::from_raw(
        &RawEnv::from_pairs([("WORKSPACE_DIR", "/tmp")]),
        Purpose::Daemon,
    )
    .unwrap_err()
    .to_string();
    assert!(unset.contains("ADOS_TOKEN: is required"), "{unset}");
    let dbg = format!("{:?}", ok(&[]));
    assert!(!dbg.contains("tok_secret_123"), "{dbg}");
}

#[test]
fn runner_id_and_group_charset() {
    assert!(err_for("ADOS_RUNNER_ID", &[("ADOS_RUNNER_ID", "runner 1")]).contains("only A-Z"));
    assert!(err_for("ADOS_GROUP", &[("ADOS_GROUP", "a/b")]).contains("only A-Z"));
    assert_eq!(ok(&[("ADOS_GROUP", "gpu")]).group, "gpu");
}

#[test]
fn exec_purpose_needs_only_the_workspace() {
    let ws = temp_dir("exec");
    let c = Config::from_raw(
        &RawEnv::from_pairs([("WORKSPACE_DIR", ws.to_str().unwrap())]),
        Purpose::Exec,
    )
    .unwrap();
    assert_eq!(
        (c.api_url.as_str(), c.token.as_str(), c.runner_id.as_str()),
        ("", "", "exec")
    );
    let e = Config::from_raw(&RawEnv::default(), Purpose::Exec).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].var, "WORKSPACE_DIR");
}

#[test]
fn workspace_dir_is_absolute_and_created() {
    assert!(err_for("WORKSPACE_DIR", &[("WORKSPACE_DIR", "work")]).contains("absolute"));
    let base = temp_dir("create");
    let nested = base.join("a/b");
    let c = ok(&[("WORKSPACE_DIR", nested.to_str().unwrap())]);
    assert!(c.workspace_dir.is_dir());
    let file = base.join("file");
    std::fs::write(&file, "x").unwrap();
    let e = err_for(
        "WORKSPACE_DIR",
        &[("WORKSPACE_DIR", file.join("sub").to_str().unwrap())],
    );
    assert!(
        e.contains("cannot be created")
            && e.contains("file/sub")
            && e.contains(&format!("{} is a file, not a directory", file.display())),
        "{e}"
    );
    // The file itself: said so, not "File exists".
    let e = err_for(
        "WORKSPACE_DIR",
        &[("WORKSPACE_DIR", file.to_str().unwrap())],
    );
    assert!(
        e.contains(&format!("{} is a file, not a directory", file.display())),
        "{e}"
    );
}

#[test]
fn mode() {
    assert_eq!(ok(&[("ADOS_MODE", "chat")]).mode, Mode::Chat);
    assert_eq!(ok(&[("ADOS_MODE", "Issue")]).mode, Mode::Issue);
    assert!(err_for("ADOS_MODE", &[("ADOS_MODE", "both")]).contains("chat, issue, all"));
}

#[test]
fn cpus_memory_and_max_jobs() {
    assert!(err_for("ADOS_CPUS", &[("ADOS_CPUS", "0")]).contains("1 to"));
    assert!(err_for("ADOS_MEMORY", &[("ADOS_MEMORY", "8X")]).contains("unit"));
    assert!(err_for("ADOS_MEMORY", &[("ADOS_MEMORY", "512")]).contains("add a unit"));
    assert_eq!(ok(&[("ADOS_MEMORY", "8GB")]).memory_bytes, 8 << 30);
    // min(cpus, memory / 2 GiB), at least 1.
    assert_eq!(ok(&[("ADOS_CPUS", "8"), ("ADOS_MEMORY", "6G")]).max_jobs, 3);
    assert_eq!(
        ok(&[("ADOS_CPUS", "2"), ("ADOS_MEMORY", "64G")]).max_jobs,
        2
    );
    assert_eq!(ok(&[("ADOS_CPUS", "2"), ("ADOS_MEMORY", "1G")]).max_jobs, 1);
    assert_eq!(ok(&[("ADOS_MAX_JOBS", "16")]).max_jobs, 16);
    assert!(err_for("ADOS_MAX_JOBS", &[("ADOS_MAX_JOBS", "257")]).contains("1 to 256"));
    assert_eq!(default_max_jobs(10_000, u64::MAX), 256);
}

#[test]
fn detected_defaults_are_sane() {
    let env = RawEnv::from_pairs(
        env_with(&[])
            .get_raw("WORKSPACE_DIR")
            .map(|w| ("WORKSPACE_DIR".to_string(), w.to_string())),
    );
    let c = Config::from_raw(&env, Purpose::Exec).unwrap();
    assert!(c.cpus >= 1 && c.memory_bytes > 0 && !c.hostname.is_empty());
    assert!(c.max_jobs >= 1);
}

#[test]
fn hostname_deploy_tenant() {
    assert_eq!(ok(&[]).hostname, "host-1");
    assert!(err_for("ADOS_HOSTNAME", &[("ADOS_HOSTNAME", "a b")]).contains("visible ASCII"));
    let c = ok(&[("ADOS_DEPLOY_ID", "d-1"), ("ADOS_TENANT_ID", "acme")]);
    assert_eq!(
        (c.deploy_id.as_deref(), c.tenant_id.as_deref()),
        (Some("d-1"), Some("acme"))
    );
    assert!(err_for("ADOS_TENANT_ID", &[("ADOS_TENANT_ID", "ac me")]).contains("visible"));
}

#[test]
fn health_addr_and_logging() {
    assert_eq!(
        ok(&[("ADOS_HEALTH_ADDR", "127.0.0.1:0")])
            .health_addr
            .map(|a| a.ip().to_string()),
        Some("127.0.0.1".to_string())
    );
    assert_eq!(ok(&[("ADOS_HEALTH_ADDR", "off")]).health_addr, None);
    assert!(err_for("ADOS_HEALTH_ADDR", &[("ADOS_HEALTH_ADDR", "localhost")]).contains("port"));
    assert_eq!(
        ok(&[("ADOS_LOG_FORMAT", "json")]).log_format,
        LogFormat::Json
    );
    assert!(err_for("ADOS_LOG_FORMAT", &[("ADOS_LOG_FORMAT", "xml")]).contains("text or json"));
    assert_eq!(ok(&[("RUST_LOG", "debug")]).log_level, "debug");
    assert_eq!(
        ok(&[("RUST_LOG", "debug"), ("ADOS_LOG_LEVEL", "warn")]).log_level,
        "warn"
    );
}

#[test]
fn ca_cert() {
    let dir = temp_dir("ca");
    let missing = dir.join("missing.pem");
    assert!(err_for(
        "ADOS_CA_CERT",
        &[("ADOS_CA_CERT", missing.to_str().unwrap())]
    )
    .contains("cannot be read"));
    let empty = dir.join("empty.pem");
    std::fs::write(&empty, "not a pem\n").unwrap();
    assert!(
        err_for("ADOS_CA_CERT", &[("ADOS_CA_CERT", empty.to_str().unwrap())])
            .contains("no PEM certificate")
    );
    // A structurally valid PEM block is enough here: the bytes are only
    // parsed as a certificate when a TLS config is built.
    let good = dir.join("good.pem");
    std::fs::write(
        &good,
        "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    assert_eq!(
        ok(&[("ADOS_CA_CERT", good.to_str().unwrap())]).ca_cert,
        Some(good)
    );
}

#[test]
fn proxies() {
    let c = ok(&[
        ("https_proxy", "http://p:3128"),
        ("HTTP_PROXY", "http://q:8080"),
        ("http_proxy", "http://ignored:1"),
        ("no_proxy", "localhost, .corp.example,,10.0.0.1"),
    ]);
    let host_port = |p: Option<&crate::net::Proxy>| p.map(|p| (p.host.clone(), p.port));
    assert_eq!(
        host_port(c.proxy.https_proxy.as_ref()),
        Some(("p".into(), 3128))
    );
    assert_eq!(
        host_port(c.proxy.http_proxy.as_ref()),
        Some(("q".into(), 8080))
    );
    let route = |tls: bool, host: &str| host_port(c.proxy.route(tls, host, 443));
    assert_eq!(route(true, "api.corp.example"), None);
    assert_eq!(route(true, "corp.example"), None);
    assert_eq!(route(true, "localhost"), None);
    assert_eq!(route(true, "10.0.0.1"), None);
    assert_eq!(route(true, "api.ados.dev"), Some(("p".into(), 3128)));
    assert_eq!(route(false, "x"), Some(("q".into(), 8080)));
    assert_eq!(route(false, "notcorp.example"), Some(("q".into(), 8080)));
    let e = err_for("HTTPS_PROXY", &[("HTTPS_PROXY", "http://u:pw@proxy")]);
    assert!(e.contains("port") && !e.contains("pw"), "{e}");
    assert!(err_for("http_proxy", &[("http_proxy", "socks5://p:1")]).contains("http://"));
}

#[test]
fn shutdown_grace_flags_and_disk() {
    assert_eq!(
        ok(&[("ADOS_SHUTDOWN_GRACE", "10m")]).shutdown_grace,
        Duration::from_secs(600)
    );
    assert_eq!(
        ok(&[("ADOS_SHUTDOWN_GRACE", "30")]).shutdown_grace,
        Duration::from_secs(30)
    );
    assert!(err_for("ADOS_SHUTDOWN_GRACE", &[("ADOS_SHUTDOWN_GRACE", "soon")]).contains("seconds"));
    let c = ok(&[
        ("ADOS_ALLOW_HTTP", "true"),
        ("ADOS_ALLOW_FILE_REMOTES", "0"),
    ]);
    assert_eq!(
        c.remote_policy,
        RemotePolicy {
            allow_http: true,
            allow_file: false
        }
    );
    assert!(err_for(
        "ADOS_ALLOW_FILE_REMOTES",
        &[("ADOS_ALLOW_FILE_REMOTES", "ture")]
    )
    .contains("1/true"));
    assert!(ok(&[]).metrics_repo_label, "on by default");
    assert!(!ok(&[("ADOS_METRICS_REPO_LABEL", "0")]).metrics_repo_label);
    assert!(ok(&[("ADOS_METRICS_REPO_LABEL", "yes")]).metrics_repo_label);
    assert!(err_for(
        "ADOS_METRICS_REPO_LABEL",
        &[("ADOS_METRICS_REPO_LABEL", "none")]
    )
    .contains("0/false"));
    assert_eq!(ok(&[("ADOS_MIN_FREE_DISK", "10G")]).min_free_disk, 10 << 30);
    assert_eq!(ok(&[("ADOS_MIN_FREE_DISK", "0")]).min_free_disk, 0);
    assert!(err_for("ADOS_MIN_FREE_DISK", &[("ADOS_MIN_FREE_DISK", "lots")]).contains("number"));
}

#[test]
fn secrets_and_bitbucket_pairing() {
    let c = ok(&[
        ("GITHUB_TOKEN", "ghp_1"),
        ("GITLAB_TOKEN", ""),
        ("ANTHROPIC_API_KEY", "sk-ant-1"),
        ("CLAUDE_CODE_OAUTH_TOKEN", "oat"),
        ("OPENAI_API_KEY", "sk-2"),
        ("COPILOT_GITHUB_TOKEN", "gh-3"),
        ("BITBUCKET_USERNAME", "bot"),
        ("BITBUCKET_APP_PASSWORD", "bbpw"),
    ]);
    assert_eq!(c.vcs.github_token.as_deref(), Some("ghp_1"));
    assert_eq!(
        c.vcs.gitlab_token, None,
        "empty optional secret counts as unset"
    );
    let mut secrets = c.secrets();
    secrets.sort();
    assert_eq!(
        secrets,
        [
            "bbpw",
            "gh-3",
            "ghp_1",
            "oat",
            "sk-2",
            "sk-ant-1",
            "tok_secret_123"
        ]
    );
    assert!(
        err_for("BITBUCKET_APP_PASSWORD", &[("BITBUCKET_USERNAME", "bot")])
            .contains("required when")
    );
    assert!(
        err_for("BITBUCKET_USERNAME", &[("BITBUCKET_APP_PASSWORD", "pw")])
            .contains("required when")
    );
    let e = err_for("OPENAI_API_KEY", &[("OPENAI_API_KEY", "sk live")]);
    assert!(!e.contains("sk live"), "{e}");
}

#[test]
fn custom_agents_file() {
    let dir = temp_dir("agents");
    let f = dir.join("agents.json");
    std::fs::write(
        &f,
        r#"{"agents":[{"name":"aider","command":["aider","--yes"],"prompt":"stdin"}]}"#,
    )
    .unwrap();
    let c = ok(&[("ADOS_CUSTOM_AGENTS", f.to_str().unwrap())]);
    assert_eq!(c.custom_agents[0].name, "aider");
    assert!(c.custom_agents[0].prompt_on_stdin);
    std::fs::write(&f, r#"{"agents":[{"name":"codex","command":["x"]}]}"#).unwrap();
    let e = err_for(
        "ADOS_CUSTOM_AGENTS",
        &[("ADOS_CUSTOM_AGENTS", f.to_str().unwrap())],
    );
    assert!(
        e.contains("agents.json") && e.contains("agents[0].name"),
        "{e}"
    );
}

#[test]
fn display_names_var_and_example() {
    let e = Config::from_raw(&env_with(&[("ADOS_MODE", "x")]), Purpose::Daemon).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid configuration (1 problem):\n  - ADOS_MODE: must be one of chat, issue, all (example: ADOS_MODE=all)\n"
    );
}

#[test]
fn every_variable_the_configuration_reads_is_in_the_help_table() {
    let env = env_with(&[]);
    let _ = Config::from_raw(&env, Purpose::Daemon);
    let _ = Config::from_raw(&env, Purpose::Exec);
    let mut read = env.read.lock().expect("not poisoned").clone();
    // The Docker executor's variables are read only when it is chosen.
    let docker = env_with(&[("ADOS_EXECUTOR", "docker")]);
    let _ = Config::from_raw(&docker, Purpose::Daemon);
    read.extend(docker.read.lock().expect("not poisoned").iter().cloned());
    assert!(read.contains("ADOS_JOB_PIDS_LIMIT"), "{read:?}");
    assert!(read.contains("DOCKER_HOST"), "{read:?}");
    assert!(read.contains("ADOS_LOG_LEVEL"), "{read:?}");
    let missing: Vec<&String> = read.iter().filter(|v| !variables::is_listed(v)).collect();
    assert!(
        missing.is_empty(),
        "not in config::variables::VARIABLES: {missing:?}"
    );
    let help = variables::help_text();
    for v in variables::VARIABLES {
        assert!(
            help.contains(v.name) && help.contains(v.meaning),
            "{}",
            v.name
        );
    }
}

#[test]
fn every_secret_can_come_from_a_file() {
    let dir = temp_dir("secret-files");
    let token_file = dir.join("token");
    std::fs::write(&token_file, "tok_from_a_file_123\n").unwrap();
    let gh_file = dir.join("gh");
    std::fs::write(&gh_file, "ghp_fromfile0123456789\r\n").unwrap();
    let link = dir.join("gh-link");
    std::os::unix::fs::symlink(&gh_file, &link).unwrap();
    let token_var = token_file.display().to_string();
    let link_var = link.display().to_string();
    let c = Config::from_raw(
        &{
            let mut pairs: Vec<(String, String)> = vec![
                ("ADOS_API_URL".into(), "https://api.ados.dev/".into()),
                ("ADOS_TOKEN_FILE".into(), token_var.clone()),
                ("ADOS_RUNNER_ID".into(), "runner-001".into()),
                ("WORKSPACE_DIR".into(), temp_dir("ws").display().to_string()),
                ("ADOS_CPUS".into(), "4".into()),
                ("ADOS_MEMORY".into(), "16G".into()),
                ("ADOS_HOSTNAME".into(), "host-1".into()),
            ];
            // A Kubernetes secret is mounted through a link: followed.
            pairs.push(("GITHUB_TOKEN_FILE".into(), link_var.clone()));
            RawEnv::from_pairs(pairs)
        },
        Purpose::Daemon,
    )
    .unwrap();
    assert_eq!(
        c.token, "tok_from_a_file_123",
        "one trailing newline dropped"
    );
    assert_eq!(
        c.vcs.github_token.as_deref(),
        Some("ghp_fromfile0123456789")
    );
    assert!(
        c.secrets().iter().any(|s| s == "ghp_fromfile0123456789"),
        "redacted like the variable"
    );
    // Both set: an error naming both, never the value.
    let both = err_for(
        "GITHUB_TOKEN",
        &[
            ("GITHUB_TOKEN", "ghp_x0123456789abc"),
            ("GITHUB_TOKEN_FILE", &link_var),
        ],
    );
    assert!(both.contains("GITHUB_TOKEN_FILE are both set"), "{both}");
    assert!(!both.contains("ghp_"), "{both}");
    let missing = err_for("GITHUB_TOKEN", &[("GITHUB_TOKEN_FILE", "/nonexistent/gh")]);
    assert!(
        missing.contains("GITHUB_TOKEN_FILE: cannot read /nonexistent/gh"),
        "{missing}"
    );
    let empty = dir.join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let empty_var = empty.display().to_string();
    assert!(err_for("GITHUB_TOKEN", &[("GITHUB_TOKEN_FILE", &empty_var)]).contains("is empty"));
    std::fs::remove_dir_all(&dir).unwrap();
}
