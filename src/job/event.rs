//! What a job says while it runs (`job.event`) and once at the end
//! (`job.result`), as the typed form of protocol.md §2.

use serde::Serialize;

/// A step of a job, in protocol order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Workspace and credentials being set up.
    Preparing,
    /// Fetching the repository.
    Cloning,
    /// The agent CLI is running.
    RunningAgent,
    /// The repository's tests are running.
    Testing,
    /// The agent is fixing failing tests.
    Repairing,
    /// Committing the change.
    Committing,
    /// Pushing the branch.
    Pushing,
    /// Opening or updating the PR/MR.
    CreatingPr,
    /// A chat session waits for the next user message.
    WaitingInput,
}

impl Status {
    /// The wire name (`running_agent`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Preparing => "preparing",
            Status::Cloning => "cloning",
            Status::RunningAgent => "running_agent",
            Status::Testing => "testing",
            Status::Repairing => "repairing",
            Status::Committing => "committing",
            Status::Pushing => "pushing",
            Status::CreatingPr => "creating_pr",
            Status::WaitingInput => "waiting_input",
        }
    }
}

/// Which stream a `log` line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    /// The runner's own words.
    Runner,
    /// git's output.
    Git,
    /// The agent CLI's raw output.
    Agent,
    /// The test command's output.
    Test,
}

/// The kind of a normalised agent event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentEventType {
    /// Assistant text.
    Message,
    /// The agent called a tool.
    ToolUse,
    /// A tool's output.
    ToolResult,
    /// Token and cost counters.
    Usage,
    /// The CLI's session id (for resume).
    Session,
    /// An error the CLI reported.
    Error,
}

/// An agent CLI's structured output, normalised across CLIs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AgentEvent {
    /// Which agent said it (`claude`).
    pub agent: String,
    /// What kind of event.
    #[serde(rename = "type")]
    pub kind: AgentEventType,
    /// Message text, tool input summary, tool output or error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The tool's name for `tool_use` / `tool_result`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Whether a tool result is an error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// The CLI's session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Input tokens (usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens (usage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Cost in USD, when the CLI reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
}

impl AgentEvent {
    /// An event of `kind` from `agent` with every optional field empty.
    pub fn new(agent: &str, kind: AgentEventType) -> AgentEvent {
        AgentEvent {
            agent: agent.to_string(),
            kind,
            text: None,
            tool: None,
            is_error: None,
            session_id: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        }
    }

    /// Builder: set `text`.
    pub fn text(mut self, text: impl Into<String>) -> AgentEvent {
        self.text = Some(text.into());
        self
    }

    /// Builder: set `tool`.
    pub fn tool(mut self, tool: impl Into<String>) -> AgentEvent {
        self.tool = Some(tool.into());
        self
    }
}

/// One `job.event` payload.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind")]
pub enum Event {
    /// A step started.
    #[serde(rename = "status")]
    Status {
        /// The step.
        status: Status,
        /// Human detail (`cloning https://github.com/o/r.git`).
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// Raw output.
    #[serde(rename = "log")]
    Log {
        /// Where it came from.
        stream: LogStream,
        /// The text (secrets already redacted), usually one line with `\n`.
        text: String,
    },
    /// The agent's structured output.
    #[serde(rename = "agent")]
    Agent(AgentEvent),
    /// A test run finished.
    #[serde(rename = "test")]
    Test {
        /// The command as the user would type it.
        command: String,
        /// Its exit code (-1 when killed by a signal).
        exit_code: i32,
        /// How long it ran.
        duration_ms: u64,
        /// Whether it passed.
        passed: bool,
    },
    /// A chat reply.
    #[serde(rename = "chat.reply")]
    ChatReply {
        /// The user message this answers.
        message_id: String,
        /// Reply text.
        text: String,
        /// Whether the reply is complete.
        done: bool,
    },
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResultStatus {
    /// The work was pushed (and the PR opened or updated).
    #[serde(rename = "completed")]
    Completed,
    /// The job could not run.
    #[serde(rename = "failed")]
    Failed,
    /// The job ran but a person must look.
    #[serde(rename = "needs-human")]
    NeedsHuman,
    /// Cancelled by the server or by shutdown.
    #[serde(rename = "cancelled")]
    Cancelled,
}

impl ResultStatus {
    /// The wire name, also used as a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Completed => "completed",
            ResultStatus::Failed => "failed",
            ResultStatus::NeedsHuman => "needs-human",
            ResultStatus::Cancelled => "cancelled",
        }
    }
}

/// One agent attempt in `result.attempts`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    /// The agent's name.
    pub agent: String,
    /// The CLI's exit code (`None` when it never started or was killed).
    pub exit_code: Option<i32>,
    /// How long the attempt took.
    pub duration_ms: u64,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// The `tests` object of a result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TestSummary {
    /// The command run.
    pub command: String,
    /// Its exit code.
    pub exit_code: i32,
    /// Whether it passed.
    pub passed: bool,
}

/// Tokens and cost summed over attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in USD; `None` when no CLI reported one.
    pub cost_usd: Option<f64>,
}

impl Usage {
    /// Add another attempt's usage.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd = match (self.cost_usd, other.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }
}

/// The `job.result` payload (without `type`, `job_id` and `seq`, which the
/// reporter adds).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobResult {
    /// How it ended.
    pub status: ResultStatus,
    /// What happened, in a sentence or the agent's summary.
    pub summary: String,
    /// The branch pushed (or committed to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_sha: Option<String>,
    /// The PR/MR URL, only when one was really opened or found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_url: Option<String>,
    /// The PR/MR number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pr_number: Option<u64>,
    /// The agent whose attempt produced the work.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Its model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Every agent attempt, in order.
    pub attempts: Vec<Attempt>,
    /// The last test run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestSummary>,
    /// Files the commit changed.
    pub changed_files: Vec<String>,
    /// Tokens and cost over all attempts.
    pub usage: Usage,
    /// Wall time of the whole job.
    pub duration_ms: u64,
    /// The error, for `failed` and `cancelled`.
    pub error: Option<String>,
    /// `exec` only: where a `merge_mode: none` run left its commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_copy: Option<LocalCopy>,
}

/// Where `exec` kept the commit of a `merge_mode: none` run, so the work
/// outlives the job's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalCopy {
    /// `repository` (the `--repo` path now has the branch) or `bundle`.
    pub kind: LocalCopyKind,
    /// The repository or the bundle file, absolute.
    pub path: String,
    /// The branch that holds the commit (in the repository or the bundle).
    pub branch: String,
}

/// The two places a local run keeps its commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalCopyKind {
    /// A branch in the local repository given as `--repo`.
    Repository,
    /// A git bundle file.
    Bundle,
}

impl JobResult {
    /// A result with only a status, a summary and an error.
    pub fn bare(status: ResultStatus, summary: impl Into<String>, error: Option<String>) -> Self {
        JobResult {
            status,
            summary: summary.into(),
            branch: None,
            commit_sha: None,
            pr_url: None,
            pr_number: None,
            agent: None,
            model: None,
            attempts: Vec::new(),
            tests: None,
            changed_files: Vec::new(),
            usage: Usage::default(),
            duration_ms: 0,
            error,
            local_copy: None,
        }
    }

    /// A `failed` result whose summary is the error.
    pub fn failed(error: impl Into<String>) -> Self {
        let e = error.into();
        JobResult::bare(ResultStatus::Failed, e.clone(), Some(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_protocol_md() {
        let e = Event::Status {
            status: Status::RunningAgent,
            detail: None,
        };
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"kind":"status","status":"running_agent"}"#
        );
        let e = Event::Agent(AgentEvent::new("claude", AgentEventType::ToolUse).tool("Bash"));
        assert_eq!(
            serde_json::to_string(&e).expect("json"),
            r#"{"kind":"agent","agent":"claude","type":"tool_use","tool":"Bash"}"#
        );
        let r = JobResult::failed("boom");
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(v["status"], "failed");
        assert_eq!(v["error"], "boom");
        assert_eq!(
            serde_json::to_value(ResultStatus::NeedsHuman).expect("json"),
            "needs-human"
        );
    }
}
