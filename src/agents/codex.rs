//! Codex CLI (`codex exec --json`).
//!
//! Success: exit 0, a `turn.completed`, and no `turn.failed`. Codex
//! reports tokens but no cost. Usage-limit and auth failures only show as
//! text in `error` / `turn.failed`.

use super::adapter::{
    base_command, json_object, path_str, place_prompt, set_key, str_at, u64_at, AgentAdapter,
    AgentContext, AgentParser, AgentVerdict, LongPrompt, Parsed, StderrTail,
};
use crate::job::event::{AgentEvent, AgentEventType, Usage};
use crate::process::{CommandSpec, OutputStream, ProcessOutcome};
use serde_json::Value;
use std::collections::HashSet;
use std::path::PathBuf;

const NAME: &str = "codex";

/// The Codex CLI adapter.
#[derive(Clone, Copy, Debug, Default)]
pub struct Codex;

impl AgentAdapter for Codex {
    fn name(&self) -> &str {
        NAME
    }

    fn program(&self) -> &str {
        NAME
    }

    fn config_dir(&self, ctx: &AgentContext) -> Option<PathBuf> {
        Some(ctx.home.join(".codex"))
    }

    fn long_prompt(&self) -> LongPrompt {
        LongPrompt::Stdin
    }

    /// Sessions are resumed by id (`agents.md`), in every version.
    fn can_resume(&self, _version: &mut dyn FnMut() -> Option<String>) -> Result<(), String> {
        Ok(())
    }

    /// `codex exec --json --skip-git-repo-check --color never [-m M]
    /// (--dangerously-bypass-approvals-and-sandbox | --sandbox read-only)
    /// ARGS… [resume ID] PROMPT` — every option before `resume`.
    fn command(&self, ctx: &AgentContext) -> CommandSpec {
        let mut spec = base_command(NAME, ctx, self.default_timeout());
        spec.args = [
            "exec",
            "--json",
            "--skip-git-repo-check",
            "--color",
            "never",
        ]
        .map(String::from)
        .to_vec();
        if let Some(m) = &ctx.spec.model {
            spec.args.extend(["-m".into(), m.clone()]);
        }
        if ctx.read_only {
            spec.args.extend(["--sandbox".into(), "read-only".into()]);
        } else {
            // Codex's own sandbox (bubblewrap/landlock) usually fails in a
            // container; the runner's isolation is the job's workspace.
            spec.args
                .push("--dangerously-bypass-approvals-and-sandbox".into());
        }
        spec.args.extend(ctx.spec.args.iter().cloned());
        if let Some(id) = ctx.resume_session {
            spec.args.extend(["resume".into(), id.to_string()]);
        }
        // A long prompt goes on stdin: `-` as the prompt reads it.
        place_prompt(&mut spec, ctx, Some("-"));
        if let Some(dir) = self.config_dir(ctx) {
            spec.set_env("CODEX_HOME", path_str(&dir));
        }
        // CODEX_API_KEY is the variable `exec` supports; OPENAI_API_KEY too
        // for older builds and tools the agent runs.
        set_key(&mut spec, "CODEX_API_KEY", ctx.keys.openai_api_key.as_ref());
        set_key(
            &mut spec,
            "OPENAI_API_KEY",
            ctx.keys.openai_api_key.as_ref(),
        );
        spec
    }

    fn parser(&self) -> Box<dyn AgentParser> {
        Box::new(CodexParser::default())
    }
}

/// Parses `codex exec --json` lines.
#[derive(Debug, Default)]
pub struct CodexParser {
    thread_id: Option<String>,
    last_message: String,
    completed: bool,
    failed: Option<String>,
    last_error: Option<String>,
    /// Command items whose `tool_use` was already sent (on `item.started`).
    started: HashSet<String>,
    usage: Usage,
    stderr: StderrTail,
}

fn event(kind: AgentEventType) -> AgentEvent {
    AgentEvent::new(NAME, kind)
}

impl CodexParser {
    fn item(&mut self, completed: bool, item: &Value, line: &str, out: &mut Vec<Parsed>) {
        let id = str_at(item, "id").unwrap_or_default().to_string();
        match str_at(item, "type") {
            Some("command_execution") => {
                if !self.started.contains(&id) {
                    self.started.insert(id.clone());
                    out.push(Parsed::Event(
                        event(AgentEventType::ToolUse)
                            .tool("shell")
                            .text(str_at(item, "command").unwrap_or_default()),
                    ));
                }
                if completed {
                    let code = item.get("exit_code").and_then(Value::as_i64);
                    let mut e = event(AgentEventType::ToolResult)
                        .tool("shell")
                        .text(str_at(item, "aggregated_output").unwrap_or_default());
                    e.is_error = Some(
                        code.is_some_and(|c| c != 0) || str_at(item, "status") == Some("failed"),
                    );
                    out.push(Parsed::Event(e));
                }
            }
            Some("agent_message") if completed => {
                let t = str_at(item, "text").unwrap_or_default();
                self.last_message = t.to_string();
                out.push(Parsed::Event(event(AgentEventType::Message).text(t)));
            }
            Some("file_change") if completed => {
                let changes: Vec<String> = item
                    .get("changes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        format!(
                            "{} {}",
                            str_at(c, "kind").unwrap_or("change"),
                            str_at(c, "path").unwrap_or("?")
                        )
                    })
                    .collect();
                out.push(Parsed::Event(
                    event(AgentEventType::ToolUse)
                        .tool("edit")
                        .text(changes.join(", ")),
                ));
            }
            Some("mcp_tool_call") if completed => {
                let tool = format!(
                    "{}.{}",
                    str_at(item, "server").unwrap_or("mcp"),
                    str_at(item, "tool").unwrap_or("tool")
                );
                let args = item
                    .get("arguments")
                    .map(Value::to_string)
                    .unwrap_or_default();
                out.push(Parsed::Event(
                    event(AgentEventType::ToolUse).tool(tool.clone()).text(args),
                ));
                let mut e = event(AgentEventType::ToolResult).tool(tool);
                e.text = item
                    .get("result")
                    .or_else(|| item.get("error"))
                    .map(super::adapter::content_text);
                e.is_error = Some(str_at(item, "status") == Some("failed"));
                out.push(Parsed::Event(e));
            }
            Some("web_search") if completed => out.push(Parsed::Event(
                event(AgentEventType::ToolUse)
                    .tool("web_search")
                    .text(str_at(item, "query").unwrap_or_default()),
            )),
            Some("error") if completed => {
                let m = str_at(item, "message").unwrap_or("error");
                self.last_error = Some(m.to_string());
                out.push(Parsed::Event(event(AgentEventType::Error).text(m)));
            }
            // Partial or bookkeeping items: not events.
            Some(
                "agent_message" | "file_change" | "mcp_tool_call" | "web_search" | "error"
                | "reasoning" | "todo_list" | "plan",
            ) => {}
            _ => out.push(Parsed::Log(line.to_string())),
        }
    }
}

impl AgentParser for CodexParser {
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
            Some("thread.started") => {
                if let Some(id) = str_at(&v, "thread_id") {
                    self.thread_id = Some(id.to_string());
                    let mut e = event(AgentEventType::Session);
                    e.session_id = Some(id.to_string());
                    out.push(Parsed::Event(e));
                }
            }
            Some("turn.started") => {}
            Some(t @ ("item.started" | "item.updated" | "item.completed")) => {
                let item = v.get("item").unwrap_or(&Value::Null);
                self.item(t == "item.completed", item, line, &mut out);
            }
            Some("turn.completed") => {
                self.completed = true;
                let u = v.get("usage").unwrap_or(&Value::Null);
                // `cached_input_tokens` is a part of `input_tokens`.
                let turn = Usage {
                    input_tokens: u64_at(u, "input_tokens"),
                    output_tokens: u64_at(u, "output_tokens"),
                    cost_usd: None,
                };
                self.usage.add(&turn);
                let mut e = event(AgentEventType::Usage);
                e.input_tokens = Some(turn.input_tokens);
                e.output_tokens = Some(turn.output_tokens);
                out.push(Parsed::Event(e));
            }
            Some("turn.failed") => {
                let m = v
                    .get("error")
                    .and_then(|e| str_at(e, "message"))
                    .unwrap_or("turn failed")
                    .to_string();
                out.push(Parsed::Event(event(AgentEventType::Error).text(m.clone())));
                self.failed = Some(m);
            }
            Some("error") => {
                let m = str_at(&v, "message").unwrap_or("error").to_string();
                out.push(Parsed::Event(event(AgentEventType::Error).text(m.clone())));
                self.last_error = Some(m);
            }
            _ => out.push(Parsed::Log(line.to_string())),
        }
        out
    }

    fn finish(&mut self, outcome: &ProcessOutcome) -> AgentVerdict {
        let success = outcome.success() && self.completed && self.failed.is_none();
        let error = if success {
            None
        } else if let Some(f) = &self.failed {
            Some(format!("codex turn failed: {f}"))
        } else {
            let why = self
                .last_error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_else(|| self.stderr.suffix());
            if self.completed {
                Some(format!("codex {}{why}", outcome.describe()))
            } else {
                Some(format!(
                    "codex ended without turn.completed ({}){why}",
                    outcome.describe()
                ))
            }
        };
        AgentVerdict {
            success,
            final_text: self.last_message.clone(),
            session_id: self.thread_id.clone(),
            usage: self.usage.clone(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::testing::{ctx_parts, exited, run_parser};

    const EXAMPLE: &str = r#"{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}
{"type":"turn.started"}
{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"bash -lc ls","aggregated_output":"README.md\n","exit_code":0,"status":"completed"}}
{"type":"item.completed","item":{"id":"item_2","type":"file_change","changes":[{"path":"src/lib.rs","kind":"update"}],"status":"completed"}}
{"type":"item.completed","item":{"id":"item_3","type":"agent_message","text":"Added the rate limiter and a test."}}
{"type":"turn.completed","usage":{"input_tokens":24763,"cached_input_tokens":24448,"output_tokens":122}}"#;

    #[test]
    fn the_agents_md_example_is_a_success() {
        let (events, logs, v) = run_parser(&mut CodexParser::default(), EXAMPLE, &exited(0));
        assert!(logs.is_empty(), "{logs:?}");
        let kinds: Vec<AgentEventType> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                AgentEventType::Session,
                AgentEventType::ToolUse,
                AgentEventType::ToolResult,
                AgentEventType::ToolUse,
                AgentEventType::Message,
                AgentEventType::Usage,
            ]
        );
        assert_eq!(events[1].text.as_deref(), Some("bash -lc ls"));
        assert_eq!(events[2].text.as_deref(), Some("README.md\n"));
        assert_eq!(events[2].is_error, Some(false));
        assert_eq!(events[3].text.as_deref(), Some("update src/lib.rs"));
        assert!(v.success, "{v:?}");
        assert_eq!(v.final_text, "Added the rate limiter and a test.");
        assert_eq!(
            v.session_id.as_deref(),
            Some("0199a213-81c0-7800-8aa1-bbab2a035a53")
        );
        assert_eq!(v.usage.input_tokens, 24763);
        assert_eq!(v.usage.output_tokens, 122);
        assert_eq!(v.usage.cost_usd, None);
    }

    #[test]
    fn turn_failed_is_a_failure_with_its_message() {
        let t = r#"{"type":"thread.started","thread_id":"t"}
{"type":"turn.started"}
{"type":"error","message":"You've hit your usage limit."}
{"type":"turn.failed","error":{"message":"You've hit your usage limit."}}"#;
        let (_, _, v) = run_parser(&mut CodexParser::default(), t, &exited(1));
        assert!(!v.success);
        assert!(v.error.expect("e").contains("usage limit"));
    }

    #[test]
    fn no_turn_completed_is_a_failure_even_with_exit_zero() {
        let t = r#"{"type":"thread.started","thread_id":"t"}
{"type":"item.completed","item":{"id":"i","type":"agent_message","text":"half"}}"#;
        let (_, _, v) = run_parser(&mut CodexParser::default(), t, &exited(0));
        assert!(!v.success);
        assert_eq!(v.final_text, "half");
        assert!(v.error.expect("e").contains("without turn.completed"));
    }

    #[test]
    fn a_non_zero_exit_after_completion_is_a_failure() {
        let t = r#"{"type":"turn.completed","usage":{}}"#;
        let (_, _, v) = run_parser(&mut CodexParser::default(), t, &exited(1));
        assert!(!v.success);
    }

    #[test]
    fn unknown_types_are_logs() {
        let t = "Reading additional input from stdin...\n{\"type\":\"thread.renamed\"}\n{\"type\":\"item.completed\",\"item\":{\"type\":\"hologram\"}}";
        let (events, logs, _) = run_parser(&mut CodexParser::default(), t, &exited(0));
        assert!(events.is_empty());
        assert_eq!(logs.len(), 3);
    }

    #[test]
    fn command_line_and_env() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        let spec = Codex.command(&ctx);
        assert_eq!(
            spec.args[..5],
            [
                "exec",
                "--json",
                "--skip-git-repo-check",
                "--color",
                "never"
            ]
        );
        let joined = spec.args.join(" ");
        assert!(joined.contains("-m m1"));
        assert!(joined.contains("--dangerously-bypass-approvals-and-sandbox"));
        assert_eq!(spec.args.last().map(String::as_str), Some("do it"));
        assert_eq!(spec.get_env("CODEX_API_KEY"), Some("sk-openai-xyz"));
        assert_eq!(spec.get_env("OPENAI_API_KEY"), Some("sk-openai-xyz"));
        assert_eq!(spec.get_env("ANTHROPIC_API_KEY"), None);
        assert_eq!(spec.get_env("CODEX_HOME"), Some("/h/.codex"));
        ctx.read_only = true;
        ctx.resume_session = Some("thr");
        let spec = Codex.command(&ctx);
        let joined = spec.args.join(" ");
        assert!(joined.contains("--sandbox read-only"));
        assert!(!joined.contains("dangerously"));
        assert!(joined.ends_with("--extra resume thr do it"), "{joined}");
    }

    #[test]
    fn a_long_prompt_goes_on_stdin_as_dash() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        ctx.prompt_input = crate::agents::PromptInput::Stdin;
        let spec = Codex.command(&ctx);
        assert_eq!(spec.args.last().map(String::as_str), Some("-"));
        assert_eq!(spec.stdin, crate::process::Stdin::Bytes(b"do it".to_vec()));
        assert_eq!(Codex.long_prompt(), LongPrompt::Stdin);
    }
}
