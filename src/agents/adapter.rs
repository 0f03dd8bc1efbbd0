//! What every agent adapter provides ([`AgentAdapter`], [`AgentParser`]),
//! what it is given ([`AgentContext`]) and the pieces adapters share: the
//! per-agent environment, JSON helpers and session UUIDs.

use crate::config::AgentKeys;
use crate::job::event::{AgentEvent, Usage};
use crate::job::spec::AgentSpec;
use crate::process::{CommandSpec, OutputStream, ProcessOutcome, Stdin};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long an attempt may run when neither the job nor the configuration
/// says otherwise.
pub const DEFAULT_AGENT_TIMEOUT: Duration = Duration::from_secs(45 * 60);

/// The longest prompt passed as one argv element. Linux refuses a single
/// argument over 128 KiB (`Argument list too long`); a longer prompt goes
/// on stdin or in a file, as the CLI allows ([`AgentAdapter::long_prompt`]).
pub const PROMPT_ARG_MAX: usize = 96 * 1024;

/// How the prompt reaches the CLI.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PromptInput {
    /// As one argument (never through a shell).
    #[default]
    Argument,
    /// Written to stdin, which is then closed.
    Stdin,
    /// In this file; the argument names it.
    File(PathBuf),
}

/// Where a CLI can take a prompt too long for an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LongPrompt {
    /// On stdin (`claude -p` with no prompt argument, `codex exec -`).
    Stdin,
    /// In a file the (short) prompt argument points at with `@path`.
    File,
}

/// Everything an adapter needs to build one attempt's command line.
#[derive(Clone)]
pub struct AgentContext<'a> {
    /// The job's agent section (name, model, extra args).
    pub spec: &'a AgentSpec,
    /// The prompt (never through a shell).
    pub prompt: &'a str,
    /// How the prompt is passed: [`run_attempt`](super::run_attempt) moves
    /// one over [`PROMPT_ARG_MAX`] to stdin or a file.
    pub prompt_input: PromptInput,
    /// The attempt's time limit (already capped by what is left of the
    /// job's); `None`: the adapter's default.
    pub timeout: Option<Duration>,
    /// Where the agent works (the checkout, or its monorepo subdirectory).
    pub workdir: &'a Path,
    /// The per-job `HOME`; the agent's config home is made under it.
    pub home: &'a Path,
    /// The per-job `TMPDIR`.
    pub tmp: &'a Path,
    /// Plan and review stages: the agent must not change files.
    pub read_only: bool,
    /// Continue this CLI session instead of starting a new one.
    pub resume_session: Option<&'a str>,
    /// The runner's agent credentials; each adapter takes only its own.
    pub keys: &'a AgentKeys,
    /// The job's GitHub token, Copilot's fallback credential.
    pub github_token: Option<&'a str>,
    /// The base environment (from [`crate::process::allowlisted_env`]).
    pub base_env: &'a [(String, String)],
}

/// One agent CLI: how to call it and how to read what it says.
pub trait AgentAdapter: Send + Sync {
    /// The name jobs use (`claude`).
    fn name(&self) -> &str;
    /// The program looked up on `PATH` (`claude`).
    fn program(&self) -> &str;
    /// The argv that prints the CLI's version (`claude --version`), or
    /// `None` when no command is known to be safe to run for it: the
    /// agent is then only looked up on PATH.
    fn version_command(&self) -> Option<Vec<String>> {
        Some(vec![self.program().to_string(), "--version".to_string()])
    }
    /// Whether this CLI is driven differently across its versions: the
    /// agent step then runs [`AgentAdapter::version_command`] once per job
    /// and uses the adapter [`AgentAdapter::at_version`] gives for it.
    fn versioned(&self) -> bool {
        false
    }
    /// This adapter for the version `printed` (the first line the version
    /// command printed); `None` when versions are all driven alike.
    fn at_version(&self, printed: &str) -> Option<Box<dyn AgentAdapter>> {
        let _ = printed;
        None
    }
    /// The command line, environment and limits of one attempt.
    fn command(&self, ctx: &AgentContext) -> CommandSpec;
    /// A fresh parser for one attempt's output.
    fn parser(&self) -> Box<dyn AgentParser>;
    /// The attempt's time limit when the job gives none.
    fn default_timeout(&self) -> Duration {
        DEFAULT_AGENT_TIMEOUT
    }
    /// Where this CLI takes a prompt too long for an argument.
    fn long_prompt(&self) -> LongPrompt {
        LongPrompt::File
    }
    /// Whether this CLI can continue a session it started, as the turns
    /// of a chat need; `Err` says why not, naming what would do. `version`
    /// asks the CLI's version (what its version command printed, `None`
    /// when it could not be asked), for a CLI whose answer depends on it;
    /// the others never call it. A CLI the runner cannot resume refuses
    /// chats (custom agents: nothing says how they would resume).
    ///
    /// # Errors
    /// The message for the chat's `failed` result.
    fn can_resume(&self, version: &mut dyn FnMut() -> Option<String>) -> Result<(), String> {
        let _ = version;
        Err(format!(
            "agent `{}` cannot resume a session, so it cannot hold a chat: chat sessions run claude, codex or copilot",
            self.name()
        ))
    }
    /// The CLI's config home under `ctx.home`, created before the run
    /// (Codex refuses a `CODEX_HOME` that does not exist).
    fn config_dir(&self, ctx: &AgentContext) -> Option<PathBuf> {
        let _ = ctx;
        None
    }
}

/// Turns one attempt's output lines into events, then into a verdict.
pub trait AgentParser: Send {
    /// One line of output (already redacted). Stderr lines are logged raw
    /// by the caller; parsers only keep them for error messages.
    fn line(&mut self, stream: OutputStream, line: &str) -> Vec<Parsed>;
    /// The process ended: did the attempt succeed, and with what.
    fn finish(&mut self, outcome: &ProcessOutcome) -> AgentVerdict;
}

/// What a parser makes of a line.
#[derive(Clone, Debug, PartialEq)]
pub enum Parsed {
    /// A normalised agent event.
    Event(AgentEvent),
    /// Text for the agent log (non-JSON lines, unknown event types).
    Log(String),
}

/// How an attempt ended, in the CLI's own terms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentVerdict {
    /// The CLI's own success rule held (see agents.md).
    pub success: bool,
    /// The final answer: the result text or the last assistant message.
    pub final_text: String,
    /// The session to resume, when the CLI named one.
    pub session_id: Option<String>,
    /// Tokens (input includes cached input) and cost when reported.
    pub usage: Usage,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Credentials of every agent: an adapter removes all of them from the
/// base environment and then sets only its own.
const AGENT_CREDENTIALS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "OPENAI_API_KEY",
    "CODEX_API_KEY",
    "COPILOT_GITHUB_TOKEN",
    "GH_TOKEN",
    "GITHUB_TOKEN",
];

/// Whether a base-environment variable must not reach any agent.
fn is_stripped(name: &str) -> bool {
    name.starts_with("ADOS_")
        || name == "CLAUDECODE"
        || name == "CLAUDE_CODE_ENTRYPOINT"
        || name == "HOME"
        || name == "TMPDIR"
        || AGENT_CREDENTIALS.contains(&name)
}

/// Whether the runner runs as root (Claude's bypass then needs
/// `IS_SANDBOX=1`).
pub(crate) fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `program` in `ctx.workdir` with the common agent environment: the base
/// environment minus `ADOS_*`, every agent credential and Claude's
/// nested-session guard, plus `HOME`, `TMPDIR`, `NO_COLOR=1` and
/// `IS_SANDBOX=1` when root; stdin null; the job's timeout or `default`.
pub(crate) fn base_command(program: &str, ctx: &AgentContext, default: Duration) -> CommandSpec {
    let mut spec = CommandSpec::new(program, ctx.workdir);
    for (k, v) in ctx.base_env {
        if !is_stripped(k) {
            spec.set_env(k.as_str(), v.as_str());
        }
    }
    spec.set_env("HOME", path_str(ctx.home));
    spec.set_env("TMPDIR", path_str(ctx.tmp));
    spec.set_env("NO_COLOR", "1");
    if running_as_root() {
        spec.set_env("IS_SANDBOX", "1");
    }
    spec.timeout = Some(ctx.timeout.unwrap_or(default));
    spec
}

/// The prompt, placed as `ctx.prompt_input` says: the last argument, stdin
/// (with `stdin_arg` as the last argument when the CLI wants one, `-` for
/// codex), or a pointer to the prompt file as the last argument.
pub(crate) fn place_prompt(spec: &mut CommandSpec, ctx: &AgentContext, stdin_arg: Option<&str>) {
    match &ctx.prompt_input {
        PromptInput::Argument | PromptInput::File(_) => push_prompt(spec, &prompt_argument(ctx)),
        PromptInput::Stdin => {
            spec.stdin = Stdin::Bytes(ctx.prompt.as_bytes().to_vec());
            if let Some(arg) = stdin_arg {
                spec.args.push(arg.to_string());
            }
        }
    }
}

/// The prompt argument: the prompt itself, or a short text that mentions
/// the prompt file (`@path`, the way the CLIs include a file's content).
pub(crate) fn prompt_argument(ctx: &AgentContext) -> String {
    match &ctx.prompt_input {
        PromptInput::File(path) => format!(
            "Your task is too long for the command line: it is in the file @{} . Read that whole file first and do what it says.",
            path.display()
        ),
        _ => ctx.prompt.to_string(),
    }
}

/// The prompt as the last argv element; `--` first when it starts with a
/// dash, so the CLI cannot read it as an option.
pub(crate) fn push_prompt(spec: &mut CommandSpec, prompt: &str) {
    if prompt.starts_with('-') {
        spec.args.push("--".into());
    }
    spec.args.push(prompt.to_string());
}

/// A path as an argv/env string.
pub(crate) fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Set `name` to `value` when the value is present and not empty.
pub(crate) fn set_key(spec: &mut CommandSpec, name: &str, value: Option<&String>) {
    if let Some(v) = value.filter(|v| !v.is_empty()) {
        spec.set_env(name, v.as_str());
    }
}

/// A line parsed as a JSON object, or `None` for anything else.
pub(crate) fn json_object(line: &str) -> Option<Value> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    serde_json::from_str::<Value>(t)
        .ok()
        .filter(Value::is_object)
}

/// Whether `line` is a machine line: a JSON object or array (an event a
/// CLI printed, a tool's result), never the prose of a summary.
pub fn is_machine_line(line: &str) -> bool {
    let t = line.trim();
    (t.starts_with('{') || t.starts_with('['))
        && serde_json::from_str::<Value>(t).is_ok_and(|v| v.is_object() || v.is_array())
}

/// `text` without its machine lines ([`is_machine_line`]): the prose an
/// agent wrote, for a commit message, a PR body or a result summary.
pub fn prose(text: &str) -> String {
    let kept: Vec<&str> = text.lines().filter(|l| !is_machine_line(l)).collect();
    kept.join("\n").trim().to_string()
}

/// `v[key]` as a string.
pub(crate) fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `v[key]` as an unsigned number (0 when absent).
pub(crate) fn u64_at(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// A short text for a tool's input: its command or path when it has one,
/// else the compact JSON.
pub(crate) fn summarize_input(input: &Value) -> String {
    for key in ["command", "file_path", "path", "pattern", "url", "query"] {
        if let Some(s) = str_at(input, key) {
            return s.to_string();
        }
    }
    match input {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The text of a tool result: a string, or the `text` of each block of an
/// array, else the compact JSON.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| str_at(b, "text")).collect();
            if texts.is_empty() {
                content.to_string()
            } else {
                texts.join("\n")
            }
        }
        Value::Object(_) => match str_at(content, "content").or_else(|| str_at(content, "text")) {
            Some(s) => s.to_string(),
            None => content.to_string(),
        },
        other => other.to_string(),
    }
}

/// The last few stderr lines, kept to explain a failure.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    lines: std::collections::VecDeque<String>,
}

impl StderrTail {
    const KEEP: usize = 5;
    const MAX_LINE: usize = 500;

    pub(crate) fn push(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        let mut l = line.to_string();
        if l.len() > Self::MAX_LINE {
            let mut end = Self::MAX_LINE;
            while !l.is_char_boundary(end) {
                end -= 1;
            }
            l.truncate(end);
            l.push('…');
        }
        if self.lines.len() == Self::KEEP {
            self.lines.pop_front();
        }
        self.lines.push_back(l);
    }

    /// `": line1 | line2"`, or empty when nothing was printed.
    pub(crate) fn suffix(&self) -> String {
        if self.lines.is_empty() {
            return String::new();
        }
        let v: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        format!(": {}", v.join(" | "))
    }
}

/// A random (version 4) UUID from `/dev/urandom`, for Copilot's
/// `--session-id`. Falls back to time and pid mixed through a hash when
/// `/dev/urandom` cannot be read (it only has to be unique, not secret).
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if read.is_err() {
        use std::hash::{BuildHasher, Hasher};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(now);
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_v4_shaped_and_random() {
        let a = uuid_v4();
        let b = uuid_v4();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
    }

    #[test]
    fn content_text_shapes() {
        let v: Value = serde_json::json!([{"type":"text","text":"a"},{"type":"text","text":"b"}]);
        assert_eq!(content_text(&v), "a\nb");
        assert_eq!(content_text(&serde_json::json!("x")), "x");
        assert_eq!(content_text(&serde_json::json!({"content":"c"})), "c");
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let mut t = StderrTail::default();
        assert_eq!(t.suffix(), "");
        for i in 0..8 {
            t.push(&format!("l{i}"));
        }
        t.push("   ");
        assert_eq!(t.suffix(), ": l3 | l4 | l5 | l6 | l7");
    }
}
