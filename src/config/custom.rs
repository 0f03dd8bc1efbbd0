//! `ADOS_CUSTOM_AGENTS`: a JSON file defining command agents, so any CLI
//! can be plugged in without a new release (agents.md, "Custom agents").
//!
//! ```json
//! {"agents":[{"name":"aider","command":["aider","--yes"],"prompt":"arg",
//!   "default_model":null,"model_flag":"--model","timeout_s":1800,
//!   "version":["aider","--version"],"env":["OPENAI_API_KEY"]}]}
//! ```
//!
//! `version` is the only command `check` ever runs for a custom agent: a
//! CLI that takes any argument as a prompt would do work when probed with
//! `--version`, so without it the agent is only looked up on PATH.
//! `env` names the variables of the runner's environment the agent
//! receives (its API key): the fixed allowlist has no credential in it.
//!
//! The file is checked field by field (not with serde) so that every
//! problem names its field (`agents[1].command`) and all of them are
//! reported at once. Unknown fields are refused: a typo such as
//! `"timeout"` would otherwise be silently ignored.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// A command agent defined in the runner's configuration
/// (`ADOS_CUSTOM_AGENTS`, see README), so any CLI can be plugged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomAgent {
    /// The name jobs use in `agent.name`.
    pub name: String,
    /// Program and fixed arguments (argv, never a shell line).
    pub command: Vec<String>,
    /// How the prompt is given: as the last argument, or on stdin.
    pub prompt_on_stdin: bool,
    /// Default model, passed with `model_flag` when set.
    pub default_model: Option<String>,
    /// The flag that sets the model (`--model`), if the CLI has one.
    pub model_flag: Option<String>,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// The argv that prints the agent's version (`["aider","--version"]`),
    /// the only command `check` may run; `None`: looked up on PATH only.
    pub version: Option<Vec<String>>,
    /// Names of the runner's environment variables this agent receives
    /// (their values are secrets: redacted like every other).
    pub env: Vec<String>,
}

impl CustomAgent {
    /// An agent run as `command` with the prompt as its last argument and
    /// nothing else set: the defaults of a definition that gives only
    /// `name` and `command`.
    pub fn new(name: &str, command: &[&str]) -> CustomAgent {
        CustomAgent {
            name: name.to_string(),
            command: command.iter().map(|s| s.to_string()).collect(),
            prompt_on_stdin: false,
            default_model: None,
            model_flag: None,
            timeout: None,
            version: None,
            env: Vec::new(),
        }
    }
}

/// Variables no agent may be given: the runner's own (`ADOS_*`, with
/// `ADOS_TOKEN`), the VCS credentials that push and open PRs, and those
/// the runner sets per job.
fn forbidden_env(name: &str) -> Option<&'static str> {
    const VCS: [&str; 5] = [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "GITLAB_TOKEN",
        "BITBUCKET_USERNAME",
        "BITBUCKET_APP_PASSWORD",
    ];
    if name.starts_with("ADOS_") {
        Some("is the runner's own configuration (ADOS_TOKEN is the runner's credential)")
    } else if VCS.contains(&name) {
        Some("is the runner's repository credential: only the runner pushes")
    } else if ["HOME", "TMPDIR", "PATH"].contains(&name) {
        Some("is set by the runner for each job")
    } else {
        None
    }
}

/// Names of the built-in adapters; a custom agent may not shadow them.
pub const BUILTIN_AGENTS: [&str; 3] = ["claude", "codex", "copilot"];

/// Read and check the file. Errors are `"<field>: <problem>"` strings,
/// or one `"<problem>"` when the file itself is unusable.
pub fn load(path: &Path) -> Result<Vec<CustomAgent>, Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| vec![format!("cannot be read: {e}")])?;
    parse(&text)
}

/// Check the text of the file.
pub fn parse(text: &str) -> Result<Vec<CustomAgent>, Vec<String>> {
    let root: Value =
        serde_json::from_str(text).map_err(|e| vec![format!("is not valid JSON: {e}")])?;
    let Some(obj) = root.as_object() else {
        return Err(vec!["must be a JSON object {\"agents\": [...]}".into()]);
    };
    let mut errs = Vec::new();
    for key in obj.keys().filter(|k| *k != "agents") {
        errs.push(format!("{key}: unknown field (only `agents` is allowed)"));
    }
    let Some(list) = obj.get("agents").and_then(Value::as_array) else {
        errs.push("agents: must be an array of agent objects".into());
        return Err(errs);
    };
    let mut agents = Vec::new();
    let mut names = BTreeSet::new();
    for (i, item) in list.iter().enumerate() {
        let at = format!("agents[{i}]");
        let Some(a) = item.as_object() else {
            errs.push(format!("{at}: must be an object"));
            continue;
        };
        if let Some(agent) = agent(&at, a, &mut errs) {
            if !names.insert(agent.name.clone()) {
                errs.push(format!("{at}.name: `{}` is defined twice", agent.name));
            }
            agents.push(agent);
        }
    }
    if errs.is_empty() {
        Ok(agents)
    } else {
        Err(errs)
    }
}

/// One agent object; pushes its problems and returns it only when valid.
fn agent(at: &str, a: &Map<String, Value>, errs: &mut Vec<String>) -> Option<CustomAgent> {
    let before = errs.len();
    const FIELDS: [&str; 8] = [
        "name",
        "command",
        "prompt",
        "default_model",
        "model_flag",
        "timeout_s",
        "version",
        "env",
    ];
    for key in a.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errs.push(format!(
            "{at}.{key}: unknown field (allowed: {})",
            FIELDS.join(", ")
        ));
    }
    let name = match a.get("name").and_then(Value::as_str) {
        Some(n) => {
            if let Err(e) = crate::job::spec::check_name("name", n) {
                errs.push(format!("{at}.name: {}", e.problem));
            } else if BUILTIN_AGENTS.contains(&n) {
                errs.push(format!(
                    "{at}.name: `{n}` is a built-in agent; pick another name"
                ));
            }
            n.to_string()
        }
        None => {
            errs.push(format!("{at}.name: required string, e.g. \"aider\""));
            String::new()
        }
    };
    let command = argv(a.get("command")).unwrap_or_else(|| {
        errs.push(format!(
            "{at}.command: must be a non-empty array of non-empty strings (argv, no shell), e.g. [\"aider\", \"--yes\"]"
        ));
        Vec::new()
    });
    let version = match a.get("version") {
        None | Some(Value::Null) => None,
        v => argv(v).or_else(|| {
            errs.push(format!(
                "{at}.version: must be a non-empty array of non-empty strings (argv, no shell), e.g. [\"aider\", \"--version\"]"
            ));
            None
        }),
    };
    let env = env_names(at, &name, a.get("env"), errs);
    let prompt_on_stdin = match a.get("prompt") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "arg" => false,
        Some(Value::String(s)) if s == "stdin" => true,
        Some(_) => {
            errs.push(format!("{at}.prompt: must be \"arg\" or \"stdin\""));
            false
        }
    };
    let default_model = opt_string(at, a, "default_model", errs);
    let model_flag = opt_string(at, a, "model_flag", errs);
    if model_flag.as_deref().is_some_and(|f| !f.starts_with('-')) {
        errs.push(format!(
            "{at}.model_flag: must be a flag such as \"--model\""
        ));
    }
    let timeout = match a.get("timeout_s") {
        None | Some(Value::Null) => None,
        // Bounded like a job spec's: a deadline far past any real run
        // would overflow `Instant + Duration`.
        Some(v) => match v
            .as_u64()
            .filter(|n| (1..=crate::job::spec::MAX_TIMEOUT_S).contains(n))
        {
            Some(n) => Some(Duration::from_secs(n)),
            None => {
                errs.push(format!(
                    "{at}.timeout_s: must be a whole number of seconds from 1 to {} (7 days), e.g. 1800",
                    crate::job::spec::MAX_TIMEOUT_S
                ));
                None
            }
        },
    };
    (errs.len() == before).then_some(CustomAgent {
        name,
        command,
        prompt_on_stdin,
        default_model,
        model_flag,
        timeout,
        version,
        env,
    })
}

/// A non-empty array of non-empty strings.
fn argv(v: Option<&Value>) -> Option<Vec<String>> {
    let v = v?.as_array()?;
    let out: Vec<String> = v
        .iter()
        .filter_map(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    (!out.is_empty() && out.len() == v.len()).then_some(out)
}

/// `env`: variable names, none of them one an agent may never receive.
fn env_names(at: &str, agent: &str, v: Option<&Value>, errs: &mut Vec<String>) -> Vec<String> {
    let list = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(list)) => list,
        Some(_) => {
            errs.push(format!(
                "{at}.env: must be an array of variable names, e.g. [\"OPENAI_API_KEY\"]"
            ));
            return Vec::new();
        }
    };
    let mut names = Vec::new();
    for (i, item) in list.iter().enumerate() {
        let valid = item.as_str().filter(|n| {
            n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
        match valid {
            None => errs.push(format!(
                "{at}.env[{i}]: must be a variable name (letters, digits, _), e.g. \"OPENAI_API_KEY\""
            )),
            Some(n) => match forbidden_env(n) {
                Some(why) => errs.push(format!(
                    "{at}.env[{i}]: agent `{agent}` may never receive {n}: it {why}; remove it"
                )),
                None => names.push(n.to_string()),
            },
        }
    }
    names
}

fn opt_string(
    at: &str,
    a: &Map<String, Value>,
    key: &str,
    errs: &mut Vec<String>,
) -> Option<String> {
    match a.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(_) => {
            errs.push(format!("{at}.{key}: must be a non-empty string or null"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let agents = parse(
            r#"{"agents":[{"name":"aider","command":["aider","--yes"],"prompt":"arg",
                "default_model":null,"model_flag":"--model","timeout_s":1800},
               {"name":"llm","command":["llm"],"prompt":"stdin"}]}"#,
        )
        .unwrap();
        assert_eq!(
            agents[0],
            CustomAgent {
                name: "aider".into(),
                command: vec!["aider".into(), "--yes".into()],
                prompt_on_stdin: false,
                default_model: None,
                model_flag: Some("--model".into()),
                timeout: Some(Duration::from_secs(1800)),
                version: None,
                env: Vec::new(),
            }
        );
        assert!(agents[1].prompt_on_stdin);
        assert_eq!(agents[1].timeout, None);
        let agents = parse(
            r#"{"agents":[{"name":"aider","command":["aider"],
                "version":["aider","--version"],"env":["OPENAI_API_KEY","MY_KEY_2"]}]}"#,
        )
        .unwrap();
        assert_eq!(
            agents[0].version.as_deref(),
            Some(&["aider".to_string(), "--version".to_string()][..])
        );
        assert_eq!(agents[0].env, ["OPENAI_API_KEY", "MY_KEY_2"]);
    }

    #[test]
    fn the_runners_credentials_can_never_be_named() {
        let errs = parse(
            r#"{"agents":[{"name":"aider","command":["aider"],
                "env":["ADOS_TOKEN","GITHUB_TOKEN","HOME","bad name",3],"version":[]}]}"#,
        )
        .unwrap_err();
        for needle in [
            "agents[0].env[0]: agent `aider` may never receive ADOS_TOKEN",
            "agents[0].env[1]: agent `aider` may never receive GITHUB_TOKEN",
            "agents[0].env[2]: agent `aider` may never receive HOME",
            "agents[0].env[3]: must be a variable name",
            "agents[0].env[4]: must be a variable name",
            "agents[0].version: must be a non-empty array",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(needle)),
                "missing {needle} in {errs:?}"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let errs = parse(
            r#"{"agents":[{"name":"claude","command":[],"prompt":"pipe","timeout_s":-1,"timeout":5},
               {"name":"a b","command":["x"],"model_flag":"model"},
               {"name":"slow","command":["x"],"timeout_s":9223372036854775808}]}"#,
        )
        .unwrap_err();
        for needle in [
            "agents[0].name: `claude` is a built-in",
            "agents[0].command:",
            "agents[0].prompt:",
            "agents[0].timeout_s:",
            "agents[0].timeout: unknown field",
            "agents[1].name:",
            "agents[1].model_flag:",
            "agents[2].timeout_s:",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(needle)),
                "missing {needle} in {errs:?}"
            );
        }
    }

    #[test]
    fn bad_shapes_and_duplicates() {
        assert!(parse("not json").unwrap_err()[0].contains("not valid JSON"));
        assert!(parse("[]").unwrap_err()[0].contains("JSON object"));
        assert!(parse("{}").unwrap_err()[0].starts_with("agents:"));
        let errs =
            parse(r#"{"agents":[{"name":"x","command":["a"]},{"name":"x","command":["b"]}]}"#)
                .unwrap_err();
        assert!(errs[0].contains("defined twice"), "{errs:?}");
        assert!(
            load(Path::new("/nonexistent/agents.json")).unwrap_err()[0].contains("cannot be read")
        );
    }
}
