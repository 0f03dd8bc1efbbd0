//! The pre-push secret guard: before anything is pushed, every line the
//! change adds is scanned for every secret the runner knows (in its usual
//! encodings, see [`crate::redact`]) and for the shapes of common tokens.
//! A hit ends the job `needs-human` and nothing is pushed. Findings name
//! the file and line, never the value.

use crate::redact::Redactor;
use std::fmt;

/// One line the change adds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddedLine {
    /// File path, relative to the repository root.
    pub file: String,
    /// 1-based line number in the new file.
    pub line: u32,
    /// The line's text.
    pub text: String,
}

/// Something that looks like a secret in the diff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// File path.
    pub file: String,
    /// Line number.
    pub line: u32,
    /// What it looks like (`a GitHub token`), never the value.
    pub what: &'static str,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} in {} line {}", self.what, self.file, self.line)
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

/// Scan added lines for known secrets and token shapes.
pub fn scan_lines(lines: &[AddedLine], redactor: &Redactor) -> Vec<Finding> {
    let mut out = Vec::new();
    for l in lines {
        let what = if redactor.contains_secret(&l.text) {
            Some("a secret known to the runner")
        } else {
            token_shape(&l.text)
        };
        if let Some(what) = what {
            out.push(Finding {
                file: l.file.clone(),
                line: l.line,
                what,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> AddedLine {
        AddedLine {
            file: "src/a.rs".into(),
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
        let whats: Vec<&str> = hits.iter().map(|h| h.what).collect();
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
}
