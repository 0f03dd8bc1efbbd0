//! Parsers for git's porcelain output (status, diff, ls-remote, push), and
//! the types they produce. The types live here, not in `checkout`, so the
//! parsers depend on nothing above them and `checkout` only calls down.

/// How a changed file changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// New and staged.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
    /// New and not yet known to git (not ignored).
    Untracked,
}

/// One file that differs from `HEAD`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedFile {
    /// Path relative to the repository root.
    pub path: String,
    /// How it changed.
    pub kind: ChangeKind,
}

/// One line added since the branch's start point.
#[derive(Clone, PartialEq, Eq)]
pub struct AddedLine {
    /// File, relative to the repository root.
    pub path: String,
    /// Line number in the new file (1-based).
    pub line: u32,
    /// The line's text (may hold a secret: never log it).
    pub text: String,
}

impl std::fmt::Debug for AddedLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text is what the secret guard inspects: keep it out of logs.
        write!(f, "AddedLine({}:{})", self.path, self.line)
    }
}

/// Undoes git's C-style quoting of a path (`"a\"b\303\251"`); unquoted
/// paths are returned as they are.
pub(crate) fn unquote_path(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return s.to_string();
    };
    let mut bytes = Vec::with_capacity(inner.len());
    let mut it = inner.bytes().peekable();
    while let Some(b) = it.next() {
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match it.next() {
            Some(b'n') => bytes.push(b'\n'),
            Some(b't') => bytes.push(b'\t'),
            Some(b'r') => bytes.push(b'\r'),
            Some(b'a') => bytes.push(7),
            Some(b'b') => bytes.push(8),
            Some(b'f') => bytes.push(12),
            Some(b'v') => bytes.push(11),
            Some(d @ b'0'..=b'7') => {
                let mut v = u32::from(d - b'0');
                for _ in 0..2 {
                    match it.peek() {
                        Some(&n @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(n - b'0');
                            it.next();
                        }
                        _ => break,
                    }
                }
                bytes.push((v & 0xff) as u8);
            }
            Some(other) => bytes.push(other),
            None => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `git status --porcelain=v1 --no-renames` lines → changed files.
pub(crate) fn parse_status(lines: &[String]) -> Vec<ChangedFile> {
    lines
        .iter()
        .filter(|l| l.len() > 3)
        .map(|l| {
            let (xy, path) = l.split_at(2);
            let path = unquote_path(&path[1..]);
            let kind = match xy {
                "??" => ChangeKind::Untracked,
                _ if xy.contains('D') => ChangeKind::Deleted,
                _ if xy.contains('A') => ChangeKind::Added,
                _ => ChangeKind::Modified,
            };
            ChangedFile { path, kind }
        })
        .collect()
}

/// `git diff --unified=0` output → every added line with its file and line
/// number in the new version.
pub(crate) fn parse_added_lines(lines: &[String]) -> Vec<AddedLine> {
    let mut out = Vec::new();
    let mut path: Option<String> = None;
    let mut in_hunk = false;
    let mut next_line = 0u32;
    for l in lines {
        if l.starts_with("diff --git ") {
            path = None;
            in_hunk = false;
            continue;
        }
        if !in_hunk {
            if let Some(p) = l.strip_prefix("+++ ") {
                path = match p {
                    "/dev/null" => None,
                    _ => {
                        // git ends the name with a tab when it has a space.
                        let p = unquote_path(p.strip_suffix('\t').unwrap_or(p));
                        Some(p.strip_prefix("b/").map(str::to_string).unwrap_or(p))
                    }
                };
                continue;
            }
        }
        if let Some(rest) = l.strip_prefix("@@ ") {
            // `@@ -a[,b] +c[,d] @@`
            next_line = rest
                .split_whitespace()
                .find_map(|t| t.strip_prefix('+'))
                .and_then(|t| t.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            in_hunk = true;
            continue;
        }
        if in_hunk {
            if let (Some(text), Some(p)) = (l.strip_prefix('+'), &path) {
                out.push(AddedLine {
                    path: p.clone(),
                    line: next_line,
                    text: text.to_string(),
                });
                next_line = next_line.saturating_add(1);
            }
        }
    }
    out
}

/// The paths of created files from the `--summary` lines that open a
/// `git diff --summary` (` create mode 100644 <path>`, before the first
/// `diff --git`): every added file, whether or not it has a line to show.
pub(crate) fn parse_created_paths(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .take_while(|l| !l.starts_with("diff --git "))
        .filter_map(|l| l.strip_prefix(" create mode "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(_, path)| unquote_path(path))
        .collect()
}

/// From `git push --porcelain` output: the rejection reason, when a ref was
/// rejected (`!\t<src>:<dst>\t[rejected] (fetch first)`).
pub(crate) fn push_rejection(lines: &[String]) -> Option<String> {
    lines.iter().find_map(|l| {
        let rest = l.strip_prefix("!\t")?;
        Some(rest.split_once('\t').map_or(rest, |(_, r)| r).to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn status_lines() {
        let files = parse_status(&v(&[
            " M src/a.rs",
            "?? new file.txt",
            "D  gone",
            "A  added",
            "?? \"q\\\"uote\\303\\251\"",
        ]));
        assert_eq!(files.len(), 5);
        assert_eq!(files[0].path, "src/a.rs");
        assert_eq!(files[0].kind, ChangeKind::Modified);
        assert_eq!(files[1].kind, ChangeKind::Untracked);
        assert_eq!(files[1].path, "new file.txt");
        assert_eq!(files[2].kind, ChangeKind::Deleted);
        assert_eq!(files[3].kind, ChangeKind::Added);
        assert_eq!(files[4].path, "q\"uoteé");
    }

    #[test]
    fn added_lines_with_numbers_and_tricky_content() {
        let diff = v(&[
            "diff --git a/a.txt b/a.txt",
            "index 1..2 100644",
            "--- a/a.txt",
            "+++ b/a.txt",
            "@@ -1,0 +2,2 @@",
            "+first",
            "+++ looks like a header",
            "@@ -9 +10 @@",
            "-old",
            "+new",
            "diff --git a/gone b/gone",
            "--- a/gone",
            "+++ /dev/null",
            "@@ -1 +0,0 @@",
            "-x",
            "diff --git a/bin b/bin",
            "Binary files /dev/null and b/bin differ",
        ]);
        let added = parse_added_lines(&diff);
        let got: Vec<(&str, u32, &str)> = added
            .iter()
            .map(|a| (a.path.as_str(), a.line, a.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a.txt", 2, "first"),
                ("a.txt", 3, "++ looks like a header"),
                ("a.txt", 10, "new")
            ]
        );
    }

    #[test]
    fn created_paths_come_from_the_summary_only() {
        let diff = v(&[
            " create mode 100644 bin.dat",
            " create mode 120000 \"a\\tb\"",
            " create mode 100644 x y.txt",
            " delete mode 100644 old",
            "",
            "diff --git a/x y.txt b/x y.txt",
            "new file mode 100644",
            "--- /dev/null",
            "+++ b/x y.txt\t",
            "@@ -0,0 +1 @@",
            "+ create mode 100644 not-a-path",
        ]);
        assert_eq!(
            parse_created_paths(&diff),
            vec!["bin.dat", "a\tb", "x y.txt"]
        );
        let added = parse_added_lines(&diff);
        assert_eq!(added[0].path, "x y.txt", "no trailing tab");
    }

    #[test]
    fn push_porcelain() {
        let push = v(&[
            "To http://h/o/r.git",
            "!\trefs/x:refs/heads/main\t[remote rejected] (protected branch hook declined)",
            "Done",
        ]);
        assert_eq!(
            push_rejection(&push).as_deref(),
            Some("[remote rejected] (protected branch hook declined)")
        );
        assert_eq!(push_rejection(&v(&["=\ta:b\t[up to date]"])), None);
    }
}
