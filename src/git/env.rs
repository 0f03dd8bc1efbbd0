//! The environment every git process runs with.
//!
//! Built from [`crate::process::allowlisted_env`], then: no system or
//! global config, a per-job `HOME`, no prompts, English messages (errors
//! are classified from git's stderr), `GIT_ALLOW_PROTOCOL` from the remote
//! policy, and a fixed set of config overrides passed as
//! `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`: hooks off,
//! fsmonitor off, no credential helper or askpass, no signing, no detached
//! gc. For network commands only, the credential is one more such entry,
//! `http.<scheme://host/>.extraHeader = Authorization: Basic …`, scoped to
//! the remote's host so a redirect or an `insteadOf` rewrite elsewhere
//! never receives it.

use super::auth::GitAuth;
use crate::net::RemotePolicy;
use crate::net::Url;
use std::fmt;
use std::path::{Path, PathBuf};

/// Commit author and committer identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Author {
    /// `GIT_AUTHOR_NAME` / `GIT_COMMITTER_NAME`.
    pub name: String,
    /// `GIT_AUTHOR_EMAIL` / `GIT_COMMITTER_EMAIL`.
    pub email: String,
}

impl Author {
    /// The four identity variables.
    pub(crate) fn vars(&self) -> Vec<(String, String)> {
        vec![
            ("GIT_AUTHOR_NAME".into(), self.name.clone()),
            ("GIT_AUTHOR_EMAIL".into(), self.email.clone()),
            ("GIT_COMMITTER_NAME".into(), self.name.clone()),
            ("GIT_COMMITTER_EMAIL".into(), self.email.clone()),
        ]
    }
}

/// What a git command may reach, which decides its protocols and whether
/// it carries the credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Talks to the remote: the credential is attached.
    Network,
    /// Works on a local repository only: no credential.
    Local,
    /// Reads another local repository of ours over the file transport
    /// (mirror → checkout and back): `file` allowed, no credential.
    LocalFile,
}

/// Config every git process gets, whatever a repository's own config says
/// (environment config is read last, so it wins for single-valued keys).
const FIXED_CONFIG: &[(&str, &str)] = &[
    // The agent can write `.git/hooks`; our git must never run them.
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    // An empty helper entry resets the list: no helper can see a credential.
    ("credential.helper", ""),
    ("core.askPass", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    // A detached gc would outlive the command (and hold its pipes).
    ("gc.autoDetach", "false"),
    ("maintenance.autoDetach", "false"),
    ("core.quotePath", "false"),
    ("advice.detachedHead", "false"),
];

/// Variables from the allowlist that git must not see.
const DROPPED: &[&str] = &["GIT_ASKPASS", "SSH_ASKPASS", "XDG_CONFIG_HOME", "LANGUAGE"];

/// The environment for the git processes of one job and one remote.
/// `Debug` never prints the credential.
#[derive(Clone)]
pub struct GitEnv {
    base: Vec<(String, String)>,
    allow_http: bool,
    allow_file: bool,
    /// `http.<scope>.extraHeader` key and the credential, for network commands.
    auth: Option<(String, GitAuth)>,
    program: String,
}

impl GitEnv {
    /// The environment for talking to `remote_url` with `auth`, with `home`
    /// as HOME and `extra_path` first in PATH (where `git` is looked up).
    pub fn new(
        home: &Path,
        policy: RemotePolicy,
        remote_url: &str,
        auth: Option<GitAuth>,
        extra_path: Option<&Path>,
    ) -> GitEnv {
        let mut env = GitEnv::local(home, extra_path);
        // The host git (curl) will connect to: the authority ends at the
        // first `/`, `?` or `#` (see `crate::net::url`).
        let url = Url::parse(remote_url).ok();
        let http = url.as_ref().filter(|u| u.scheme() == "http");
        env.allow_http = policy.allow_http || http.is_some_and(Url::is_loopback);
        env.allow_file = policy.allow_file;
        env.auth = match (auth, url.as_ref().and_then(header_scope)) {
            (Some(a), Some(scope)) => Some((format!("http.{scope}.extraHeader"), a)),
            // ssh and file remotes take no HTTP header.
            _ => None,
        };
        env
    }

    /// An environment for local-only git commands (version checks, tests):
    /// https and ssh only, no credential.
    pub fn local(home: &Path, extra_path: Option<&Path>) -> GitEnv {
        let mut base: Vec<(String, String)> = crate::process::allowlisted_env(extra_path)
            .into_iter()
            .filter(|(k, _)| !DROPPED.contains(&k.as_str()) && !k.starts_with("GIT_"))
            .filter(|(k, _)| k != "HOME" && k != "LC_ALL" && k != "LANG")
            .collect();
        let home_s = home.display().to_string();
        let config_home: PathBuf = home.join(".config");
        base.extend([
            ("HOME".to_string(), home_s),
            ("XDG_CONFIG_HOME".into(), config_home.display().to_string()),
            ("LC_ALL".into(), "C".into()),
            ("LANG".into(), "C".into()),
            ("GIT_TERMINAL_PROMPT".into(), "0".into()),
            ("GIT_CONFIG_NOSYSTEM".into(), "1".into()),
            ("GIT_CONFIG_GLOBAL".into(), "/dev/null".into()),
            ("GIT_PAGER".into(), "cat".into()),
            ("GIT_EDITOR".into(), "true".into()),
            ("GIT_MERGE_AUTOEDIT".into(), "no".into()),
            // Replace refs (`refs/replace/*`) swap one object for another
            // everywhere git reads it; the runner never uses them, and an
            // agent that reached the mirror could plant one.
            ("GIT_NO_REPLACE_OBJECTS".into(), "1".into()),
            // No tty: ssh must fail instead of asking about host keys or passwords.
            ("GIT_SSH_COMMAND".into(), "ssh -o BatchMode=yes".into()),
        ]);
        GitEnv {
            base,
            allow_http: false,
            allow_file: false,
            auth: None,
            program: "git".into(),
        }
    }

    /// Use this git binary instead of `git` from PATH.
    pub fn with_program(mut self, program: impl Into<String>) -> GitEnv {
        self.program = program.into();
        self
    }

    /// The git program run.
    pub fn program(&self) -> &str {
        &self.program
    }

    /// The secrets this environment carries, for the job's redactor.
    pub fn secrets(&self) -> Vec<String> {
        self.auth
            .as_ref()
            .map(|(_, a)| a.secrets())
            .unwrap_or_default()
    }

    /// Whether network commands carry a credential.
    pub fn has_auth(&self) -> bool {
        self.auth.is_some()
    }

    /// The full environment for one command.
    pub(crate) fn vars(&self, access: Access, extra: &[(String, String)]) -> Vec<(String, String)> {
        let mut out = self.base.clone();
        let mut protocols = vec!["https", "ssh"];
        if self.allow_http {
            protocols.push("http");
        }
        if self.allow_file || access == Access::LocalFile {
            protocols.push("file");
        }
        out.push(("GIT_ALLOW_PROTOCOL".into(), protocols.join(":")));
        let mut config: Vec<(String, String)> = FIXED_CONFIG
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if access == Access::Network {
            if let Some((key, auth)) = &self.auth {
                config.push((
                    key.clone(),
                    format!("Authorization: {}", auth.header_value()),
                ));
            }
        }
        out.push(("GIT_CONFIG_COUNT".into(), config.len().to_string()));
        for (i, (k, v)) in config.into_iter().enumerate() {
            out.push((format!("GIT_CONFIG_KEY_{i}"), k));
            out.push((format!("GIT_CONFIG_VALUE_{i}"), v));
        }
        out.extend(extra.iter().cloned());
        out
    }
}

impl fmt::Debug for GitEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitEnv")
            .field("program", &self.program)
            .field("allow_http", &self.allow_http)
            .field("allow_file", &self.allow_file)
            .field("auth", &self.auth.as_ref().map(|(k, a)| (k, a.username())))
            .finish_non_exhaustive()
    }
}

/// `scheme://host[:port]/` of an http(s) URL, without user info: the
/// scope of the credential header, which git matches against the URL it
/// actually fetches.
fn header_scope(url: &Url) -> Option<String> {
    matches!(url.scheme(), "https" | "http").then(|| url.origin())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(v: &'a [(String, String)], k: &str) -> Option<&'a str> {
        v.iter()
            .rev()
            .find(|(kk, _)| kk == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn credential_only_on_network_commands_and_scoped_to_host() {
        let env = GitEnv::new(
            Path::new("/ws/jobs/j/home"),
            RemotePolicy::default(),
            "https://github.com/o/r.git",
            Some(GitAuth::new("x-access-token", "tok-123456")),
            None,
        );
        let net = env.vars(Access::Network, &[]);
        let header_key = net
            .iter()
            .find(|(_, v)| v == "http.https://github.com/.extraHeader")
            .map(|(k, _)| k.replace("KEY", "VALUE"))
            .expect("header key");
        assert!(get(&net, &header_key)
            .unwrap()
            .starts_with("Authorization: Basic "));
        assert_eq!(get(&net, "GIT_ALLOW_PROTOCOL"), Some("https:ssh"));
        assert_eq!(get(&net, "HOME"), Some("/ws/jobs/j/home"));
        assert_eq!(get(&net, "GIT_TERMINAL_PROMPT"), Some("0"));
        let local = env.vars(Access::Local, &[]);
        assert!(!local.iter().any(|(_, v)| v.contains("Authorization")));
        assert_eq!(
            get(&env.vars(Access::LocalFile, &[]), "GIT_ALLOW_PROTOCOL"),
            Some("https:ssh:file")
        );
        assert!(!format!("{env:?}").contains("tok-123456"));
    }

    #[test]
    fn http_only_for_loopback_or_when_allowed() {
        let h = Path::new("/h");
        let p = RemotePolicy::default();
        let proto = |e: &GitEnv| {
            get(&e.vars(Access::Network, &[]), "GIT_ALLOW_PROTOCOL").map(str::to_string)
        };
        assert_eq!(
            proto(&GitEnv::new(h, p, "http://127.0.0.1:9/o/r", None, None)).as_deref(),
            Some("https:ssh:http")
        );
        assert_eq!(
            proto(&GitEnv::new(h, p, "http://example.com/o/r", None, None)).as_deref(),
            Some("https:ssh")
        );
        let allow = RemotePolicy {
            allow_http: true,
            allow_file: true,
        };
        assert_eq!(
            proto(&GitEnv::new(h, allow, "http://example.com/o/r", None, None)).as_deref(),
            Some("https:ssh:http:file")
        );
        let scope = |u: &str| Url::parse(u).ok().as_ref().and_then(header_scope);
        assert_eq!(
            scope("https://u@h.x:8443/a/b"),
            Some("https://h.x:8443/".into())
        );
        assert_eq!(scope("ssh://git@h/o/r"), None);
        assert_eq!(scope("git@h:o/r"), None);
    }

    /// `http://evil.invalid?@127.0.0.1/…`: git (curl) connects to
    /// `evil.invalid`, since `?` ends the authority. Reading the host up to
    /// `/` only took it for loopback: plain http was allowed to a remote
    /// host and the credential was scoped to 127.0.0.1 instead of the host
    /// git talks to. Shown with the real git: it must refuse the transport,
    /// not go looking for evil.invalid over cleartext http.
    #[test]
    fn the_host_is_the_one_git_connects_to() {
        let tmp = std::env::temp_dir();
        let url = "http://evil.invalid?@127.0.0.1:9/o/r.git";
        let env = GitEnv::new(
            &tmp,
            RemotePolicy::default(),
            url,
            Some(GitAuth::new("x-access-token", "tok-123456")),
            None,
        );
        let vars = env.vars(Access::Network, &[]);
        assert_eq!(get(&vars, "GIT_ALLOW_PROTOCOL"), Some("https:ssh"));
        let scopes: Vec<&str> = vars
            .iter()
            .filter(|(_, v)| v.ends_with(".extraHeader"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(scopes, ["http.http://evil.invalid/.extraHeader"]);

        let cancel = crate::cancel::CancelToken::never();
        let redactor = crate::redact::Redactor::empty();
        let mut sink = |_: &str| {};
        let mut git = super::super::run::Git::new(&env, &cancel, &redactor, &mut sink);
        let inv = super::super::run::Invocation::new(
            super::super::error::GitStep::LsRemote,
            &tmp,
            Access::Network,
            &["ls-remote", url],
        );
        let out = git.exec(inv).unwrap();
        assert!(!out.success());
        assert!(
            out.stderr.contains("transport 'http' not allowed"),
            "git was let speak http to a remote host: {}",
            out.stderr
        );
    }
}
