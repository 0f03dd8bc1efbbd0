//! Running the real `ados-work-runner` binary in tests: a clean
//! environment, captured stderr, signals, bounded waits, and a kill on
//! drop so no test leaves a runner behind.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The fake agent CLIs (`claude`, `codex`, `copilot`) of `tests/fixtures/agents`,
/// copied once per test process into a directory every user can read: a
/// runner started as root runs each job's agent as a user of the job's own
/// (`ADOS_JOB_UID_BASE`), who may not be able to reach the checkout the
/// tests run from (a clone under `/root`, mode 0700).
pub fn fake_agents_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents");
        let dir = std::env::temp_dir().join(format!("ados-fake-agents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fake agents' directory");
        for entry in std::fs::read_dir(&source).expect("read tests/fixtures/agents") {
            let entry = entry.expect("list tests/fixtures/agents");
            let to = dir.join(entry.file_name());
            std::fs::copy(entry.path(), &to).expect("copy a fake agent");
            let mode = std::fs::metadata(entry.path())
                .expect("stat a fake agent")
                .permissions()
                .mode();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode | 0o444))
                .expect("make a fake agent readable");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .expect("make the fake agents' directory readable");
        dir.canonicalize().unwrap_or(dir)
    })
    .clone()
}

/// Makes the fake `copilot` play `version` (`0.0.339`, `1.0.60`) for a
/// process whose `PATH` has `dir` before the fake agents: a link to the
/// fake in `dir`, and `dir/copilot-version`, which the fake reads beside
/// the program as it was called. Per directory, so tests running at once
/// can play different versions; rewriting the file changes the version
/// for the next run.
pub fn fake_copilot_at(dir: &Path, version: &str) {
    let link = dir.join("copilot");
    if !link.exists() {
        std::os::unix::fs::symlink(fake_agents_dir().join("copilot"), &link)
            .expect("link the fake copilot");
    }
    std::fs::write(dir.join("copilot-version"), format!("{version}\n"))
        .expect("write copilot-version");
}

/// A PATH with the fake agents first, then the system's.
pub fn path_with_fake_agents() -> String {
    format!(
        "{}:{}",
        fake_agents_dir().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into())
    )
}

/// The lines `check` prints when a runner is set up right against the test
/// control plane with the fake agents on PATH.
pub const CHECK_PASSES: [&str; 5] = [
    "✓ configuration",
    "✓ git",
    "✓ agent CLIs",
    "✓ API reachable",
    "✓ WebSocket handshake",
];

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running runner process.
pub struct RunnerProcess {
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl RunnerProcess {
    /// Start `bin args…` with exactly `env` (plus nothing inherited).
    pub fn start(bin: &Path, args: &[&str], env: &[(&str, String)]) -> RunnerProcess {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start the runner binary");
        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(mut err) = child.stderr.take() {
            let buf = stderr.clone();
            readers.push(std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&chunk[..n]).into_owned();
                    if std::env::var_os("ADOS_TEST_ECHO").is_some() {
                        eprint!("{text}");
                    }
                    buf.lock().expect("lock").push_str(&text);
                }
            }));
        }
        if let Some(mut out) = child.stdout.take() {
            let buf = stdout.clone();
            readers.push(std::thread::spawn(move || {
                let mut s = String::new();
                let _ = out.read_to_string(&mut s);
                buf.lock().expect("lock").push_str(&s);
            }));
        }
        RunnerProcess {
            child: Some(child),
            stderr,
            stdout,
            readers,
        }
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// Everything written to stdout so far (complete after exit).
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    /// Send a signal to the runner.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Wait up to `timeout` for the runner to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    for r in self.readers.drain(..) {
                        let _ = r.join();
                    }
                    return Some(status);
                }
            } else {
                return None;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Wait until stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for RunnerProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Run the binary to completion (with a deadline) and return
/// (status, stdout, stderr).
pub fn run_to_end(
    bin: &Path,
    args: &[&str],
    env: &[(&str, String)],
    timeout: Duration,
) -> (Option<ExitStatus>, String, String) {
    let mut p = RunnerProcess::start(bin, args, env);
    let status = p.wait_exit(timeout);
    (status, p.stdout(), p.stderr())
}

/// What [`exec_on_new_repo`] saw.
pub struct ExecRun {
    /// The exit code.
    pub code: Option<i32>,
    /// The result JSON on stdout (`null` when there was none).
    pub result: serde_json::Value,
    /// Stderr: exec's progress.
    pub stderr: String,
    /// The bare repository the job ran on.
    pub repo: PathBuf,
    /// Holds the repository and the workspace until the test ends.
    pub dirs: (crate::fixtures::TempDir, crate::fixtures::TempDir),
}

/// Run `bin exec --repo <a new bare repository holding files> args…` with
/// the environment `env(workspace)`.
pub fn exec_on_new_repo(
    bin: &Path,
    name: &str,
    files: &[(&str, &str)],
    args: &[&str],
    env: impl Fn(&Path) -> Vec<(&'static str, String)>,
) -> ExecRun {
    let repos = crate::fixtures::TempDir::new(&format!("exec-{name}-repos"));
    let ws = crate::fixtures::TempDir::new(&format!("exec-{name}-ws"));
    let repo = crate::fixtures::make_bare_repo(repos.path(), "r.git", files);
    let repo_s = repo.display().to_string();
    let mut argv = vec!["exec", "--repo", &repo_s];
    argv.extend_from_slice(args);
    let (status, out, err) = run_to_end(bin, &argv, &env(ws.path()), Duration::from_secs(60));
    ExecRun {
        code: status.and_then(|s| s.code()),
        result: serde_json::from_str(&out).unwrap_or(serde_json::Value::Null),
        stderr: err,
        repo,
        dirs: (repos, ws),
    }
}

/// A plain HTTP GET on 127.0.0.1 (for /health and /metrics): (status, body).
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}
