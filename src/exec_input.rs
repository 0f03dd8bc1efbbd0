//! `exec`'s inputs checked before any work, in the user's own words: the
//! fields of a `--spec` file (a typo is an error with the close match, not
//! a silently ignored key), the flags that cannot stand beside `--spec`,
//! the `--issue-file` format, agent names, the `--output` directory, and a
//! spec error said with the flag the user typed (`--merge-mode`) instead
//! of the spec field it set.

use crate::config::{Config, BUILTIN_AGENTS};
use crate::job::spec::SpecError;
use serde_json::{json, Value};
use std::path::Path;

/// The fields of a job spec, by object (`""` is the top level). A field
/// added to the spec parser is added here too, or `exec --spec` refuses it.
const SPEC_FIELDS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "job_id",
            "kind",
            "stage",
            "repo",
            "issue",
            "prompt",
            "agent",
            "fallbacks",
            "branch",
            "merge_mode",
            "test_command",
            "max_repair_attempts",
            "timeout_s",
            "idle_timeout_s",
            "commit",
            "pr",
            "credentials",
            "registries",
        ],
    ),
    (
        "repo",
        &[
            "provider",
            "base_url",
            "api_url",
            "owner",
            "name",
            "clone_url",
            "path",
            "target_branch",
        ],
    ),
    (
        "issue",
        &["number", "title", "body", "labels", "comments", "url"],
    ),
    ("agent", &["name", "model", "timeout_s", "args"]),
    ("fallbacks[]", &["name", "model", "timeout_s", "args"]),
    ("commit", &["message", "author_name", "author_email"]),
    ("pr", &["title", "body", "draft"]),
    ("credentials", &["vcs_token"]),
    ("registries[]", &["type", "url", "scope", "token"]),
];

/// The spec field each job flag sets (the first flag of a field is named
/// in errors).
const FLAG_FIELDS: &[(&str, &str)] = &[
    ("--repo", "repo.clone_url"),
    ("--repo", "repo.name"),
    ("--target-branch", "repo.target_branch"),
    ("--model", "agent.model"),
    ("--agent", "agent"),
    ("--fallback", "fallbacks"),
    ("--prompt", "prompt"),
    ("--issue-file", "issue"),
    ("--test-cmd", "test_command"),
    ("--branch", "branch"),
    ("--merge-mode", "merge_mode"),
    ("--provider", "repo.provider"),
    ("--api-url", "repo.api_url"),
];

/// Every unknown field of a `--spec` file, each with the close match when
/// there is one: `unknown field `merge_mod` (did you mean `merge_mode`?)`.
pub fn unknown_spec_fields(spec: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for (object, known) in SPEC_FIELDS {
        let (path, each) = match object.strip_suffix("[]") {
            Some(p) => (p, true),
            None => (*object, false),
        };
        let at = if path.is_empty() {
            Some(spec)
        } else {
            spec.get(path)
        };
        let objects: Vec<(String, &serde_json::Map<String, Value>)> = match at {
            Some(Value::Array(items)) if each => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| Some((format!("{path}[{i}]."), v.as_object()?)))
                .collect(),
            Some(Value::Object(m)) if !each => {
                let prefix = if path.is_empty() {
                    String::new()
                } else {
                    format!("{path}.")
                };
                vec![(prefix, m)]
            }
            _ => Vec::new(),
        };
        for (prefix, map) in objects {
            for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                let hint = closest(key, known)
                    .map(|k| format!(" (did you mean `{prefix}{k}`?)"))
                    .unwrap_or_default();
                found.push(format!("unknown field `{prefix}{key}`{hint}"));
            }
        }
    }
    found
}

/// The known name within two edits of `typed` (the closest), if any.
fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(typed, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance of two short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diagonal
            } else {
                1 + diagonal.min(above).min(row[j])
            };
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A `--spec` file's defaults where `exec`'s differ from the daemon's:
/// `merge_mode` is `none` (a local run pushes nothing unless asked), the
/// same as with flags.
pub fn apply_exec_defaults(spec: &mut Value) {
    if let Value::Object(m) = spec {
        m.entry("merge_mode").or_insert_with(|| json!("none"));
    }
}

/// Job flags typed beside `--spec` are refused: the spec file says the
/// whole job, and a flag must never be silently ignored.
pub fn refuse_beside_spec(job_flags: &[String]) -> Result<(), String> {
    match job_flags.first() {
        None => Ok(()),
        Some(flag) => {
            let field = FLAG_FIELDS
                .iter()
                .find(|(f, _)| f == flag)
                .map(|(_, field)| format!(": set `{field}` in the spec file instead"))
                .unwrap_or_default();
            Err(format!(
                "{flag} cannot be combined with --spec (the spec file gives the whole job){field}"
            ))
        }
    }
}

/// An `--issue-file`: JSON when its first non-blank character is `{` (and
/// then it must be valid JSON: `{number, title, body, comments}`), else
/// plain text whose first line is the title (a leading `#` dropped) and
/// the rest the body.
pub fn read_issue_file(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("--issue-file {path}: {e}"))?;
    if text.trim_start().starts_with('{') {
        return match serde_json::from_str::<Value>(&text) {
            Ok(v @ Value::Object(_)) => Ok(v),
            Ok(_) => Err(format!("--issue-file {path}: must be one JSON object")),
            Err(e) => Err(format!(
                "--issue-file {path}: starts with `{{` but is not valid JSON ({e}); fix it, or write the issue as text (first line the title)"
            )),
        };
    }
    let mut lines = text.lines();
    let title = lines.next().unwrap_or("").trim_start_matches('#').trim();
    let body: Vec<&str> = lines.collect();
    Ok(json!({"number": 1, "title": title, "body": body.join("\n").trim()}))
}

/// A spec error in the words of the flags that built the spec:
/// `--merge-mode: ...` instead of `field `merge_mode``.
pub fn spec_error_for_flags(e: &SpecError) -> String {
    let flag = FLAG_FIELDS.iter().find(|(_, field)| {
        e.field == *field
            || e.field.starts_with(&format!("{field}."))
            || e.field.starts_with(&format!("{field}["))
    });
    match flag {
        Some((flag, _)) => format!("{flag}: {}", e.problem),
        None => e.to_string(),
    }
}

/// Every agent the job names exists here: a built-in or one of
/// `ADOS_CUSTOM_AGENTS`. `from_flags` says whether to name the flags.
pub fn check_agents(
    cfg: &Config,
    agent: &str,
    fallbacks: &[&str],
    from_flags: bool,
) -> Result<(), String> {
    let known =
        |n: &str| BUILTIN_AGENTS.contains(&n) || cfg.custom_agents.iter().any(|a| a.name == n);
    let named = std::iter::once((agent, if from_flags { "--agent" } else { "agent.name" })).chain(
        fallbacks.iter().map(|f| {
            (
                *f,
                if from_flags {
                    "--fallback"
                } else {
                    "fallbacks[].name"
                },
            )
        }),
    );
    for (name, source) in named {
        if !known(name) {
            let mut all: Vec<&str> = BUILTIN_AGENTS.to_vec();
            all.extend(cfg.custom_agents.iter().map(|a| a.name.as_str()));
            return Err(format!(
                "{source}: unknown agent `{name}`; use one of {} (custom agents come from ADOS_CUSTOM_AGENTS)",
                all.join(", ")
            ));
        }
    }
    Ok(())
}

/// `--output FILE` can be written: its directory exists. Checked before
/// the job starts, so a finished job's result is never lost to a typo.
pub fn check_output(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if p.is_dir() {
        return Err(format!("--output {path}: is a directory; give a file name"));
    }
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "--output {path}: the directory {} does not exist",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::spec::{JobSpec, RemotePolicy};

    #[test]
    fn unknown_fields_are_named_with_the_close_match() {
        let spec = json!({"job_id": "j", "merge_mod": "pr", "repo": {"owner": "o", "nmae": "r"},
            "fallbacks": [{"name": "codex", "modle": "m"}], "zzzzzz": 1});
        let found = unknown_spec_fields(&spec);
        assert_eq!(
            found,
            [
                "unknown field `merge_mod` (did you mean `merge_mode`?)",
                "unknown field `zzzzzz`",
                "unknown field `repo.nmae` (did you mean `repo.name`?)",
                "unknown field `fallbacks[0].modle` (did you mean `fallbacks[0].model`?)",
            ]
        );
        assert!(unknown_spec_fields(&json!({"job_id": "j", "repo": {}})).is_empty());
    }

    #[test]
    fn every_field_of_a_full_spec_is_known() {
        let full = json!({"job_id":"j","kind":"issue","stage":"implement",
            "repo":{"provider":"github","base_url":"https://github.com","api_url":null,
                "owner":"o","name":"r","clone_url":null,"path":"","target_branch":"main"},
            "issue":{"number":1,"title":"t","body":"b","labels":[],"comments":[],"url":""},
            "prompt":null,"agent":{"name":"claude","model":"m","timeout_s":60,"args":[]},
            "fallbacks":[{"name":"codex","model":"m","timeout_s":60,"args":[]},"copilot"],
            "branch":"ados/x","merge_mode":"pr","test_command":null,"max_repair_attempts":1,
            "commit":{"message":null,"author_name":"A","author_email":"a@b"},
            "pr":{"title":null,"body":null,"draft":false},"credentials":{"vcs_token":"t"},
            "registries":[{"type":"npm","url":"https://n","scope":"@s","token":"t"}],
            "timeout_s":60,"idle_timeout_s":60});
        assert_eq!(unknown_spec_fields(&full), Vec::<String>::new());
        assert!(JobSpec::from_json(&full, RemotePolicy::default()).is_ok());
    }

    #[test]
    fn a_spec_error_names_the_flag() {
        let e = SpecError {
            field: "fallbacks[1].name".into(),
            problem: "bad".into(),
        };
        assert_eq!(spec_error_for_flags(&e), "--fallback: bad");
        let e = SpecError {
            field: "merge_mode".into(),
            problem: "bad".into(),
        };
        assert_eq!(spec_error_for_flags(&e), "--merge-mode: bad");
    }
}
