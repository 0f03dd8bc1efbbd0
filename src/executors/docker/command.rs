//! The `docker` command lines of the executor, built as argv vectors
//! (never a shell). Environment *values* never appear here: a command's
//! variables are named with `-e NAME`, and the `docker` CLI takes each
//! value from its own environment.

use super::fence::{self, JobFence};
use super::runtime::DockerRuntime;
use crate::config::DOCKER_CLI_VARS;
use crate::process::{CommandSpec, RunAs, Stdin};
use std::path::PathBuf;

/// One bind mount: the daemon's path of a directory, and where the job
/// container sees it (the runner's own path of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Mount {
    pub(super) source: PathBuf,
    pub(super) target: PathBuf,
}

fn s(v: &str) -> String {
    v.to_string()
}

fn user_arg(user: RunAs) -> String {
    format!("{}:{}", user.uid, user.gid)
}

/// `docker run -d` of a job container: `--init` (so a stop is not stuck
/// behind a PID 1 that ignores SIGTERM, and orphans are reaped), the
/// labels, the limits, the job's user, its own directories mounted and
/// nothing else, no capabilities, no privilege gain, never a pull; it
/// waits until it is stopped or removed ([`KEEPER`]), and each command is
/// a `docker exec`.
pub(super) fn run(
    rt: &DockerRuntime,
    name: &str,
    job_id: &str,
    user: RunAs,
    mounts: &[Mount],
    fence: Option<&Fence>,
) -> Vec<String> {
    let st = &rt.settings;
    let memory = st.memory_bytes.to_string();
    let mut argv = vec![
        s("run"),
        s("-d"),
        s("--init"),
        s("--pull"),
        s("never"),
        s("--name"),
        s(name),
        s("--label"),
        rt.runner_label(),
        s("--label"),
        format!("ados.job={job_id}"),
        s("--cpus"),
        st.cpus_arg(),
        s("--memory"),
        memory.clone(),
        // No swap beyond the limit: the limit is what the job gets.
        s("--memory-swap"),
        memory,
        s("--pids-limit"),
        st.pids_limit.to_string(),
        s("--network"),
        match fence {
            // Only the container's own loopback: see fence.rs.
            Some(_) => s("none"),
            None => st.network.clone(),
        },
        s("--user"),
        user_arg(user),
        s("--cap-drop"),
        s("ALL"),
        s("--security-opt"),
        s("no-new-privileges"),
    ];
    for m in mounts {
        argv.push(s("--mount"));
        argv.push(format!(
            "type=bind,source={},target={}",
            m.source.display(),
            m.target.display()
        ));
    }
    let Some(fence) = fence else {
        // The image's entrypoint (the runner's own, for `self`) is not
        // wanted: the keeper holds the container open.
        argv.extend([
            s("--entrypoint"),
            s("sh"),
            rt.image.clone(),
            s("-c"),
            s(KEEPER),
            s("ados-job"),
        ]);
        return argv;
    };
    // Fenced: the job's socket directory and the runner's binary, both
    // read-only; the binary runs beside the keeper, relaying the
    // container's loopback port to the socket (the keeper's SIGTERM on a
    // stop reaches it too, like every process of the job).
    for (source, target) in [
        (&fence.socket_dir, fence::SOCKET_DIR),
        (&fence.forwarder, fence::FORWARDER),
    ] {
        argv.push(s("--mount"));
        argv.push(format!(
            "type=bind,source={},target={target},readonly",
            source.display()
        ));
    }
    argv.extend([
        s("--entrypoint"),
        s("sh"),
        rt.image.clone(),
        s("-c"),
        format!("\"$0\" \"$@\" &\n{KEEPER}"),
        s(fence::FORWARDER),
    ]);
    argv.extend(JobFence::forwarder_args());
    argv
}

/// The daemon's paths of what a fenced container mounts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Fence {
    /// The job's socket directory.
    pub(super) socket_dir: PathBuf,
    /// The runner's binary (the forwarder).
    pub(super) forwarder: PathBuf,
}

/// The container's main process (the child of `--init`): it waits until
/// the container is stopped. The job's commands are `docker exec`s, not
/// its children, and `docker stop` signals only init and its child: were
/// the main process to exit at once, the kernel would SIGKILL every
/// command in the container, with no grace. So on SIGTERM it passes the
/// SIGTERM on to every process of the job's user (`kill -1`: all but
/// init and itself) and waits for them to end; `docker stop -t 10` sends
/// SIGKILL when they take longer. Only shell builtins and `sleep`, as the
/// job image must have them anyway (its test command runs with `sh -c`).
const KEEPER: &str = r#"trap 'kill -TERM -1 2>/dev/null; wait; while :; do left=; for p in /proc/[0-9]*; do n=${p#/proc/}; if [ "$n" != 1 ] && [ "$n" != $$ ] && [ -e "$p/stat" ]; then left=1; fi; done; [ -n "$left" ] || exit 0; sleep 0.1; done' TERM
while :; do sleep 3600 & wait $!; done"#;

/// The `docker exec` of `spec` in container `name` as `user`, and the
/// environment of the `docker` CLI that runs it: the spec's variables
/// (each named with `-e`, its value only in the CLI's environment) and
/// the CLI's own. `PATH` and the CLI's own variables are not passed in:
/// the container keeps its image's `PATH`, and a job cannot point the CLI
/// elsewhere.
pub(super) fn exec(rt: &DockerRuntime, name: &str, spec: &CommandSpec, user: RunAs) -> CommandSpec {
    let mut argv = vec![s("exec")];
    if matches!(spec.stdin, Stdin::Bytes(_)) {
        argv.push(s("-i"));
    }
    argv.extend([
        s("-u"),
        user_arg(user),
        s("-w"),
        spec.cwd.to_string_lossy().into_owned(),
    ]);
    let passed: Vec<&(String, String)> = spec.env.iter().filter(|(k, _)| is_passed(k)).collect();
    for (k, _) in &passed {
        argv.push(s("-e"));
        argv.push(k.clone());
    }
    argv.push(s(name));
    argv.push(spec.program.clone());
    argv.extend(spec.args.iter().cloned());
    let mut cli = rt.cli(argv, spec.timeout);
    cli.kill_grace = spec.kill_grace;
    cli.stdin = spec.stdin.clone();
    cli.stderr_cr_ends_line = spec.stderr_cr_ends_line;
    // The CLI's own variables win over a spec's of the same name.
    let own = std::mem::take(&mut cli.env);
    cli.env = passed.into_iter().cloned().collect();
    cli.envs(own)
}

/// Whether a command's variable is passed into the container.
fn is_passed(name: &str) -> bool {
    name != "PATH" && !DOCKER_CLI_VARS.contains(&name) && !name.starts_with("DOCKER_")
}

/// `docker stop -t 10`: SIGTERM to the container's init, SIGKILL ten
/// seconds later.
pub(super) fn stop(name: &str) -> Vec<String> {
    vec![s("stop"), s("-t"), s("10"), s(name)]
}

/// `docker rm -f -v`: gone, with its anonymous volumes.
pub(super) fn remove(names: &[String]) -> Vec<String> {
    let mut argv = vec![s("rm"), s("-f"), s("-v")];
    argv.extend(names.iter().cloned());
    argv
}

/// The ids of every container (running or not) carrying `label`.
pub(super) fn list_labelled(label: &str) -> Vec<String> {
    vec![
        s("ps"),
        s("-aq"),
        s("--no-trunc"),
        s("--filter"),
        format!("label={label}"),
    ]
}

/// A throw-away container of the image that prints which of `programs`
/// are on its `PATH` (as the job's commands would find them), one per
/// line; the names are arguments of the script, never part of it.
pub(super) fn probe(rt: &DockerRuntime, programs: &[String]) -> Vec<String> {
    let mut argv = vec![
        s("run"),
        s("--rm"),
        s("--pull"),
        s("never"),
        s("--network"),
        s("none"),
        s("--label"),
        rt.runner_label(),
        s("--user"),
        user_arg(rt.runner_user),
        s("--entrypoint"),
        s("sh"),
        rt.image.clone(),
        s("-c"),
        s(r#"for p do command -v "$p" >/dev/null 2>&1 && echo "$p"; done; exit 0"#),
        s("sh"),
    ];
    argv.extend(programs.iter().cloned());
    argv
}

/// `docker image inspect`: the image's id, when it exists locally.
pub(super) fn image_id(image: &str) -> Vec<String> {
    vec![
        s("image"),
        s("inspect"),
        s("--format"),
        s("{{.Id}}"),
        s(image),
    ]
}

/// `docker version`: the daemon's version, when it answers.
pub(super) fn server_version() -> Vec<String> {
    vec![s("version"), s("--format"), s("{{.Server.Version}}")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DockerSettings, JobImage};
    use crate::executors::placement::Placement;
    use std::path::Path;
    use std::time::Duration;

    fn runtime() -> DockerRuntime {
        DockerRuntime {
            settings: DockerSettings {
                image: JobImage::Named("img:1".into()),
                cpus_milli: 1500,
                memory_bytes: 512 << 20,
                pids_limit: 99,
                network: "none".into(),
                cli_env: Vec::new(),
            },
            image: "img:1".into(),
            runner_id: "r1".into(),
            workspace: "/ws".into(),
            placement: Placement::host(Path::new("/ws")),
            cli_env: vec![
                ("PATH".into(), "/usr/bin".into()),
                ("DOCKER_CONFIG".into(), "/root/.docker".into()),
            ],
            runner_user: RunAs {
                uid: 1000,
                gid: 1000,
            },
            fence: None,
        }
    }

    #[test]
    fn an_exec_names_variables_and_its_cli_holds_their_values() {
        let rt = runtime();
        let spec = CommandSpec::new("claude", "/ws/jobs/j/repo")
            .args(["-p", "hi"])
            .env("PATH", "/host/bin")
            .env("HOME", "/ws/jobs/j/home")
            .env("ANTHROPIC_API_KEY", "sk-ant-secret-value")
            .env("DOCKER_HOST", "tcp://evil:2375")
            .stdin(Stdin::Bytes(b"prompt".to_vec()))
            .timeout(Some(Duration::from_secs(5)));
        let cli = exec(&rt, "c1", &spec, RunAs { uid: 7, gid: 8 });
        assert_eq!(cli.program, "docker");
        assert_eq!(
            cli.args,
            [
                "exec",
                "-i",
                "-u",
                "7:8",
                "-w",
                "/ws/jobs/j/repo",
                "-e",
                "HOME",
                "-e",
                "ANTHROPIC_API_KEY",
                "c1",
                "claude",
                "-p",
                "hi"
            ]
        );
        assert!(!cli.args.iter().any(|a| a.contains("secret")));
        assert_eq!(
            cli.get_env("ANTHROPIC_API_KEY"),
            Some("sk-ant-secret-value")
        );
        // The CLI's own PATH and configuration; a job cannot redirect it.
        assert_eq!(cli.get_env("PATH"), Some("/usr/bin"));
        assert_eq!(cli.get_env("DOCKER_CONFIG"), Some("/root/.docker"));
        assert_eq!(cli.get_env("DOCKER_HOST"), None);
        assert_eq!(cli.timeout, Some(Duration::from_secs(5)));
        assert_eq!(cli.stdin, Stdin::Bytes(b"prompt".to_vec()));
        assert_eq!(cli.run_as, None, "the CLI runs as the runner");
    }

    #[test]
    fn a_job_container_has_its_limits_labels_user_and_mounts_and_no_environment() {
        let rt = runtime();
        let mounts = [Mount {
            source: "/srv/ws/jobs/j/repo".into(),
            target: "/ws/jobs/j/repo".into(),
        }];
        let parts = run(
            &rt,
            "ados-r1-j-1",
            "j",
            RunAs { uid: 7, gid: 8 },
            &mounts,
            None,
        );
        let argv = parts.join(" ");
        for part in [
            "run -d --init --pull never --name ados-r1-j-1",
            "--label ados.runner=r1 --label ados.job=j",
            "--cpus 1.5 --memory 536870912 --memory-swap 536870912 --pids-limit 99 --network none",
            "--user 7:8",
            "--mount type=bind,source=/srv/ws/jobs/j/repo,target=/ws/jobs/j/repo",
            "--entrypoint sh img:1 -c",
        ] {
            assert!(argv.contains(part), "{part} not in {argv}");
        }
        assert!(
            !parts.iter().any(|a| a == "-e" || a.starts_with("--env")),
            "{argv}"
        );
        // The keeper is the main process, the last arguments.
        assert!(argv.ends_with(&format!("-c {KEEPER} ados-job")), "{argv}");
    }

    #[test]
    fn a_fenced_container_has_no_network_and_runs_the_forwarder_from_read_only_mounts() {
        let mut rt = runtime();
        rt.settings.network = "bridge".into();
        let fence = Fence {
            socket_dir: "/srv/ws/jobs/j/egress".into(),
            forwarder: "/srv/ws/state/egress/ados-work-runner".into(),
        };
        let argv = run(&rt, "c", "j", RunAs { uid: 7, gid: 8 }, &[], Some(&fence)).join(" ");
        for part in [
            "--network none",
            "--mount type=bind,source=/srv/ws/jobs/j/egress,target=/run/ados-egress,readonly",
            "--mount type=bind,source=/srv/ws/state/egress/ados-work-runner,target=/run/ados-egress-forward,readonly",
            "--entrypoint sh img:1 -c",
        ] {
            assert!(argv.contains(part), "{part} not in {argv}");
        }
        // The forwarder runs beside the keeper, which stays the main process.
        assert!(
            argv.ends_with(&format!(
                "{KEEPER} /run/ados-egress-forward egress-forward --listen 127.0.0.1:3128 --socket /run/ados-egress/proxy.sock"
            )),
            "{argv}"
        );
        assert!(!argv.contains("bridge"), "{argv}");
    }

    #[test]
    fn only_names_reach_the_exec_line_and_the_cli_keeps_its_own_variables() {
        assert!(is_passed("ANTHROPIC_API_KEY"));
        assert!(is_passed("HOME"));
        assert!(!is_passed("PATH"));
        assert!(!is_passed("DOCKER_HOST"));
        assert!(!is_passed("DOCKER_ANYTHING"));
    }
}
