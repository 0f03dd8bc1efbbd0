//! The pipeline harness: the real runner binary with a test control
//! plane, a token-checking git server, a provider API stand-in and the
//! fake agents, for end-to-end tests of issue jobs.

use crate::control_plane::{ControlPlane, Options};
use crate::fixtures::{git_argv_recorder, make_bare_repo, try_git, TempDir};
use crate::forge::{Auth, ForgeServer, Kind};
use crate::git_server::GitServer;
use crate::runner::{fake_agents_dir, free_port, RunnerProcess};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The runner binary cargo built beside the running test binary
/// (`target/<profile>/ados-work-runner`, where `CARGO_BIN_EXE_*` points:
/// the test binary is in `target/<profile>/deps`).
pub fn runner_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = profile.join("ados-work-runner");
    assert!(bin.is_file(), "{} was not built", bin.display());
    bin
}

/// The VCS token the git server and the forge stand-in demand.
pub const TOKEN: &str = "ghs_TestToken0123456789abcdefXYZ";
/// The Bitbucket user of the harness.
pub const BB_USER: &str = "ados-bot";
/// The runner's Anthropic key (a secret to look for).
pub const ANTHROPIC: &str = "sk-ant-test-key-0123456789abcdef";
/// How long a wait for a job may take.
pub const T: Duration = Duration::from_secs(60);

/// One runner with its own control plane, git server, forge stand-in and
/// workspace, whose fake agents are first on its `PATH`.
pub struct Harness {
    /// The test control plane.
    pub cp: ControlPlane,
    /// The runner's `WORKSPACE_DIR`.
    pub ws: TempDir,
    /// Where the bare repositories are.
    pub repos: TempDir,
    /// The git argv recorder's directory; its `bin` is first on the runner's `PATH`.
    pub recorder: TempDir,
    /// The smart-HTTP git server.
    pub git: GitServer,
    /// The provider API stand-in (one per harness).
    pub forge: ForgeServer,
    /// The provider.
    pub kind: Kind,
    /// The health server's port.
    pub health: u16,
    _runner: RunnerProcess,
}

impl Harness {
    /// A GitHub harness whose repository holds `files` on `main`.
    pub fn start(files: &[(&str, &str)]) -> Harness {
        Harness::start_with(files, &[])
    }

    /// A harness whose runner also gets `extra` in its environment.
    pub fn start_with(files: &[(&str, &str)], extra: &[(&str, &str)]) -> Harness {
        Harness::start_on(Kind::GitHub, files, extra)
    }

    /// A harness whose repository is on `kind`'s provider: the git server
    /// and the API stand-in demand that provider's credentials.
    pub fn start_on(kind: Kind, files: &[(&str, &str)], extra: &[(&str, &str)]) -> Harness {
        let cp = ControlPlane::start(Options {
            heartbeat_s: 1,
            ..Options::default()
        });
        let ws = TempDir::new("pipeline-ws");
        let repos = TempDir::new("pipeline-repos");
        let recorder = TempDir::new("pipeline-argv");
        make_bare_repo(repos.path(), "o/r.git", files);
        let (git_user, token_var, auth) = match kind {
            Kind::GitHub => ("x-access-token", "GITHUB_TOKEN", Auth::Bearer(TOKEN.into())),
            Kind::GitLab => ("oauth2", "GITLAB_TOKEN", Auth::PrivateToken(TOKEN.into())),
            Kind::Bitbucket => (
                BB_USER,
                "BITBUCKET_APP_PASSWORD",
                Auth::Basic(BB_USER.into(), TOKEN.into()),
            ),
        };
        let git = GitServer::start(repos.path(), git_user, TOKEN);
        let forge = ForgeServer::start(kind, "o/r", auth);
        let bin = git_argv_recorder(recorder.path());
        let health = free_port();
        let path = format!(
            "{}:{}:{}",
            bin.display(),
            fake_agents_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let env: Vec<(&str, String)> = vec![
            ("ADOS_API_URL", cp.url()),
            ("ADOS_TOKEN", cp.options().token.clone()),
            ("ADOS_RUNNER_ID", "runner-pipeline".into()),
            ("WORKSPACE_DIR", ws.path().display().to_string()),
            ("ADOS_HEALTH_ADDR", format!("127.0.0.1:{health}")),
            ("ADOS_MAX_BACKOFF", "300ms".into()),
            ("ADOS_MAX_JOBS", "2".into()),
            ("ADOS_MIN_FREE_DISK", "0".into()),
            (token_var, TOKEN.into()),
            ("ANTHROPIC_API_KEY", ANTHROPIC.into()),
            ("OPENAI_API_KEY", "sk-openai-test-0123456789abcdef".into()),
            (
                "COPILOT_GITHUB_TOKEN",
                "github_pat_copilot_test_0123456789".into(),
            ),
            ("PATH", path),
        ];
        let mut env = env;
        if kind == Kind::Bitbucket {
            env.push(("BITBUCKET_USERNAME", BB_USER.into()));
        }
        env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        let runner = RunnerProcess::start(&runner_binary(), &[], &env);
        cp.wait_for(|v| v["type"] == "hello", T);
        Harness {
            cp,
            ws,
            repos,
            recorder,
            git,
            forge,
            kind,
            health,
            _runner: runner,
        }
    }

    /// Makes the fake `copilot` play `version` for the jobs from now on
    /// (the runner asks each job's copilot for its version).
    pub fn copilot_version(&self, version: &str) {
        crate::runner::fake_copilot_at(&self.recorder.path().join("bin"), version);
    }

    /// The repository's bare directory on the git server.
    pub fn bare(&self) -> PathBuf {
        self.repos.path().join("o/r.git")
    }

    /// An issue job `id` for `agent` with `prompt` (the fakes' directives)
    /// and `test_command`, `merge_mode: pr` onto `ados/<id>`.
    pub fn spec(&self, id: &str, agent: &str, prompt: &str, test_command: &str) -> Value {
        json!({"job_id": id, "kind": "issue",
               "repo": {"provider": provider_of(self.kind), "owner": "o", "name": "r",
                        "clone_url": self.git.url_for("o/r.git"), "target_branch": "main",
                        "api_url": self.forge.api_url()},
               "issue": {"number": 7, "title": "Say hello", "body": "Add hello.txt"},
               "prompt": prompt,
               "agent": {"name": agent, "model": "test-model"},
               "branch": format!("ados/{id}"),
               "merge_mode": "pr", "test_command": test_command, "max_repair_attempts": 1,
               "commit": {"author_name": "ADOS Bot", "author_email": "bot@ados.dev"}})
    }

    /// Assign `spec` and wait for its result; returns (events, result).
    pub fn run(&self, spec: Value) -> (Vec<Value>, Value) {
        let id = spec["job_id"].as_str().unwrap_or_default().to_string();
        self.cp.assign(spec);
        let result = self.cp.wait_for(
            |v| v["type"] == "job.result" && v["job_id"] == id.as_str(),
            T,
        );
        let events = self
            .cp
            .frames()
            .into_iter()
            .filter(|v| v["type"] == "job.event" && v["job_id"] == id.as_str())
            .collect();
        (events, result)
    }

    /// `file` on `branch` of the server's repository, if both exist.
    pub fn branch_file(&self, branch: &str, file: &str) -> Option<String> {
        let (ok, out, _) = try_git(
            &self.bare(),
            &["show", &format!("refs/heads/{branch}:{file}")],
        );
        ok.then_some(out)
    }
}

/// The spec's `provider` for `kind`.
pub fn provider_of(kind: Kind) -> &'static str {
    match kind {
        Kind::GitHub => "github",
        Kind::GitLab => "gitlab",
        Kind::Bitbucket => "bitbucket",
    }
}

/// The steps a job went through: a status repeated with a new detail (a
/// clone's progress) is one step.
pub fn statuses(events: &[Value]) -> Vec<String> {
    let mut steps: Vec<String> = events
        .iter()
        .filter(|e| e["event"]["kind"] == "status")
        .map(|e| e["event"]["status"].as_str().unwrap_or("").to_string())
        .collect();
    steps.dedup();
    steps
}

/// Every event and the result as one string (where a secret must not be).
pub fn all_text(events: &[Value], result: &Value) -> String {
    let mut s: String = events.iter().map(|e| e.to_string()).collect();
    s.push_str(&result.to_string());
    s
}
