//! One bare mirror per repository under `mirrors/`, shared by every job on
//! that repository, so history is downloaded once and later jobs only fetch
//! what is new.
//!
//! The mirror fetches branches and tags only (`+refs/heads/*`,
//! `+refs/tags/*`), not every ref as `git clone --mirror` would: on GitHub
//! that would pull one ref per pull request, and `--prune` on `refs/*` would
//! delete the mirror's own temporary push ref. A new mirror is built in a
//! `<key>.git.tmp-<pid>` directory and renamed into place only after its
//! first fetch succeeded, so a crash mid-clone never leaves a half-made
//! mirror under the real name; leftovers are removed under the lock.
//! `gc.pruneExpire=never` keeps objects that job checkouts borrow (through
//! `objects/info/alternates`) even after their branch is deleted upstream.
//!
//! The mirror is the runner's state, but a job's agent can find it (its
//! checkout borrows the mirror's objects, and `.git/objects/info/alternates`
//! names the path). So the runner trusts nothing the mirror's files say:
//! [`Mirror::restore_config`] rewrites its whole configuration (URL,
//! refspecs; a narrowed `remote.origin.fetch`, a planted `http.proxy` or
//! `insteadOf` are gone) and removes files that change what git sees
//! (`objects/info/alternates`, `info/grafts`, `shallow`) before every
//! fetch and push; the fetch's forced refspecs put every branch back where
//! upstream has it; replace refs are ignored (`GIT_NO_REPLACE_OBJECTS`);
//! and a job's base is verified upstream before its push
//! (`Checkout::push`).

use super::env::Access;
use super::error::{GitError, GitStep};
use super::run::{Capture, Git, Invocation};
use crate::net::Url;
use crate::workspace::{MirrorKey, MirrorLock, Workspace};
use std::fs;
use std::path::{Path, PathBuf};

/// A repository's mirror, ready to clone checkouts from.
#[derive(Clone, Debug)]
pub struct Mirror {
    path: PathBuf,
    lock_path: PathBuf,
    url: String,
    key: MirrorKey,
    reused: bool,
}

impl Mirror {
    /// Makes sure the mirror of `url` exists and is up to date: under the
    /// repository's lock, fetches (`--prune`) into an existing mirror, or
    /// builds a new one.
    ///
    /// # Errors
    /// [`GitError::CredentialsInUrl`] when `url` carries user info on
    /// http(s); [`GitError::AuthFailed`] when the remote refuses the
    /// credential; [`GitError::Lock`] when cancelled while waiting for the
    /// lock; any other git or I/O failure, tagged `mirror clone` or
    /// `mirror fetch`.
    pub fn ensure(ws: &Workspace, url: &str, git: &mut Git<'_>) -> Result<Mirror, GitError> {
        check_url(url)?;
        let key = MirrorKey::for_url(url);
        let path = ws.mirror_path(&key);
        let lock_path = ws.lock_path(&key);
        let _lock = MirrorLock::acquire(&lock_path, git.cancel())?;
        remove_leftovers(&ws.mirrors_dir(), &key);
        let mut mirror = Mirror {
            path,
            lock_path,
            url: url.to_string(),
            key,
            reused: false,
        };
        if mirror.path.exists() {
            if looks_like_bare_repo(&mirror.path) {
                match mirror.restore_config().and_then(|()| mirror.fetch(git)) {
                    Ok(()) => {
                        mirror.reused = true;
                        return Ok(mirror);
                    }
                    Err(GitError::Failed { message, .. }) if looks_corrupt(&message) => {
                        log::warn!("mirror {} looks corrupt; cloning it again", mirror.key);
                    }
                    Err(e) => return Err(e),
                }
            } else {
                log::warn!(
                    "mirror {} is not a usable repository; cloning it again",
                    mirror.key
                );
            }
            fs::remove_dir_all(&mirror.path).map_err(|error| GitError::Io {
                step: GitStep::MirrorClone,
                path: mirror.path.clone(),
                error,
            })?;
        }
        mirror.create(git, &ws.mirrors_dir())?;
        Ok(mirror)
    }

    /// `mirrors/<key>.git`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether an existing mirror was updated (`false`: cloned now).
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// The remote URL (without credentials).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The repository's key.
    pub fn key(&self) -> &MirrorKey {
        &self.key
    }

    /// `locks/<key>.lock`.
    pub(crate) fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Writes the mirror's whole configuration as the runner made it and
    /// removes files that would change which objects or history git sees.
    /// Called under the repository's lock before every command that talks
    /// to the remote.
    ///
    /// # Errors
    /// I/O errors writing the configuration or removing a planted file.
    pub(crate) fn restore_config(&self) -> Result<(), GitError> {
        write_config(&self.path, &self.url, GitStep::MirrorFetch)?;
        for planted in [
            "objects/info/alternates",
            "objects/info/http-alternates",
            "info/grafts",
            "shallow",
        ] {
            let path = self.path.join(planted);
            match fs::remove_file(&path) {
                Ok(()) => log::warn!("mirror {}: removed a planted {planted}", self.key),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(GitError::Io {
                        step: GitStep::MirrorFetch,
                        path,
                        error,
                    })
                }
            }
        }
        Ok(())
    }

    fn fetch(&self, git: &mut Git<'_>) -> Result<(), GitError> {
        let inv = Invocation::new(
            GitStep::MirrorFetch,
            &self.path,
            Access::Network,
            &[
                "fetch",
                "--progress",
                "--prune",
                "--no-write-fetch-head",
                "origin",
            ],
        );
        git.exec(inv)?.check().map(drop)
    }

    fn create(&self, git: &mut Git<'_>, mirrors_dir: &Path) -> Result<(), GitError> {
        let step = GitStep::MirrorClone;
        let name = format!("{}.git.tmp-{}", self.key, std::process::id());
        let tmp = mirrors_dir.join(&name);
        let tmp_s = tmp.display().to_string();
        let run = |git: &mut Git<'_>, cwd: &Path, args: &[&str]| {
            git.exec(Invocation::new(step, cwd, Access::Local, args).capture(Capture::Keep))?
                .check()
                .map(drop)
        };
        let result = (|| {
            run(
                git,
                mirrors_dir,
                &["init", "--bare", "--quiet", "--template=", &tmp_s],
            )?;
            write_config(&tmp, &self.url, step)?;
            let inv = Invocation::new(
                step,
                &tmp,
                Access::Network,
                &[
                    "fetch",
                    "--progress",
                    "--prune",
                    "--no-write-fetch-head",
                    "origin",
                ],
            );
            git.exec(inv)?.check()?;
            fs::rename(&tmp, &self.path).map_err(|error| GitError::Io {
                step,
                path: self.path.clone(),
                error,
            })
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result
    }
}

/// Writes a mirror's whole configuration (one write instead of several
/// `git config` processes; written to a temporary file and renamed, so a
/// crash leaves the old or the new file, never half of one). The URL was
/// validated (no control characters, no spaces); it is quoted and escaped
/// the way git-config(1) reads values.
fn write_config(mirror: &Path, url: &str, step: GitStep) -> Result<(), GitError> {
    let quoted = url.replace('\\', "\\\\").replace('"', "\\\"");
    let text = format!(
        "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n\
         [remote \"origin\"]\n\turl = \"{quoted}\"\n\tfetch = +refs/heads/*:refs/heads/*\n\tfetch = +refs/tags/*:refs/tags/*\n\
         [gc]\n\tpruneExpire = never\n"
    );
    let config = mirror.join("config");
    let tmp = mirror.join("config.ados-tmp");
    fs::write(&tmp, text)
        .and_then(|()| fs::rename(&tmp, &config))
        .map_err(|error| GitError::Io {
            step,
            path: config,
            error,
        })
}

/// Refuses URLs git could take as an option, and http(s) URLs with user
/// info: a token there would be written to `.git/config`.
fn check_url(url: &str) -> Result<(), GitError> {
    if let Ok(parsed) = Url::parse(url) {
        if matches!(parsed.scheme(), "https" | "http") && parsed.userinfo().is_some() {
            return Err(GitError::CredentialsInUrl);
        }
    }
    if url.starts_with('-') || url.is_empty() {
        return Err(GitError::Failed {
            step: GitStep::MirrorClone,
            exit_code: None,
            message: "repo.clone_url is empty or starts with `-`".into(),
        });
    }
    Ok(())
}

/// A bare repository by its files (`HEAD`, `objects/`, `refs/`, a config
/// saying `bare = true`): no git process for a check made on every job. A
/// mirror that passes this but is broken inside fails its fetch, which
/// [`looks_corrupt`] turns into a fresh clone.
fn looks_like_bare_repo(path: &Path) -> bool {
    path.join("HEAD").is_file()
        && path.join("objects").is_dir()
        && path.join("refs").is_dir()
        && fs::read_to_string(path.join("config"))
            .map(|c| c.lines().any(|l| l.trim().replace(' ', "") == "bare=true"))
            .unwrap_or(false)
}

fn looks_corrupt(stderr: &str) -> bool {
    [
        "corrupt",
        "bad object",
        "not a git repository",
        "missing object",
        "loose object",
    ]
    .iter()
    .any(|m| stderr.contains(m))
}

/// Removes `<key>.git.tmp-*` left by a crash; the caller holds the lock.
fn remove_leftovers(mirrors_dir: &Path, key: &MirrorKey) {
    let prefix = format!("{key}.git.tmp-");
    let Ok(entries) = fs::read_dir(mirrors_dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            log::info!("removing half-made mirror {}", entry.path().display());
            if let Err(e) = fs::remove_dir_all(entry.path()) {
                log::warn!("cannot remove {}: {e}", entry.path().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_with_credentials_or_option_syntax_are_refused() {
        assert!(matches!(
            check_url("https://x-access-token:t@github.com/o/r.git"),
            Err(GitError::CredentialsInUrl)
        ));
        assert!(matches!(
            check_url("https://tok@github.com/o/r.git"),
            Err(GitError::CredentialsInUrl)
        ));
        assert!(check_url("--upload-pack=x").is_err());
        assert!(check_url("https://github.com/o/r.git").is_ok());
        assert!(check_url("git@github.com:o/r.git").is_ok());
    }
}
