//! The job spec (protocol.md §4) and the rules every field is held to (§5).
//!
//! A spec arrives as untrusted JSON. [`JobSpec::from_json`] is the only way
//! to get a `JobSpec`: it checks every string that can reach a path, a git
//! ref or a command line, and names the offending field in its error, so a
//! job is rejected whole instead of half-run.

use crate::net::Url;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// A validated job id: `[A-Za-z0-9._-]{1,128}`, not `.` or `..`; safe as a
/// directory name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// Validate `raw` as a job id.
    pub fn parse(raw: &str) -> Result<JobId, SpecError> {
        check_name("job_id", raw)?;
        Ok(JobId(raw.to_string()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a spec was refused: the field (a JSON path such as `repo.owner`) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    /// The offending field, dotted (`repo.clone_url`, `fallbacks[1].name`).
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub problem: String,
}

impl SpecError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid job spec: field `{}`: {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for SpecError {}

/// Which kinds of remotes and schemes this runner accepts (§5), from
/// `ADOS_ALLOW_HTTP` and `ADOS_ALLOW_FILE_REMOTES`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemotePolicy {
    /// `http://` remotes on non-loopback hosts.
    pub allow_http: bool,
    /// `file://` remotes and plain local paths.
    pub allow_file: bool,
}

/// One shot issue job, or a multi-turn chat session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Ends in one result.
    Issue,
    /// Waits for `chat.input` until `chat.end` or its idle timeout.
    Chat,
}

/// The stage of an issue job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Change code and push (the default).
    Implement,
    /// Read-only: the plan is the summary; nothing is pushed.
    Plan,
    /// Review `branch` against `target_branch`; verdict in the summary.
    Review,
    /// Push a new commit onto an existing PR branch.
    Repair,
}

/// A git hosting provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// github.com or GitHub Enterprise.
    Github,
    /// gitlab.com or self-managed GitLab.
    Gitlab,
    /// bitbucket.org.
    Bitbucket,
}

/// Where the work goes when the job is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Push `branch` and open or update a PR/MR.
    Pr,
    /// Push to `target_branch`.
    Direct,
    /// Commit locally, push nothing.
    None,
}

/// The repository of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RepoSpec {
    /// The hosting provider.
    pub provider: Provider,
    /// e.g. `https://github.com`.
    pub base_url: String,
    /// The provider's API; `None` means the public default.
    pub api_url: Option<String>,
    /// Owner (GitLab: possibly `grp/sub`).
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// The URL git clones from (derived when the spec had none).
    pub clone_url: String,
    /// Monorepo subdirectory the agent and tests run in ("" = the root).
    pub path: String,
    /// The branch work starts from and PRs target.
    pub target_branch: String,
}

/// An issue comment.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    /// Who wrote it.
    #[serde(default)]
    pub author: String,
    /// What they wrote.
    #[serde(default)]
    pub body: String,
}

/// The issue a job works on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueSpec {
    /// Issue number.
    #[serde(default)]
    pub number: u64,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Body (markdown).
    #[serde(default)]
    pub body: String,
    /// Labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// Comments, oldest first.
    #[serde(default)]
    pub comments: Vec<Comment>,
    /// Link to the issue.
    #[serde(default)]
    pub url: String,
}

/// Which agent CLI to run and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgentSpec {
    /// `claude`, `codex`, `copilot`, or a custom agent's name.
    pub name: String,
    /// Model; `None` lets the CLI choose.
    pub model: Option<String>,
    /// Per-attempt time limit.
    pub timeout_s: Option<u64>,
    /// Extra arguments appended to the CLI's command line (never via a shell).
    pub args: Vec<String>,
}

/// Commit settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitSpec {
    /// Message; `None` means the runner's default.
    pub message: Option<String>,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
}

/// PR/MR settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PrSpec {
    /// Title; `None` means the issue title.
    pub title: Option<String>,
    /// Body; `None` means the runner's default.
    pub body: Option<String>,
    /// Open as a draft.
    pub draft: bool,
}

/// A package registry whose credentials the job's tools need.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySpec {
    /// `npm`, `pip` or `maven`.
    pub kind: String,
    /// Registry URL.
    pub url: String,
    /// npm scope (`@myorg`), when any.
    pub scope: Option<String>,
    /// The registry token: a secret.
    pub token: String,
}

impl fmt::Debug for RegistrySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistrySpec")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("scope", &self.scope)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

/// A validated job spec. Only [`JobSpec::from_json`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct JobSpec {
    /// The job's id.
    pub job_id: JobId,
    /// Issue or chat.
    pub kind: JobKind,
    /// Stage of an issue job.
    pub stage: Stage,
    /// The repository.
    pub repo: RepoSpec,
    /// The issue, when the job has one.
    pub issue: Option<IssueSpec>,
    /// The whole prompt, replacing the one built from the issue.
    pub prompt: Option<String>,
    /// The agent to run first.
    pub agent: AgentSpec,
    /// Agents tried in order after the first one fails.
    pub fallbacks: Vec<AgentSpec>,
    /// The branch the work is pushed to.
    pub branch: String,
    /// Where the work goes.
    pub merge_mode: MergeMode,
    /// `None`: detect; `Some("")`: no tests.
    pub test_command: Option<String>,
    /// Extra agent runs allowed to turn red tests green.
    pub max_repair_attempts: u32,
    /// Commit settings.
    pub commit: CommitSpec,
    /// PR/MR settings.
    pub pr: PrSpec,
    /// `credentials.vcs_token`: a secret.
    pub vcs_token: Option<String>,
    /// Package registries.
    pub registries: Vec<RegistrySpec>,
    /// The job's overall time limit.
    pub timeout_s: Option<u64>,
    /// Chat sessions: idle time before the session ends.
    pub idle_timeout_s: u64,
}

impl fmt::Debug for JobSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Deliberately partial: the secrets (vcs_token, registry tokens)
        // must never reach a log line through `{:?}`.
        f.debug_struct("JobSpec")
            .field("job_id", &self.job_id)
            .field("kind", &self.kind)
            .field("stage", &self.stage)
            .field("repo", &self.repo)
            .field("agent", &self.agent)
            .field("branch", &self.branch)
            .field("merge_mode", &self.merge_mode)
            .finish_non_exhaustive()
    }
}

/// The default overall time limit of a job when the spec gives none.
pub const DEFAULT_JOB_TIMEOUT_S: u64 = 3600;
/// The default idle timeout of a chat session.
pub const DEFAULT_CHAT_IDLE_S: u64 = 1800;
/// The largest `timeout_s`, agent `timeout_s` and `idle_timeout_s` a spec
/// may ask for: seven days. Far above any real job, and far below what
/// makes `Instant + Duration` overflow (2^63 s panics the job's thread).
pub const MAX_TIMEOUT_S: u64 = 7 * 24 * 3600;
/// The most repair runs a spec may ask for.
pub const MAX_REPAIR_ATTEMPTS: u64 = 10;

impl JobSpec {
    /// The job id of a raw `job.assign` spec, exactly as received, for the
    /// `job.rejected` answer (`None` when missing or not a string).
    pub fn raw_job_id(raw: &Value) -> Option<String> {
        match raw.get("job_id") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Parse and validate a spec. The error names the first bad field.
    pub fn from_json(raw: &Value, policy: RemotePolicy) -> Result<JobSpec, SpecError> {
        let obj = raw
            .as_object()
            .ok_or_else(|| SpecError::new("job", "must be a JSON object"))?;
        let job_id = JobId::parse(req_str(obj.get("job_id"), "job_id")?)?;
        let kind = match opt_str(obj.get("kind"), "kind")? {
            None | Some("issue") => JobKind::Issue,
            Some("chat") => JobKind::Chat,
            Some(other) => {
                return Err(SpecError::new(
                    "kind",
                    format!("`{}` is not one of issue, chat", short(other)),
                ))
            }
        };
        let stage = match opt_str(obj.get("stage"), "stage")? {
            None | Some("implement") => Stage::Implement,
            Some("plan") => Stage::Plan,
            Some("review") => Stage::Review,
            Some("repair") => Stage::Repair,
            Some(other) => {
                return Err(SpecError::new(
                    "stage",
                    format!(
                        "`{}` is not one of implement, plan, review, repair",
                        short(other)
                    ),
                ))
            }
        };
        let repo = parse_repo(obj.get("repo"), policy)?;
        let issue = match obj.get("issue") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value::<IssueSpec>(v.clone())
                    .map_err(|e| SpecError::new("issue", format!("malformed: {e}")))?,
            ),
        };
        let prompt = opt_str(obj.get("prompt"), "prompt")?.map(str::to_string);
        let agent = match obj.get("agent") {
            None | Some(Value::Null) => AgentSpec {
                name: "claude".into(),
                model: None,
                timeout_s: None,
                args: Vec::new(),
            },
            Some(v) => parse_agent(v, "agent")?,
        };
        let mut fallbacks = Vec::new();
        match obj.get("fallbacks") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, v) in items.iter().enumerate() {
                    fallbacks.push(parse_agent(v, &format!("fallbacks[{i}]"))?);
                }
            }
            Some(_) => return Err(SpecError::new("fallbacks", "must be an array")),
        }
        let default_branch = match &issue {
            Some(i) if i.number > 0 => format!("ados/issue-{}", i.number),
            _ => format!("ados/job-{}", job_id),
        };
        let branch = opt_str(obj.get("branch"), "branch")?
            .map(str::to_string)
            .unwrap_or(default_branch);
        check_branch("branch", &branch)?;
        let merge_mode = match opt_str(obj.get("merge_mode"), "merge_mode")? {
            None | Some("pr") => MergeMode::Pr,
            Some("direct") => MergeMode::Direct,
            Some("none") => MergeMode::None,
            Some(other) => {
                return Err(SpecError::new(
                    "merge_mode",
                    format!("`{}` is not one of pr, direct, none", short(other)),
                ))
            }
        };
        let test_command = opt_str(obj.get("test_command"), "test_command")?.map(str::to_string);
        let max_repair_attempts =
            opt_u64(obj.get("max_repair_attempts"), "max_repair_attempts")?.unwrap_or(1);
        if max_repair_attempts > MAX_REPAIR_ATTEMPTS {
            return Err(SpecError::new(
                "max_repair_attempts",
                format!("must be at most {MAX_REPAIR_ATTEMPTS}"),
            ));
        }
        let commit = parse_commit(obj.get("commit"))?;
        let pr = parse_pr(obj.get("pr"))?;
        let vcs_token = match obj.get("credentials") {
            None | Some(Value::Null) => None,
            Some(Value::Object(c)) => opt_str(c.get("vcs_token"), "credentials.vcs_token")?
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            Some(_) => return Err(SpecError::new("credentials", "must be an object")),
        };
        let registries = parse_registries(obj.get("registries"))?;
        let timeout_s = opt_timeout(obj.get("timeout_s"), "timeout_s")?;
        let idle_timeout_s =
            opt_u64(obj.get("idle_timeout_s"), "idle_timeout_s")?.unwrap_or(DEFAULT_CHAT_IDLE_S);
        if idle_timeout_s > MAX_TIMEOUT_S {
            return Err(too_long("idle_timeout_s"));
        }
        Ok(JobSpec {
            job_id,
            kind,
            stage,
            repo,
            issue,
            prompt,
            agent,
            fallbacks,
            branch,
            merge_mode,
            test_command,
            // At most MAX_REPAIR_ATTEMPTS (checked above): fits.
            max_repair_attempts: u32::try_from(max_repair_attempts).unwrap_or(0),
            commit,
            pr,
            vcs_token,
            registries,
            timeout_s,
            idle_timeout_s,
        })
    }

    /// The job's overall deadline in seconds.
    pub fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.timeout_s.unwrap_or(DEFAULT_JOB_TIMEOUT_S))
    }

    /// Every secret this spec carries (for redaction).
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(t) = &self.vcs_token {
            out.push(t.clone());
        }
        for r in &self.registries {
            out.push(r.token.clone());
        }
        out
    }

    /// The agents in the order they are tried: the agent, then fallbacks.
    pub fn agents_in_order(&self) -> impl Iterator<Item = &AgentSpec> {
        std::iter::once(&self.agent).chain(self.fallbacks.iter())
    }
}

fn short(s: &str) -> String {
    // Echo at most 64 characters of a bad value: enough to recognise it,
    // never a whole pasted token.
    let mut out: String = s.chars().take(64).collect();
    if s.chars().count() > 64 {
        out.push('…');
    }
    out
}

fn req_str<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a str, SpecError> {
    match v {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(SpecError::new(field, "is required")),
        Some(_) => Err(SpecError::new(field, "must be a string")),
    }
}

fn opt_str<'a>(v: Option<&'a Value>, field: &str) -> Result<Option<&'a str>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(SpecError::new(field, "must be a string or null")),
    }
}

fn opt_u64(v: Option<&Value>, field: &str) -> Result<Option<u64>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| SpecError::new(field, "must be a non-negative integer")),
        Some(_) => Err(SpecError::new(field, "must be a non-negative integer")),
    }
}

/// A time limit in seconds: absent, or 1 to [`MAX_TIMEOUT_S`].
fn opt_timeout(v: Option<&Value>, field: &str) -> Result<Option<u64>, SpecError> {
    match opt_u64(v, field)? {
        Some(0) => Err(SpecError::new(field, "must be greater than 0")),
        Some(s) if s > MAX_TIMEOUT_S => Err(too_long(field)),
        t => Ok(t),
    }
}

fn too_long(field: &str) -> SpecError {
    SpecError::new(
        field,
        format!("must be at most {MAX_TIMEOUT_S} seconds (7 days)"),
    )
}

/// `[A-Za-z0-9._-]`, 1–128 characters, not `.` or `..` (§5).
pub fn check_name(field: &str, s: &str) -> Result<(), SpecError> {
    if s.is_empty() || s.len() > 128 {
        return Err(SpecError::new(field, "must be 1 to 128 characters"));
    }
    if s == "." || s == ".." {
        return Err(SpecError::new(field, "must not be `.` or `..`"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(SpecError::new(
            field,
            format!("contains {c:?}; only A-Z a-z 0-9 . _ - are allowed"),
        ));
    }
    Ok(())
}

/// A branch name per `git check-ref-format --branch`, and not starting
/// with `-` (§5). Implemented here (the rules of git-check-ref-format(1))
/// so validation needs no process.
pub fn check_branch(field: &str, s: &str) -> Result<(), SpecError> {
    let bad = |why: &str| Err(SpecError::new(field, format!("`{}` {why}", short(s))));
    if s.is_empty() {
        return Err(SpecError::new(field, "must not be empty"));
    }
    // Checked first, and the name is not echoed: git accepts these, but a
    // branch name is shown to people (logs, PR pages, terminals), where a
    // right-to-left override or an invisible mark makes it read as
    // something else.
    if let Some(c) = s.chars().find(|c| is_deceptive(*c)) {
        return Err(SpecError::new(
            field,
            format!(
                "contains the control or invisible formatting character U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    if s.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    if s.starts_with('-') {
        return bad("must not start with `-`");
    }
    if s == "@" {
        return bad("must not be `@`");
    }
    // `git check-ref-format --branch HEAD` fails: refs/heads/HEAD would be
    // confused with the symbolic ref in every later git command.
    if s == "HEAD" {
        return bad("must not be `HEAD`");
    }
    if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return bad("has an empty path component");
    }
    if s.ends_with('.') {
        return bad("must not end with `.`");
    }
    if s.contains("..") {
        return bad("must not contain `..`");
    }
    if s.contains("@{") {
        return bad("must not contain `@{`");
    }
    if let Some(c) = s.chars().find(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return bad(&format!("contains the forbidden character {c:?}"));
    }
    for comp in s.split('/') {
        if comp.starts_with('.') {
            return bad("has a component starting with `.`");
        }
        if comp.ends_with(".lock") {
            return bad("has a component ending with `.lock`");
        }
    }
    Ok(())
}

/// C0/C1 controls, and the invisible formatting characters that change how
/// text around them reads: bidirectional marks, embeddings, overrides and
/// isolates (U+200E/F, U+202A–E, U+2066–9, U+061C), line and paragraph
/// separators (U+2028/9), zero-width characters
/// (U+200B–D, U+2060, U+FEFF) and the soft hyphen.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// A relative path with no `..` component (§5); `""` is the repo root.
pub fn check_rel_path(field: &str, s: &str) -> Result<(), SpecError> {
    if s.starts_with('/') {
        return Err(SpecError::new(field, "must be a relative path"));
    }
    if s.contains('\0') || s.contains('\\') {
        return Err(SpecError::new(field, "must not contain NUL or `\\`"));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(SpecError::new(field, "must not contain a `..` component"));
    }
    Ok(())
}

fn check_owner(provider: Provider, s: &str) -> Result<(), SpecError> {
    if provider == Provider::Gitlab && s.contains('/') {
        for seg in s.split('/') {
            check_name("repo.owner", seg)?;
        }
        return Ok(());
    }
    if s.contains('/') {
        return Err(SpecError::new(
            "repo.owner",
            "must not contain `/` (only GitLab owners may name nested groups)",
        ));
    }
    check_name("repo.owner", s)
}

/// Checks a clone URL's scheme against §5 and the runner's policy.
pub fn check_clone_url(field: &str, url: &str, policy: RemotePolicy) -> Result<(), SpecError> {
    let lower = url.to_ascii_lowercase();
    if lower.contains("::") && !lower.starts_with("ssh://") && !lower.starts_with("http") {
        // git's transport::address syntax (ext::, fd::) runs commands.
        return Err(SpecError::new(
            field,
            "git `transport::address` remotes (ext::, fd::) are never allowed",
        ));
    }
    if url.starts_with('-') {
        return Err(SpecError::new(field, "must not start with `-`"));
    }
    if url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(SpecError::new(
            field,
            "contains spaces or control characters",
        ));
    }
    if ["https://", "http://", "ssh://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        // The host as git (curl) reads it: see `crate::net::url`.
        let parsed = Url::parse(url).map_err(|e| SpecError::new(field, e.to_string()))?;
        if parsed.scheme() == "http" && !(policy.allow_http || parsed.is_loopback()) {
            return Err(SpecError::new(
                field,
                "http:// remotes are refused unless the host is loopback or ADOS_ALLOW_HTTP=1 is set",
            ));
        }
        return Ok(());
    }
    if lower.starts_with("file://") || lower.starts_with('/') {
        if policy.allow_file {
            return Ok(());
        }
        return Err(SpecError::new(
            field,
            "file remotes are refused unless ADOS_ALLOW_FILE_REMOTES=1 is set",
        ));
    }
    // scp-like ssh syntax: user@host:path
    if let Some((userhost, _path)) = url.split_once(':') {
        if userhost.contains('@') && !userhost.contains('/') {
            return Ok(());
        }
    }
    Err(SpecError::new(
        field,
        "scheme must be https, http, ssh or file (e.g. https://github.com/o/r.git)",
    ))
}

fn parse_repo(v: Option<&Value>, policy: RemotePolicy) -> Result<RepoSpec, SpecError> {
    let obj = match v {
        Some(Value::Object(o)) => o,
        None | Some(Value::Null) => return Err(SpecError::new("repo", "is required")),
        Some(_) => return Err(SpecError::new("repo", "must be an object")),
    };
    let provider = match opt_str(obj.get("provider"), "repo.provider")? {
        None | Some("github") => Provider::Github,
        Some("gitlab") => Provider::Gitlab,
        Some("bitbucket") => Provider::Bitbucket,
        Some(other) => {
            return Err(SpecError::new(
                "repo.provider",
                format!("`{}` is not one of github, gitlab, bitbucket", short(other)),
            ))
        }
    };
    let base_url = opt_str(obj.get("base_url"), "repo.base_url")?
        .map(|s| s.trim_end_matches('/').to_string())
        .unwrap_or_else(|| match provider {
            Provider::Github => "https://github.com".into(),
            Provider::Gitlab => "https://gitlab.com".into(),
            Provider::Bitbucket => "https://bitbucket.org".into(),
        });
    let api_url = opt_str(obj.get("api_url"), "repo.api_url")?.map(str::to_string);
    if let Some(api) = &api_url {
        let l = api.to_ascii_lowercase();
        if !(l.starts_with("https://") || l.starts_with("http://")) {
            return Err(SpecError::new("repo.api_url", "must be an http(s) URL"));
        }
    }
    let owner = req_str(obj.get("owner"), "repo.owner")?.to_string();
    check_owner(provider, &owner)?;
    let name = req_str(obj.get("name"), "repo.name")?.to_string();
    check_name("repo.name", &name)?;
    let clone_url = match opt_str(obj.get("clone_url"), "repo.clone_url")? {
        Some(u) if !u.is_empty() => {
            check_clone_url("repo.clone_url", u, policy)?;
            u.to_string()
        }
        _ => {
            check_clone_url("repo.base_url", &base_url, policy)?;
            format!("{base_url}/{owner}/{name}.git")
        }
    };
    let path = opt_str(obj.get("path"), "repo.path")?
        .unwrap_or("")
        .trim_end_matches('/')
        .to_string();
    check_rel_path("repo.path", &path)?;
    let target_branch = opt_str(obj.get("target_branch"), "repo.target_branch")?
        .unwrap_or("main")
        .to_string();
    check_branch("repo.target_branch", &target_branch)?;
    Ok(RepoSpec {
        provider,
        base_url,
        api_url,
        owner,
        name,
        clone_url,
        path,
        target_branch,
    })
}

fn parse_agent(v: &Value, field: &str) -> Result<AgentSpec, SpecError> {
    let obj = match v {
        Value::Object(o) => o,
        // A bare string is accepted as a shorthand: "fallbacks": ["codex"].
        Value::String(s) => {
            check_name(&format!("{field}.name"), s)?;
            return Ok(AgentSpec {
                name: s.clone(),
                model: None,
                timeout_s: None,
                args: Vec::new(),
            });
        }
        _ => return Err(SpecError::new(field, "must be an object")),
    };
    let name = req_str(obj.get("name"), &format!("{field}.name"))?.to_string();
    check_name(&format!("{field}.name"), &name)?;
    let model = opt_str(obj.get("model"), &format!("{field}.model"))?.map(str::to_string);
    if let Some(m) = &model {
        if m.starts_with('-') || m.chars().any(|c| c.is_control()) || m.len() > 200 {
            return Err(SpecError::new(
                format!("{field}.model"),
                "must not start with `-` or contain control characters",
            ));
        }
    }
    let timeout_s = opt_timeout(obj.get("timeout_s"), &format!("{field}.timeout_s"))?;
    let mut args = Vec::new();
    match obj.get("args") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, a) in items.iter().enumerate() {
                match a {
                    Value::String(s) if !s.contains('\0') => args.push(s.clone()),
                    _ => {
                        return Err(SpecError::new(
                            format!("{field}.args[{i}]"),
                            "must be a string without NUL",
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(SpecError::new(
                format!("{field}.args"),
                "must be an array of strings",
            ))
        }
    }
    Ok(AgentSpec {
        name,
        model,
        timeout_s,
        args,
    })
}

fn parse_commit(v: Option<&Value>) -> Result<CommitSpec, SpecError> {
    let mut c = CommitSpec {
        message: None,
        author_name: "ADOS".into(),
        author_email: "ados@ados.dev".into(),
    };
    let obj = match v {
        None | Some(Value::Null) => return Ok(c),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(SpecError::new("commit", "must be an object")),
    };
    c.message = opt_str(obj.get("message"), "commit.message")?.map(str::to_string);
    if let Some(n) = opt_str(obj.get("author_name"), "commit.author_name")? {
        if n.chars().any(|ch| matches!(ch, '<' | '>' | '\n' | '\0')) || n.trim().is_empty() {
            return Err(SpecError::new(
                "commit.author_name",
                "must be non-empty without <, > or newlines",
            ));
        }
        c.author_name = n.to_string();
    }
    if let Some(e) = opt_str(obj.get("author_email"), "commit.author_email")? {
        if e.chars()
            .any(|ch| matches!(ch, '<' | '>' | '\n' | '\0' | ' '))
            || !e.contains('@')
        {
            return Err(SpecError::new(
                "commit.author_email",
                "must look like name@example.com",
            ));
        }
        c.author_email = e.to_string();
    }
    Ok(c)
}

fn parse_pr(v: Option<&Value>) -> Result<PrSpec, SpecError> {
    let obj = match v {
        None | Some(Value::Null) => return Ok(PrSpec::default()),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(SpecError::new("pr", "must be an object")),
    };
    let draft = match obj.get("draft") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(SpecError::new("pr.draft", "must be true or false")),
    };
    Ok(PrSpec {
        title: opt_str(obj.get("title"), "pr.title")?.map(str::to_string),
        body: opt_str(obj.get("body"), "pr.body")?.map(str::to_string),
        draft,
    })
}

fn parse_registries(v: Option<&Value>) -> Result<Vec<RegistrySpec>, SpecError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(SpecError::new("registries", "must be an array")),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let f = |k: &str| format!("registries[{i}].{k}");
        let obj = item
            .as_object()
            .ok_or_else(|| SpecError::new(format!("registries[{i}]"), "must be an object"))?;
        let kind = req_str(obj.get("type"), &f("type"))?.to_string();
        if !matches!(kind.as_str(), "npm" | "pip" | "maven") {
            return Err(SpecError::new(f("type"), "must be one of npm, pip, maven"));
        }
        let url = req_str(obj.get("url"), &f("url"))?.to_string();
        let l = url.to_ascii_lowercase();
        if !(l.starts_with("https://") || l.starts_with("http://"))
            || url.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(SpecError::new(
                f("url"),
                "must be an http(s) URL without spaces",
            ));
        }
        let scope = opt_str(obj.get("scope"), &f("scope"))?.map(str::to_string);
        if let Some(s) = &scope {
            let body = s.strip_prefix('@').unwrap_or(s);
            check_name(&f("scope"), body)?;
        }
        let token = req_str(obj.get("token"), &f("token"))?.to_string();
        if token.chars().any(|c| c.is_control()) {
            return Err(SpecError::new(
                f("token"),
                "must not contain control characters",
            ));
        }
        out.push(RegistrySpec {
            kind,
            url,
            scope,
            token,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({"job_id":"j-1","kind":"issue","repo":{"provider":"github","owner":"o","name":"r",
            "target_branch":"main"},"issue":{"number":42,"title":"t","body":"b"}})
    }

    fn reject(mut v: Value, path: &[&str], bad: Value) -> SpecError {
        let mut cur = &mut v;
        for p in &path[..path.len() - 1] {
            cur = cur.get_mut(*p).expect("test path");
        }
        cur[path[path.len() - 1]] = bad;
        JobSpec::from_json(&v, RemotePolicy::default()).expect_err("should be rejected")
    }

    #[test]
    fn minimal_spec_gets_defaults() {
        let s = JobSpec::from_json(&base(), RemotePolicy::default()).expect("valid");
        assert_eq!(s.branch, "ados/issue-42");
        assert_eq!(s.repo.clone_url, "https://github.com/o/r.git");
        assert_eq!(s.merge_mode, MergeMode::Pr);
        assert_eq!(s.agent.name, "claude");
        assert_eq!(s.max_repair_attempts, 1);
    }

    #[test]
    fn each_rule_names_its_field() {
        let cases: Vec<(&[&str], Value, &str)> = vec![
            (&["job_id"], json!("../x"), "job_id"),
            (&["job_id"], json!(".."), "job_id"),
            (&["job_id"], json!("a".repeat(129)), "job_id"),
            (&["job_id"], json!(null), "job_id"),
            (&["repo", "name"], json!("a/b"), "repo.name"),
            (&["repo", "owner"], json!("a/b"), "repo.owner"),
            (&["repo", "path"], json!("../etc"), "repo.path"),
            (&["repo", "path"], json!("/etc"), "repo.path"),
            (
                &["repo", "target_branch"],
                json!("-x"),
                "repo.target_branch",
            ),
            (
                &["repo", "target_branch"],
                json!("a..b"),
                "repo.target_branch",
            ),
            (&["branch"], json!("--force"), "branch"),
            (&["branch"], json!("a b"), "branch"),
            (&["branch"], json!("x.lock"), "branch"),
            (&["branch"], json!("HEAD"), "branch"),
            (
                &["repo", "target_branch"],
                json!("HEAD"),
                "repo.target_branch",
            ),
            (
                &["repo", "clone_url"],
                json!("ext::sh -c touch% /tmp/x"),
                "repo.clone_url",
            ),
            (&["repo", "clone_url"], json!("fd::3"), "repo.clone_url"),
            (
                &["repo", "clone_url"],
                json!("file:///tmp/r"),
                "repo.clone_url",
            ),
            (
                &["repo", "clone_url"],
                json!("http://example.com/r.git"),
                "repo.clone_url",
            ),
            (&["merge_mode"], json!("yolo"), "merge_mode"),
            (&["kind"], json!("batch"), "kind"),
        ];
        for (path, bad, field) in cases {
            let err = reject(base(), path, bad.clone());
            assert_eq!(err.field, field, "{path:?} = {bad}");
        }
    }

    #[test]
    fn numbers_are_bounded_and_name_their_field() {
        let huge = json!(1u64 << 63);
        let cases: Vec<(&[&str], Value, &str)> = vec![
            (&["timeout_s"], huge.clone(), "timeout_s"),
            (&["timeout_s"], json!(MAX_TIMEOUT_S + 1), "timeout_s"),
            (&["timeout_s"], json!(0), "timeout_s"),
            (&["idle_timeout_s"], huge.clone(), "idle_timeout_s"),
            (
                &["max_repair_attempts"],
                huge.clone(),
                "max_repair_attempts",
            ),
            (&["max_repair_attempts"], json!(11), "max_repair_attempts"),
            (
                &["agent"],
                json!({"name":"claude","timeout_s":huge}),
                "agent.timeout_s",
            ),
            (
                &["fallbacks"],
                json!(["codex", {"name":"claude","timeout_s":huge}]),
                "fallbacks[1].timeout_s",
            ),
        ];
        for (path, bad, field) in cases {
            let err = reject(base(), path, bad.clone());
            assert_eq!(err.field, field, "{path:?} = {bad}");
        }
        let mut v = base();
        v["timeout_s"] = json!(MAX_TIMEOUT_S);
        v["idle_timeout_s"] = json!(MAX_TIMEOUT_S);
        v["agent"] = json!({"name":"claude","timeout_s":MAX_TIMEOUT_S});
        v["max_repair_attempts"] = json!(MAX_REPAIR_ATTEMPTS);
        let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("the maxima are valid");
        assert_eq!(s.max_repair_attempts, 10);
    }

    #[test]
    fn branches_with_control_or_bidi_characters_are_refused() {
        for c in [
            '\u{202E}', '\u{202A}', '\u{200E}', '\u{200F}', '\u{2066}', '\u{2069}', '\u{061C}',
            '\u{200B}', '\u{FEFF}', '\u{2028}', '\u{0085}', '\u{009B}', '\u{0007}',
        ] {
            let name = format!("ados/issue-1{c}gpj.exe");
            for path in [&["branch"][..], &["repo", "target_branch"][..]] {
                let err = reject(base(), path, json!(name));
                assert_eq!(err.field, path.join("."), "{:?}", name);
                assert!(!err.problem.contains(c), "the character is echoed: {err}");
            }
        }
        // Non-ASCII letters are fine: git and people read them as written.
        let mut v = base();
        v["branch"] = json!("ados/café-42");
        assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
    }

    #[test]
    fn gitlab_owner_may_be_nested() {
        let mut v = base();
        v["repo"]["provider"] = json!("gitlab");
        v["repo"]["owner"] = json!("grp/sub");
        assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
        v["repo"]["owner"] = json!("grp/../x");
        assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_err());
    }

    #[test]
    fn http_allowed_on_loopback_and_by_policy() {
        let mut v = base();
        v["repo"]["clone_url"] = json!("http://127.0.0.1:9/o/r.git");
        assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_ok());
        v["repo"]["clone_url"] = json!("http://git.internal/o/r.git");
        assert!(JobSpec::from_json(&v, RemotePolicy::default()).is_err());
        // The authority ends at `?` or `#`: git and curl connect to evil.com.
        for sneaky in [
            "http://evil.com?@127.0.0.1/o/r.git",
            "http://evil.com#@127.0.0.1/o/r.git",
        ] {
            v["repo"]["clone_url"] = json!(sneaky);
            assert!(
                JobSpec::from_json(&v, RemotePolicy::default()).is_err(),
                "{sneaky}"
            );
        }
        v["repo"]["clone_url"] = json!("http://git.internal/o/r.git");
        let p = RemotePolicy {
            allow_http: true,
            allow_file: false,
        };
        assert!(JobSpec::from_json(&v, p).is_ok());
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut v = base();
        v["credentials"] = json!({"vcs_token":"tok-supersecret"});
        v["registries"] =
            json!([{"type":"npm","url":"https://npm.example","token":"reg-supersecret"}]);
        let s = JobSpec::from_json(&v, RemotePolicy::default()).expect("valid");
        let dbg = format!("{s:?} {:?}", s.registries);
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert_eq!(s.secrets().len(), 2);
    }
}
