//! The title and body of the PR the runner opens: pure functions of the
//! job spec and what the run did, so they are tested without a server.
//!
//! Title: `pr.title` when set, else the issue's title with its number
//! (`Fix the login bug (#42)`), else a line naming the branch. Body:
//! `pr.body` when set; else the agent's summary, the files changed, the
//! test command and its outcome, agent / model / attempts / usage, and a
//! line that closes the issue (`Closes #N` on GitHub and GitLab, which
//! close it on merge; Bitbucket Cloud has no such keyword for its issue
//! tracker links, so `#N` is mentioned). Every body ends with [`MARKER`],
//! an HTML comment no renderer shows, so a PR the runner opened can be
//! recognised.

use crate::job::event::{TestSummary, Usage};
use crate::job::spec::{IssueSpec, PrSpec, Provider};
use std::fmt::Write as _;

/// The hidden line at the end of every body the runner writes.
pub const MARKER: &str = "<!-- opened by ados-work-runner -->";
/// Longest summary quoted in a body; the providers cap a body (GitHub at
/// 65 536 characters) and refuse a longer one.
const MAX_SUMMARY: usize = 30_000;
/// Files listed by name; the rest are counted.
const MAX_FILES: usize = 100;
/// Longest title (GitHub and GitLab refuse a title over 255).
const MAX_TITLE: usize = 250;

/// What the run did, for the body.
#[derive(Clone, Debug, Default)]
pub struct BodyFacts<'a> {
    /// The agent's summary.
    pub summary: &'a str,
    /// Files the commit changed.
    pub changed_files: &'a [String],
    /// The test run, when tests ran.
    pub tests: Option<&'a TestSummary>,
    /// The agent that made the change.
    pub agent: &'a str,
    /// Its model, when known.
    pub model: Option<&'a str>,
    /// Agent attempts, repairs included.
    pub attempts: usize,
    /// Tokens and cost, when any CLI reported them.
    pub usage: Option<&'a Usage>,
}

/// The PR title.
pub fn title(pr: &PrSpec, issue: Option<&IssueSpec>, branch: &str) -> String {
    let t = match (&pr.title, issue) {
        (Some(t), _) if !t.trim().is_empty() => t.trim().to_string(),
        (_, Some(i)) if !i.title.trim().is_empty() => {
            format!("{} (#{})", one_line(&i.title), i.number)
        }
        (_, Some(i)) => format!("Issue #{}", i.number),
        (_, None) => format!("Changes from {branch}"),
    };
    cut(&one_line(&t), MAX_TITLE)
}

/// The PR body.
pub fn body(
    pr: &PrSpec,
    issue: Option<&IssueSpec>,
    provider: Provider,
    facts: &BodyFacts<'_>,
) -> String {
    let mut out = String::new();
    if let Some(b) = pr.body.as_deref().filter(|b| !b.trim().is_empty()) {
        out.push_str(b.trim_end());
        out.push_str("\n\n");
        out.push_str(MARKER);
        out.push('\n');
        return out;
    }
    let summary = facts.summary.trim();
    if summary.is_empty() {
        out.push_str("The agent gave no summary.\n");
    } else {
        out.push_str(&cut(summary, MAX_SUMMARY));
        out.push('\n');
    }
    if !facts.changed_files.is_empty() {
        out.push_str("\n### Files changed\n\n");
        for f in facts.changed_files.iter().take(MAX_FILES) {
            // A file name is shown as code; a backtick in it must not end that.
            let _ = writeln!(out, "- `{}`", one_line(f).replace('`', "'"));
        }
        if let Some(more) = facts
            .changed_files
            .len()
            .checked_sub(MAX_FILES)
            .filter(|n| *n > 0)
        {
            let _ = writeln!(out, "- … and {more} more");
        }
    }
    out.push_str("\n### Tests\n\n");
    match facts.tests {
        Some(t) if t.passed => {
            let _ = writeln!(out, "`{}` passed.", one_line(&t.command));
        }
        Some(t) => {
            let _ = writeln!(
                out,
                "`{}` **failed** (exit code {}); this pull request needs a person to look.",
                one_line(&t.command),
                t.exit_code
            );
        }
        None => out.push_str("No tests were run.\n"),
    }
    out.push_str("\n### Run\n\n");
    let _ = write!(out, "- Agent: {}", one_line(facts.agent));
    if let Some(m) = facts.model.filter(|m| !m.is_empty()) {
        let _ = write!(out, " (model {})", one_line(m));
    }
    let _ = writeln!(out, "\n- Attempts: {}", facts.attempts);
    if let Some(u) = facts.usage {
        let _ = write!(
            out,
            "- Usage: {} input tokens, {} output tokens",
            u.input_tokens, u.output_tokens
        );
        if let Some(c) = u.cost_usd {
            let _ = write!(out, ", ${c:.2}");
        }
        out.push('\n');
    }
    if let Some(i) = issue {
        out.push('\n');
        match provider {
            Provider::Github | Provider::Gitlab => {
                let _ = writeln!(out, "Closes #{}", i.number);
            }
            Provider::Bitbucket => {
                let _ = writeln!(out, "For issue #{}.", i.number);
            }
        }
    }
    out.push('\n');
    out.push_str(MARKER);
    out.push('\n');
    out
}

/// Line breaks become spaces (a title, a list item).
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// At most `max` bytes, cut at a character boundary, with `…` when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue() -> IssueSpec {
        IssueSpec {
            number: 42,
            title: "Fix the\nlogin bug".into(),
            ..IssueSpec::default()
        }
    }

    fn facts<'a>(
        files: &'a [String],
        tests: Option<&'a TestSummary>,
        usage: Option<&'a Usage>,
    ) -> BodyFacts<'a> {
        BodyFacts {
            summary: "Fixed the login check.",
            changed_files: files,
            tests,
            agent: "claude",
            model: Some("claude-sonnet-4"),
            attempts: 2,
            usage,
        }
    }

    #[test]
    fn title_prefers_pr_title_then_the_issue_then_the_branch() {
        let spec = PrSpec {
            title: Some("  My title ".into()),
            ..PrSpec::default()
        };
        assert_eq!(title(&spec, Some(&issue()), "ados/issue-42"), "My title");
        let none = PrSpec::default();
        assert_eq!(title(&none, Some(&issue()), "b"), "Fix the login bug (#42)");
        assert_eq!(
            title(&none, None, "ados/job-j1"),
            "Changes from ados/job-j1"
        );
        let long = PrSpec {
            title: Some("é".repeat(300)),
            ..PrSpec::default()
        };
        assert!(title(&long, None, "b").len() <= MAX_TITLE + '…'.len_utf8());
    }

    #[test]
    fn body_says_what_the_run_did_and_closes_the_issue() {
        let files = vec!["src/lib.rs".to_string(), "a`b.rs".to_string()];
        let t = TestSummary {
            command: "cargo test".into(),
            exit_code: 0,
            passed: true,
        };
        let u = Usage {
            input_tokens: 1200,
            output_tokens: 340,
            cost_usd: Some(0.412),
        };
        let b = body(
            &PrSpec::default(),
            Some(&issue()),
            Provider::Github,
            &facts(&files, Some(&t), Some(&u)),
        );
        for want in [
            "Fixed the login check.",
            "- `src/lib.rs`",
            "- `a'b.rs`",
            "`cargo test` passed.",
            "Agent: claude (model claude-sonnet-4)",
            "Attempts: 2",
            "1200 input tokens, 340 output tokens, $0.41",
            "Closes #42",
        ] {
            assert!(b.contains(want), "missing {want:?} in\n{b}");
        }
        assert!(b.trim_end().ends_with(MARKER));
    }

    #[test]
    fn body_on_bitbucket_mentions_the_issue_and_red_tests_are_said() {
        let t = TestSummary {
            command: "npm test".into(),
            exit_code: 1,
            passed: false,
        };
        let b = body(
            &PrSpec::default(),
            Some(&issue()),
            Provider::Bitbucket,
            &facts(&[], Some(&t), None),
        );
        assert!(b.contains("#42") && !b.contains("Closes"), "{b}");
        assert!(b.contains("`npm test` **failed** (exit code 1)"), "{b}");
        assert!(!b.contains("Usage"), "{b}");
        let b = body(
            &PrSpec::default(),
            None,
            Provider::Gitlab,
            &facts(&[], None, None),
        );
        assert!(
            b.contains("No tests were run.") && !b.contains("Closes"),
            "{b}"
        );
    }

    #[test]
    fn pr_body_is_used_as_given_plus_the_marker() {
        let spec = PrSpec {
            body: Some("Hand-written body.\n".into()),
            ..PrSpec::default()
        };
        let b = body(
            &spec,
            Some(&issue()),
            Provider::Github,
            &facts(&[], None, None),
        );
        assert_eq!(b, format!("Hand-written body.\n\n{MARKER}\n"));
    }

    #[test]
    fn long_file_lists_and_summaries_are_cut() {
        let files: Vec<String> = (0..130).map(|i| format!("f{i}.rs")).collect();
        let mut f = facts(&files, None, None);
        let long = "x".repeat(MAX_SUMMARY + 10);
        f.summary = &long;
        let b = body(&PrSpec::default(), None, Provider::Github, &f);
        assert!(
            b.contains("- `f99.rs`") && !b.contains("f100.rs"),
            "files not cut"
        );
        assert!(b.contains("… and 30 more"));
        assert!(b.len() < MAX_SUMMARY + 5_000);
    }
}
