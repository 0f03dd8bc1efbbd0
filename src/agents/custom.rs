//! A command agent from the runner's configuration
//! ([`crate::config::CustomAgent`]): any CLI that takes a prompt as its
//! last argument or on stdin and prints plain text.
//!
//! Each non-empty stdout line is a `message` event; the final text is the
//! whole stdout (its last 128 KiB); success is exit 0. A custom agent gets
//! only the credentials its definition names in `env`: the runner cannot
//! know which one it would need.

use super::adapter::{
    base_command, is_machine_line, place_prompt, set_key, AgentAdapter, AgentContext, AgentParser,
    AgentVerdict, LongPrompt, Parsed, StderrTail, DEFAULT_AGENT_TIMEOUT,
};
use crate::config::CustomAgent;
use crate::job::event::{AgentEvent, AgentEventType, Usage};
use crate::process::{CommandSpec, OutputStream, ProcessOutcome, Stdin};
use std::time::Duration;

/// How much of a custom agent's stdout is kept as its final text.
const MAX_FINAL_TEXT: usize = 128 * 1024;

/// The generic command adapter.
#[derive(Clone, Debug)]
pub struct Custom {
    def: CustomAgent,
}

impl Custom {
    /// An adapter for `def`; `None` when its command is empty.
    pub fn new(def: CustomAgent) -> Option<Custom> {
        if def.command.first().is_none_or(|p| p.is_empty()) {
            return None;
        }
        Some(Custom { def })
    }
}

impl AgentAdapter for Custom {
    fn name(&self) -> &str {
        &self.def.name
    }

    fn program(&self) -> &str {
        self.def
            .command
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Only the definition's own `version` command: a CLI that takes any
    /// argument as a prompt would go to work on `--version`.
    fn version_command(&self) -> Option<Vec<String>> {
        self.def.version.clone()
    }

    /// `COMMAND… [MODEL_FLAG MODEL] ARGS… [PROMPT]` (the prompt goes on
    /// stdin instead when `prompt_on_stdin`).
    fn command(&self, ctx: &AgentContext) -> CommandSpec {
        let mut spec = base_command(self.program(), ctx, self.default_timeout());
        spec.args = self.def.command.iter().skip(1).cloned().collect();
        let model = ctx.spec.model.as_ref().or(self.def.default_model.as_ref());
        if let (Some(flag), Some(model)) = (&self.def.model_flag, model) {
            spec.args.extend([flag.clone(), model.clone()]);
        }
        spec.args.extend(ctx.spec.args.iter().cloned());
        // The variables its definition names (their values are secrets
        // of the configuration, redacted like every other).
        for name in &self.def.env {
            set_key(&mut spec, name, ctx.keys.named(name));
        }
        if self.def.prompt_on_stdin {
            spec.stdin = Stdin::Bytes(ctx.prompt.as_bytes().to_vec());
        } else {
            place_prompt(&mut spec, ctx, None);
        }
        spec
    }

    fn parser(&self) -> Box<dyn AgentParser> {
        Box::new(CustomParser::plain(&self.def.name))
    }

    fn long_prompt(&self) -> LongPrompt {
        if self.def.prompt_on_stdin {
            LongPrompt::Stdin
        } else {
            LongPrompt::File
        }
    }

    fn default_timeout(&self) -> Duration {
        self.def.timeout.unwrap_or(DEFAULT_AGENT_TIMEOUT)
    }
}

/// Plain text lines become messages.
#[derive(Debug)]
pub struct CustomParser {
    name: String,
    text: String,
    stderr: StderrTail,
}

impl CustomParser {
    /// A parser of plain text output for the agent `name` (a custom agent,
    /// or a Copilot CLI too old for JSON output).
    pub fn plain(name: &str) -> CustomParser {
        CustomParser {
            name: name.to_string(),
            text: String::new(),
            stderr: StderrTail::default(),
        }
    }
}

impl AgentParser for CustomParser {
    fn line(&mut self, stream: OutputStream, line: &str) -> Vec<Parsed> {
        if stream == OutputStream::Stderr {
            self.stderr.push(line);
            return Vec::new();
        }
        // The final text is the agent's prose: a JSON line it printed
        // never reaches a commit message.
        if !is_machine_line(line) {
            self.text.push_str(line);
            self.text.push('\n');
        }
        if self.text.len() > 2 * MAX_FINAL_TEXT {
            let mut cut = self.text.len() - MAX_FINAL_TEXT;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
        if line.trim().is_empty() {
            return Vec::new();
        }
        vec![Parsed::Event(
            AgentEvent::new(&self.name, AgentEventType::Message).text(line),
        )]
    }

    fn finish(&mut self, outcome: &ProcessOutcome) -> AgentVerdict {
        let mut text = self.text.trim().to_string();
        if text.len() > MAX_FINAL_TEXT {
            let mut cut = text.len() - MAX_FINAL_TEXT;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text.drain(..cut);
        }
        let success = outcome.success();
        AgentVerdict {
            success,
            final_text: text,
            session_id: None,
            usage: Usage::default(),
            error: (!success).then(|| {
                format!(
                    "{} {}{}",
                    self.name,
                    outcome.describe(),
                    self.stderr.suffix()
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::testing::{ctx_parts, exited, run_parser};

    fn def(stdin: bool) -> CustomAgent {
        CustomAgent {
            prompt_on_stdin: stdin,
            default_model: Some("gpt-x".into()),
            model_flag: Some("--model".into()),
            timeout: Some(Duration::from_secs(60)),
            ..CustomAgent::new("aider", &["aider", "--yes"])
        }
    }

    #[test]
    fn command_puts_the_prompt_last_or_on_stdin_and_gives_no_keys() {
        let parts = ctx_parts();
        let ctx = parts.ctx();
        let a = Custom::new(def(false)).expect("adapter");
        let spec = a.command(&ctx);
        assert_eq!(spec.program, "aider");
        // The job's model wins over the default.
        assert_eq!(spec.args, ["--yes", "--model", "m1", "--extra", "do it"]);
        assert_eq!(spec.stdin, Stdin::Null);
        assert_eq!(spec.timeout, Some(Duration::from_secs(60)));
        assert!(spec.env.iter().all(|(k, _)| !k.ends_with("_KEY")));
        let spec = Custom::new(def(true)).expect("adapter").command(&ctx);
        assert_eq!(spec.args, ["--yes", "--model", "m1", "--extra"]);
        assert_eq!(spec.stdin, Stdin::Bytes(b"do it".to_vec()));
        let mut empty = def(false);
        empty.command.clear();
        assert!(Custom::new(empty).is_none());
    }

    #[test]
    fn lines_are_messages_and_exit_code_decides() {
        let a = Custom::new(def(false)).expect("adapter");
        let (events, _, v) = run_parser(a.parser().as_mut(), "one\n\ntwo", &exited(0));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].agent, "aider");
        assert!(v.success);
        assert_eq!(v.final_text, "one\n\ntwo");
        let out = "{\"event\":\"edit\",\"file\":\"a.py\"}\nFixed the parser.\n[\"done\"]";
        let (events, _, v) = run_parser(a.parser().as_mut(), out, &exited(0));
        assert_eq!(events.len(), 3, "every line is still shown");
        assert_eq!(
            v.final_text, "Fixed the parser.",
            "only prose is final text"
        );
        let (_, _, v) = run_parser(a.parser().as_mut(), "x", &exited(2));
        assert!(!v.success);
        assert_eq!(v.error.as_deref(), Some("aider exit code 2"));
    }
}
