//! The prompt an agent gets (protocol.md §4), and the test command.
//!
//! Template (documented in `docs/prompt.md`): the issue's title, body and
//! comments, then pointers to the repository's own instructions
//! (`.github/copilot-instructions.md`, `.ados.yaml`, `README.md`,
//! `CONTRIBUTING.md`) when they exist, then what the runner expects. A
//! `prompt` in the spec replaces all of it.
//!
//! Every repository file is looked at through [`RepoFiles`]: regular
//! files inside the checkout only, read up to a bound.

use super::repo_file::RepoFiles;
use crate::job::spec::{JobSpec, Stage};
use std::path::Path;

/// The most of a repository file read to detect the test command.
const DETECT_READ_MAX: usize = 1 << 20;
/// The most of a repair stage's CI log put in its prompt (the end is kept).
pub const CI_LOG_MAX: usize = 256 * 1024;
/// Lines of failing test output given to a repair run.
pub const REPAIR_TAIL_LINES: usize = 80;
/// The longest failing-output line put in a repair prompt (the rest is cut
/// with a note): one 300 KB line must not make the prompt unusable.
pub const REPAIR_LINE_MAX: usize = 2 * 1024;
/// The most failing output put in a repair prompt, in bytes.
pub const REPAIR_TAIL_MAX: usize = 32 * 1024;

/// Repository files the agent is pointed at when they exist.
pub const INSTRUCTION_FILES: [&str; 4] = [
    ".github/copilot-instructions.md",
    ".ados.yaml",
    "README.md",
    "CONTRIBUTING.md",
];

/// The first prompt of a job. `files` is the checkout; `workdir` the
/// monorepo subdirectory the agent runs in (resolved, inside it).
///
/// A spec's `prompt` is the whole prompt, except in a `repair` stage:
/// there it is the CI failure log (protocol §4), put into the template
/// with what the agent is to do about it. (A review's diff is added by the
/// stage, whatever the prompt.)
pub fn build(spec: &JobSpec, files: &RepoFiles, workdir: &Path) -> String {
    match (&spec.prompt, spec.stage) {
        (Some(log), Stage::Repair) => {
            let mut out = template(spec, files, workdir);
            out.push_str(&ci_log_section(&spec.branch, log));
            out
        }
        (Some(p), _) => p.clone(),
        (None, _) => template(spec, files, workdir),
    }
}

/// The repair stage's part with the CI failure log: its last
/// [`CI_LOG_MAX`] bytes (the failure is usually at the end), fenced.
fn ci_log_section(branch: &str, log: &str) -> String {
    let mut start = log.len().saturating_sub(CI_LOG_MAX);
    while !log.is_char_boundary(start) {
        start += 1;
    }
    let shown = &log[start..];
    let note = if start > 0 {
        format!("(its last {} KiB)", CI_LOG_MAX / 1024)
    } else {
        String::new()
    };
    let fence = "`".repeat(longest_run(shown, '`').max(2) + 1);
    format!(
        "\nThe branch `{branch}` already holds the work; its CI run failed. The CI log{}:\n\n{fence}\n{}\n{fence}\n\nFix what made CI fail, on top of the work already on the branch.\n",
        if note.is_empty() { String::new() } else { format!(" {note}") },
        shown.trim_end()
    )
}

/// The longest run of `c` in `text` (a fence around it must be longer).
pub fn longest_run(text: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in text.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// The prompt built from the issue and the repository.
fn template(spec: &JobSpec, files: &RepoFiles, workdir: &Path) -> String {
    let repo_root = files.root();
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
    let found = instruction_files(files);
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
    out
}

/// Those of [`INSTRUCTION_FILES`] the checkout has (regular files inside
/// it): the agent is pointed at them.
pub fn instruction_files(files: &RepoFiles) -> Vec<&'static str> {
    INSTRUCTION_FILES
        .iter()
        .copied()
        .filter(|f| files.regular(&files.root().join(f)).is_some())
        .collect()
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
/// Makefile with a `test` target. Only regular files inside the checkout
/// count, and only their first MiB is read.
pub fn detect_test_command(files: &RepoFiles, dir: &Path) -> Option<Vec<String>> {
    let argv = |s: &[&str]| Some(s.iter().map(|x| x.to_string()).collect());
    let exists = |name: &str| files.regular(&dir.join(name)).is_some();
    let read = |name: &str| files.read(&dir.join(name), DETECT_READ_MAX);
    if exists("Cargo.toml") {
        return argv(&["cargo", "test"]);
    }
    if let Some(text) = read("package.json") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            if v.get("scripts").and_then(|s| s.get("test")).is_some() {
                return argv(&["npm", "test"]);
            }
        }
    }
    if exists("go.mod") {
        return argv(&["go", "test", "./..."]);
    }
    let holds = |name: &str, needle: &str| read(name).is_some_and(|t| t.contains(needle));
    let pytest_ini = exists("pytest.ini")
        || exists("conftest.py")
        || holds("pyproject.toml", "[tool.pytest")
        || holds("setup.cfg", "[tool:pytest]")
        || holds("tox.ini", "[pytest]");
    if pytest_ini {
        return argv(&["pytest"]);
    }
    for name in ["Makefile", "makefile", "GNUmakefile"] {
        if let Some(text) = read(name) {
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

/// The failing output a repair prompt shows: the last
/// [`REPAIR_TAIL_LINES`] lines of `text`, each cut at [`REPAIR_LINE_MAX`]
/// bytes, and no more than [`REPAIR_TAIL_MAX`] bytes in all (the last
/// lines win: the failure is usually at the end).
pub fn failure_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(REPAIR_TAIL_LINES);
    let mut kept: Vec<String> = Vec::new();
    let mut total = 0usize;
    for line in lines[start..].iter().rev() {
        let line = cut_line(line, REPAIR_LINE_MAX);
        total = total.saturating_add(line.len() + 1);
        if total > REPAIR_TAIL_MAX {
            break;
        }
        kept.push(line);
    }
    kept.reverse();
    kept.join("\n")
}

/// `line` cut to at most `max` bytes (at a character boundary), with a
/// note of how much was dropped.
fn cut_line(line: &str, max: usize) -> String {
    if line.len() <= max {
        return line.to_string();
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes cut]", &line[..end], line.len() - end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_order() {
        let d = std::env::temp_dir().join(format!("ados-detect-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        let files = RepoFiles::new(&d).expect("root");
        let d = files.root().to_path_buf();
        assert_eq!(detect_test_command(&files, &d), None);
        std::fs::write(d.join("Makefile"), "build:\n\ttrue\ntest:\n\ttrue\n").expect("write");
        assert_eq!(
            detect_test_command(&files, &d),
            Some(vec!["make".into(), "test".into()])
        );
        std::fs::write(d.join("package.json"), r#"{"scripts":{"build":"x"}}"#).expect("write");
        assert_eq!(
            detect_test_command(&files, &d),
            Some(vec!["make".into(), "test".into()])
        );
        std::fs::write(d.join("package.json"), r#"{"scripts":{"test":"x"}}"#).expect("write");
        assert_eq!(
            detect_test_command(&files, &d),
            Some(vec!["npm".into(), "test".into()])
        );
        std::fs::write(d.join("Cargo.toml"), "").expect("write");
        assert_eq!(
            detect_test_command(&files, &d),
            Some(vec!["cargo".into(), "test".into()])
        );
        // A linked Cargo.toml pointing out of the checkout does not count.
        std::fs::remove_file(d.join("Cargo.toml")).expect("rm");
        std::os::unix::fs::symlink("/dev/null", d.join("Cargo.toml")).expect("link");
        assert_eq!(
            detect_test_command(&files, &d),
            Some(vec!["npm".into(), "test".into()])
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_repair_stages_prompt_is_its_ci_log_inside_the_template() {
        use crate::job::spec::RemotePolicy;
        let d = std::env::temp_dir().join(format!("ados-ci-log-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("mkdir");
        let files = RepoFiles::new(&d).expect("root");
        let root = files.root().to_path_buf();
        let spec = |stage: &str, log: &str| {
            let v = serde_json::json!({"job_id": "j", "repo": {"owner": "o", "name": "r"},
                "stage": stage, "branch": "ados/pr-1", "prompt": log,
                "issue": {"number": 4, "title": "Fix the parser", "body": "b"}});
            JobSpec::from_json(&v, RemotePolicy::default()).expect("spec")
        };
        let p = build(&spec("repair", "error: test x failed"), &files, &root);
        assert!(p.starts_with("Resolve issue #4: Fix the parser"), "{p}");
        assert!(p.contains("`ados/pr-1` already holds the work; its CI run failed"));
        assert!(p.contains("```\nerror: test x failed\n```"), "{p}");
        // Other stages take the prompt as the whole prompt.
        assert_eq!(
            build(&spec("implement", "just this"), &files, &root),
            "just this"
        );
        // A huge log keeps its end, and says so.
        let log = format!("{}\nthe real error", "noise line\n".repeat(40_000));
        let p = build(&spec("repair", &log), &files, &root);
        assert!(p.len() < CI_LOG_MAX + 4096, "{}", p.len());
        assert!(p.contains("the real error") && p.contains("(its last 256 KiB)"));
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_failure_tail_is_capped_per_line_and_in_total() {
        assert_eq!(failure_tail("a\nb\nc\n"), "a\nb\nc");
        let many: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let tail = failure_tail(&many);
        assert_eq!(tail.lines().count(), REPAIR_TAIL_LINES);
        assert!(tail.ends_with("line 199"));
        let huge = format!("{}\nfailing: 1 test", "x".repeat(300_000));
        let tail = failure_tail(&huge);
        assert!(tail.len() < REPAIR_LINE_MAX + 100, "{}", tail.len());
        assert!(tail.contains("bytes cut]"));
        assert!(tail.ends_with("failing: 1 test"));
        let wide: String = (0..80).map(|_| format!("{}\n", "y".repeat(5000))).collect();
        assert!(failure_tail(&wide).len() <= REPAIR_TAIL_MAX);
    }
}
