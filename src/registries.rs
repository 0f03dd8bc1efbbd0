//! Package-registry credentials from the job spec (`registries`): `.npmrc`,
//! `pip.conf` and Maven `settings.xml`.
//!
//! They are written into the job's own HOME (`jobs/<id>/home`), which is
//! where npm (`~/.npmrc`), pip (`~/.config/pip/pip.conf`) and Maven
//! (`~/.m2/settings.xml`) look, and which every agent and test process of
//! the job gets as `HOME`. So they are never inside the checkout, are
//! readable only by the runner's user (mode 0600), and are deleted with the
//! job directory when the job ends, whatever its outcome. Their names are
//! also put in the checkout's `.git/info/exclude`, so a copy an agent makes
//! at the repository root is not committed either.

use crate::job::spec::RegistrySpec;
use crate::net::Url;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The files written for a job.
#[derive(Debug, Default)]
pub struct RegistryFiles {
    /// Every file written (all under the job's HOME).
    pub paths: Vec<PathBuf>,
    /// The registry kinds written (`npm`, `pip`, `maven`).
    kinds: Vec<&'static str>,
}

impl RegistryFiles {
    /// `.git/info/exclude` patterns: nothing is written into the checkout,
    /// but a *new* credentials file of the same name at the repository root
    /// (an agent copying `~/.npmrc` there, say) is kept out of the commit
    /// too. Anchored to the root and untracked-only (git's exclude rules),
    /// so a repository's own tracked `.npmrc` still commits normally.
    pub fn exclude_patterns(&self) -> Vec<String> {
        let mut out = Vec::new();
        for kind in &self.kinds {
            out.push(
                match *kind {
                    "npm" => "/.npmrc",
                    "pip" => "/pip.conf",
                    _ => "/settings.xml",
                }
                .to_string(),
            );
        }
        out
    }
}

/// Write `content` to `path` (making its directory), readable by the
/// runner's user only: credentials and prompts.
pub(crate) fn write_private(path: &Path, content: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())?;
    f.sync_all()
}

/// `https://host/path` with `user:token@` as its user info (replacing any
/// the URL had).
fn with_userinfo(url: &str, user: &str, token: &str) -> String {
    match Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}@{}{}",
            u.scheme(),
            pct(user),
            pct(token),
            u.host_port(),
            u.rest()
        ),
        Err(_) => url.to_string(),
    }
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// Write the registry files for `registries` into `home`. `_repo` is the
/// checkout, deliberately unused: nothing is written there.
pub fn write(registries: &[RegistrySpec], _repo: &Path, home: &Path) -> io::Result<RegistryFiles> {
    let mut files = RegistryFiles::default();
    let mut npmrc = String::new();
    let mut pip_urls = Vec::new();
    let mut maven = Vec::new();
    for (i, r) in registries.iter().enumerate() {
        match r.kind.as_str() {
            "npm" => {
                let url = if r.url.ends_with('/') {
                    r.url.clone()
                } else {
                    format!("{}/", r.url)
                };
                match &r.scope {
                    Some(scope) => {
                        let scope = if scope.starts_with('@') {
                            scope.clone()
                        } else {
                            format!("@{scope}")
                        };
                        npmrc.push_str(&format!("{scope}:registry={url}\n"));
                    }
                    None => npmrc.push_str(&format!("registry={url}\n")),
                }
                // npm keys the token by `//host[:port]/path/`, without user info.
                let host_path = match Url::parse(&url) {
                    Ok(u) => format!("{}{}", u.host_port(), u.rest()),
                    Err(_) => url.clone(),
                };
                npmrc.push_str(&format!("//{host_path}:_authToken={}\n", r.token));
            }
            "pip" => pip_urls.push(with_userinfo(&r.url, "__token__", &r.token)),
            "maven" => maven.push((format!("ados-registry-{i}"), r)),
            _ => {}
        }
    }
    if !npmrc.is_empty() {
        let p = home.join(".npmrc");
        write_private(&p, &npmrc)?;
        files.paths.push(p);
        files.kinds.push("npm");
    }
    if let Some((first, rest)) = pip_urls.split_first() {
        let mut conf = format!("[global]\nindex-url = {first}\n");
        if !rest.is_empty() {
            conf.push_str(&format!("extra-index-url =\n    {}\n", rest.join("\n    ")));
        }
        let p = home.join(".config/pip/pip.conf");
        write_private(&p, &conf)?;
        files.paths.push(p);
        files.kinds.push("pip");
    }
    if !maven.is_empty() {
        let mut xml = String::from("<settings>\n  <servers>\n");
        for (id, r) in &maven {
            xml.push_str(&format!(
                "    <server><id>{id}</id><username>ados</username><password>{}</password></server>\n",
                xml_escape(&r.token)
            ));
        }
        xml.push_str("  </servers>\n  <profiles><profile><id>ados</id><repositories>\n");
        for (id, r) in &maven {
            xml.push_str(&format!(
                "    <repository><id>{id}</id><url>{}</url></repository>\n",
                xml_escape(&r.url)
            ));
        }
        xml.push_str("  </repositories></profile></profiles>\n  <activeProfiles><activeProfile>ados</activeProfile></activeProfiles>\n</settings>\n");
        let p = home.join(".m2/settings.xml");
        write_private(&p, &xml)?;
        files.paths.push(p);
        files.kinds.push("maven");
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn files_land_in_home_with_mode_0600() {
        let home = std::env::temp_dir().join(format!("ados-reg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let regs = vec![
            RegistrySpec {
                kind: "npm".into(),
                url: "https://npm.pkg.github.com".into(),
                scope: Some("@myorg".into()),
                token: "npm-token-123456".into(),
            },
            RegistrySpec {
                kind: "pip".into(),
                url: "https://pypi.example/simple".into(),
                scope: None,
                token: "pip/token+1".into(),
            },
            RegistrySpec {
                kind: "maven".into(),
                url: "https://maven.example/repo".into(),
                scope: None,
                token: "mvn<token>".into(),
            },
        ];
        let files = write(&regs, Path::new("/nonexistent-repo"), &home).expect("write");
        assert_eq!(files.paths.len(), 3);
        assert_eq!(
            files.exclude_patterns(),
            vec!["/.npmrc", "/pip.conf", "/settings.xml"]
        );
        let npmrc = std::fs::read_to_string(home.join(".npmrc")).expect("npmrc");
        assert!(npmrc.contains("@myorg:registry=https://npm.pkg.github.com/"));
        assert!(npmrc.contains("//npm.pkg.github.com/:_authToken=npm-token-123456"));
        let pip = std::fs::read_to_string(home.join(".config/pip/pip.conf")).expect("pip");
        assert!(pip.contains("https://__token__:pip%2Ftoken%2B1@pypi.example/simple"));
        let mvn = std::fs::read_to_string(home.join(".m2/settings.xml")).expect("mvn");
        assert!(mvn.contains("mvn&lt;token&gt;"));
        for p in &files.paths {
            let mode = std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
        let _ = std::fs::remove_dir_all(&home);
    }
}
