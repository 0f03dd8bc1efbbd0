//! `ados-work-runner exec`: run one job with no server.
//!
//! The job comes from a spec file (the `job` object of `job.assign`) or
//! from flags. Progress goes to stderr (each status with its elapsed time;
//! agent messages and tool calls one line each); the result JSON goes to
//! stdout or `--output FILE`. Exit 0 completed, 1 failed or needs-human,
//! 2 usage, 130 interrupted (Ctrl-C cancels the job cleanly first).

use crate::cancel::CancelReason;
use crate::config::{Config, Purpose, RawEnv};
use crate::exec_input;
use crate::job::event::{Event, JobResult, ResultStatus};
use crate::job::reporter::EventSink;
use crate::job::spec::JobSpec;
use crate::job::Reporter;
use crate::metrics::Metrics;
use crate::run::{JobContext, JobRunner};
use crate::workspace::Workspace;
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The usage text of `exec --help`.
pub const USAGE: &str = "\
ados-work-runner exec — run one job with no server

USAGE:
    ados-work-runner exec --spec FILE [--output FILE] [--verbose]
    ados-work-runner exec --repo URL|PATH (--prompt TEXT | --issue-file FILE) [OPTIONS]

OPTIONS:
    --spec FILE          A job spec: the JSON `job` object of protocol.md's job.assign
    --repo URL|PATH      Repository to work on (https://, ssh://, or a local path)
    --target-branch B    Branch to start from (default: main)
    --agent NAME         claude, codex, copilot or a custom agent (default: claude)
    --fallback NAME      An agent to try if the previous one fails (repeatable)
    --model MODEL        Model for the agent
    --prompt TEXT        The whole prompt
    --issue-file FILE    An issue as JSON ({number,title,body,comments}) when the
                         file starts with `{` (then it must be valid JSON), else
                         text (first line is the title); not with --prompt
    --test-cmd CMD       Test command, run by `sh -c` (\"\" runs none; default:
                         detected)
    --branch NAME        Branch to commit to (default: ados/issue-N or ados/job-exec)
    --merge-mode MODE    none (default for exec), direct or pr
    --provider NAME      github, gitlab or bitbucket: with --merge-mode pr, open
                         (or update) the pull request there; owner and name come
                         from the --repo URL (without it, pr pushes the branch only)
    --api-url URL        The provider's API (default: its public one, or the
                         self-hosted one under the --repo URL's host)
    --workspace DIR      Where clones and mirrors go (default: $WORKSPACE_DIR,
                         else <tmp>/ados-exec-workspace)
    --output FILE        Write the result JSON here instead of stdout
    --verbose            Also show every log line, the runner's INFO log
                         lines too (without it: warnings and errors only,
                         unless ADOS_LOG_LEVEL or RUST_LOG is set)

With --spec, the file gives the whole job: only --output, --workspace and
--verbose may stand beside it (any other flag is refused, never ignored),
and an unknown field is an error naming it. Defaults are the same either
way: merge_mode none (a local run pushes nothing unless asked), agent
claude, target branch main, the test command detected.

Local paths are allowed as remotes here (you named them yourself);
the daemon refuses them unless ADOS_ALLOW_FILE_REMOTES is set.
";

struct Options {
    spec_file: Option<String>,
    repo: Option<String>,
    target_branch: Option<String>,
    agent: Option<String>,
    fallbacks: Vec<String>,
    model: Option<String>,
    prompt: Option<String>,
    issue_file: Option<String>,
    test_cmd: Option<String>,
    branch: Option<String>,
    merge_mode: Option<String>,
    provider: Option<String>,
    api_url: Option<String>,
    workspace: Option<String>,
    output: Option<String>,
    verbose: bool,
    /// The flags typed that describe the job (all but --spec, --workspace,
    /// --output, --verbose): refused beside --spec.
    job_flags: Vec<String>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        spec_file: None,
        repo: None,
        target_branch: None,
        agent: None,
        fallbacks: Vec::new(),
        model: None,
        prompt: None,
        issue_file: None,
        test_cmd: None,
        branch: None,
        merge_mode: None,
        provider: None,
        api_url: None,
        workspace: None,
        output: None,
        verbose: false,
        job_flags: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        if !matches!(
            flag,
            "--spec" | "--workspace" | "--output" | "--verbose" | "-v"
        ) {
            o.job_flags.push(flag.to_string());
        }
        match flag {
            "--spec" => o.spec_file = Some(value(flag)?),
            "--repo" => o.repo = Some(value(flag)?),
            "--target-branch" => o.target_branch = Some(value(flag)?),
            "--agent" => o.agent = Some(value(flag)?),
            "--fallback" => o.fallbacks.push(value(flag)?),
            "--model" => o.model = Some(value(flag)?),
            "--prompt" => o.prompt = Some(value(flag)?),
            "--issue-file" => o.issue_file = Some(value(flag)?),
            "--test-cmd" => o.test_cmd = Some(value(flag)?),
            "--branch" => o.branch = Some(value(flag)?),
            "--merge-mode" => o.merge_mode = Some(value(flag)?),
            "--provider" => o.provider = Some(value(flag)?),
            "--api-url" => o.api_url = Some(value(flag)?),
            "--workspace" => o.workspace = Some(value(flag)?),
            "--output" => o.output = Some(value(flag)?),
            "--verbose" | "-v" => o.verbose = true,
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    Ok(o)
}

/// The spec JSON built from flags.
fn spec_from_flags(o: &Options) -> Result<Value, String> {
    let repo = o
        .repo
        .as_deref()
        .ok_or("either --spec FILE or --repo URL|PATH is required")?;
    let mut owner = "local".to_string();
    let mut base_url = None;
    let (clone_url, name) = if repo.contains("://") || repo.contains('@') {
        let name = repo
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or("repo")
            .trim_end_matches(".git")
            .to_string();
        if o.provider.is_some() {
            let (origin, path) = origin_and_path(repo);
            base_url = origin;
            if let Some((o, _)) = path.trim_matches('/').rsplit_once('/') {
                owner = o.to_string();
            }
        }
        (repo.to_string(), name)
    } else {
        let path = std::fs::canonicalize(repo)
            .map_err(|e| format!("--repo {repo}: {e} (give a URL or an existing local path)"))?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".git").to_string())
            .unwrap_or_else(|| "repo".into());
        (path.to_string_lossy().into_owned(), name)
    };
    let name = crate::workspace::file_name_word(&name);
    if o.prompt.is_some() && o.issue_file.is_some() {
        return Err("give the task with --prompt TEXT or --issue-file FILE, not both".into());
    }
    let issue = match &o.issue_file {
        None => Value::Null,
        Some(f) => exec_input::read_issue_file(f)?,
    };
    if o.prompt.is_none() && issue.is_null() {
        return Err("give the task with --prompt TEXT or --issue-file FILE".into());
    }
    let mut agent = json!({"name": o.agent.clone().unwrap_or_else(|| "claude".into())});
    if let Some(m) = &o.model {
        agent["model"] = json!(m);
    }
    let mut spec = json!({
        "job_id": "exec",
        "kind": "issue",
        "repo": {"provider": o.provider.clone().unwrap_or_else(|| "github".into()),
                 "owner": owner, "name": name, "clone_url": clone_url,
                 "target_branch": o.target_branch.clone().unwrap_or_else(|| "main".into())},
        "issue": issue,
        "prompt": o.prompt,
        "agent": agent,
        "fallbacks": o.fallbacks.iter().map(|f| json!({"name":f})).collect::<Vec<_>>(),
        "merge_mode": o.merge_mode.clone().unwrap_or_else(|| "none".into()),
        "test_command": o.test_cmd,
    });
    if let Some(u) = base_url {
        spec["repo"]["base_url"] = json!(u);
    }
    if let Some(u) = &o.api_url {
        spec["repo"]["api_url"] = json!(u);
    }
    if let Some(b) = &o.branch {
        spec["branch"] = json!(b);
    } else if issue_is_null(&spec) {
        spec["branch"] = json!("ados/job-exec");
    }
    Ok(spec)
}

/// `scheme://host[:port]` and the path of an `http(s)` or `ssh` URL (no
/// origin for scp-like `git@host:path`, whose host names no web server).
fn origin_and_path(url: &str) -> (Option<String>, &str) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (None, url.rsplit_once(':').map_or(url, |(_, p)| p));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let web = matches!(scheme, "http" | "https");
    (web.then(|| format!("{scheme}://{host}")), path)
}

fn issue_is_null(spec: &Value) -> bool {
    spec.get("issue").map(Value::is_null).unwrap_or(true)
}

/// Run `exec` with its arguments; returns the exit code.
pub fn main(args: &[String]) -> u8 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        print!("{USAGE}");
        return 0;
    }
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return 2;
        }
    };
    if let Some(Err(e)) = opts.output.as_deref().map(exec_input::check_output) {
        eprintln!("error: {e}");
        return 2;
    }
    let raw_spec = match &opts.spec_file {
        Some(f) => match std::fs::read_to_string(f)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
        {
            Ok(v) => {
                let mut v = v.get("job").cloned().unwrap_or(v);
                let unknown = exec_input::unknown_spec_fields(&v);
                if !unknown.is_empty() {
                    eprintln!("error: --spec {f}:\n  - {}", unknown.join("\n  - "));
                    return 2;
                }
                if let Err(e) = exec_input::refuse_beside_spec(&opts.job_flags) {
                    eprintln!("error: {e}");
                    return 2;
                }
                exec_input::apply_exec_defaults(&mut v);
                v
            }
            Err(e) => {
                eprintln!("error: --spec {f}: {e}");
                return 2;
            }
        },
        None => match spec_from_flags(&opts) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("error: {e}\n\nSee `ados-work-runner exec --help`.");
                return 2;
            }
        },
    };

    let mut env = RawEnv::from_process();
    let workspace = opts
        .workspace
        .clone()
        .or_else(|| env.get("WORKSPACE_DIR").map(str::to_string))
        .unwrap_or_else(|| {
            std::env::temp_dir()
                .join("ados-exec-workspace")
                .to_string_lossy()
                .into_owned()
        });
    env.set("WORKSPACE_DIR", &workspace);
    let mut cfg = match Config::from_raw(&env, Purpose::Exec) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return 2;
        }
    };
    // The terminal shows exec's own progress: a module's INFO line (a
    // timed-out process, a lock wait) would cut through it. `--verbose` or
    // an ADOS_LOG_LEVEL / RUST_LOG the user set shows them.
    let chosen = env.get("ADOS_LOG_LEVEL").is_some() || env.get("RUST_LOG").is_some();
    let level = if opts.verbose || chosen {
        cfg.log_level.as_str()
    } else {
        "warn"
    };
    crate::logging::init_logging(cfg.log_format, level, cfg.secrets());
    let _ = rustls::crypto::ring::default_provider().install_default();
    // The user named the repository on their own command line: a local
    // path is not the untrusted input §5 guards against.
    cfg.remote_policy.allow_file = true;
    let from_flags = opts.spec_file.is_none();
    let spec = match JobSpec::from_json(&raw_spec, cfg.remote_policy) {
        Ok(s) => s,
        Err(e) if from_flags => {
            eprintln!("error: {}", exec_input::spec_error_for_flags(&e));
            return 2;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let fallbacks: Vec<&str> = spec.fallbacks.iter().map(|a| a.name.as_str()).collect();
    if let Err(e) = exec_input::check_agents(&cfg, &spec.agent.name, &fallbacks, from_flags) {
        eprintln!("error: {e}");
        return 2;
    }
    let ws = match Workspace::open(&cfg.workspace_dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!(
                "error: cannot prepare workspace {}: {e}",
                cfg.workspace_dir.display()
            );
            return 1;
        }
    };
    let cfg = Arc::new(cfg);
    let metrics = Arc::new(Metrics::new());
    let executors = match crate::executors::ExecutorKind::from_config(&cfg, &metrics) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let mut ctx = match JobContext::new(
        cfg.clone(),
        ws,
        executors,
        metrics,
        crate::link::Waker::noop(),
    ) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    // Flags without --provider name no forge (often a local repository):
    // `pr` then pushes the branch and opens nothing.
    ctx.open_prs = opts.spec_file.is_some() || opts.provider.is_some();
    // The job's directory goes when it ends: a commit that is not pushed
    // is kept beside the result (or here), or in the local --repo.
    ctx.keep_local = Some(bundle_dir(opts.output.as_deref()));
    let ctx = Arc::new(ctx);

    let (canceller, token) = crate::cancel::cancel_pair();
    let interrupted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signals = install_interrupt(canceller, interrupted.clone());

    let sink = TerminalSink::new(opts.verbose);
    let result_slot = sink.result.clone();
    let redactor = Arc::new(ctx.redactor.with(spec.secrets()));
    let mut reporter = Reporter::new(spec.job_id.clone(), Box::new(sink), redactor);
    eprintln!(
        "ados-work-runner exec: job {} on {} (agent {}, merge mode {})",
        spec.job_id,
        spec.repo.clone_url,
        spec.agent.name,
        spec.merge_mode.as_str()
    );
    let runner = JobRunner::new(&ctx, &spec, &token, None);
    let result = runner.run(&mut reporter);
    let status = result.status;
    if !reporter.is_finished() {
        reporter.finish(result);
    }
    if let Some(h) = signals {
        h.close();
    }
    let frame = result_slot
        .lock()
        .ok()
        .and_then(|r| r.clone())
        .unwrap_or_else(|| "{}".into());
    // Print the result without the frame's envelope fields.
    let pretty = serde_json::from_str::<Value>(&frame)
        .map(|mut v| {
            if let Value::Object(m) = &mut v {
                m.remove("type");
                m.remove("seq");
            }
            serde_json::to_string_pretty(&v).unwrap_or(frame.clone())
        })
        .unwrap_or(frame);
    match &opts.output {
        Some(path) => {
            if let Err(e) = std::fs::write(path, format!("{pretty}\n")) {
                eprintln!("error: cannot write --output {path}: {e}");
                println!("{pretty}");
            }
        }
        None => println!("{pretty}"),
    }
    if interrupted.load(std::sync::atomic::Ordering::SeqCst) {
        return 130;
    }
    match status {
        ResultStatus::Completed => 0,
        _ => 1,
    }
}

/// Where a `merge_mode: none` run's bundle goes: beside `--output`, else
/// the current directory; absolute, since the job's git runs elsewhere.
fn bundle_dir(output: Option<&str>) -> std::path::PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| std::path::PathBuf::from("."));
    let dir = output
        .map(std::path::Path::new)
        .and_then(std::path::Path::parent)
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| cwd.clone(), std::path::Path::to_path_buf);
    std::fs::canonicalize(&dir).unwrap_or_else(|_| cwd.join(dir))
}

struct InterruptHandle {
    handle: signal_hook::iterator::Handle,
    thread: std::thread::JoinHandle<()>,
}

impl InterruptHandle {
    fn close(self) {
        self.handle.close();
        let _ = self.thread.join();
    }
}

/// Ctrl-C (or SIGTERM) cancels the job gracefully; a second one kills it.
fn install_interrupt(
    canceller: crate::cancel::Canceller,
    interrupted: Arc<std::sync::atomic::AtomicBool>,
) -> Option<InterruptHandle> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            log::warn!("Ctrl-C will not cancel cleanly: {e}");
            return None;
        }
    };
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("ados-exec-signals".into())
        .spawn(move || {
            for (n, _) in signals.forever().enumerate() {
                interrupted.store(true, std::sync::atomic::Ordering::SeqCst);
                if n == 0 {
                    eprintln!(
                        "\ninterrupted: cancelling the job (Ctrl-C again to kill it at once)"
                    );
                    canceller.cancel(CancelReason::Shutdown);
                } else {
                    canceller.cancel(CancelReason::Kill);
                }
            }
        })
        .ok()?;
    Some(InterruptHandle { handle, thread })
}

/// Lines of a failing test run shown without `--verbose`.
const FAILED_TEST_LINES: usize = 20;

/// Shows a job's progress on the terminal.
struct TerminalSink {
    started: Instant,
    verbose: bool,
    result: Arc<Mutex<Option<String>>>,
    /// The last lines of the current test run, shown when it fails (with
    /// `--verbose` every line was shown already).
    test_tail: std::collections::VecDeque<String>,
}

impl TerminalSink {
    fn new(verbose: bool) -> TerminalSink {
        TerminalSink {
            started: Instant::now(),
            verbose,
            result: Arc::new(Mutex::new(None)),
            test_tail: std::collections::VecDeque::new(),
        }
    }

    fn line(&self, text: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "[{secs:7.1}s] {text}");
    }
}

fn one_line(text: &str, max: usize) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut s: String = first.chars().take(max).collect();
    if first.chars().count() > max || text.lines().filter(|l| !l.trim().is_empty()).count() > 1 {
        s.push('…');
    }
    s
}

impl EventSink for TerminalSink {
    fn event(&mut self, _seq: u64, _event: &Event, frame: &str) {
        // Print from the redacted frame, never from the raw event.
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            return;
        };
        let e = &v["event"];
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match e.get("kind").and_then(Value::as_str) {
            Some("status") => {
                let detail = s("detail");
                self.line(&format!(
                    "{}{}",
                    s("status"),
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {detail}")
                    }
                ));
            }
            Some("agent") => {
                let agent = s("agent");
                match e.get("type").and_then(Value::as_str) {
                    Some("message") => {
                        self.line(&format!("  {agent}: {}", one_line(&s("text"), 160)))
                    }
                    Some("tool_use") => self.line(&format!(
                        "  {agent} → {} {}",
                        s("tool"),
                        one_line(&s("text"), 120)
                    )),
                    Some("error") => {
                        self.line(&format!("  {agent} error: {}", one_line(&s("text"), 160)))
                    }
                    Some("usage") if self.verbose => self.line(&format!(
                        "  {agent} usage: {} in / {} out tokens",
                        e["input_tokens"], e["output_tokens"]
                    )),
                    _ if self.verbose => {
                        self.line(&format!("  {agent} {}", one_line(&s("text"), 160)))
                    }
                    _ => {}
                }
            }
            Some("test") => {
                let passed = e["passed"].as_bool() == Some(true);
                self.line(&format!(
                    "  tests `{}`: {} (exit {}, {:.1}s)",
                    s("command"),
                    if passed { "passed" } else { "FAILED" },
                    e["exit_code"],
                    e["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
                ));
                let tail = std::mem::take(&mut self.test_tail);
                if !passed && !self.verbose {
                    let mut err = std::io::stderr().lock();
                    for l in tail {
                        let _ = writeln!(err, "    | {l}");
                    }
                }
            }
            // The runner's own words are for the person watching: always shown.
            Some("log") if self.verbose || s("stream") == "runner" => {
                self.line(&format!("  [{}] {}", s("stream"), s("text").trim_end()))
            }
            Some("log") if s("stream") == "test" => {
                if self.test_tail.len() >= FAILED_TEST_LINES {
                    self.test_tail.pop_front();
                }
                self.test_tail.push_back(s("text").trim_end().to_string());
            }
            _ => {}
        }
    }

    fn result(&mut self, _seq: u64, result: &JobResult, frame: &str) {
        // The summary is taken from the redacted frame, like every event.
        let summary = serde_json::from_str::<Value>(frame)
            .ok()
            .and_then(|v| v.get("summary").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        let status = result.status.as_str();
        let summary = one_line(&summary, 200);
        // "cancelled: the runner is shutting down" says its status already.
        if summary.starts_with(status) {
            self.line(&summary);
        } else {
            self.line(&format!("{status}: {summary}"));
        }
        if let Ok(mut r) = self.result.lock() {
            *r = Some(frame.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::origin_and_path;

    #[test]
    fn the_owner_and_the_web_host_come_from_the_repo_url() {
        assert_eq!(
            origin_and_path("https://git.corp:8443/grp/sub/app.git"),
            (Some("https://git.corp:8443".into()), "/grp/sub/app.git")
        );
        assert_eq!(
            origin_and_path("https://bot@github.com/o/r"),
            (Some("https://github.com".into()), "/o/r")
        );
        assert_eq!(
            origin_and_path("ssh://git@github.com/o/r.git"),
            (None, "/o/r.git")
        );
        assert_eq!(origin_and_path("git@github.com:o/r.git"), (None, "o/r.git"));
    }
}
