//! The programs a runner needs: git (new enough) and at least one agent
//! CLI.

use super::{Check, TIMEOUT};
use crate::git::{parse_version, MIN_GIT_VERSION};
use std::time::Duration;

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

/// At least one agent CLI answers `--version`.
pub(super) fn agents_check(agents: &[(String, Result<String, String>)]) -> Check {
    let detail = agents
        .iter()
        .map(|(name, r)| match r {
            Ok(v) => format!("{name} {v}"),
            Err(e) => format!("{name}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if agents.iter().any(|(_, r)| r.is_ok()) {
        Check::pass("agent CLIs", detail)
    } else {
        Check::fail(
            "agent CLIs",
            format!("no agent CLI found ({detail})"),
            "install at least one: npm install -g @anthropic-ai/claude-code (claude), @openai/codex (codex) or @github/copilot (copilot)",
        )
    }
}

/// `<program> --version`'s first line, through the process module (own
/// process group, stdin null, an environment of PATH only, 10 s limit).
pub(super) fn version_of(program: &str, path: &str) -> Result<String, String> {
    let Some(found) = crate::agents::find_program(program, path) else {
        return Err("not found on PATH".into());
    };
    let mut spec =
        crate::process::CommandSpec::new(found.display().to_string(), std::env::temp_dir());
    spec.args = vec!["--version".into()];
    spec.env = vec![("PATH".into(), path.to_string())];
    spec.timeout = Some(TIMEOUT);
    spec.kill_grace = Duration::from_secs(1);
    let redactor = crate::redact::Redactor::empty();
    let cancel = crate::cancel::CancelToken::never();
    let opts = crate::process::RunOptions {
        cancel: &cancel,
        redactor: &redactor,
        observer: None,
    };
    let out = crate::process::run_captured(&spec, &opts, 64 * 1024)
        .map_err(|e| format!("cannot be started: {e}"))?;
    if !out.outcome.success() {
        return Err(format!(
            "`{program} --version` failed ({})",
            out.outcome.describe()
        ));
    }
    out.stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
        .ok_or_else(|| format!("`{program} --version` printed nothing"))
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
            "claude 2.0.14 (Claude Code); codex: not found on PATH; copilot: not found on PATH"
        );
        let none = agents_check(&[("claude".into(), missing()), ("codex".into(), missing())]);
        assert!(!none.ok && none.fix.unwrap().contains("install at least one"));
    }
}
