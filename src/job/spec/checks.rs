//! The rules for the strings of a spec that reach a path, a git ref or a
//! command line (§5): names, branches, relative paths, owners.

use super::parse::short;
use super::{Provider, SpecError};

/// `[A-Za-z0-9._-]`, 1–128 characters, not `.` or `..` (§5).
pub fn check_name(field: &str, s: &str) -> Result<(), SpecError> {
    if s.is_empty() || s.len() > 128 {
        return Err(SpecError::new(field, "must be 1 to 128 characters"));
    }
    if s == "." || s == ".." {
        return Err(SpecError::new(field, "must not be `.` or `..`"));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(SpecError::new(
            field,
            format!("contains {c:?}; only A-Z a-z 0-9 . _ - are allowed"),
        ));
    }
    Ok(())
}

/// A branch name per `git check-ref-format --branch`, and not starting
/// with `-` (§5). Implemented here (the rules of git-check-ref-format(1))
/// so validation needs no process.
pub fn check_branch(field: &str, s: &str) -> Result<(), SpecError> {
    let bad = |why: &str| Err(SpecError::new(field, format!("`{}` {why}", short(s))));
    if s.is_empty() {
        return Err(SpecError::new(field, "must not be empty"));
    }
    // Checked first, and the name is not echoed: git accepts these, but a
    // branch name is shown to people (logs, PR pages, terminals), where a
    // right-to-left override or an invisible mark makes it read as
    // something else.
    if let Some(c) = s.chars().find(|c| is_deceptive(*c)) {
        return Err(SpecError::new(
            field,
            format!(
                "contains the control or invisible formatting character U+{:04X}",
                u32::from(c)
            ),
        ));
    }
    if s.len() > 255 {
        return bad("is longer than 255 bytes");
    }
    if s.starts_with('-') {
        return bad("must not start with `-`");
    }
    if s == "@" {
        return bad("must not be `@`");
    }
    // `git check-ref-format --branch HEAD` fails: refs/heads/HEAD would be
    // confused with the symbolic ref in every later git command.
    if s == "HEAD" {
        return bad("must not be `HEAD`");
    }
    if s.starts_with('/') || s.ends_with('/') || s.contains("//") {
        return bad("has an empty path component");
    }
    if s.ends_with('.') {
        return bad("must not end with `.`");
    }
    if s.contains("..") {
        return bad("must not contain `..`");
    }
    if s.contains("@{") {
        return bad("must not contain `@{`");
    }
    if let Some(c) = s.chars().find(|c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        return bad(&format!("contains the forbidden character {c:?}"));
    }
    for comp in s.split('/') {
        if comp.starts_with('.') {
            return bad("has a component starting with `.`");
        }
        if comp.ends_with(".lock") {
            return bad("has a component ending with `.lock`");
        }
    }
    Ok(())
}

/// C0/C1 controls, and the invisible formatting characters that change how
/// text around them reads: bidirectional marks, embeddings, overrides and
/// isolates (U+200E/F, U+202A–E, U+2066–9, U+061C), line and paragraph
/// separators (U+2028/9), zero-width characters
/// (U+200B–D, U+2060, U+FEFF) and the soft hyphen.
fn is_deceptive(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// A relative path with no `..` component (§5); `""` is the repo root.
pub fn check_rel_path(field: &str, s: &str) -> Result<(), SpecError> {
    if s.starts_with('/') {
        return Err(SpecError::new(field, "must be a relative path"));
    }
    if s.contains('\0') || s.contains('\\') {
        return Err(SpecError::new(field, "must not contain NUL or `\\`"));
    }
    if s.split('/').any(|c| c == "..") {
        return Err(SpecError::new(field, "must not contain a `..` component"));
    }
    Ok(())
}

pub(super) fn check_owner(provider: Provider, s: &str) -> Result<(), SpecError> {
    if provider == Provider::Gitlab && s.contains('/') {
        for seg in s.split('/') {
            check_name("repo.owner", seg)?;
        }
        return Ok(());
    }
    if s.contains('/') {
        return Err(SpecError::new(
            "repo.owner",
            "must not contain `/` (only GitLab owners may name nested groups)",
        ));
    }
    check_name("repo.owner", s)
}
