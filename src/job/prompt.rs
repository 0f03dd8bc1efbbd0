//! The prompt an agent gets (protocol.md §4), and the test command.
//!
//! Template (documented in `docs/prompt.md`): the issue's title, body and
//! comments, then pointers to the repository's own instructions
//! (`.github/copilot-instructions.md`, `.ados.yaml`, `README.md`,
//! `CONTRIBUTING.md`) when they exist, then what the runner expects. A
//! `prompt` in the spec replaces all of it.

use crate::job::spec::{JobSpec, Stage};
use std::path::Path;

/// Repository files the agent is pointed at when they exist.
pub const INSTRUCTION_FILES: [&str; 4] = [
    ".github/copilot-instructions.md",
    ".ados.yaml",
    "README.md",
    "CONTRIBUTING.md",
];

/// The first prompt of a job. `repo_root` is the checkout; `workdir` the
/// monorepo subdirectory the agent runs in.
pub fn build(spec: &JobSpec, repo_root: &Path, workdir: &Path) -> String {
    if let Some(p) = &spec.prompt {
        return p.clone();
    }
    let mut out = String::new();
    match (&spec.issue, spec.stage) {
        (Some(issue), stage) => {
            let verb = match stage {
                Stage::Implement | Stage::Repair => "Resolve",
                Stage::Plan => "Write an implementation plan for",
                Stage::Review => "Review the change on this branch for",
            };
            out.push_str(&format!(
                "{verb} issue #{}: {}\n\n",
                issue.number, issue.title
            ));
            if !issue.body.trim().is_empty() {
                out.push_str(issue.body.trim());
                out.push_str("\n\n");
            }
            if !issue.comments.is_empty() {
                out.push_str("Comments on the issue, oldest first:\n\n");
                for c in &issue.comments {
                    out.push_str(&format!("- {}: {}\n", c.author, c.body.trim()));
                }
                out.push('\n');
            }
            if !issue.url.is_empty() {
                out.push_str(&format!("Issue link: {}\n\n", issue.url));
            }
        }
        (None, _) => {
            out.push_str("Work on this repository as described by its maintainers.\n\n");
        }
    }
    let found: Vec<&str> = INSTRUCTION_FILES
        .iter()
        .copied()
        .filter(|f| repo_root.join(f).is_file())
        .collect();
    if !found.is_empty() {
        out.push_str("Read the repository's own instructions first: ");
        out.push_str(&found.join(", "));
        out.push_str(".\n");
    }
    if workdir != repo_root {
        if let Ok(rel) = workdir.strip_prefix(repo_root) {
            out.push_str(&format!(
                "Work inside the `{}` directory of this monorepo.\n",
                rel.display()
            ));
        }
    }
    out.push_str(match spec.stage {
        Stage::Implement | Stage::Repair => {
            "Make the change in the working tree and make sure the tests pass. \
             Do not commit or push: the runner does that. Finish with a short summary of what you changed.\n"
        }
        Stage::Plan => {
            "Do not change any file. Reply with a step-by-step plan: files to change, how, and how to test it.\n"
        }
        Stage::Review => {
            "Do not change any file. Start your reply with one word, PASS, NEEDS_REVISION or FAIL, then explain.\n"
        }
    });
    if spec.stage == Stage::Review {
        out.push_str(&format!(
            "The change under review is `git diff origin/{}...HEAD`.\n",
            spec.repo.target_branch
        ));
    }
    out
}

/// The prompt of a repair run: the original task plus the failing output.
pub fn repair(original: &str, test_command: &str, failure_tail: &str) -> String {
    format!(
        "{original}\n\nThe tests are failing after your change. `{test_command}` printed (last lines):\n\n```\n{failure_tail}\n```\n\nFix the code so the tests pass. Do not weaken or delete tests. Do not commit.\n"
    )
}

/// The test command of a repository when the spec gives none
/// (`test_command: null`), as argv. Detection order: Cargo.toml,
/// package.json with a `test` script, go.mod, pytest configuration, a
/// Makefile with a `test` target.
pub fn detect_test_command(dir: &Path) -> Option<Vec<String>> {
    let argv = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
    if dir.join("Cargo.toml").is_file() {
        return argv(&["cargo", "test"]);
    }
    if let Ok(text) = std::fs::read_to_string(dir.join("package.json")) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v.get("scripts").and_then(|s| s.get("test")).is_some() {
                return argv(&["npm", "test"]);
            }
        }
    }
    if dir.join("go.mod").is_file() {
        return argv(&["go", "test", "./..."]);
    }
    let pytest_ini = dir.join("pytest.ini").is_file()
        || dir.join("conftest.py").is_file()
        || std::fs::read_to_string(dir.join("pyproject.toml"))
            .map(|t| t.contains("[tool.pytest"))
            .unwrap_or(false)
        || std::fs::read_to_string(dir.join("setup.cfg"))
            .map(|t| t.contains("[tool:pytest]"))
            .unwrap_or(false)
        || std::fs::read_to_string(dir.join("tox.ini"))
            .map(|t| t.contains("[pytest]"))
            .unwrap_or(false);
    if pytest_ini {
        return argv(&["pytest"]);
    }
    for name in ["Makefile", "makefile", "GNUmakefile"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            if text
                .lines()
                .any(|l| l.starts_with("test:") || l.starts_with("test :"))
            {
                return argv(&["make", "test"]);
            }
        }
    }
    None
}

/// Split a `test_command` into argv the way a user expects from a command
/// line (whitespace, single and double quotes, backslash escapes) — but
/// with no shell: no expansion, no pipes, no `;`. Protocol §5: no value
/// from a job spec is ever passed through a shell.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch) => cur.push(ch),
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => cur.push(ch),
                    None => return Err("trailing backslash".into()),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The last `max_lines` lines of `text` (the failure tail of a test run).
pub fn tail(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(max_lines);
    lines[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_without_a_shell() {
        assert_eq!(
            split_command(r#"cargo test -- --test-threads 1 "a b" 'c d' e\ f"#).expect("ok"),
            vec![
                "cargo",
                "test",
                "--",
                "--test-threads",
                "1",
                "a b",
                "c d",
                "e f"
            ]
        );
        assert_eq!(
            split_command("echo $HOME; rm -rf /").expect("ok")[1],
            "$HOME;"
        );
        assert!(split_command("'open").is_err());
        assert!(split_command("   ").expect("ok").is_empty());
    }

    #[test]
    fn detection_order() {
        let d = std::env::temp_dir().join(format!("ados-detect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        assert_eq!(detect_test_command(&d), None);
        std::fs::write(d.join("Makefile"), "build:\n\ttrue\ntest:\n\ttrue\n").expect("write");
        assert_eq!(
            detect_test_command(&d),
            Some(vec!["make".into(), "test".into()])
        );
        std::fs::write(d.join("package.json"), r#"{"scripts":{"build":"x"}}"#).expect("write");
        assert_eq!(
            detect_test_command(&d),
            Some(vec!["make".into(), "test".into()])
        );
        std::fs::write(d.join("package.json"), r#"{"scripts":{"test":"x"}}"#).expect("write");
        assert_eq!(
            detect_test_command(&d),
            Some(vec!["npm".into(), "test".into()])
        );
        std::fs::write(d.join("Cargo.toml"), "").expect("write");
        assert_eq!(
            detect_test_command(&d),
            Some(vec!["cargo".into(), "test".into()])
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc");
    }
}
