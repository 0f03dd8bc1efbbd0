//! The runner's `full` image run as the ADOS docs run it (`docker run` with
//! the Docker socket and a named volume or a bind mount on `/workspace`),
//! with a control plane and a git server on the Docker bridge's gateway,
//! where a container reaches this host: for `docker_runner.rs` and the
//! egress tests of a runner in a container (`docker_egress.rs`).
//!
//! Every container a scene starts carries the label `ados.test=<its
//! name>`; those, the job containers of its runner ids and its volumes are
//! removed before and after it.

use crate::control_plane::{ControlPlane, Options};
use crate::docker::{self, available_or_skip};
use crate::fixtures::{make_bare_repo, TempDir};
use crate::git_server::GitServer;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a runner, a job or a container may take.
pub const T: Duration = Duration::from_secs(120);
/// The git server's token (the runner's `GITHUB_TOKEN`).
pub const GITHUB: &str = "ghs_RunnerImageTest0123456789abcdef";
/// The runner's `ANTHROPIC_API_KEY`.
pub const ANTHROPIC: &str = "sk-ant-runner-image-0123456789abcdef";

/// One test's servers, repository and the Docker objects it made.
pub struct Scene {
    /// The test's name (in labels and volume names).
    pub test: String,
    /// The control plane, on the bridge's gateway.
    pub cp: ControlPlane,
    /// The git server, on the bridge's gateway.
    pub git: GitServer,
    /// Where the repositories are.
    pub repos: TempDir,
    volumes: Vec<String>,
    runner_ids: Vec<String>,
}

/// How one runner container is started, beyond the docs' command.
pub struct RunnerSpec<'a> {
    /// `ADOS_RUNNER_ID`.
    pub id: &'a str,
    /// `-v <this>:/workspace`: a volume name or a host directory.
    pub workspace: &'a str,
    /// `ADOS_GROUP`.
    pub group: Option<&'a str>,
    /// `--cpus`, `--memory`.
    pub limits: Option<(&'a str, &'a str)>,
    /// `--user`, `--group-add`.
    pub user: Option<(&'a str, &'a str)>,
    /// More variables for the runner.
    pub env: Vec<(&'static str, String)>,
}

impl Scene {
    /// The servers and repository `r` of the scene `test`, with what an
    /// earlier run of it left removed.
    pub fn new(test: &str) -> Scene {
        let gw = docker::bridge_gateway();
        let cp = ControlPlane::start(Options {
            heartbeat_s: 1,
            host: gw.clone(),
            ..Options::default()
        });
        let repos = TempDir::new(&format!("{test}-repos"));
        make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
        let git = GitServer::start_on(&gw, repos.path(), "x-access-token", GITHUB);
        let s = Scene {
            test: test.to_string(),
            cp,
            git,
            repos,
            volumes: Vec::new(),
            runner_ids: Vec::new(),
        };
        s.clean();
        s
    }

    /// A volume name of this test (removed with it).
    pub fn volume(&mut self, n: usize) -> String {
        let v = format!("ados-test-{}-{}-{n}", self.test, std::process::id());
        let _ = docker::docker_output(&["volume", "rm", "-f", &v]);
        self.volumes.push(v.clone());
        v
    }

    /// The name of runner `id`'s container.
    pub fn container_name(&self, id: &str) -> String {
        format!("ados-test-{}-{id}", self.test)
    }

    /// `docker run -d` as the ADOS docs write it (the socket, the
    /// workspace, the variables), plus what the test servers need
    /// (plain http to the bridge, a quick reconnect, no disk floor). Values
    /// reach the docker CLI through its environment (`-e NAME`).
    pub fn start_runner(&mut self, image: &str, r: &RunnerSpec) -> String {
        self.runner_ids.push(r.id.to_string());
        let name = self.container_name(r.id);
        let _ = docker::docker_output(&["rm", "-f", &name]);
        let mut env: Vec<(&str, String)> = vec![
            ("ADOS_API_URL", self.cp.url()),
            ("ADOS_TOKEN", self.cp.options().token.clone()),
            ("ADOS_RUNNER_ID", r.id.to_string()),
            ("WORKSPACE_DIR", "/workspace".into()),
            ("GITHUB_TOKEN", GITHUB.into()),
            ("ANTHROPIC_API_KEY", ANTHROPIC.into()),
            ("ADOS_ALLOW_HTTP", "1".into()),
            ("ADOS_MAX_BACKOFF", "300ms".into()),
            ("ADOS_MIN_FREE_DISK", "0".into()),
        ];
        if let Some(g) = r.group {
            env.push(("ADOS_GROUP", g.to_string()));
        }
        env.extend(r.env.iter().cloned());
        let label = format!("ados.test={}", self.test);
        let ws = format!("{}:/workspace", r.workspace);
        let mut argv: Vec<&str> = vec!["run", "-d", "--name", &name, "--label", &label];
        if let Some((cpus, memory)) = r.limits {
            argv.extend(["--cpus", cpus, "--memory", memory]);
        }
        if let Some((user, group)) = r.user {
            argv.extend(["--user", user, "--group-add", group]);
        }
        for (k, _) in &env {
            argv.extend(["-e", k]);
        }
        argv.extend([
            "-v",
            "/var/run/docker.sock:/var/run/docker.sock",
            "-v",
            &ws,
            image,
        ]);
        let out = Command::new("docker")
            .args(&argv)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("run docker");
        assert!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The `hello` of runner `id` sent after frame `from`.
    pub fn hello(&self, id: &str, from: usize) -> Value {
        let logs = || docker::docker_output(&["logs", &self.container_name(id)]);
        let deadline = Instant::now() + T;
        loop {
            if let Some(h) = self
                .cp
                .frames()
                .into_iter()
                .skip(from)
                .find(|v| v["type"] == "hello" && v["runner_id"] == id)
            {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "runner {id} never said hello: {}",
                String::from_utf8_lossy(&logs().stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Assign `job` to runner `runner`.
    pub fn assign(&self, runner: &str, job: Value) {
        let conn = self.cp.conn_of(runner).expect("the runner is connected");
        assert!(self.cp.assign_on(conn, job), "assign to {runner}");
    }

    /// A job on `repo` (`r`, or one made with [`Scene::repo`]) that pushes
    /// to its main branch.
    pub fn spec(&self, repo: &str, id: &str, prompt: &str, test_command: &str) -> Value {
        json!({"job_id": id, "kind": "issue",
               "repo": {"provider": "github", "owner": "o", "name": repo,
                        "clone_url": self.git.url_for(&format!("{repo}.git")), "target_branch": "main"},
               "prompt": prompt, "agent": {"name": "claude"},
               "merge_mode": "direct", "test_command": test_command, "max_repair_attempts": 0,
               "commit": {"author_name": "ADOS Bot", "author_email": "bot@ados.dev"}})
    }

    /// Another repository on the git server: jobs pushing side by side to
    /// one branch would race.
    pub fn repo(&self, name: &str) {
        make_bare_repo(
            self.repos.path(),
            &format!("{name}.git"),
            &[("README.md", "# r\n")],
        );
    }

    /// Job `id`'s result, once it comes.
    pub fn result(&self, id: &str) -> Value {
        self.cp.result_of(id, T)
    }

    /// Runner `id`'s container log.
    pub fn logs(&self, id: &str) -> String {
        let out = docker::docker_output(&["logs", &self.container_name(id)]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Remove this test's runner containers, their job containers and its
    /// volumes.
    pub fn clean(&self) {
        docker::remove_containers_labelled(&format!("ados.test={}", self.test));
        for id in &self.runner_ids {
            docker::remove_containers_labelled(&format!("ados.runner={id}"));
        }
        for v in &self.volumes {
            let _ = docker::docker_output(&["volume", "rm", "-f", v]);
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.clean();
    }
}

/// The `full` image and a scene named `scene`; `None` when Docker is not
/// available (`test` is skipped).
pub fn full_scene(test: &str, scene: &str) -> Option<(String, Scene)> {
    if !available_or_skip(test) {
        return None;
    }
    Some((docker::full_image(), Scene::new(scene)))
}

/// Wait until `label`'s containers are what `want` says.
pub fn wait_containers(label: &str, want: impl Fn(&[String]) -> bool, what: &str) -> Vec<String> {
    let deadline = Instant::now() + T;
    loop {
        let ids = docker::containers_labelled(label);
        if want(&ids) {
            return ids;
        }
        assert!(Instant::now() < deadline, "{what}: {ids:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
