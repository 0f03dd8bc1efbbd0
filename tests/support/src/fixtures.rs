//! Shared test fixtures: temporary directories, bare repositories with an
//! initial commit, a `git` wrapper that records every argv, and a helper
//! to run the real git with an isolated configuration.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A directory under the system temp dir, removed (with its contents) when
/// dropped.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempDir {
    /// A new, empty, uniquely named directory. `label` shows up in the name.
    pub fn new(label: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let path = std::env::temp_dir().join(format!(
            "ados-test-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        // Canonical, so paths compare equal to what git and the runner print.
        let path = fs::canonicalize(&path).expect("canonicalize temp dir");
        TempDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/rel`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The environment for test-side git: no system/global config, fixed
/// identity, no prompts.
fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(real_git());
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Fixture")
        .env("GIT_AUTHOR_EMAIL", "fixture@example.com")
        .env("GIT_COMMITTER_NAME", "Fixture")
        .env("GIT_COMMITTER_EMAIL", "fixture@example.com")
        .env("LC_ALL", "C");
    cmd
}

/// Runs the real git in `dir` with an isolated config; returns stdout.
///
/// # Panics
/// When git fails (the test is broken then), with git's stderr.
pub fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = git_command(dir, args).output().expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the real git in `dir`; returns (success, stdout, stderr) without
/// panicking.
pub fn try_git(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = git_command(dir, args).output().expect("run git");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates the bare repository `dir/name` (e.g. `o/r.git`) whose `main`
/// has one commit with `files` (path, content). Returns its path.
pub fn make_bare_repo(dir: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let bare = dir.join(name);
    let work = dir.join(format!(".work-{}", name.replace('/', "_")));
    fs::create_dir_all(&work).expect("create work dir");
    run_git(&work, &["init", "--quiet", "--initial-branch=main"]);
    for (path, content) in files {
        let p = work.join(path);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create file dir");
        }
        fs::write(&p, content).expect("write file");
    }
    run_git(&work, &["add", "--all"]);
    run_git(
        &work,
        &["commit", "--quiet", "--allow-empty", "-m", "initial"],
    );
    if let Some(parent) = bare.parent() {
        fs::create_dir_all(parent).expect("create bare parent");
    }
    let bare_s = bare.display().to_string();
    run_git(
        dir,
        &[
            "clone",
            "--quiet",
            "--bare",
            &work.display().to_string(),
            &bare_s,
        ],
    );
    fs::remove_dir_all(&work).expect("remove work dir");
    bare
}

/// Adds a commit with `files` on `branch` of the bare repository `bare`
/// (as another user pushing to the server would). Returns the new sha.
pub fn commit_to_bare(bare: &Path, branch: &str, files: &[(&str, &str)]) -> String {
    let work = bare.with_extension(format!("work-{}", COUNTER.fetch_add(1, Ordering::SeqCst)));
    let work_s = work.display().to_string();
    let bare_s = bare.display().to_string();
    let parent = bare.parent().expect("bare repo has a parent");
    run_git(
        parent,
        &["clone", "--quiet", "--branch", branch, &bare_s, &work_s],
    );
    for (path, content) in files {
        fs::write(work.join(path), content).expect("write file");
    }
    run_git(&work, &["add", "--all"]);
    run_git(&work, &["commit", "--quiet", "-m", "upstream change"]);
    run_git(&work, &["push", "--quiet", "origin", branch]);
    let sha = run_git(&work, &["rev-parse", "HEAD"]).trim().to_string();
    fs::remove_dir_all(&work).expect("remove work dir");
    sha
}

/// The absolute path of the real git, found once in PATH.
pub fn real_git() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("git"))
        .find(|p| p.is_file() && !p.to_string_lossy().contains("ados-test-"))
        .unwrap_or_else(|| PathBuf::from("/usr/bin/git"))
}

/// Writes `dir/bin/git`, a wrapper that appends its argv as one line
/// (`argv: a b c`) to `dir/git-argv.log`, then execs the real git. Put
/// `dir/bin` first in PATH to record every git call, including the ones
/// git makes itself. Returns `dir/bin`.
pub fn git_argv_recorder(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin).expect("create bin dir");
    let log = dir.join("git-argv.log");
    let script = format!(
        "#!/bin/sh\n{{ printf 'argv:'; for a in \"$@\"; do printf ' %s' \"$a\"; done; printf '\\n'; }} >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real_git().display()
    );
    let wrapper = bin.join("git");
    fs::write(&wrapper, script).expect("write git wrapper");
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod git wrapper");
    bin
}

/// The argv lines recorded by [`git_argv_recorder`] in `dir`.
pub fn recorded_argv(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("git-argv.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every regular file under `root` (recursively), for leak scans.
pub fn walk_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                out.push(e.path());
            }
        }
    }
    out
}

/// The files under `root` whose bytes contain `needle`.
pub fn files_containing(root: &Path, needle: &[u8]) -> Vec<PathBuf> {
    walk_files(root)
        .into_iter()
        .filter(|p| {
            fs::read(p)
                .map(|b| b.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}
