//! A runner with the Docker executor, its control plane and a repository,
//! for the tests that run jobs in real containers (`docker_executor.rs`,
//! `docker_egress.rs`): one harness, each test file adding its own
//! variables and helpers.

use crate::control_plane::{ControlPlane, Options};
use crate::docker;
use crate::fixtures::{make_bare_repo, try_git, TempDir};
use crate::runner::RunnerProcess;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// How long a frame, a result or a container may take.
pub const T: Duration = Duration::from_secs(90);

/// A running runner (the binary `bin`) with `ADOS_EXECUTOR=docker`; every
/// container labelled with its runner id is removed on drop.
pub struct DockerRunner {
    /// Its control plane.
    pub cp: ControlPlane,
    /// Its `WORKSPACE_DIR`.
    pub ws: TempDir,
    /// Where the repository `r.git` is.
    pub repos: TempDir,
    /// `ADOS_RUNNER_ID` (and the `ados.runner` label of its containers).
    pub runner_id: String,
    /// Its environment.
    pub env: Vec<(&'static str, String)>,
    /// The process, while it runs.
    pub runner: Option<RunnerProcess>,
    bin: PathBuf,
}

impl DockerRunner {
    /// Start `bin` with id `<prefix>-<pid>-<short test name>`, jobs in
    /// `image`, and `extra` after the variables every such test needs.
    pub fn start(
        bin: &str,
        prefix: &str,
        test: &str,
        image: String,
        extra: Vec<(&'static str, String)>,
    ) -> DockerRunner {
        let runner_id = format!("{prefix}-{}-{}", std::process::id(), short(test));
        docker::remove_containers_labelled(&format!("ados.runner={runner_id}"));
        let cp = ControlPlane::start(Options {
            heartbeat_s: 1,
            ..Options::default()
        });
        let ws = TempDir::new(&format!("{prefix}-ws"));
        let repos = TempDir::new(&format!("{prefix}-repos"));
        make_bare_repo(repos.path(), "r.git", &[("README.md", "# r\n")]);
        let mut env: Vec<(&'static str, String)> = vec![
            ("ADOS_API_URL", cp.url()),
            ("ADOS_TOKEN", cp.options().token.clone()),
            ("ADOS_RUNNER_ID", runner_id.clone()),
            ("WORKSPACE_DIR", ws.path().display().to_string()),
            ("ADOS_HEALTH_ADDR", "off".into()),
            ("ADOS_MAX_BACKOFF", "300ms".into()),
            ("ADOS_ALLOW_FILE_REMOTES", "1".into()),
            ("ADOS_MIN_FREE_DISK", "0".into()),
            ("ADOS_EXECUTOR", "docker".into()),
            ("ADOS_JOB_IMAGE", image),
            // The host's PATH holds no agent CLI: they are in the image.
            ("PATH", std::env::var("PATH").unwrap_or_default()),
        ];
        env.extend(extra);
        let mut s = DockerRunner {
            cp,
            ws,
            repos,
            runner_id,
            env,
            runner: None,
            bin: PathBuf::from(bin),
        };
        s.start_runner();
        s
    }

    /// (Re)start the runner process and wait for its `hello`.
    pub fn start_runner(&mut self) {
        self.runner = Some(RunnerProcess::start(&self.bin, &[], &self.env));
        self.cp.wait_for(|v| v["type"] == "hello", T);
    }

    /// The repository jobs clone.
    pub fn bare(&self) -> PathBuf {
        self.repos.path().join("r.git")
    }

    /// A `claude` issue job on the repository, pushed straight to main.
    pub fn spec(&self, id: &str, prompt: &str, test_command: &str) -> Value {
        json!({"job_id": id, "kind": "issue",
               "repo": {"provider": "github", "owner": "o", "name": "r",
                        "clone_url": self.bare().display().to_string(), "target_branch": "main"},
               "prompt": prompt, "agent": {"name": "claude"},
               "merge_mode": "direct", "test_command": test_command, "max_repair_attempts": 0,
               "commit": {"author_name": "ADOS Bot", "author_email": "bot@ados.dev"}})
    }

    /// Job `id`'s result, once it comes.
    pub fn result(&self, id: &str) -> Value {
        self.cp
            .wait_for(|v| v["type"] == "job.result" && v["job_id"] == id, T)
    }

    /// Every event frame of job `id`, as JSON text.
    pub fn events(&self, id: &str) -> String {
        self.cp
            .frames()
            .into_iter()
            .filter(|v| v["type"] == "job.event" && v["job_id"] == id)
            .map(|v| v.to_string())
            .collect()
    }

    /// Every container of this runner (running or not).
    pub fn containers(&self) -> Vec<String> {
        docker::containers_labelled(&format!("ados.runner={}", self.runner_id))
    }

    /// `file` on the repository's main branch, if it is there.
    pub fn file_on_main(&self, file: &str) -> Option<String> {
        let (ok, out, _) = try_git(&self.bare(), &["show", &format!("refs/heads/main:{file}")]);
        ok.then(|| out.trim().to_string())
    }
}

impl Drop for DockerRunner {
    fn drop(&mut self) {
        self.runner = None;
        docker::remove_containers_labelled(&format!("ados.runner={}", self.runner_id));
    }
}

/// A label-safe short name of a test.
pub fn short(test: &str) -> String {
    test.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}
