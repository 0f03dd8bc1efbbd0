//! What the read-only stages add around the agent: the review's diff in
//! its prompt, its verdict, and what becomes of files an agent changed
//! when it was told not to.
//!
//! The verdict is the first of `PASS`, `NEEDS_REVISION`, `FAIL` in the
//! answer as a whole word in capitals — at the start, in bold, in
//! backticks or mid-sentence ("I'd call this a **PASS**."); lower-case
//! words are prose ("the tests pass"), not verdicts. The summary is that
//! word, a blank line, then the answer; no verdict at all is a result a
//! person must read (`needs-human`).

use super::prompt::longest_run;
use crate::git::{BranchDiff, ChangedFile};
use crate::job::event::ResultStatus;

/// The most diff a review prompt carries.
pub const REVIEW_DIFF_MAX: usize = 256 * 1024;

/// The verdicts, as the summary spells them.
const VERDICTS: [&str; 3] = ["PASS", "NEEDS_REVISION", "FAIL"];

/// How many changed files a read-only stage's log line names.
const NAMED_FILES_MAX: usize = 50;

/// The review prompt's part with the change under review: the diff of
/// `target` (the target branch) to the branch, in a fence no line of the
/// diff can close, and a note when it was cut.
pub fn diff_section(diff: &BranchDiff, target: &str) -> String {
    if diff.text.trim().is_empty() {
        return format!(
            "\nThe change under review: the branch has no changes against `{target}`.\n"
        );
    }
    let fence = "`".repeat(longest_run(&diff.text, '`').max(2) + 1);
    let mut out = format!(
        "\nThe change under review, `git diff origin/{target}...HEAD` (the branch since it left `{target}`):\n\n{fence}diff\n{}{fence}\n",
        diff.text
    );
    if diff.cut {
        out.push_str(&format!(
            "[The diff was cut at {} KiB; the rest is not shown. Read the changed files in the working tree for the whole change.]\n",
            REVIEW_DIFF_MAX / 1024
        ));
    }
    out
}

/// The first verdict word in `answer`.
pub fn verdict(answer: &str) -> Option<&'static str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    // Where each verdict first stands as a whole word; the earliest wins.
    let at = |word: &str| {
        answer.match_indices(word).map(|(i, _)| i).find(|&i| {
            let before = answer[..i].chars().next_back();
            let after = answer[i + word.len()..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
    };
    VERDICTS
        .iter()
        .filter_map(|w| at(w).map(|i| (i, *w)))
        .min()
        .map(|(_, w)| w)
}

/// The status and summary of a review whose agent answered `answer`.
pub fn review_outcome(answer: &str) -> (ResultStatus, String) {
    match verdict(answer) {
        Some(word) => (ResultStatus::Completed, format!("{word}\n\n{answer}")),
        None => (
            ResultStatus::NeedsHuman,
            format!("the review gave no verdict (PASS, NEEDS_REVISION or FAIL): {answer}"),
        ),
    }
}

/// The `runner` log line of a read-only stage whose agent changed files
/// anyway: the first [`NAMED_FILES_MAX`] named, then a count.
pub fn discarded_line(stage: &str, changed: &[ChangedFile]) -> String {
    let names: Vec<&str> = changed
        .iter()
        .take(NAMED_FILES_MAX)
        .map(|c| c.path.as_str())
        .collect();
    let more = changed.len().saturating_sub(NAMED_FILES_MAX);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!(
        "the {stage} stage is read-only, but the agent changed {}{more}: those changes were discarded, nothing is committed or pushed\n",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_verdict_word_wins_wherever_it_stands() {
        assert_eq!(verdict("PASS\nLooks good."), Some("PASS"));
        assert_eq!(
            verdict("**NEEDS_REVISION**: add a test"),
            Some("NEEDS_REVISION")
        );
        assert_eq!(verdict("I would call this a FAIL, sadly."), Some("FAIL"));
        assert_eq!(verdict("Verdict: `PASS` (no FAIL found)"), Some("PASS"));
        assert_eq!(verdict("FAIL. Earlier runs were a PASS"), Some("FAIL"));
        assert_eq!(verdict("the tests pass; PASSED; FAILING; xFAIL"), None);
        assert_eq!(verdict(""), None);
    }

    #[test]
    fn a_review_without_a_verdict_needs_a_human() {
        let (status, summary) = review_outcome("Looks fine to me, **PASS**.");
        assert_eq!(status, ResultStatus::Completed);
        assert_eq!(summary, "PASS\n\nLooks fine to me, **PASS**.");
        let (status, summary) = review_outcome("I could not decide.");
        assert_eq!(status, ResultStatus::NeedsHuman);
        assert!(summary.ends_with("I could not decide."), "{summary}");
    }

    #[test]
    fn the_diff_section_fences_the_diff_and_says_when_it_was_cut() {
        let diff = BranchDiff {
            text: "+```rust\n+fn x() {}\n".into(),
            cut: false,
        };
        let s = diff_section(&diff, "main");
        assert!(s.contains("````diff\n+```rust\n+fn x() {}\n````\n"), "{s}");
        assert!(!s.contains("cut at"));
        let s = diff_section(&BranchDiff { cut: true, ..diff }, "main");
        assert!(s.contains("[The diff was cut at 256 KiB"), "{s}");
        let s = diff_section(&BranchDiff::default(), "main");
        assert!(s.contains("no changes against `main`"), "{s}");
    }
}
