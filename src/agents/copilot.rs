//! GitHub Copilot CLI (`copilot -p …`), driven by its version's band
//! ([`CopilotBand`]).
//!
//! From 0.0.422 (`--output-format json`), success is exit 0 and the final
//! `result` line's `exitCode == 0`: a `result` with another `exitCode` is
//! a failure even when the process exits 0, its reason the last
//! `session.error`. From 1.0.51 the session is a UUID the runner makes and
//! passes as `--session-id` on every turn (created on the first, resumed
//! on the next); between, a session is resumed with `--resume=<sessionId>`.
//! Before 0.0.422 the output is text: each line a message, success by the
//! exit code, no session to resume. No tokens, no cost.

use super::adapter::{
    base_command, content_text, json_object, path_str, prompt_argument, str_at, summarize_input,
    uuid_v4, AgentAdapter, AgentContext, AgentParser, AgentVerdict, Parsed, StderrTail,
};
use super::copilot_version::{CopilotBand, CopilotResume, CopilotVersion};
use super::custom::CustomParser;
use crate::job::event::{AgentEvent, AgentEventType, Usage};
use crate::process::{CommandSpec, OutputStream, ProcessOutcome};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

const NAME: &str = "copilot";

/// The Copilot CLI adapter for one band of versions (the registry's is the
/// newest band; [`AgentAdapter::at_version`] gives the one for the
/// installed CLI).
#[derive(Clone, Copy, Debug, Default)]
pub struct Copilot {
    band: CopilotBand,
}

impl Copilot {
    /// The adapter for a CLI of `band`.
    pub fn for_band(band: CopilotBand) -> Copilot {
        Copilot { band }
    }
}

impl AgentAdapter for Copilot {
    fn name(&self) -> &str {
        NAME
    }

    fn program(&self) -> &str {
        NAME
    }

    fn versioned(&self) -> bool {
        true
    }

    /// An unreadable version is driven as the newest band (see
    /// [`CopilotBand::SessionId`]).
    fn at_version(&self, printed: &str) -> Option<Box<dyn AgentAdapter>> {
        Some(Box::new(Copilot::for_band(CopilotBand::of(printed))))
    }

    fn config_dir(&self, ctx: &AgentContext) -> Option<PathBuf> {
        Some(ctx.home.join(".copilot"))
    }

    /// `copilot -p PROMPT [--output-format json] (--allow-all | --allow-all
    /// --deny-tool write --deny-tool shell) --no-ask-user --no-color
    /// --no-auto-update [--model M] [SESSION] ARGS…`, where SESSION is
    /// `--session-id UUID` from 1.0.51, `--resume=ID` (a resumed session
    /// only) from 0.0.422, nothing before.
    fn command(&self, ctx: &AgentContext) -> CommandSpec {
        let mut spec = base_command(NAME, ctx, self.default_timeout());
        spec.args = vec![
            "-p".into(),
            // `-p` ignores stdin: a long prompt is a file it mentions.
            prompt_argument(ctx),
        ];
        if self.band.json_output() {
            spec.args.extend(["--output-format".into(), "json".into()]);
        }
        // Without it a permission prompt blocks or kills `-p` runs.
        spec.args.push("--allow-all".into());
        if ctx.read_only {
            // Deny rules win over --allow-all.
            spec.args
                .extend(["--deny-tool", "write", "--deny-tool", "shell"].map(String::from));
        }
        spec.args
            .extend(["--no-ask-user", "--no-color", "--no-auto-update"].map(String::from));
        if let Some(m) = &ctx.spec.model {
            spec.args.extend(["--model".into(), m.clone()]);
        }
        // Never a bare --resume (it wants a terminal).
        spec.args
            .extend(self.band.resume().args(ctx.resume_session, uuid_v4));
        spec.args.extend(ctx.spec.args.iter().cloned());
        if let Some(dir) = self.config_dir(ctx) {
            spec.set_env("COPILOT_HOME", path_str(&dir));
        }
        let token = ctx
            .keys
            .copilot_github_token
            .as_deref()
            .or(ctx.github_token)
            .filter(|t| !t.is_empty());
        if let Some(t) = token {
            spec.set_env("COPILOT_GITHUB_TOKEN", t);
        }
        spec
    }

    fn parser(&self) -> Box<dyn AgentParser> {
        if self.band.json_output() {
            Box::new(CopilotParser::default())
        } else {
            Box::new(CustomParser::plain(NAME))
        }
    }

    /// From 0.0.422 (agents.md's table); an older CLI names no session.
    /// A version that cannot be read is taken as current.
    fn can_resume(&self, version: &mut dyn FnMut() -> Option<String>) -> Result<(), String> {
        let printed = version().unwrap_or_default();
        if CopilotBand::of(&printed).resume() != CopilotResume::Unsupported {
            return Ok(());
        }
        let found =
            CopilotVersion::parse(&printed).map_or_else(|| printed.clone(), |v| v.to_string());
        Err(format!(
            "copilot {found} cannot resume a session, so it cannot hold a chat: chat needs Copilot CLI {} or later \
             ({} or later resumes by --session-id); update it with `npm install -g @github/copilot`",
            CopilotVersion::RESUME,
            CopilotVersion::SESSION_ID
        ))
    }
}

/// What the final `result` line said.
#[derive(Debug)]
struct ResultLine {
    exit_code: Option<i64>,
}

/// Parses `--output-format json` lines.
#[derive(Debug, Default)]
pub struct CopilotParser {
    session_id: Option<String>,
    last_message: String,
    last_error: Option<String>,
    /// toolCallId → tool name.
    tools: HashMap<String, String>,
    result: Option<ResultLine>,
    stderr: StderrTail,
}

fn event(kind: AgentEventType) -> AgentEvent {
    AgentEvent::new(NAME, kind)
}

impl AgentParser for CopilotParser {
    fn line(&mut self, stream: OutputStream, line: &str) -> Vec<Parsed> {
        if stream == OutputStream::Stderr {
            self.stderr.push(line);
            return Vec::new();
        }
        let Some(v) = json_object(line) else {
            return vec![Parsed::Log(line.to_string())];
        };
        let data = v.get("data").unwrap_or(&Value::Null);
        let mut out = Vec::new();
        match str_at(&v, "type") {
            Some("assistant.message") => {
                let t = str_at(data, "content").unwrap_or_default().trim();
                if !t.is_empty() {
                    self.last_message = t.to_string();
                    out.push(Parsed::Event(event(AgentEventType::Message).text(t)));
                }
            }
            Some("tool.execution_start") => {
                let name = str_at(data, "toolName").unwrap_or("tool").to_string();
                if let Some(id) = str_at(data, "toolCallId") {
                    self.tools.insert(id.to_string(), name.clone());
                }
                let args = data.get("arguments").unwrap_or(&Value::Null);
                out.push(Parsed::Event(
                    event(AgentEventType::ToolUse)
                        .tool(name)
                        .text(summarize_input(args)),
                ));
            }
            Some("tool.execution_complete") => {
                let ok = data.get("success").and_then(Value::as_bool).unwrap_or(true);
                let body = if ok {
                    data.get("result")
                } else {
                    data.get("error").or_else(|| data.get("result"))
                };
                let text = body
                    .map(|b| match str_at(b, "message") {
                        Some(m) if !ok => m.to_string(),
                        _ => content_text(b),
                    })
                    .unwrap_or_default();
                let mut e = event(AgentEventType::ToolResult).text(text);
                if let Some(tool) = str_at(data, "toolCallId").and_then(|id| self.tools.get(id)) {
                    e.tool = Some(tool.clone());
                }
                e.is_error = Some(!ok);
                out.push(Parsed::Event(e));
            }
            Some("session.error") => {
                let m = str_at(data, "message")
                    .unwrap_or("session error")
                    .to_string();
                out.push(Parsed::Event(event(AgentEventType::Error).text(m.clone())));
                self.last_error = Some(m);
            }
            Some("result") => {
                if let Some(id) = str_at(&v, "sessionId") {
                    self.session_id = Some(id.to_string());
                    let mut e = event(AgentEventType::Session);
                    e.session_id = Some(id.to_string());
                    out.push(Parsed::Event(e));
                }
                self.result = Some(ResultLine {
                    exit_code: v.get("exitCode").and_then(Value::as_i64),
                });
            }
            // Housekeeping and streaming deltas (the full message follows).
            Some(t)
                if t.starts_with("session.")
                    || t.starts_with("assistant.")
                    || t.starts_with("user.")
                    || t == "tool.execution_partial_result" => {}
            _ => out.push(Parsed::Log(line.to_string())),
        }
        out
    }

    fn finish(&mut self, outcome: &ProcessOutcome) -> AgentVerdict {
        let result_ok = self.result.as_ref().is_some_and(|r| r.exit_code == Some(0));
        let success = outcome.success() && result_ok;
        let why = self
            .last_error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_else(|| self.stderr.suffix());
        let error = match &self.result {
            _ if success => None,
            None => Some(format!(
                "copilot ended without a result line ({}){why}",
                outcome.describe()
            )),
            Some(r) if !result_ok => Some(format!(
                "copilot reported exit code {}{why}",
                r.exit_code.map_or("?".to_string(), |c| c.to_string())
            )),
            Some(_) => Some(format!("copilot {}{why}", outcome.describe())),
        };
        AgentVerdict {
            success,
            final_text: self.last_message.clone(),
            session_id: self.session_id.clone(),
            usage: Usage::default(),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::testing::{ctx_parts, exited, run_parser};

    const EXAMPLE: &str = r#"{"type":"assistant.turn_start","data":{"turnId":"0"},"id":"e1","timestamp":"2026-03-30T22:19:15.001Z"}
{"type":"tool.execution_start","data":{"toolCallId":"t1","toolName":"view","arguments":{"path":"src/main.go"}},"id":"e2","timestamp":"2026-03-30T22:19:16.101Z"}
{"type":"tool.execution_complete","data":{"toolCallId":"t1","success":true,"result":{"content":"package main"}},"id":"e3","timestamp":"2026-03-30T22:19:16.301Z"}
{"type":"assistant.message","data":{"messageId":"m1","content":"Fixed the handler.","toolRequests":[],"outputTokens":6},"id":"e4","timestamp":"2026-03-30T22:19:20.097Z"}
{"type":"result","timestamp":"2026-03-30T22:19:28.097Z","sessionId":"aa778ea0-6eab-4ce9-b87e-11d6d33dab4f","exitCode":0,"usage":{"premiumRequests":6,"sessionDurationMs":12927,"codeChanges":{"linesAdded":3,"linesRemoved":1,"filesModified":["src/main.go"]}}}"#;

    #[test]
    fn the_agents_md_example_is_a_success() {
        let (events, logs, v) = run_parser(&mut CopilotParser::default(), EXAMPLE, &exited(0));
        assert!(logs.is_empty(), "{logs:?}");
        let kinds: Vec<AgentEventType> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                AgentEventType::ToolUse,
                AgentEventType::ToolResult,
                AgentEventType::Message,
                AgentEventType::Session,
            ]
        );
        assert_eq!(events[0].tool.as_deref(), Some("view"));
        assert_eq!(events[0].text.as_deref(), Some("src/main.go"));
        assert_eq!(events[1].tool.as_deref(), Some("view"));
        assert_eq!(events[1].text.as_deref(), Some("package main"));
        assert!(v.success, "{v:?}");
        assert_eq!(v.final_text, "Fixed the handler.");
        assert_eq!(
            v.session_id.as_deref(),
            Some("aa778ea0-6eab-4ce9-b87e-11d6d33dab4f")
        );
        assert_eq!(v.usage, Usage::default());
    }

    #[test]
    fn result_exit_code_non_zero_is_a_failure_with_the_session_error() {
        let t = r#"{"type":"session.error","data":{"message":"Sorry, you've hit a rate limit"}}
{"type":"result","sessionId":"s","exitCode":1}"#;
        let (_, _, v) = run_parser(&mut CopilotParser::default(), t, &exited(0));
        assert!(!v.success);
        assert!(v.error.expect("e").contains("rate limit"));
    }

    #[test]
    fn no_result_line_is_a_failure() {
        let t = r#"{"type":"assistant.message","data":{"content":"hi"}}"#;
        let (_, _, v) = run_parser(&mut CopilotParser::default(), t, &exited(0));
        assert!(!v.success);
        assert_eq!(v.final_text, "hi");
        assert!(v.error.expect("e").contains("without a result line"));
    }

    #[test]
    fn a_failed_tool_is_an_error_result() {
        let t = r#"{"type":"tool.execution_start","data":{"toolCallId":"t","toolName":"shell","arguments":{"command":"ls"}}}
{"type":"tool.execution_complete","data":{"toolCallId":"t","success":false,"error":{"message":"denied"}}}"#;
        let (events, _, _) = run_parser(&mut CopilotParser::default(), t, &exited(0));
        assert_eq!(events[1].is_error, Some(true));
        assert_eq!(events[1].text.as_deref(), Some("denied"));
    }

    #[test]
    fn unknown_and_text_lines_are_logs() {
        let t = "mise shim banner\n{\"type\":\"future.thing\",\"data\":{}}";
        let (events, logs, _) = run_parser(&mut CopilotParser::default(), t, &exited(0));
        assert!(events.is_empty());
        assert_eq!(logs.len(), 2);
    }

    #[test]
    fn command_line_and_env() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        let spec = Copilot::default().command(&ctx);
        assert_eq!(spec.args[..2], ["-p", "do it"]);
        let joined = spec.args.join(" ");
        for flag in [
            "--output-format json",
            "--allow-all",
            "--no-ask-user",
            "--no-color",
            "--no-auto-update",
            "--model m1",
        ] {
            assert!(joined.contains(flag), "{flag}: {joined}");
        }
        let i = spec
            .args
            .iter()
            .position(|a| a == "--session-id")
            .expect("sid");
        assert_eq!(spec.args[i + 1].len(), 36);
        assert_eq!(
            spec.get_env("COPILOT_GITHUB_TOKEN"),
            Some("github_pat_copilot")
        );
        assert_eq!(spec.get_env("GITHUB_TOKEN"), None);
        assert_eq!(spec.get_env("COPILOT_HOME"), Some("/h/.copilot"));
        ctx.read_only = true;
        ctx.resume_session = Some("aa778ea0-6eab-4ce9-b87e-11d6d33dab4f");
        let keys = crate::config::AgentKeys::default();
        ctx.keys = &keys;
        ctx.github_token = Some("gho_job_token");
        let spec = Copilot::default().command(&ctx);
        let joined = spec.args.join(" ");
        assert!(joined.contains("--deny-tool write --deny-tool shell"));
        assert!(joined.contains("--session-id aa778ea0-6eab-4ce9-b87e-11d6d33dab4f"));
        assert_eq!(spec.get_env("COPILOT_GITHUB_TOKEN"), Some("gho_job_token"));
    }

    #[test]
    fn each_band_gets_its_own_command_line_and_parser() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        let sid = "aa778ea0-6eab-4ce9-b87e-11d6d33dab4f";
        let at = |v: &str| Copilot::default().at_version(v).expect("versioned");
        let args = |a: &dyn AgentAdapter, ctx: &AgentContext| a.command(ctx).args.join(" ");
        // Before 0.0.422: no --output-format, no session flag at all.
        let old = at("GitHub Copilot CLI 0.0.339");
        let joined = args(old.as_ref(), &ctx);
        assert!(!joined.contains("--output-format"), "{joined}");
        assert!(!joined.contains("--session-id") && !joined.contains("--resume"));
        let (events, _, v) = run_parser(old.parser().as_mut(), "Plan:\n1. do it", &exited(0));
        assert_eq!(events.len(), 2, "each text line is a message");
        assert!(v.success);
        assert_eq!(v.final_text, "Plan:\n1. do it");
        let (_, _, v) = run_parser(old.parser().as_mut(), "oops", &exited(1));
        assert!(!v.success, "success by exit code");
        // 0.0.422 to 1.0.50: JSON; a new session names nothing, a resumed
        // one is --resume=<id>.
        let mid = at("0.0.422");
        let joined = args(mid.as_ref(), &ctx);
        assert!(joined.contains("--output-format json"), "{joined}");
        assert!(!joined.contains("--session-id") && !joined.contains("--resume"));
        ctx.resume_session = Some(sid);
        let joined = args(mid.as_ref(), &ctx);
        assert!(joined.contains(&format!("--resume={sid}")), "{joined}");
        assert!(!joined.contains("--session-id"), "{joined}");
        // 1.0.51 and later, and an unreadable version: --session-id.
        for v in ["1.0.51", "copilot (unknown build)"] {
            let joined = args(at(v).as_ref(), &ctx);
            assert!(
                joined.contains(&format!("--session-id {sid}")),
                "{v}: {joined}"
            );
            assert!(joined.contains("--output-format json"), "{v}: {joined}");
        }
    }

    #[test]
    fn a_long_prompt_is_a_file_the_prompt_mentions() {
        let parts = ctx_parts();
        let mut ctx = parts.ctx();
        ctx.prompt_input = crate::agents::PromptInput::File(PathBuf::from("/t/ados-prompt.md"));
        let spec = Copilot::default().command(&ctx);
        assert_eq!(spec.args[0], "-p");
        assert!(
            spec.args[1].contains("@/t/ados-prompt.md "),
            "{}",
            spec.args[1]
        );
        assert_eq!(spec.stdin, crate::process::Stdin::Null);
        assert_eq!(
            Copilot::default().long_prompt(),
            crate::agents::LongPrompt::File
        );
    }
}
