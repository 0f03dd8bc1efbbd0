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

mod files;
mod job_dir;
mod lock;
mod mirror_key;

pub use files::{file_name_word, read_regular, remove_tree};
pub use job_dir::JobDir;
pub use lock::{LockError, MirrorLock};
pub use mirror_key::MirrorKey;

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

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
        // Job users (`ADOS_JOB_UID_BASE`) may pass through `jobs/` to their
        // own directory and read the mirrors their checkouts borrow objects
        // from; the journals (every job's events) and the locks are the
        // runner's alone.
        for (sub, mode) in [
            (JOBS, 0o711),
            (MIRRORS, 0o755),
            (LOCKS, 0o700),
            (STATE, 0o700),
        ] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(|e| with_path(e, "cannot create", &dir))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| with_path(e, "cannot set the mode of", &dir))?;
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
    use super::mirror_key::fnv1a;
    use super::*;
    use crate::cancel::{CancelReason, CancelToken};
    use crate::process::RunAs;

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
    fn handing_a_job_dir_to_its_user_gives_only_the_jobs_part() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: changing owners needs root (CI runs as root)");
            return;
        }
        let root = temp_root("handto");
        let ws = Workspace::open(&root).unwrap();
        let dir = ws.create_job_dir("j-user").unwrap();
        fs::create_dir_all(dir.repo().join("src/deep")).unwrap();
        fs::write(dir.repo().join("src/deep/a.rs"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.repo().join("link")).unwrap();
        let runner_git = dir.root().join("git");
        fs::create_dir_all(&runner_git).unwrap();
        let user = RunAs {
            uid: 200_001,
            gid: 200_001,
        };
        dir.hand_to(Some(user)).unwrap();
        for p in [
            dir.repo().to_path_buf(),
            dir.repo().join("src/deep/a.rs"),
            dir.repo().join("link"),
            dir.home().to_path_buf(),
            dir.tmp().to_path_buf(),
        ] {
            let m = fs::symlink_metadata(&p).unwrap();
            assert_eq!((m.uid(), m.gid()), (200_001, 200_001), "{}", p.display());
        }
        assert_eq!(
            fs::metadata("/etc/hostname").unwrap().uid(),
            0,
            "a link is not followed"
        );
        let top = fs::metadata(dir.root()).unwrap();
        assert_eq!((top.uid(), top.permissions().mode() & 0o777), (0, 0o711));
        assert_eq!(
            fs::metadata(&runner_git).unwrap().uid(),
            0,
            "the runner's git stays its own"
        );
        dir.hand_to(None).unwrap();
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
