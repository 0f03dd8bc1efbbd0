//! The pre-push secret guard: before anything is pushed, every line the
//! change adds is scanned for every secret the runner knows (in its usual
//! encodings, see [`crate::redact`]) and for the shapes of common tokens.
//! The names of added files are scanned the same way. A hit ends the job
//! `needs-human` and nothing is pushed; so does a diff the scan could not
//! see whole ([`ScanDiff::truncated`]): an unscanned part is not a clean
//! part. Findings name the file and line, never the value (and never a
//! file name that holds one).

use crate::git::{AddedLine, ScanDiff};
use crate::redact::Redactor;
use std::fmt;

/// Something in the change that stops the push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Finding {
    /// A line that looks like it holds a secret.
    Line {
        /// File path.
        file: String,
        /// Line number.
        line: u32,
        /// What it looks like (`a GitHub token`), never the value.
        what: &'static str,
    },
    /// The name of an added file holds a secret (the name is not shown:
    /// it would show the value).
    FileName {
        /// What it looks like.
        what: &'static str,
    },
    /// The diff was cut (its size cap, or a line past the line cap): what
    /// was not seen was not scanned.
    Incomplete,
}

impl Finding {
    /// Whether this is a secret seen (not a scan that could not finish).
    pub fn is_secret(&self) -> bool {
        !matches!(self, Finding::Incomplete)
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::Line { file, line, what } => write!(f, "{what} in {file} line {line}"),
            Finding::FileName { what } => {
                write!(f, "{what} in a file name (not shown here; see the agent's file list)")
            }
            Finding::Incomplete => f.write_str(
                "the secret guard could not scan the whole change (the diff is over its size cap or has a line over the line cap)",
            ),
        }
    }
}

/// Token shapes: a prefix, then at least `min_tail` token characters.
const SHAPES: &[(&str, usize, &str)] = &[
    ("github_pat_", 20, "a GitHub fine-grained token"),
    ("ghp_", 30, "a GitHub token"),
    ("gho_", 30, "a GitHub OAuth token"),
    ("ghs_", 30, "a GitHub app token"),
    ("ghu_", 30, "a GitHub user token"),
    ("glpat-", 20, "a GitLab token"),
    ("sk-ant-", 20, "an Anthropic key"),
    ("sk-", 20, "an OpenAI-style key"),
    ("xoxb-", 10, "a Slack bot token"),
    ("xoxp-", 10, "a Slack user token"),
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// What token shape `text` contains, if any.
pub fn token_shape(text: &str) -> Option<&'static str> {
    for (prefix, min_tail, what) in SHAPES {
        let mut from = 0;
        while let Some(pos) = text[from..].find(prefix) {
            let start = from + pos;
            // The prefix must start a token (not `task-…` for `sk-`).
            let boundary = text[..start]
                .chars()
                .next_back()
                .map(|c| !is_token_char(c))
                .unwrap_or(true);
            let tail = text[start + prefix.len()..]
                .chars()
                .take_while(|c| is_token_char(*c))
                .count();
            if boundary && tail >= *min_tail {
                return Some(what);
            }
            from = start + prefix.len();
        }
    }
    // AWS access key ids: AKIA + 16 upper-case letters or digits.
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find("AKIA") {
        let start = from + pos;
        let tail = &bytes[start + 4..];
        let n = tail
            .iter()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .count();
        let boundary = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        if boundary && n == 16 {
            return Some("an AWS access key id");
        }
        from = start + 4;
    }
    None
}

/// What `text` holds that stops a push: a secret the runner knows, or a
/// token shape.
fn secret_in(text: &str, redactor: &Redactor) -> Option<&'static str> {
    if redactor.contains_secret(text) {
        Some("a secret known to the runner")
    } else {
        token_shape(text)
    }
}

/// What a file name holds that stops a push. In a name a token often
/// follows a `-` (`notes-ghp_…`), which in text would mark it as the tail
/// of a longer word: every part after a `-` is checked on its own too.
fn secret_in_name(path: &str, redactor: &Redactor) -> Option<&'static str> {
    secret_in(path, redactor).or_else(|| {
        path.split(['/', '.'])
            .flat_map(|part| part.match_indices('-').map(move |(i, _)| &part[i + 1..]))
            .find_map(token_shape)
    })
}

/// Whether `text` holds a known secret or a token shape.
pub fn holds_secret(text: &str, redactor: &Redactor) -> bool {
    secret_in_name(text, redactor).is_some()
}

/// Scan added lines for known secrets and token shapes.
pub fn scan_lines(lines: &[AddedLine], redactor: &Redactor) -> Vec<Finding> {
    lines
        .iter()
        .filter_map(|l| {
            secret_in(&l.text, redactor).map(|what| Finding::Line {
                file: l.path.clone(),
                line: l.line,
                what,
            })
        })
        .collect()
}

/// Scan a whole change: its added lines, the names of its added files,
/// and whether the scan saw all of it.
pub fn scan(diff: &ScanDiff, redactor: &Redactor) -> Vec<Finding> {
    let mut out = scan_lines(&diff.lines, redactor);
    out.extend(
        diff.added_paths
            .iter()
            .filter_map(|p| secret_in_name(p, redactor).map(|what| Finding::FileName { what })),
    );
    if diff.truncated {
        out.push(Finding::Incomplete);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> AddedLine {
        AddedLine {
            path: "src/a.rs".into(),
            line: 3,
            text: text.into(),
        }
    }

    #[test]
    fn finds_shapes_and_known_values_without_printing_them() {
        let r = Redactor::new(vec!["my-known-secret-42".to_string()]);
        let hits = scan_lines(
            &[
                line("let t = \"ghp_0123456789abcdefghijklmnopqrstuvwxyz\";"),
                line("key = AKIAABCDEFGHIJKLMNOP"),
                line("x = my-known-secret-42"),
                line("GITLAB=glpat-abcdefghij0123456789"),
                line("ANTHROPIC=sk-ant-api03-abcdefghijklmnopqrstuvwxyz"),
                line("use sk-learn for ml; task-abcdefghijklmnopqrstuvwxyz"),
                line("fn ghp_helper() {}"),
            ],
            &r,
        );
        let whats: Vec<&str> = hits
            .iter()
            .map(|h| match h {
                Finding::Line { what, .. } => *what,
                _ => "not a line",
            })
            .collect();
        assert_eq!(
            whats,
            vec![
                "a GitHub token",
                "an AWS access key id",
                "a secret known to the runner",
                "a GitLab token",
                "an Anthropic key"
            ]
        );
        let shown = hits[2].to_string();
        assert_eq!(shown, "a secret known to the runner in src/a.rs line 3");
    }

    #[test]
    fn names_and_an_unfinished_scan_are_findings() {
        let r = Redactor::new(vec!["my-known-secret-42".to_string()]);
        let diff = ScanDiff {
            lines: vec![line("nothing here")],
            added_paths: vec![
                "docs/plain.md".into(),
                "docs/task-abcdefghijklmnopqrstuvwxyz.md".into(),
                "keys/my-known-secret-42.txt".into(),
                "notes-ghp_0123456789abcdefghijklmnopqrstuvwxyz.txt".into(),
            ],
            truncated: false,
        };
        let hits = scan(&diff, &r);
        assert_eq!(
            hits,
            vec![
                Finding::FileName {
                    what: "a secret known to the runner"
                },
                Finding::FileName {
                    what: "a GitHub token"
                }
            ]
        );
        assert!(!hits[0].to_string().contains("my-known-secret-42"));
        let cut = ScanDiff {
            truncated: true,
            ..ScanDiff::default()
        };
        let hits = scan(&cut, &r);
        assert_eq!(hits, vec![Finding::Incomplete]);
        assert!(!hits[0].is_secret());
    }
}
