//! Reads of files in a job's checkout, which the repository's authors (and
//! the agent) control: only regular files, only inside the checkout (a
//! committed symlink to `/dev/zero`, a FIFO or `/etc/shadow` is not read),
//! opened without following a link and without blocking, and never more
//! than a given number of bytes.

use crate::workspace::read_regular;
use std::io;
use std::path::{Path, PathBuf};

/// The checkout, canonical, as the fence every read is checked against.
#[derive(Clone, Debug)]
pub struct RepoFiles {
    root: PathBuf,
}

impl RepoFiles {
    /// The files of the checkout at `root`.
    ///
    /// # Errors
    /// When `root` cannot be resolved (it does not exist).
    pub fn new(root: &Path) -> io::Result<RepoFiles> {
        Ok(RepoFiles {
            root: root.canonicalize()?,
        })
    }

    /// The checkout's canonical path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `path` resolved, when it exists and stays inside the checkout.
    pub fn inside(&self, path: &Path) -> Option<PathBuf> {
        let real = path.canonicalize().ok()?;
        real.starts_with(&self.root).then_some(real)
    }

    /// `path` resolved, when it is a regular file inside the checkout.
    pub fn regular(&self, path: &Path) -> Option<PathBuf> {
        let real = self.inside(path)?;
        real.metadata().ok()?.is_file().then_some(real)
    }

    /// At most `max` bytes of the regular file `path` (lossy UTF-8), or
    /// `None` when it is not a regular file inside the checkout or cannot
    /// be read.
    pub fn read(&self, path: &Path, max: usize) -> Option<String> {
        // The resolved path has no link left: opened without following
        // one, a link swapped in after the check is refused.
        let real = self.regular(path)?;
        let bytes = read_regular(&real, max).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn only_regular_files_inside_the_checkout_are_read_and_only_so_much() {
        let base = std::env::temp_dir().join(format!("ados-repo-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("repo");
        std::fs::create_dir_all(root.join("sub")).expect("mkdir");
        std::fs::write(root.join("a.txt"), "0123456789").expect("write");
        std::fs::write(base.join("outside.txt"), "secret").expect("write");
        symlink("a.txt", root.join("inner-link")).expect("link");
        symlink("../outside.txt", root.join("out-link")).expect("link");
        symlink("/dev/zero", root.join("zero")).expect("link");
        let files = RepoFiles::new(&root).expect("root");
        assert_eq!(files.read(&root.join("a.txt"), 4).as_deref(), Some("0123"));
        assert_eq!(
            files.read(&root.join("inner-link"), 100).as_deref(),
            Some("0123456789")
        );
        assert_eq!(files.read(&root.join("out-link"), 100), None);
        assert_eq!(files.read(&root.join("zero"), 100), None);
        assert_eq!(files.read(&root.join("sub"), 100), None);
        assert_eq!(files.read(&root.join("missing"), 100), None);
        assert!(files.inside(&root.join("sub")).is_some());
        let _ = std::fs::remove_dir_all(&base);
    }
}
