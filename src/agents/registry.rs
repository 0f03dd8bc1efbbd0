//! The agents this runner knows: the three built-in CLIs plus the custom
//! agents of its configuration; which of them are installed, and their
//! versions (for `check` and `hello`).

use super::adapter::AgentAdapter;
use super::claude::Claude;
use super::codex::Codex;
use super::copilot::Copilot;
use super::custom::Custom;
use crate::config::CustomAgent;
use crate::job::CancelToken;
use crate::process::{self, CommandSpec, RunOptions};
use crate::redact::Redactor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long `<program> --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Every agent adapter by name.
pub struct AgentRegistry {
    adapters: Vec<Box<dyn AgentAdapter>>,
}

impl AgentRegistry {
    /// The built-in agents (`claude`, `codex`, `copilot`) and `custom`
    /// ones. A custom agent named like a built-in one, or with an empty
    /// command, is skipped with a warning.
    pub fn new(custom: &[CustomAgent]) -> AgentRegistry {
        let mut adapters: Vec<Box<dyn AgentAdapter>> =
            vec![Box::new(Claude), Box::new(Codex), Box::new(Copilot)];
        for def in custom {
            if adapters.iter().any(|a| a.name() == def.name) {
                log::warn!(
                    "custom agent `{}` has the name of another agent and is ignored: rename it",
                    def.name
                );
                continue;
            }
            match Custom::new(def.clone()) {
                Some(a) => adapters.push(Box::new(a)),
                None => log::warn!(
                    "custom agent `{}` has an empty command and is ignored",
                    def.name
                ),
            }
        }
        AgentRegistry { adapters }
    }

    /// The adapter for `name`.
    pub fn get(&self, name: &str) -> Option<&dyn AgentAdapter> {
        self.adapters
            .iter()
            .find(|a| a.name() == name)
            .map(|a| a.as_ref())
    }

    /// Every known agent name, built-in first.
    pub fn names(&self) -> Vec<String> {
        self.adapters.iter().map(|a| a.name().to_string()).collect()
    }

    /// Every agent's name and the program it runs (`claude`, `claude`).
    pub fn programs(&self) -> Vec<(String, String)> {
        self.adapters
            .iter()
            .map(|a| (a.name().to_string(), a.program().to_string()))
            .collect()
    }

    /// The agents whose program is an executable file on `path_env` (a
    /// `PATH` value).
    pub fn available(&self, path_env: &str) -> Vec<String> {
        self.adapters
            .iter()
            .filter(|a| find_program(a.program(), path_env).is_some())
            .map(|a| a.name().to_string())
            .collect()
    }

    /// The first line the agent's version command prints (10 s limit),
    /// `None` when the agent is unknown, missing, has no version command
    /// (a custom agent without `version`: never run), or the command fails.
    pub fn version(&self, name: &str, path_env: &str) -> Option<String> {
        let argv = self.get(name)?.version_command()?;
        probe_version(&argv, path_env)
            .map_err(|e| log::warn!("agent `{name}`: {e}"))
            .ok()
    }
}

/// The first line `argv` prints (stdout, else stderr), run through the
/// process module with the allowlisted environment, `PATH` = `path_env`,
/// a scratch `HOME` (a version probe must not read or write a real one)
/// and a 10 s limit; or why it could not be had, in words for `check`.
pub fn probe_version(argv: &[String], path_env: &str) -> Result<String, String> {
    let Some((program, args)) = argv.split_first() else {
        return Err("no version command".into());
    };
    let Some(found) = find_program(program, path_env) else {
        return Err("not found on PATH".into());
    };
    let shown = argv.join(" ");
    let tmp = std::env::temp_dir();
    let mut spec = CommandSpec::new(found.to_string_lossy(), &tmp)
        .envs(process::allowlisted_env(None))
        .timeout(Some(VERSION_TIMEOUT))
        .kill_grace(Duration::from_secs(1));
    spec.args = args.to_vec();
    spec.set_env("PATH", path_env);
    spec.set_env("HOME", tmp.to_string_lossy());
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let out = process::run_captured(&spec, &opts, 64 * 1024)
        .map_err(|e| format!("cannot be started: {e}"))?;
    if !out.outcome.success() {
        return Err(format!("`{shown}` failed ({})", out.outcome.describe()));
    }
    out.stdout
        .lines()
        .chain(out.stderr.lines())
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("`{shown}` printed nothing"))
}

/// Where `program` is on `path_env`: the first executable regular file; a
/// program with a `/` is checked as is.
pub fn find_program(program: &str, path_env: &str) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    path_env
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn custom(name: &str, cmd: &[&str]) -> CustomAgent {
        CustomAgent::new(name, cmd)
    }

    #[test]
    fn builtins_and_customs_by_name() {
        let r = AgentRegistry::new(&[
            custom("mine", &["sh", "-c", "echo"]),
            custom("claude", &["evil"]),
            custom("empty", &[]),
        ]);
        assert_eq!(r.names(), ["claude", "codex", "copilot", "mine"]);
        assert_eq!(r.get("claude").map(|a| a.program()), Some("claude"));
        assert_eq!(r.get("mine").map(|a| a.program()), Some("sh"));
        assert!(r.get("empty").is_none());
    }

    #[test]
    fn available_and_version_look_at_the_given_path() {
        let r = AgentRegistry::new(&[custom("shell", &["sh"]), custom("nope", &["ados-nope"])]);
        let path = std::env::var("PATH").unwrap_or_default();
        let avail = r.available(&path);
        assert!(avail.contains(&"shell".to_string()), "{avail:?}");
        assert!(!avail.contains(&"nope".to_string()));
        assert!(r.available("/nonexistent").is_empty());
        assert_eq!(r.version("nope", &path), None);
        assert_eq!(r.version("unknown", &path), None);
    }
}
