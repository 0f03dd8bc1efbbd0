//! Configuration loading seen from outside the crate: every problem is
//! reported in one go, each naming its variable, and secrets never appear.

use ados_work_runner::config::{Config, ExecutorSetting, JobImage, Purpose, RawEnv};

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
        "invalid configuration ({} problems):",
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

/// A valid daemon environment plus `extra`.
fn env_plus(ws: &std::path::Path, extra: &[(&'static str, &'static str)]) -> RawEnv {
    let mut pairs = vec![
        ("ADOS_API_URL", "https://api.ados.dev".to_string()),
        ("ADOS_TOKEN", "tok_1".into()),
        ("ADOS_RUNNER_ID", "runner-001".into()),
        ("WORKSPACE_DIR", ws.display().to_string()),
        ("ADOS_CPUS", "2".into()),
        ("ADOS_MEMORY", "8G".into()),
    ];
    for (k, v) in extra {
        pairs.retain(|(pk, _)| pk != k);
        pairs.push((k, (*v).to_string()));
    }
    RawEnv::from_pairs(pairs)
}

#[test]
fn an_invalid_log_level_is_a_configuration_error_naming_its_variable() {
    let ws = std::env::temp_dir().join(format!("ados-config-log-{}", std::process::id()));
    for (var, value) in [
        ("ADOS_LOG_LEVEL", "verbose"),
        ("ADOS_LOG_LEVEL", "info,ados_work_runner=loud"),
        ("RUST_LOG", "verbose"),
    ] {
        let errs =
            Config::from_raw(&env_plus(&ws, &[(var, value)]), Purpose::Daemon).expect_err(value);
        let vars: Vec<&str> = errs.0.iter().map(|e| e.var).collect();
        assert_eq!(vars, [var], "{errs}");
        assert!(errs.to_string().contains("is not a level"), "{errs}");
    }
    for good in [
        "info",
        "WARN",
        "warn,ados_work_runner::link=debug",
        "off",
        "debug/hello",
    ] {
        let c = Config::from_raw(&env_plus(&ws, &[("ADOS_LOG_LEVEL", good)]), Purpose::Daemon)
            .unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(c.log_level, good);
    }
    let _ = std::fs::remove_dir_all(ws);
}

#[test]
fn memory_sizes_take_kubernetes_units() {
    let ws = std::env::temp_dir().join(format!("ados-config-gi-{}", std::process::id()));
    let env = env_plus(
        &ws,
        &[("ADOS_MEMORY", "8Gi"), ("ADOS_MIN_FREE_DISK", "512Mi")],
    );
    let c = Config::from_raw(&env, Purpose::Daemon).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.memory_bytes, 8 << 30);
    assert_eq!(c.min_free_disk, 512 << 20);
    let _ = std::fs::remove_dir_all(ws);
}

/// The binary with `args` and a valid configuration plus `extra`, run to
/// its end: its exit code, stdout and stderr.
fn run_binary(
    name: &str,
    args: &[&str],
    extra: &[(&'static str, &str)],
) -> (Option<i32>, String, String) {
    let ws = ados_test_support::fixtures::TempDir::new(name);
    let mut env: Vec<(&str, String)> = vec![
        ("ADOS_API_URL", "http://127.0.0.1:9".into()),
        ("ADOS_TOKEN", "tok_1".into()),
        ("ADOS_RUNNER_ID", "runner-001".into()),
        ("WORKSPACE_DIR", ws.path().display().to_string()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let (status, out, err) = ados_test_support::runner::run_to_end(
        std::path::Path::new(env!("CARGO_BIN_EXE_ados-work-runner")),
        args,
        &env,
        std::time::Duration::from_secs(60),
    );
    (status.and_then(|s| s.code()), out, err)
}

/// `check` with a valid configuration plus `extra`: its exit code, stdout
/// and stderr.
fn run_check(name: &str, extra: &[(&'static str, &str)]) -> (Option<i32>, String, String) {
    let mut all = vec![("ADOS_CPUS", "2")];
    all.extend_from_slice(extra);
    run_binary(name, &["check"], &all)
}

#[test]
fn check_reports_an_invalid_log_level() {
    let (code, out, err) = run_check(
        "config-check-log",
        &[("ADOS_MEMORY", "8G"), ("ADOS_LOG_LEVEL", "verbose")],
    );
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("✗ configuration"), "{out}");
    assert!(out.contains("ADOS_LOG_LEVEL"), "{out}");
}

#[test]
fn check_shows_memory_in_binary_units() {
    let (_, out, err) = run_check("config-check-mem", &[("ADOS_MEMORY", "8Gi")]);
    assert!(out.contains("2 CPUs, 8GiB memory)"), "{out}{err}");
}

#[test]
fn the_docker_executor_needs_an_image_and_takes_its_limits_from_the_runners_share() {
    let ws = std::env::temp_dir().join(format!("ados-config-docker-{}", std::process::id()));
    // Docker without an image: one problem, naming ADOS_JOB_IMAGE.
    let errs = Config::from_raw(
        &env_plus(&ws, &[("ADOS_EXECUTOR", "docker")]),
        Purpose::Daemon,
    )
    .expect_err("no image");
    let vars: Vec<&str> = errs.0.iter().map(|e| e.var).collect();
    assert_eq!(vars, ["ADOS_JOB_IMAGE"], "{errs}");
    // Defaults: the runner's 2 CPUs and 8G over its 2 slots.
    let c = Config::from_raw(
        &env_plus(
            &ws,
            &[("ADOS_EXECUTOR", "docker"), ("ADOS_JOB_IMAGE", "img:1")],
        ),
        Purpose::Daemon,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ExecutorSetting::Docker(d) = &c.executor else {
        panic!("docker expected")
    };
    assert_eq!(d.image, JobImage::Named("img:1".into()));
    assert_eq!(d.cpus_arg(), "1");
    assert_eq!(d.memory_bytes, 4 << 30);
    assert_eq!(d.pids_limit, 4096);
    assert_eq!(d.network, "bridge");
    // Set explicitly, and `self`.
    let c = Config::from_raw(
        &env_plus(
            &ws,
            &[
                ("ADOS_EXECUTOR", "docker"),
                ("ADOS_JOB_IMAGE", "self"),
                ("ADOS_JOB_CPUS", "1.5"),
                ("ADOS_JOB_MEMORY", "512Mi"),
                ("ADOS_JOB_PIDS_LIMIT", "100"),
                ("ADOS_JOB_NETWORK", "none"),
            ],
        ),
        Purpose::Daemon,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ExecutorSetting::Docker(d) = &c.executor else {
        panic!("docker expected")
    };
    assert_eq!(d.image, JobImage::OwnContainer);
    assert_eq!((d.cpus_arg().as_str(), d.memory_bytes), ("1.5", 512 << 20));
    assert_eq!((d.pids_limit, d.network.as_str()), (100, "none"));
    // Every bad value is named.
    let errs = Config::from_raw(
        &env_plus(
            &ws,
            &[
                ("ADOS_EXECUTOR", "docker"),
                ("ADOS_JOB_IMAGE", "-v /:/host"),
                ("ADOS_JOB_CPUS", "lots"),
                ("ADOS_JOB_MEMORY", "1K"),
                ("ADOS_JOB_PIDS_LIMIT", "0"),
                ("ADOS_JOB_NETWORK", "a b"),
            ],
        ),
        Purpose::Daemon,
    )
    .expect_err("bad values");
    let vars: Vec<&str> = errs.0.iter().map(|e| e.var).collect();
    assert_eq!(
        vars,
        [
            "ADOS_JOB_IMAGE",
            "ADOS_JOB_CPUS",
            "ADOS_JOB_MEMORY",
            "ADOS_JOB_PIDS_LIMIT",
            "ADOS_JOB_NETWORK"
        ],
        "{errs}"
    );
    let errs = Config::from_raw(
        &env_plus(&ws, &[("ADOS_EXECUTOR", "kubernetes")]),
        Purpose::Daemon,
    )
    .expect_err("unknown executor");
    assert!(
        errs.to_string()
            .contains("ADOS_EXECUTOR: must be host or docker"),
        "{errs}"
    );
    let c =
        Config::from_raw(&env_plus(&ws, &[]), Purpose::Daemon).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.executor, ExecutorSetting::Host);
    let _ = std::fs::remove_dir_all(ws);
}

/// The daemon with a minimal configuration plus `extra`, run to its end:
/// its exit code and stderr.
fn run_daemon(name: &str, extra: &[(&'static str, &str)]) -> (Option<i32>, String) {
    let mut all = vec![("ADOS_HEALTH_ADDR", "off")];
    all.extend_from_slice(extra);
    let (code, _, err) = run_binary(name, &[], &all);
    (code, err)
}

#[test]
fn the_runner_refuses_docker_without_an_image_with_exit_2_naming_the_variable() {
    let (code, err) = run_daemon("config-docker-exit", &[("ADOS_EXECUTOR", "docker")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("ADOS_JOB_IMAGE"), "{err}");
}

#[test]
fn the_runners_own_image_needs_the_runner_in_a_container() {
    let (code, err) = run_daemon(
        "config-docker-self",
        &[("ADOS_EXECUTOR", "docker"), ("ADOS_JOB_IMAGE", "self")],
    );
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains("ADOS_JOB_IMAGE=self") && err.contains("set ADOS_JOB_IMAGE to an image name"),
        "{err}"
    );
}
