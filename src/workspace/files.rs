//! File operations on trees and files a job or a repository controls:
//! removal that survives `chmod -w`, ownership changes that never follow a
//! link, and bounded reads of regular files only.

use super::with_path;
use crate::process::RunAs;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::Path;

/// `text` as one safe file-name word: every character but ASCII letters,
/// digits, `.`, `_` and `-` becomes `-` (a repository's or a job's name
/// made into a file name never holds a `/` or a space).
pub fn file_name_word(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `lchown` of every entry below and including `top` (iterative: a hostile
/// repository's depth cannot exhaust the stack; symlinks are changed, not
/// followed).
pub(super) fn chown_tree(top: &Path, user: RunAs) -> io::Result<()> {
    let mut stack = vec![top.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(user.uid), Some(user.gid))
            .map_err(|e| with_path(e, "cannot change the owner of", &path))?;
        let meta = fs::symlink_metadata(&path).map_err(|e| with_path(e, "cannot read", &path))?;
        if meta.is_dir() {
            let entries = fs::read_dir(&path).map_err(|e| with_path(e, "cannot list", &path))?;
            for entry in entries {
                stack.push(
                    entry
                        .map_err(|e| with_path(e, "cannot list", &path))?
                        .path(),
                );
            }
        }
    }
    Ok(())
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
