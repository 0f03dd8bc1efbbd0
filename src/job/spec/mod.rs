//! The job spec (protocol.md §4) and the rules every field is held to (§5).
//!
//! A spec arrives as untrusted JSON. [`JobSpec::from_json`] is the only way
//! to get a `JobSpec`: it checks every string that can reach a path, a git
//! ref or a command line, and names the offending field in its error, so a
//! job is rejected whole instead of half-run.

mod checks;
mod parse;
#[cfg(test)]
mod tests;
mod types;
mod url;

pub use checks::{check_branch, check_name, check_rel_path};
pub use types::{
    AgentSpec, Comment, CommitSpec, IssueSpec, JobId, JobKind, JobSpec, MergeMode, PrSpec,
    Provider, RegistrySpec, RepoSpec, SpecError, Stage, DEFAULT_CHAT_IDLE_S, DEFAULT_JOB_TIMEOUT_S,
    MAX_REPAIR_ATTEMPTS, MAX_TIMEOUT_S,
};
pub use url::{check_clone_url, RemotePolicy};

use parse::{
    opt_str, opt_timeout, opt_u64, parse_agent, parse_commit, parse_pr, parse_registries,
    parse_repo, req_str, short, too_long,
};
use serde_json::Value;

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
