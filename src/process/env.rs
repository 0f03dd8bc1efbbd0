//! The environment a child starts from: a short allowlist copied from the
//! runner's own environment, never a credential.

use std::path::Path;

/// Variables copied from the runner's environment when set. `TERM` is not
/// here: children always get `TERM=dumb` (there is no terminal).
const ALLOWED: &[&str] = &[
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    // Paths to CA bundles, so tools work behind a TLS-inspecting proxy.
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];

/// Used when the runner itself has no `PATH`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Whether a variable name must never be passed on implicitly: the
/// runner's own settings (`ADOS_*`), anything that looks like a credential,
/// and Claude Code's nested-session guard.
pub fn is_forbidden_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("ADOS_")
        || upper.ends_with("_TOKEN")
        || upper.ends_with("_KEY")
        || upper.contains("PASSWORD")
        || upper.contains("SECRET")
        || upper == "CLAUDECODE"
        || upper == "CLAUDE_CODE_ENTRYPOINT"
}

/// The base environment of every child: `PATH` (with `extra_path` in
/// front when given), locale, `TZ`, `USER`, `LOGNAME`, `SHELL`, CA bundle
/// paths, and `TERM=dumb`, taken from the runner's environment.
///
/// Never `ADOS_*`, never a `*_TOKEN`/`*_KEY`/`*PASSWORD*` variable, never
/// `CLAUDECODE`. `HOME` and `TMPDIR` are not included: each job sets its own.
pub fn allowlisted_env(extra_path: Option<&Path>) -> Vec<(String, String)> {
    allowlisted_from(|name| std::env::var(name).ok(), extra_path)
}

/// [`allowlisted_env`] over any source of variables (testable).
fn allowlisted_from(
    get: impl Fn(&str) -> Option<String>,
    extra_path: Option<&Path>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let path = get("PATH")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    let path = match extra_path {
        Some(extra) => format!("{}:{path}", extra.display()),
        None => path,
    };
    out.push(("PATH".to_string(), path));
    for name in ALLOWED {
        debug_assert!(!is_forbidden_name(name));
        if let Some(v) = get(name) {
            out.push((name.to_string(), v));
        }
    }
    out.push(("TERM".to_string(), "dumb".to_string()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn only_allowlisted_names_pass_and_path_gets_extra() {
        let src: HashMap<&str, &str> = [
            ("PATH", "/usr/bin"),
            ("LANG", "C.UTF-8"),
            ("ADOS_TOKEN", "t0ken-secret"),
            ("GITHUB_TOKEN", "ghp_x"),
            ("CLAUDECODE", "1"),
            ("TERM", "xterm-256color"),
            ("HOME", "/root"),
        ]
        .into_iter()
        .collect();
        let env = allowlisted_from(
            |n| src.get(n).map(|v| v.to_string()),
            Some(Path::new("/opt/fake")),
        );
        let map: HashMap<_, _> = env.iter().cloned().collect();
        assert_eq!(map["PATH"], "/opt/fake:/usr/bin");
        assert_eq!(map["LANG"], "C.UTF-8");
        assert_eq!(map["TERM"], "dumb");
        assert_eq!(map.len(), 3, "{map:?}");
    }

    #[test]
    fn forbidden_names() {
        for n in [
            "ADOS_TOKEN",
            "ados_api_url",
            "GH_TOKEN",
            "OPENAI_API_KEY",
            "DB_PASSWORD",
            "CLAUDECODE",
            "CLAUDE_CODE_ENTRYPOINT",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(is_forbidden_name(n), "{n}");
        }
        for n in ["PATH", "LANG", "HOME", "KEYBOARD"] {
            assert!(!is_forbidden_name(n), "{n}");
        }
    }

    #[test]
    fn missing_path_gets_a_default() {
        let env = allowlisted_from(|_| None, None);
        assert_eq!(env[0], ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
}
