//! Every agent adapter end to end: `run_attempt` with the host executor,
//! the fake CLIs of `tests/fixtures/agents` and a reporter writing to
//! memory. The fakes check their command line like the real CLIs, so a
//! wrong flag or a missing variable fails here.

use ados_work_runner::agents::{run_attempt, AgentRegistry, AttemptOutput, PromptInput};
use ados_work_runner::cancel::{cancel_pair, Canceller};
use ados_work_runner::cancel::{CancelReason, CancelToken};
use ados_work_runner::config::{AgentKeys, CustomAgent};
use ados_work_runner::executors::HostExecutor;
use ados_work_runner::job::event::{Event, JobResult};
use ados_work_runner::job::reporter::MemorySink;
use ados_work_runner::job::spec::AgentSpec;
use ados_work_runner::job::{EventSink, JobId, Reporter};
use ados_work_runner::process::{self, Ended, RunOptions};
use ados_work_runner::redact::Redactor;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ANTHROPIC_KEY: &str = "sk-ant-api03-test-key-0123456789";
const OPENAI_KEY: &str = "sk-proj-test-key-0123456789";
const COPILOT_TOKEN: &str = "github_pat_test_copilot_0123456789";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents")
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ados-agents-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("work")).unwrap();
        Scratch(p)
    }
    fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    fn home(&self) -> PathBuf {
        self.0.join("home")
    }
    fn tmp(&self) -> PathBuf {
        self.0.join("tmp")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn keys() -> AgentKeys {
    AgentKeys {
        anthropic_api_key: Some(ANTHROPIC_KEY.into()),
        claude_code_oauth_token: None,
        openai_api_key: Some(OPENAI_KEY.into()),
        copilot_github_token: Some(COPILOT_TOKEN.into()),
        named: Default::default(),
    }
}

/// One attempt's knobs.
struct Run<'a> {
    agent: &'a str,
    prompt: &'a str,
    keys: AgentKeys,
    github_token: Option<&'a str>,
    read_only: bool,
    resume: Option<&'a str>,
    timeout_s: Option<u64>,
    custom: Vec<CustomAgent>,
    base_env: Vec<(String, String)>,
    /// Cancel with this reason as soon as the first event is out.
    cancel_on_first_event: Option<CancelReason>,
}

impl<'a> Run<'a> {
    fn new(agent: &'a str, prompt: &'a str) -> Run<'a> {
        Run {
            agent,
            prompt,
            keys: keys(),
            github_token: None,
            read_only: false,
            resume: None,
            timeout_s: Some(30),
            custom: Vec::new(),
            base_env: process::allowlisted_env(Some(&fixtures())),
            cancel_on_first_event: None,
        }
    }
}

/// A sink that keeps frames and can cancel the job on the first event.
struct CancellingSink {
    inner: MemorySink,
    cancel: Option<(Canceller, CancelReason)>,
}

impl EventSink for CancellingSink {
    fn event(&mut self, seq: u64, event: &Event, frame: &str) {
        self.inner.event(seq, event, frame);
        if let Some((c, r)) = self.cancel.take() {
            c.cancel(r);
        }
    }
    fn result(&mut self, seq: u64, result: &JobResult, frame: &str) {
        self.inner.result(seq, result, frame);
    }
}

struct Done {
    out: AttemptOutput,
    frames: Vec<String>,
    scratch: Scratch,
}

impl Done {
    fn events(&self) -> Vec<Value> {
        self.frames
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap()["event"].clone())
            .collect()
    }
    fn agent_events(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["kind"] == "agent" && e["type"] == kind)
            .collect()
    }
    /// What the fake recorded about its own invocation.
    fn recorded(&self, agent: &str) -> Value {
        let p = self.scratch.tmp().join(format!("fake-{agent}-argv.json"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    }
}

fn attempt(r: Run) -> Done {
    let scratch = Scratch::new();
    let spec = AgentSpec {
        name: r.agent.into(),
        model: Some("test-model".into()),
        timeout_s: r.timeout_s,
        args: Vec::new(),
    };
    let registry = AgentRegistry::new(&r.custom);
    let adapter = registry.get(r.agent).expect("known agent");
    let (work, home, tmp) = (scratch.work(), scratch.home(), scratch.tmp());
    let ctx = ados_work_runner::agents::AgentContext {
        spec: &spec,
        prompt: r.prompt,
        prompt_input: PromptInput::Argument,
        timeout: r.timeout_s.map(std::time::Duration::from_secs),
        workdir: &work,
        home: &home,
        tmp: &tmp,
        read_only: r.read_only,
        resume_session: r.resume,
        keys: &r.keys,
        github_token: r.github_token,
        base_env: &r.base_env,
    };
    let secrets = [ANTHROPIC_KEY, OPENAI_KEY, COPILOT_TOKEN].map(String::from);
    let redactor = Redactor::new(secrets);
    let memory = MemorySink::default();
    let (canceller, token) = cancel_pair();
    let sink = CancellingSink {
        inner: memory.clone(),
        cancel: r.cancel_on_first_event.map(|reason| (canceller, reason)),
    };
    let mut reporter = Reporter::new(
        JobId::parse("job-1").unwrap(),
        Box::new(sink),
        Arc::new(redactor.clone()),
    );
    let opts = RunOptions {
        cancel: &token,
        redactor: &redactor,
        observer: None,
    };
    let out = run_attempt(
        adapter,
        &ctx,
        &HostExecutor::for_job("job-1", None),
        &opts,
        &mut reporter,
    )
    .expect("spawn");
    let frames = memory.frames.lock().unwrap().clone();
    Done {
        out,
        frames,
        scratch,
    }
}

#[test]
fn claude_completes_with_events_and_usage() {
    let d = attempt(Run::new(
        "claude",
        "Add notes.\nFAKE: write notes.txt hello world\nFAKE: lines 2",
    ));
    let v = &d.out.verdict;
    assert!(v.success, "{v:?} {:?}", d.frames);
    assert!(d.out.outcome.success());
    assert_eq!(v.final_text, "line 2 of 2");
    assert!(v.session_id.as_deref().is_some_and(|s| s.len() == 36));
    assert_eq!(v.usage.input_tokens, 118);
    assert_eq!(v.usage.output_tokens, 50);
    assert_eq!(v.usage.cost_usd, Some(0.0241));
    assert_eq!(
        std::fs::read_to_string(d.scratch.work().join("notes.txt")).unwrap(),
        "hello world\n"
    );
    assert_eq!(d.agent_events("session").len(), 1);
    assert_eq!(d.agent_events("tool_use")[0]["tool"], "Write");
    assert_eq!(d.agent_events("tool_result")[0]["tool"], "Write");
    assert_eq!(d.agent_events("message").len(), 2);
    assert_eq!(d.agent_events("usage")[0]["cost_usd"], 0.0241);
    let rec = d.recorded("claude");
    let env: Vec<&str> = rec["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"ANTHROPIC_API_KEY") && env.contains(&"CLAUDE_CONFIG_DIR"));
    for name in [
        "OPENAI_API_KEY",
        "CODEX_API_KEY",
        "COPILOT_GITHUB_TOKEN",
        "ADOS_TOKEN",
    ] {
        assert!(!env.contains(&name), "{name} leaked to claude");
    }
    assert!(d.scratch.home().join(".claude").is_dir());
}

#[test]
fn codex_completes_with_tokens_and_no_cost() {
    let d = attempt(Run::new(
        "codex",
        "FAKE: write src/lib.rs fn x() {}\nFAKE: print-env CODEX_HOME",
    ));
    let v = &d.out.verdict;
    assert!(v.success, "{v:?} {:?}", d.frames);
    assert_eq!(
        v.final_text,
        format!("CODEX_HOME={}", d.scratch.home().join(".codex").display())
    );
    assert_eq!(v.usage.input_tokens, 24763);
    assert_eq!(v.usage.output_tokens, 122);
    assert_eq!(v.usage.cost_usd, None);
    assert!(d.scratch.work().join("src/lib.rs").is_file());
    assert_eq!(d.agent_events("tool_use")[0]["text"], "add src/lib.rs");
    let argv = d.recorded("codex")["argv"].clone();
    assert_eq!(argv[0], "exec");
}

#[test]
fn copilot_completes_with_the_job_token_and_its_session_id() {
    let mut r = Run::new("copilot", "FAKE: lines 1");
    r.keys.copilot_github_token = None;
    r.github_token = Some("github_pat_job_token_0123456789");
    let d = attempt(r);
    let v = &d.out.verdict;
    assert!(v.success, "{v:?} {:?}", d.frames);
    assert_eq!(v.final_text, "line 1 of 1");
    let argv = d.recorded("copilot")["argv"].clone();
    let argv: Vec<&str> = argv
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let i = argv.iter().position(|a| *a == "--session-id").unwrap();
    assert_eq!(v.session_id.as_deref(), Some(argv[i + 1]));
    assert_eq!(v.usage.input_tokens + v.usage.output_tokens, 0);
}

#[test]
fn resume_passes_the_session_on() {
    let sid = "aa778ea0-6eab-4ce9-b87e-11d6d33dab4f";
    for agent in ["claude", "codex", "copilot"] {
        let mut r = Run::new(agent, "next message");
        r.resume = Some(sid);
        let d = attempt(r);
        assert!(d.out.verdict.success, "{agent}: {:?}", d.out.verdict);
        assert_eq!(d.out.verdict.session_id.as_deref(), Some(sid), "{agent}");
    }
}

#[test]
fn claude_rate_limit_with_exit_zero_is_a_failure() {
    let d = attempt(Run::new("claude", "FAKE: rate-limit"));
    assert_eq!(d.out.outcome.exit_code, Some(0));
    let v = &d.out.verdict;
    assert!(!v.success);
    assert!(
        v.error.as_deref().unwrap().contains("usage limit reached"),
        "{v:?}"
    );
    assert!(!d.agent_events("error").is_empty());
}

#[test]
fn failures_in_each_clis_own_way() {
    for agent in ["claude", "codex", "copilot"] {
        let d = attempt(Run::new(agent, "FAKE: fail"));
        assert_eq!(d.out.outcome.exit_code, Some(1), "{agent}");
        assert!(!d.out.verdict.success, "{agent}");
        assert!(d.out.verdict.error.is_some(), "{agent}");
    }
}

#[test]
fn a_missing_final_line_is_a_failure_whatever_the_exit_code() {
    for agent in ["claude", "codex", "copilot"] {
        let d = attempt(Run::new(agent, "FAKE: lines 1\nFAKE: no-final"));
        assert!(d.out.outcome.success(), "{agent}");
        let v = &d.out.verdict;
        assert!(!v.success, "{agent}");
        assert_eq!(v.final_text, "line 1 of 1", "{agent}");
        assert!(
            v.error.as_deref().unwrap().contains("without"),
            "{agent}: {v:?}"
        );
    }
}

#[test]
fn a_half_mib_tool_result_arrives_as_one_event() {
    for agent in ["claude", "codex"] {
        let d = attempt(Run::new(agent, "FAKE: big-result 0.5"));
        assert!(d.out.verdict.success, "{agent}: {:?}", d.out.verdict);
        assert_eq!(d.out.outcome.lines_truncated, 0);
        let results = d.agent_events("tool_result");
        assert_eq!(results.len(), 1, "{agent}");
        let text = results[0]["text"].as_str().unwrap();
        // The reporter cuts event text at 128 KiB and says how long it was.
        assert!(text.starts_with("xxxx"), "{agent}");
        assert!(text.contains("[truncated: 524288 bytes in all]"), "{agent}");
        assert!(d.frames.iter().all(|f| f.len() < 1 << 20));
    }
}

#[test]
fn a_five_mib_tool_result_line_is_cut_and_reported_as_output_not_an_event() {
    for agent in ["claude", "codex"] {
        let d = attempt(Run::new(agent, "FAKE: big-result 5"));
        // The line past the 1 MiB cap is cut; the run itself still succeeds.
        assert!(d.out.verdict.success, "{agent}: {:?}", d.out.verdict);
        assert_eq!(d.out.outcome.lines_truncated, 1, "{agent}");
        assert!(d.agent_events("tool_result").is_empty(), "{agent}");
        assert!(
            d.frames
                .iter()
                .any(|f| f.contains("[ados: line truncated: ")),
            "{agent}: the note is reported"
        );
        assert!(d.frames.iter().all(|f| f.len() < 1 << 20));
    }
}

#[test]
fn a_printed_secret_is_redacted_in_every_frame() {
    let d = attempt(Run::new("claude", "FAKE: print-env ANTHROPIC_API_KEY"));
    assert!(d.out.verdict.success);
    assert_eq!(d.out.verdict.final_text, "ANTHROPIC_API_KEY=[REDACTED]");
    let msgs = d.agent_events("message");
    assert_eq!(msgs[0]["text"], "ANTHROPIC_API_KEY=[REDACTED]");
    assert!(d.frames.iter().all(|f| !f.contains(ANTHROPIC_KEY)));
}

#[test]
fn ados_token_never_reaches_the_agent() {
    std::env::set_var("ADOS_TOKEN", "ados-runner-token-0123456789");
    for agent in ["claude", "codex", "copilot"] {
        // Even a base environment that wrongly carries it is cleaned.
        let mut r = Run::new(agent, "FAKE: print-env ADOS_TOKEN");
        r.base_env
            .push(("ADOS_TOKEN".into(), "ados-runner-token-0123456789".into()));
        let d = attempt(r);
        assert_eq!(d.out.verdict.final_text, "ADOS_TOKEN=<unset>", "{agent}");
    }
}

#[test]
fn a_plan_stage_cannot_write() {
    for agent in ["claude", "codex", "copilot"] {
        let mut r = Run::new(agent, "FAKE: write plan.txt nope");
        r.read_only = true;
        let d = attempt(r);
        assert!(d.out.verdict.success, "{agent}: {:?}", d.out.verdict);
        assert!(!d.scratch.work().join("plan.txt").exists(), "{agent}");
        assert_eq!(
            d.agent_events("tool_result")[0]["is_error"],
            true,
            "{agent}"
        );
    }
}

#[test]
fn fix_if_failing_only_acts_on_a_repair_prompt() {
    let d = attempt(Run::new(
        "codex",
        "Implement it.\nFAKE: fix-if-failing fix.txt fixed",
    ));
    assert!(!d.scratch.work().join("fix.txt").exists());
    let d = attempt(Run::new(
        "codex",
        "These tests are failing: t1.\nFAKE: fix-if-failing fix.txt fixed",
    ));
    assert!(d.scratch.work().join("fix.txt").is_file());
}

#[test]
fn a_grandchild_holding_output_is_killed() {
    let d = attempt(Run::new("claude", "FAKE: grandchild agents-test"));
    assert!(d.out.outcome.leaked);
    assert!(d.out.verdict.success);
    let pid: i32 = d
        .out
        .verdict
        .final_text
        .strip_prefix("grandchild pid ")
        .unwrap()
        .parse()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let dead = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        };
        if dead {
            break;
        }
        assert!(Instant::now() < until, "grandchild {pid} survived");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_hanging_agent_times_out() {
    let mut r = Run::new("codex", "FAKE: hang");
    r.timeout_s = Some(1);
    let d = attempt(r);
    assert_eq!(d.out.outcome.ended, Ended::TimedOut);
    assert!(!d.out.verdict.success);
}

#[test]
fn cancel_stops_an_agent_and_kill_does_not_wait_for_sigterm() {
    let mut r = Run::new("claude", "FAKE: hang");
    r.cancel_on_first_event = Some(CancelReason::Server);
    let d = attempt(r);
    assert_eq!(
        d.out.outcome.ended,
        Ended::Cancelled(CancelReason::Server),
        "{:?}",
        d.frames
    );
    assert!(!d.out.verdict.success);

    let t0 = Instant::now();
    let mut r = Run::new("copilot", "FAKE: lines 1\nFAKE: ignore-term");
    r.cancel_on_first_event = Some(CancelReason::Kill);
    let d = attempt(r);
    assert_eq!(d.out.outcome.ended, Ended::Cancelled(CancelReason::Kill));
    assert_eq!(d.out.outcome.signal, Some(libc::SIGKILL));
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_missing_cli_is_a_spawn_error() {
    let scratch = Scratch::new();
    let spec = AgentSpec {
        name: "claude".into(),
        model: None,
        timeout_s: None,
        args: Vec::new(),
    };
    let env = vec![("PATH".to_string(), "/nonexistent".to_string())];
    let k = keys();
    let (work, home, tmp) = (scratch.work(), scratch.home(), scratch.tmp());
    let ctx = ados_work_runner::agents::AgentContext {
        spec: &spec,
        prompt: "hi",
        prompt_input: PromptInput::Argument,
        timeout: None,
        workdir: &work,
        home: &home,
        tmp: &tmp,
        read_only: false,
        resume_session: None,
        keys: &k,
        github_token: None,
        base_env: &env,
    };
    let registry = AgentRegistry::new(&[]);
    let mut reporter = Reporter::new(
        JobId::parse("j").unwrap(),
        Box::new(MemorySink::default()),
        Arc::new(Redactor::empty()),
    );
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let err = run_attempt(
        registry.get("claude").unwrap(),
        &ctx,
        &HostExecutor::for_job("j", None),
        &opts,
        &mut reporter,
    )
    .unwrap_err();
    assert!(
        err.to_string().starts_with("could not start `claude`"),
        "{err}"
    );
}

#[test]
fn a_custom_agent_reads_its_prompt_on_stdin() {
    let mut r = Run::new("echoer", "first line\nsecond line");
    r.custom = vec![CustomAgent {
        name: "echoer".into(),
        command: vec!["sh".into(), "-c".into(), "cat; echo; echo done".into()],
        prompt_on_stdin: true,
        default_model: None,
        model_flag: None,
        timeout: Some(Duration::from_secs(10)),
        version: None,
        env: Vec::new(),
    }];
    let d = attempt(r);
    assert!(d.out.verdict.success, "{:?}", d.out.verdict);
    assert_eq!(d.out.verdict.final_text, "first line\nsecond line\ndone");
    let msgs: Vec<Value> = d.agent_events("message");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["agent"], "echoer");
}

#[test]
fn the_registry_finds_the_fakes_and_their_versions() {
    let path = format!(
        "{}:{}",
        fixtures().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let r = AgentRegistry::new(&[]);
    assert_eq!(r.available(&path), ["claude", "codex", "copilot"]);
    assert_eq!(
        r.version("claude", &path).as_deref(),
        Some("2.1.999 (Claude Code)")
    );
    assert_eq!(
        r.version("codex", &path).as_deref(),
        Some("codex-cli 0.999.0")
    );
    assert_eq!(
        r.version("copilot", &path).as_deref(),
        Some("GitHub Copilot CLI 1.0.999")
    );
}
