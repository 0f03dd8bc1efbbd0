//! The programs a runner needs: git (new enough) and at least one agent
//! CLI.

use super::Check;
use crate::config::CustomAgent;
use crate::git::{parse_version, MIN_GIT_VERSION};

/// git is there and new enough, judged by the daemon's own parser and
/// minimum ([`crate::git::parse_version`], [`MIN_GIT_VERSION`]).
pub(super) fn git_check(probe: Result<String, String>) -> Check {
    const FIX: &str = "install git 2.31 or newer and put it on PATH";
    match probe {
        Err(e) => Check::fail("git", format!("git: {e}"), FIX),
        Ok(out) => match parse_version(&out) {
            Some(v) if v >= MIN_GIT_VERSION => {
                Check::pass("git", format!("{}.{}.{}", v.0, v.1, v.2))
            }
            Some(v) => Check::fail(
                "git",
                format!("{}.{}.{} is older than 2.31", v.0, v.1, v.2),
                FIX,
            ),
            None => Check::fail(
                "git",
                format!("unrecognised `git --version` output: {out}"),
                FIX,
            ),
        },
    }
}

/// At least one agent the runner would use is available. Those found
/// share the first line; each one not found (or whose version command
/// failed) gets a line of its own, so a missing agent is not lost in a
/// long line.
pub(super) fn agents_check(agents: &[(String, Result<String, String>)]) -> Check {
    let found: Vec<String> = agents
        .iter()
        .filter_map(|(name, r)| r.as_ref().ok().map(|v| format!("{name} {v}")))
        .collect();
    let missing = agents
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("\n{name}: {e}")))
        .collect::<String>();
    if found.is_empty() {
        Check::fail(
            "agent CLIs",
            format!("no agent CLI found{missing}"),
            "install at least one: npm install -g @anthropic-ai/claude-code (claude), @openai/codex (codex) or @github/copilot (copilot)",
        )
    } else {
        Check::pass("agent CLIs", format!("{}{missing}", found.join("; ")))
    }
}

/// `<program> --version`'s first line ([`crate::agents::probe_version`]).
pub(super) fn version_of(program: &str, path: &str) -> Result<String, String> {
    crate::agents::probe_version(&[program.to_string(), "--version".to_string()], path)
}

/// A custom agent runs nothing but the `version` command its definition
/// gives: a CLI that reads any argument as a prompt would go to work on
/// `--version`. Without one it is only looked up on PATH.
pub(super) fn custom_agent_status(def: &CustomAgent, path: &str) -> Result<String, String> {
    let program = def.command.first().map(String::as_str).unwrap_or_default();
    let Some(found) = crate::agents::find_program(program, path) else {
        return Err(format!("`{program}` not found on PATH"));
    };
    match &def.version {
        Some(argv) => crate::agents::probe_version(argv, path),
        None => Ok(format!(
            "at {} (not run: its definition has no `version` command)",
            found.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_versions() {
        assert_eq!(parse_version("git version 2.43.0\n"), Some((2, 43, 0)));
        assert_eq!(
            parse_version("git version 2.39.3 (Apple Git-146)"),
            Some((2, 39, 3))
        );
        assert_eq!(
            parse_version("git version 2.45.1.windows.1"),
            Some((2, 45, 1))
        );
        assert_eq!(parse_version("git version 2.31"), Some((2, 31, 0)));
        assert_eq!(parse_version("hub version 2.14"), None);
        assert!(git_check(Ok("git version 2.31.0".into())).ok);
        let old = git_check(Ok("git version 2.30.9".into()));
        assert!(!old.ok && old.detail.contains("older than 2.31"), "{old:?}");
        assert!(!git_check(Err("not found on PATH".into())).ok);
    }

    #[test]
    fn real_programs_are_probed() {
        let path = std::env::var("PATH").unwrap();
        let git = version_of("git", &path).unwrap();
        assert!(git.starts_with("git version "), "{git}");
        assert!(
            git_check(Ok(git)).ok,
            "this machine's git is too old for the runner"
        );
        assert_eq!(
            version_of("ados-no-such-program", &path),
            Err("not found on PATH".into())
        );
        assert!(version_of("false", &path).unwrap_err().contains("failed"));
    }

    #[test]
    fn agents_fail_only_when_none_is_found() {
        let missing = || Err::<String, String>("not found on PATH".into());
        let one = agents_check(&[
            ("claude".into(), Ok("2.0.14 (Claude Code)".into())),
            ("codex".into(), missing()),
            ("copilot".into(), missing()),
        ]);
        assert!(one.ok);
        assert_eq!(
            one.detail,
            "claude 2.0.14 (Claude Code)\ncodex: not found on PATH\ncopilot: not found on PATH"
        );
        let none = agents_check(&[("claude".into(), missing()), ("codex".into(), missing())]);
        assert!(!none.ok && none.fix.unwrap().contains("install at least one"));
        assert_eq!(
            none.detail,
            "no agent CLI found\nclaude: not found on PATH\ncodex: not found on PATH"
        );
    }

    /// A custom agent that does work on any argument (as the demo agent
    /// does) is never run without a `version` command of its own.
    #[test]
    fn a_custom_agent_runs_only_its_own_version_command() {
        let dir = super::super::tests::temp_dir("custom-agent");
        let marker = dir.join("ran");
        let script = dir.join("doer");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$@\" >> {}\necho doer 1.2\n",
                marker.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = format!("{}:/usr/bin:/bin", dir.display());
        let mut def = CustomAgent::new("doer", &["doer"]);
        let found = custom_agent_status(&def, &path).unwrap();
        assert!(found.contains("not run"), "{found}");
        assert!(
            !marker.exists(),
            "check ran the agent without a version command"
        );
        def.version = Some(vec!["doer".into(), "-V".into()]);
        assert_eq!(custom_agent_status(&def, &path).unwrap(), "doer 1.2");
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "-V\n");
        def.command = vec!["ados-no-such-agent".into()];
        assert!(custom_agent_status(&def, &path)
            .unwrap_err()
            .contains("not found"));
    }
}
