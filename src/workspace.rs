//! The on-disk layout under `WORKSPACE_DIR`, per-job directories and the
//! per-repository lock.
//!
//! ```text
//! WORKSPACE_DIR/
//!   jobs/<job_id>/        one per running job, removed when the job ends
//!     repo/               the checkout the agent works in
//!     home/               the job's HOME (git and agents write dotfiles here)
//!     tmp/                the job's TMPDIR
//!   mirrors/<key>.git     one bare mirror per repository, shared by jobs
//!   locks/<key>.lock      flock(2) files guarding each mirror
//!   state/                runner state; the journal is `state/journal`
//! ```
//!
//! A mirror `<key>` is the sanitized `host_owner_name` of the clone URL plus
//! a short stable hash of the URL without credentials, so two URLs that
//! sanitize alike never share a mirror.
//!
//! The lock is flock(2), not a pid file: the kernel releases it when the
//! holder's file descriptor closes, so a crashed or killed runner can never
//! leave a repository locked.

use crate::cancel::{CancelReason, CancelToken};
use std::ffi::CString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Name of the per-job directory tree.
const JOBS: &str = "jobs";
/// Name of the mirror directory tree.
const MIRRORS: &str = "mirrors";
/// Name of the lock directory.
const LOCKS: &str = "locks";
/// Name of the runner-state directory.
const STATE: &str = "state";

/// The workspace root and its fixed layout (see the module docs).
#[derive(Clone, Debug)]
pub struct Workspace {
    root: PathBuf,
}

impl Workspace {
    /// Opens (creating when needed) the workspace at `root` and its
    /// `jobs/`, `mirrors/`, `locks/` and `state/` directories.
    ///
    /// # Errors
    /// When a directory cannot be created (permissions, read-only disk).
    pub fn open(root: &Path) -> io::Result<Workspace> {
        for sub in [JOBS, MIRRORS, LOCKS, STATE] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| with_path(e, "cannot create", &dir))?;
        }
        let root = fs::canonicalize(root).map_err(|e| with_path(e, "cannot resolve", root))?;
        Ok(Workspace { root })
    }

    /// The workspace root (absolute).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `jobs/`.
    pub fn jobs_dir(&self) -> PathBuf {
        self.root.join(JOBS)
    }

    /// `mirrors/`.
    pub fn mirrors_dir(&self) -> PathBuf {
        self.root.join(MIRRORS)
    }

    /// `locks/`.
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join(LOCKS)
    }

    /// `state/`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(STATE)
    }

    /// `state/journal`, where the journal lives.
    pub fn journal_path(&self) -> PathBuf {
        self.state_dir().join("journal")
    }

    /// `mirrors/<key>.git` for a repository.
    pub fn mirror_path(&self, key: &MirrorKey) -> PathBuf {
        self.mirrors_dir().join(format!("{}.git", key.0))
    }

    /// `locks/<key>.lock` for a repository.
    pub fn lock_path(&self, key: &MirrorKey) -> PathBuf {
        self.locks_dir().join(format!("{}.lock", key.0))
    }

    /// Creates `jobs/<job_id>/{repo,home,tmp}`, replacing any leftover of
    /// an earlier attempt with the same id. The returned guard removes the
    /// directory when dropped.
    ///
    /// # Errors
    /// `InvalidInput` when `job_id` is not a safe single path component
    /// (`[A-Za-z0-9._-]`, not `.`/`..`); otherwise I/O errors, with the path.
    pub fn create_job_dir(&self, job_id: &str) -> io::Result<JobDir> {
        if !is_safe_component(job_id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "job id must be 1-128 characters of [A-Za-z0-9._-] and not `.` or `..`",
            ));
        }
        let root = self.jobs_dir().join(job_id);
        if root.exists() {
            remove_tree(&root)?;
        }
        let dir = JobDir {
            repo: root.join("repo"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            root,
            removed: false,
        };
        // 0700: another job's agent of the same host (another uid, or not
        // root) cannot read this job's checkout, HOME (`.npmrc`, agent
        // credentials) or TMPDIR. Within one uid the mode protects nothing:
        // see README "What the host executor protects".
        // `repo/` is left for `git clone` to create: clone wants it absent or empty.
        for d in [&dir.root, &dir.home, &dir.tmp] {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .map_err(|e| with_path(e, "cannot create", d))?;
        }
        Ok(dir)
    }

    /// Removes every job directory (after a crash no job is running, so
    /// all of them are orphans) and half-made mirrors whose lock is free.
    /// Returns the job ids removed.
    ///
    /// Only call this before any job starts: a running job's directory
    /// would be removed from under it.
    ///
    /// # Errors
    /// When `jobs/` cannot be listed; a directory that cannot be removed is
    /// logged and skipped so one bad entry does not stop recovery.
    pub fn sweep_orphans(&self) -> io::Result<Vec<String>> {
        let mut removed = Vec::new();
        let jobs = self.jobs_dir();
        for entry in fs::read_dir(&jobs).map_err(|e| with_path(e, "cannot list", &jobs))? {
            let entry = entry?;
            let path = entry.path();
            match remove_tree(&path) {
                Ok(()) => removed.push(entry.file_name().to_string_lossy().into_owned()),
                Err(e) => log::warn!("cannot remove orphan job dir {}: {e}", path.display()),
            }
        }
        let mirrors = self.mirrors_dir();
        for entry in fs::read_dir(&mirrors).map_err(|e| with_path(e, "cannot list", &mirrors))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((key, _)) = name.split_once(".git.tmp-") else {
                continue;
            };
            let lock = self.lock_path(&MirrorKey(key.to_string()));
            if let Ok(Some(_held)) = MirrorLock::try_acquire(&lock) {
                if let Err(e) = fs::remove_dir_all(entry.path()) {
                    log::warn!("cannot remove half-made mirror {name}: {e}");
                }
            }
        }
        Ok(removed)
    }
}

/// The directory tree of one job; removed when dropped (whatever happened
/// to the job) or by [`JobDir::remove`].
#[derive(Debug)]
pub struct JobDir {
    root: PathBuf,
    repo: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
    removed: bool,
}

impl JobDir {
    /// `jobs/<job_id>/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `jobs/<job_id>/repo`: the checkout (absent until cloned).
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// `jobs/<job_id>/home`: HOME for git and the agent.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// `jobs/<job_id>/tmp`: TMPDIR for the job.
    pub fn tmp(&self) -> &Path {
        &self.tmp
    }

    /// Removes the tree now, reporting errors (`Drop` can only log them).
    ///
    /// # Errors
    /// When the tree exists and cannot be removed.
    pub fn remove(mut self) -> io::Result<()> {
        self.removed = true;
        remove_tree(&self.root)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove_tree(&self.root) {
                log::warn!("cannot remove job dir {}: {e}", self.root.display());
            }
        }
    }
}

/// Removes a directory tree; a tree the agent made read-only (`chmod -w`
/// on a directory) is made writable and removed anyway. Absent is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_dirs_writable(path);
            fs::remove_dir_all(path).map_err(|e| with_path(e, "cannot remove", path))
        }
        Err(e) => Err(with_path(e, "cannot remove", path)),
    }
}

/// At most `max` bytes of `path` when it is a regular file: opened without
/// following a final symlink and without blocking (a FIFO), and checked
/// again once open. For files a repository or an agent controls (the
/// checkout's `.git/HEAD` and refs, test-detection inputs): a link to
/// `/dev/zero` or a FIFO is an error, never an endless read or a hang.
///
/// # Errors
/// Not found, a symlink (`ELOOP`), not a regular file, or a read error.
pub fn read_regular(path: &Path, max: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    let mut bytes = Vec::new();
    file.take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// `chmod u+rwx` on every directory under `root` (symlinks not followed),
/// so its entries can be removed.
fn make_dirs_writable(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = meta.permissions().mode() | 0o700;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(mode));
        if let Ok(entries) = fs::read_dir(&dir) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

/// The name of a repository's mirror and lock (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MirrorKey(String);

impl MirrorKey {
    /// The key for a clone URL; credentials in the URL (`user:pass@`) are
    /// ignored so they never reach a path and never split a mirror.
    pub fn for_url(url: &str) -> MirrorKey {
        let clean = crate::net::url::without_credentials(url);
        let readable = readable_part(&clean);
        let mut name: String = readable
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        // Collapse runs of `_` and keep names short enough for any file system.
        while name.contains("__") {
            name = name.replace("__", "_");
        }
        let name: String = name
            .trim_matches(|c| c == '_' || c == '.')
            .chars()
            .take(80)
            .collect();
        let name = if name.is_empty() {
            "repo".to_string()
        } else {
            name
        };
        MirrorKey(format!(
            "{name}-{:012x}",
            fnv1a(clean.as_bytes()) & 0xffff_ffff_ffff
        ))
    }

    /// The key as a file-name stem.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MirrorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `host_owner_name` from a URL (https, ssh, scp-like or a local path).
fn readable_part(url: &str) -> String {
    let rest = match url.split_once("://") {
        Some((_, rest)) => rest.to_string(),
        // scp-like `git@host:owner/name.git`
        None => match url.split_once(':') {
            Some((userhost, path)) if !userhost.contains('/') => {
                let host = userhost.rsplit_once('@').map_or(userhost, |(_, h)| h);
                format!("{host}/{path}")
            }
            _ => url.to_string(),
        },
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    // host + the last two segments (owner, name); nested groups keep the hash distinct.
    let mut picked: Vec<&str> = Vec::new();
    if let Some(first) = parts.first() {
        picked.push(first.split(':').next().unwrap_or(first));
    }
    let tail_start = parts.len().saturating_sub(2).max(1);
    picked.extend(parts.iter().skip(tail_start));
    picked.join("_")
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`,
/// so mirror paths survive a runner upgrade.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

fn is_safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Why a repository lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// The lock file could not be opened or locked.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The job was cancelled while waiting.
    Cancelled(CancelReason),
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Io { path, error } => write!(
                f,
                "cannot lock {}: {error} (check that WORKSPACE_DIR is writable)",
                path.display()
            ),
            LockError::Cancelled(r) => {
                write!(f, "waiting for a repository lock: {}", r.describe())
            }
        }
    }
}

impl std::error::Error for LockError {}

/// An exclusive flock(2) on `locks/<key>.lock`, released when dropped (the
/// file closes) or when the process dies (the kernel closes it).
#[derive(Debug)]
pub struct MirrorLock {
    // Held only for its descriptor: closing it releases the lock.
    _file: File,
    path: PathBuf,
}

/// How often a blocked acquire re-tries `LOCK_NB`: short enough that a
/// cancel is seen quickly, long enough to cost nothing.
const LOCK_POLL: Duration = Duration::from_millis(50);
/// How often a blocked acquire logs that it is still waiting.
const LOCK_LOG_EVERY: Duration = Duration::from_secs(10);

impl MirrorLock {
    /// Takes the lock, waiting as long as needed; logs every 10 s while it
    /// waits and gives up when `cancel` fires.
    ///
    /// # Errors
    /// [`LockError::Cancelled`] when cancelled; [`LockError::Io`] when the
    /// lock file cannot be opened or flock fails for another reason.
    pub fn acquire(path: &Path, cancel: &CancelToken) -> Result<MirrorLock, LockError> {
        let start = Instant::now();
        let mut next_log = start + LOCK_LOG_EVERY;
        loop {
            if let Some(lock) = MirrorLock::try_acquire(path)? {
                return Ok(lock);
            }
            if let Some(reason) = cancel.reason() {
                return Err(LockError::Cancelled(reason));
            }
            if Instant::now() >= next_log {
                log::info!(
                    "waiting for repository lock {} ({}s so far; another job is using this repository)",
                    path.display(),
                    start.elapsed().as_secs()
                );
                next_log += LOCK_LOG_EVERY;
            }
            // The wake channel doubles as an interruptible sleep.
            let _ = cancel.wake_rx().recv_timeout(LOCK_POLL);
        }
    }

    /// Takes the lock if it is free right now.
    ///
    /// # Errors
    /// [`LockError::Io`] when the file cannot be opened or flock fails with
    /// anything but "would block".
    pub fn try_acquire(path: &Path) -> Result<Option<MirrorLock>, LockError> {
        let io_err = |error| LockError::Io {
            path: path.to_path_buf(),
            error,
        };
        // std opens with O_CLOEXEC, so children never inherit (and never
        // prolong) the lock.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io_err)?;
        loop {
            // SAFETY: flock(2) on a descriptor we own for the call's duration.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                return Ok(Some(MirrorLock {
                    _file: file,
                    path: path.to_path_buf(),
                }));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EWOULDBLOCK) => return Ok(None),
                Some(libc::EINTR) => continue,
                _ => return Err(io_err(e)),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Bytes available to an unprivileged user on the file system holding
/// `path` (statvfs(3): `f_bavail * f_frsize`).
///
/// # Errors
/// When `path` does not exist or statvfs fails.
pub fn free_space(path: &Path) -> io::Result<u64> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: statvfs writes into the zeroed struct we pass; `c` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(with_path(
            io::Error::last_os_error(),
            "cannot statvfs",
            path,
        ));
    }
    Ok(widen(st.f_bavail).saturating_mul(widen(st.f_frsize)))
}

/// Lossless widening of statvfs fields, whose widths differ between libc
/// targets (u32 on some 32-bit ones, u64 elsewhere).
fn widen<T: Into<u64>>(v: T) -> u64 {
    v.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_regular_refuses_links_fifos_and_devices_and_stops_at_max() {
        let d = std::env::temp_dir().join(format!("ados-read-regular-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("mkdir");
        fs::write(d.join("f"), "0123456789").expect("write");
        std::os::unix::fs::symlink("f", d.join("link")).expect("link");
        std::os::unix::fs::symlink("/dev/zero", d.join("zero")).expect("link");
        let fifo = CString::new(d.join("fifo").as_os_str().as_bytes()).expect("path");
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert_eq!(read_regular(&d.join("f"), 4).expect("read"), b"0123");
        assert!(read_regular(&d.join("link"), 4).is_err());
        assert!(read_regular(&d.join("zero"), 4).is_err());
        assert!(
            read_regular(&d.join("fifo"), 4).is_err(),
            "no hang, no read"
        );
        assert!(read_regular(Path::new("/dev/zero"), 4).is_err());
        let _ = fs::remove_dir_all(&d);
    }

    fn temp_root(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ados-ws-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn mirror_key_is_readable_stable_and_ignores_credentials() {
        let a = MirrorKey::for_url("https://github.com/My-Org/repo.git");
        let b = MirrorKey::for_url("https://x-access-token:s3cret@github.com/My-Org/repo.git");
        assert_eq!(a, b);
        assert!(a.as_str().starts_with("github.com_my-org_repo-"), "{a}");
        assert!(!b.as_str().contains("s3cret"));
        // Same sanitized name, different URL: different key.
        let c = MirrorKey::for_url("https://github.com/my-org/repo.git");
        assert_ne!(a, c);
        let scp = MirrorKey::for_url("git@gitlab.com:grp/sub/proj.git");
        assert!(scp.as_str().starts_with("gitlab.com_sub_proj-"), "{scp}");
        // Stable across builds: pinned value.
        assert_eq!(fnv1a(b"abc"), 0xe71f_a219_0541_574b);
    }

    #[test]
    fn a_query_is_not_user_info_in_a_mirror_key() {
        // git fetches these from evil.com (`?` ends the authority): they
        // must not share, and fill, the real repository's mirror.
        for (hostile, real) in [
            (
                "https://evil.com?@github.com/o/r.git",
                "https://github.com/o/r.git",
            ),
            (
                "http://evil.com#@127.0.0.1/o/r.git",
                "http://127.0.0.1/o/r.git",
            ),
        ] {
            assert_ne!(
                MirrorKey::for_url(hostile),
                MirrorKey::for_url(real),
                "{hostile}"
            );
        }
    }

    #[test]
    fn job_dir_is_created_and_removed_on_drop() {
        let root = temp_root("jobdir");
        let ws = Workspace::open(&root).unwrap();
        let dir = ws.create_job_dir("j-1").unwrap();
        assert!(dir.home().is_dir() && dir.tmp().is_dir());
        let path = dir.root().to_path_buf();
        fs::write(dir.home().join("x"), "y").unwrap();
        drop(dir);
        assert!(!path.exists());
        // A tree the agent made read-only is still removed.
        let dir = ws.create_job_dir("j-2").unwrap();
        let locked = dir.tmp().join("ro");
        fs::create_dir_all(locked.join("inner")).unwrap();
        fs::write(locked.join("inner/f"), "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(locked.join("inner"), fs::Permissions::from_mode(0o500)).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o500)).unwrap();
        let path = dir.root().to_path_buf();
        dir.remove().unwrap();
        assert!(!path.exists());
        assert!(ws.create_job_dir("../x").is_err());
        assert!(ws.create_job_dir("..").is_err());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_job_dir_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let root = temp_root("jobmode");
        let ws = Workspace::open(&root).unwrap();
        let dir = ws.create_job_dir("j-mode").unwrap();
        for d in [dir.root(), dir.home(), dir.tmp()] {
            let mode = fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
        }
        drop(dir);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sweep_removes_orphans_and_half_made_mirrors() {
        let root = temp_root("sweep");
        let ws = Workspace::open(&root).unwrap();
        let dir = ws.create_job_dir("left-over").unwrap();
        std::mem::forget(dir); // as if the runner crashed
        let half = ws.mirrors_dir().join("k-1.git.tmp-123");
        fs::create_dir_all(&half).unwrap();
        let removed = ws.sweep_orphans().unwrap();
        assert_eq!(removed, vec!["left-over".to_string()]);
        assert!(!half.exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lock_is_exclusive_and_cancel_stops_the_wait() {
        let root = temp_root("lock");
        let ws = Workspace::open(&root).unwrap();
        let path = ws.lock_path(&MirrorKey::for_url("https://h/o/r"));
        let held = MirrorLock::acquire(&path, &CancelToken::never()).unwrap();
        assert!(MirrorLock::try_acquire(&path).unwrap().is_none());
        let (c, t) = crate::cancel::cancel_pair();
        c.cancel(CancelReason::Server);
        assert!(matches!(
            MirrorLock::acquire(&path, &t),
            Err(LockError::Cancelled(CancelReason::Server))
        ));
        drop(held);
        assert!(MirrorLock::try_acquire(&path).unwrap().is_some());
        assert!(free_space(&root).unwrap() > 0);
        fs::remove_dir_all(&root).unwrap();
    }
}
