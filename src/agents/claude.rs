//! Claude Code (`claude`): `-p` with `stream-json` output.
//!
//! Success is the `result` line's rule (`subtype == "success"` and not
//! `is_error`), not the exit code: a rate limit has been seen to exit 0
//! with an error text. No `result` line at all is a failure.

use super::adapter::{
    base_command, content_text, json_object, path_str, place_prompt, set_key, str_at,
    summarize_input, u64_at, AgentAdapter, AgentContext, AgentParser, AgentVerdict, LongPrompt,
    Parsed, StderrTail,
};
use crate::job::event::{AgentEvent, AgentEventType, Usage};
use crate::process::{CommandSpec, Ended, OutputStream, ProcessOutcome};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

const NAME: &str = "claude";

/// The Claude Code adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Claude;

impl AgentAdapter for Claude {
    fn name(&self) -> &str {
        NAME
    }

    fn program(&self) -> &str {
        NAME
    }

    fn config_dir(&self, ctx: &AgentContext) -> Option<PathBuf> {
        Some(ctx.home.join(".claude"))
    }

    fn long_prompt(&self) -> LongPrompt {
        LongPrompt::Stdin
    }

    /// Sessions are resumed by id (`agents.md`), in every version.
    fn can_resume(&self, _version: &mut dyn FnMut() -> Option<String>) -> Result<(), String> {
        Ok(())
    }

    /// `claude -p --output-format stream-json --verbose [--model M]
    /// (--dangerously-skip-permissions | --permission-mode plan)
    /// --disallowedTools AskUserQuestion [--resume ID] ARGS… PROMPT`.
    fn command(&self, ctx: &AgentContext) -> CommandSpec {
        let mut spec = base_command(NAME, ctx, self.default_timeout());
        // `stream-json` in print mode exits 1 without `--verbose`.
        spec.args = vec![
            "-p".into(),
            "--output-format".into(),
            "stream-json".into(),
            "--verbose".into(),
        ];
        if let Some(m) = &ctx.spec.model {
            spec.args.extend(["--model".into(), m.clone()]);
        }
        if ctx.read_only {
            spec.args
                .extend(["--permission-mode".into(), "plan".into()]);
        } else {
            spec.args.push("--dangerously-skip-permissions".into());
        }
        // Nobody is there to answer a question: it would block until timeout.
        spec.args
            .extend(["--disallowedTools".into(), "AskUserQuestion".into()]);
        if let Some(id) = ctx.resume_session {
            spec.args.extend(["--resume".into(), id.to_string()]);
        }
        spec.args.extend(ctx.spec.args.iter().cloned());
        // A long prompt goes on stdin: `-p` with no prompt argument reads it.
        place_prompt(&mut spec, ctx, None);
        if let Some(dir) = self.config_dir(ctx) {
            spec.set_env("CLAUDE_CONFIG_DIR", path_str(&dir));
        }
        set_key(
            &mut spec,
            "ANTHROPIC_API_KEY",
            ctx.keys.anthropic_api_key.as_ref(),
        );
        set_key(
            &mut spec,
            "CLAUDE_CODE_OAUTH_TOKEN",
            ctx.keys.claude_code_oauth_token.as_ref(),
        );
        spec
    }

    fn parser(&self) -> Box<dyn AgentParser> {
        Box::new(ClaudeParser::default())
    }
}

/// What the `result` line said.
#[derive(Debug)]
struct ResultLine {
    subtype: String,
    is_error: bool,
    text: String,
    errors: Vec<String>,
}

/// Parses `--output-format stream-json` lines.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    session_id: Option<String>,
    last_text: String,
    last_api_error: Option<String>,
    /// tool_use id → tool name, so results name their tool.
    tools: HashMap<String, String>,
    result: Option<ResultLine>,
    usage: Usage,
    stderr: StderrTail,
}

impl ClaudeParser {
    fn event(kind: AgentEventType) -> AgentEvent {
        AgentEvent::new(NAME, kind)
    }

    fn session(&mut self, id: &str, out: &mut Vec<Parsed>) {
        if self.session_id.as_deref() != Some(id) {
            self.session_id = Some(id.to_string());
            let mut e = Self::event(AgentEventType::Session);
            e.session_id = Some(id.to_string());
            out.push(Parsed::Event(e));
        }
    }

    fn assistant(&mut self, v: &Value, out: &mut Vec<Parsed>) {
        let msg = v.get("message").unwrap_or(&Value::Null);
        let blocks = msg.get("content").and_then(Value::as_array);
        let api_error = v.get("is_api_error_message").and_then(Value::as_bool) == Some(true)
            || v.get("error").is_some_and(|e| !e.is_null());
        if api_error {
            let text = blocks
                .map(|b| content_text(&Value::Array(b.clone())))
                .filter(|t| !t.is_empty())
                .or_else(|| str_at(v, "error").map(str::to_string))
                .unwrap_or_else(|| "API error".to_string());
            self.last_api_error = Some(text.clone());
            out.push(Parsed::Event(Self::event(AgentEventType::Error).text(text)));
            return;
        }
        for b in blocks.into_iter().flatten() {
            match str_at(b, "type") {
                Some("text") => {
                    let t = str_at(b, "text").unwrap_or_default();
                    if !t.is_empty() {
                        self.last_text = t.to_string();
                        out.push(Parsed::Event(Self::event(AgentEventType::Message).text(t)));
                    }
                }
                Some("tool_use") => {
                    let name = str_at(b, "name").unwrap_or("tool").to_string();
                    if let Some(id) = str_at(b, "id") {
                        self.tools.insert(id.to_string(), name.clone());
                    }
                    let input = b.get("input").unwrap_or(&Value::Null);
                    out.push(Parsed::Event(
                        Self::event(AgentEventType::ToolUse)
                            .tool(name)
                            .text(summarize_input(input)),
                    ));
                }
                // Thinking and future block types: not events.
                _ => {}
            }
        }
    }

    fn user(&mut self, v: &Value, out: &mut Vec<Parsed>) {
        let blocks = v
            .get("message")
            .and_then(|m| m.get("content"))
            .and_then(Value::as_array);
        for b in blocks.into_iter().flatten() {
            if str_at(b, "type") != Some("tool_result") {
                continue;
            }
            let mut e = Self::event(AgentEventType::ToolResult)
                .text(content_text(b.get("content").unwrap_or(&Value::Null)));
            if let Some(tool) = str_at(b, "tool_use_id").and_then(|id| self.tools.get(id)) {
                e.tool = Some(tool.clone());
            }
            e.is_error = Some(b.get("is_error").and_then(Value::as_bool).unwrap_or(false));
            out.push(Parsed::Event(e));
        }
    }

    fn result(&mut self, v: &Value, out: &mut Vec<Parsed>) {
        if let Some(id) = str_at(v, "session_id") {
            self.session(id, out);
        }
        let u = v.get("usage").unwrap_or(&Value::Null);
        // Input includes cached input, as Codex counts it.
        self.usage = Usage {
            input_tokens: u64_at(u, "input_tokens")
                + u64_at(u, "cache_read_input_tokens")
                + u64_at(u, "cache_creation_input_tokens"),
            output_tokens: u64_at(u, "output_tokens"),
            cost_usd: v.get("total_cost_usd").and_then(Value::as_f64),
        };
        let mut e = Self::event(AgentEventType::Usage);
        e.input_tokens = Some(self.usage.input_tokens);
        e.output_tokens = Some(self.usage.output_tokens);
        e.cost_usd = self.usage.cost_usd;
        out.push(Parsed::Event(e));
        let r = ResultLine {
            subtype: str_at(v, "subtype").unwrap_or_default().to_string(),
            is_error: v.get("is_error").and_then(Value::as_bool).unwrap_or(false),
            text: str_at(v, "result").unwrap_or_default().to_string(),
            errors: v
                .get("errors")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(content_text).collect())
                .unwrap_or_default(),
        };
        if r.is_error || r.subtype != "success" {
            let text = if r.text.is_empty() {
                r.subtype.clone()
            } else {
                r.text.clone()
            };
            out.push(Parsed::Event(Self::event(AgentEventType::Error).text(text)));
        }
        self.result = Some(r);
    }
}

impl AgentParser for ClaudeParser {
    fn line(&mut self, stream: OutputStream, line: &str) -> Vec<Parsed> {
        if stream == OutputStream::Stderr {
            self.stderr.push(line);
            return Vec::new();
        }
        let Some(v) = json_object(line) else {
            return vec![Parsed::Log(line.to_string())];
        };
        let mut out = Vec::new();
        match str_at(&v, "type") {
            Some("system") if str_at(&v, "subtype") == Some("init") => {
                if let Some(id) = str_at(&v, "session_id") {
                    self.session(id, &mut out);
                }
            }
            Some("assistant") => self.assistant(&v, &mut out),
            Some("user") => self.user(&v, &mut out),
            Some("result") => self.result(&v, &mut out),
            // Known but not events; partial-message deltas would duplicate
            // the full messages.
            Some("stream_event") => {}
            _ => out.push(Parsed::Log(line.to_string())),
        }
        out
    }

    fn finish(&mut self, outcome: &ProcessOutcome) -> AgentVerdict {
        let mut verdict = AgentVerdict {
            success: false,
            final_text: self.last_text.clone(),
            session_id: self.session_id.clone(),
            usage: self.usage.clone(),
            error: None,
        };
        let killed = outcome.ended != Ended::Exited;
        match &self.result {
            None => {
                let why = self
                    .last_api_error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_else(|| self.stderr.suffix());
                verdict.error = Some(format!(
                    "claude ended without a result line ({}){why}",
                    outcome.describe()
                ));
            }
            Some(r) => {
                if !r.text.is_empty() {
                    verdict.final_text = r.text.clone();
                }
                verdict.success = r.subtype == "success" && !r.is_error && !killed;
                if killed {
                    verdict.error = Some(format!("claude {}", outcome.describe()));
                } else if !verdict.success {
                    let mut text = if r.text.is_empty() {
                        r.errors.join("; ")
                    } else {
                        r.text.clone()
                    };
                    if text.is_empty() {
                        text = self.stderr.suffix().trim_start_matches(": ").to_string();
                    }
                    // A `success` subtype with `is_error` (rate limit, bad
                    // key) is still an error: say so, not "success".
                    let what = if r.subtype == "success" {
                        "an error"
                    } else {
                        r.subtype.as_str()
                    };
                    verdict.error = Some(format!("claude reported {what}: {text}"));
                }
            }
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::testing::{ctx_parts, exited, killed, run_parser};

    const EXAMPLE: &str = r#"{"type":"system","subtype":"init","cwd":"/w/repo","session_id":"9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11","model":"claude-sonnet-4","tools":["Bash","Edit","Read"]}
{"type":"assistant","message":{"role":"assistant","model":"claude-sonnet-4","content":[{"type":"tool_use","id":"toolu_01","name":"Bash","input":{"command":"cargo test"}}],"usage":{"input_tokens":3,"output_tokens":41}},"session_id":"9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11"}
{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_01","content":"test result: ok. 12 passed","is_error":false}]},"session_id":"9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11"}
{"type":"assistant","message":{"role":"assistant","content":[{"type":"text","text":"All 12 tests pass."}],"usage":{"input_tokens":5,"output_tokens":9}},"session_id":"9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11"}
{"type":"result","subtype":"success","is_error":false,"duration_ms":18086,"num_turns":3,"result":"All 12 tests pass.","session_id":"9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11","total_cost_usd":0.0241,"usage":{"input_tokens":8,"cache_read_input_tokens":29414,"output_tokens":50}}"#;

    #[test]
    fn the_agents_md_example_is_a_success() {
        let (events, logs, v) = run_parser(&mut ClaudeParser::default(), EXAMPLE, &exited(0));
        assert!(logs.is_empty(), "{logs:?}");
        let kinds: Vec<AgentEventType> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                AgentEventType::Session,
                AgentEventType::ToolUse,
                AgentEventType::ToolResult,
                AgentEventType::Message,
                AgentEventType::Usage,
            ]
        );
        assert_eq!(events[1].tool.as_deref(), Some("Bash"));
        assert_eq!(events[1].text.as_deref(), Some("cargo test"));
        assert_eq!(events[2].tool.as_deref(), Some("Bash"));
        assert_eq!(events[2].is_error, Some(false));
        assert_eq!(
            events[2].text.as_deref(),
            Some("test result: ok. 12 passed")
        );
        assert!(v.success, "{v:?}");
        assert_eq!(v.final_text, "All 12 tests pass.");
        assert_eq!(
            v.session_id.as_deref(),
            Some("9f1c2e4a-0b1d-4c55-9f0e-2f1d7e9b6a11")
        );
        assert_eq!(v.usage.input_tokens, 8 + 29414);
        assert_eq!(v.usage.output_tokens, 50);
        assert_eq!(v.usage.cost_usd, Some(0.0241));
        assert_eq!(v.error, None);
    }

    #[test]
    fn a_rate_limit_that_exits_zero_is_a_failure() {
        let t = r#"{"type":"system","subtype":"init","session_id":"s1"}
{"type":"assistant","message":{"content":[{"type":"text","text":"Claude AI usage limit reached|1767225600"}]},"error":"rate_limit","is_api_error_message":true}
{"type":"result","subtype":"success","is_error":true,"result":"Claude AI usage limit reached|1767225600","session_id":"s1","total_cost_usd":0,"usage":{"input_tokens":0,"output_tokens":0}}"#;
        let (events, _, v) = run_parser(&mut ClaudeParser::default(), t, &exited(0));
        assert!(!v.success);
        let err = v.error.expect("error");
        assert!(err.contains("usage limit reached"), "{err}");
        assert!(events.iter().any(|e| e.kind == AgentEventType::Error));
    }

    #[test]
    fn an_error_result_is_a_failure_with_its_subtype() {
        let t = r#"{"type":"result","subtype":"error_max_turns","is_error":true,"session_id":"s1","usage":{}}"#;
        let (_, _, v) = run_parser(&mut ClaudeParser::default(), t, &exited(1));
        assert!(!v.success);
        assert!(v.error.expect("e").contains("error_max_turns"));
    }

    #[test]
    fn no_result_line_is_a_failure_whatever_the_exit_code() {
        let t = r#"{"type":"system","subtype":"init","session_id":"s1"}
{"type":"assistant","message":{"content":[{"type":"text","text":"working"}]}}"#;
        let (_, _, v) = run_parser(&mut ClaudeParser::default(), t, &exited(0));
        assert!(!v.success);
        assert_eq!(v.final_text, "working");
        assert_eq!(v.session_id.as_deref(), Some("s1"));
        assert!(v.error.expect("e").contains("without a result line"));
    }

    #[test]
    fn stderr_explains_an_early_exit() {
        let mut p = ClaudeParser::default();
        p.line(
            OutputStream::Stderr,
            "Error: When using --print, --output-format=stream-json requires --verbose",
        );
        let v = p.finish(&exited(1));
        assert!(v.error.expect("e").contains("requires --verbose"));
    }

    #[test]
    fn a_killed_run_fails_even_after_a_result() {
        let t = r#"{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"s"}"#;
        let (_, _, v) = run_parser(&mut ClaudeParser::default(), t, &killed());
        assert!(!v.success);
    }

    #[test]
    fn unknown_types_and_non_json_are_logs() {
        let t = "not json\n{\"type\":\"rate_limit_event\",\"x\":1}\n{\"type\":\"brand_new\"}";
        let (events, logs, _) = run_parser(&mut ClaudeParser::default(), t, &exited(0));
        assert!(events.is_empty());
        assert_eq!(logs.len(), 3);
    }

    #[test]
    fn command_line_and_env() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        let spec = Claude.command(&ctx);
        assert_eq!(spec.program, "claude");
        assert_eq!(
            &spec.args[..4],
            ["-p", "--output-format", "stream-json", "--verbose"]
        );
        let joined = spec.args.join(" ");
        assert!(joined.contains("--model m1"));
        assert!(joined.contains("--dangerously-skip-permissions"));
        assert!(joined.contains("--disallowedTools AskUserQuestion"));
        assert_eq!(spec.args.last().map(String::as_str), Some("do it"));
        assert_eq!(spec.args[spec.args.len() - 2], "--extra");
        assert_eq!(spec.get_env("ANTHROPIC_API_KEY"), Some("sk-ant-api-xyz"));
        assert_eq!(spec.get_env("OPENAI_API_KEY"), None);
        assert_eq!(spec.get_env("ADOS_TOKEN"), None);
        assert_eq!(spec.get_env("CLAUDECODE"), None);
        assert_eq!(spec.get_env("HOME"), Some("/h"));
        assert_eq!(spec.get_env("CLAUDE_CONFIG_DIR"), Some("/h/.claude"));
        assert_eq!(spec.stdin, crate::process::Stdin::Null);
        assert_eq!(spec.timeout, Some(std::time::Duration::from_secs(45 * 60)));

        ctx.read_only = true;
        ctx.resume_session = Some("sess-1");
        ctx.prompt = "-starts with a dash";
        let spec = Claude.command(&ctx);
        let joined = spec.args.join(" ");
        assert!(joined.contains("--permission-mode plan"));
        assert!(!joined.contains("--dangerously-skip-permissions"));
        assert!(joined.contains("--resume sess-1"));
        assert_eq!(spec.args[spec.args.len() - 2], "--");
    }

    #[test]
    fn a_long_prompt_goes_on_stdin_with_no_prompt_argument() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        ctx.prompt_input = crate::agents::PromptInput::Stdin;
        ctx.timeout = Some(std::time::Duration::from_secs(9));
        let spec = Claude.command(&ctx);
        assert_eq!(spec.args.last().map(String::as_str), Some("--extra"));
        assert_eq!(spec.stdin, crate::process::Stdin::Bytes(b"do it".to_vec()));
        assert_eq!(spec.timeout, Some(std::time::Duration::from_secs(9)));
        assert_eq!(Claude.long_prompt(), LongPrompt::Stdin);
    }
}
