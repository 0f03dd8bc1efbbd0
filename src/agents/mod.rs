//! Agent CLIs: one adapter per CLI turns a job's agent settings into a
//! [`CommandSpec`](crate::process::CommandSpec) and parses its output into
//! normalised [`AgentEvent`](crate::job::event::AgentEvent)s and a verdict.
//!
//! - `claude.rs`, `codex.rs`, `copilot.rs`: the three CLIs of
//!   `agents.md`, each with its command line, environment (only its own
//!   credential) and success rule; `copilot_version.rs`: what each band
//!   of Copilot versions can do (output format, session resume).
//! - `custom.rs`: any command-line agent from the runner's configuration.
//! - `adapter.rs`: the traits and shared pieces; `registry.rs`: lookup by
//!   name, installed CLIs and versions; `attempt.rs`: one run.

mod adapter;
mod attempt;
mod claude;
mod codex;
mod copilot;
mod copilot_version;
mod custom;
mod registry;

pub use adapter::{
    prose, uuid_v4, AgentAdapter, AgentContext, AgentParser, AgentVerdict, LongPrompt, Parsed,
    PromptInput, DEFAULT_AGENT_TIMEOUT, PROMPT_ARG_MAX,
};
pub use attempt::{run_attempt, AttemptOutput};
pub use claude::{Claude, ClaudeParser};
pub use codex::{Codex, CodexParser};
pub use copilot::{Copilot, CopilotParser};
pub use copilot_version::{CopilotBand, CopilotResume, CopilotVersion};
pub use custom::{Custom, CustomParser};
pub use registry::{find_program, probe_version, AgentRegistry};

#[cfg(test)]
mod testing {
    //! Shared helpers of the adapters' unit tests.

    use super::{AgentContext, AgentParser, Parsed};
    use crate::config::AgentKeys;
    use crate::job::event::AgentEvent;
    use crate::job::spec::AgentSpec;
    use crate::process::{Ended, OutputStream, ProcessOutcome};
    use std::path::PathBuf;
    use std::time::Duration;

    pub struct CtxParts {
        spec: AgentSpec,
        keys: AgentKeys,
        env: Vec<(String, String)>,
        dir: PathBuf,
        home: PathBuf,
        tmp: PathBuf,
    }

    impl CtxParts {
        pub fn ctx(&self) -> AgentContext<'_> {
            AgentContext {
                spec: &self.spec,
                prompt: "do it",
                prompt_input: super::PromptInput::Argument,
                timeout: None,
                workdir: &self.dir,
                home: &self.home,
                tmp: &self.tmp,
                read_only: false,
                resume_session: None,
                keys: &self.keys,
                github_token: Some("gho_job_token"),
                base_env: &self.env,
            }
        }
    }

    /// A context whose base env carries things that must be stripped.
    pub fn ctx_parts() -> CtxParts {
        CtxParts {
            spec: AgentSpec {
                name: "x".into(),
                model: Some("m1".into()),
                timeout_s: None,
                args: vec!["--extra".into()],
            },
            keys: AgentKeys {
                anthropic_api_key: Some("sk-ant-api-xyz".into()),
                claude_code_oauth_token: None,
                openai_api_key: Some("sk-openai-xyz".into()),
                copilot_github_token: Some("github_pat_copilot".into()),
                named: Default::default(),
            },
            env: [
                ("PATH", "/usr/bin"),
                ("ADOS_TOKEN", "runner-secret"),
                ("CLAUDECODE", "1"),
                ("GITHUB_TOKEN", "ghp_leak"),
                ("HOME", "/root"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .to_vec(),
            dir: PathBuf::from("/w"),
            home: PathBuf::from("/h"),
            tmp: PathBuf::from("/t"),
        }
    }

    pub fn exited(code: i32) -> ProcessOutcome {
        ProcessOutcome {
            exit_code: Some(code),
            signal: None,
            ended: Ended::Exited,
            duration: Duration::from_secs(1),
            timeout: None,
            leaked: false,
            lines_truncated: 0,
        }
    }

    pub fn killed() -> ProcessOutcome {
        ProcessOutcome {
            exit_code: None,
            signal: Some(9),
            ended: Ended::TimedOut,
            duration: Duration::from_secs(1),
            timeout: None,
            leaked: false,
            lines_truncated: 0,
        }
    }

    /// Feed a transcript (stdout lines) and finish.
    pub fn run_parser(
        p: &mut dyn AgentParser,
        transcript: &str,
        outcome: &ProcessOutcome,
    ) -> (Vec<AgentEvent>, Vec<String>, super::AgentVerdict) {
        let mut events = Vec::new();
        let mut logs = Vec::new();
        for line in transcript.lines() {
            for parsed in p.line(OutputStream::Stdout, line) {
                match parsed {
                    Parsed::Event(e) => events.push(e),
                    Parsed::Log(l) => logs.push(l),
                }
            }
        }
        let v = p.finish(outcome);
        (events, logs, v)
    }
}

#[cfg(test)]
mod cut_lines {
    //! A line past `process::MAX_LINE` reaches a parser cut, followed by
    //! the supervisor's note line: both must be unknown output (logs),
    //! never a half-parsed event.

    use super::testing::{exited, run_parser};
    use super::{AgentParser, ClaudeParser, CodexParser, CopilotParser};
    use crate::process::truncation_note;

    fn cut(line: &str) -> String {
        // Cut in the middle of the text, as the splitter does at the cap.
        let at = line.len() / 2;
        format!("{}\n{}", &line[..at], truncation_note(123_456))
    }

    #[test]
    fn a_cut_json_line_and_its_note_are_logs_for_every_parser() {
        let big = "x".repeat(4096);
        let cases: Vec<(Box<dyn AgentParser>, String)> = vec![
            (
                Box::new(ClaudeParser::default()),
                format!(
                    r#"{{"type":"assistant","message":{{"content":[{{"type":"text","text":"{big}"}}]}}}}"#
                ),
            ),
            (
                Box::new(CodexParser::default()),
                format!(
                    r#"{{"type":"item.completed","item":{{"id":"i1","type":"agent_message","text":"{big}"}}}}"#
                ),
            ),
            (
                Box::new(CopilotParser::default()),
                format!(r#"{{"type":"assistant.message","data":{{"content":"{big}"}}}}"#),
            ),
        ];
        for (mut parser, whole) in cases {
            // The whole line is an event: the cut one must not be.
            let (events, _, _) = run_parser(parser.as_mut(), &whole, &exited(0));
            assert_eq!(events.len(), 1, "{whole:.60}");
            let (events, logs, _) = run_parser(parser.as_mut(), &cut(&whole), &exited(0));
            assert!(events.is_empty(), "{events:?}");
            assert_eq!(logs.len(), 2, "{logs:?}");
            assert_eq!(logs[1], truncation_note(123_456));
        }
    }
}
