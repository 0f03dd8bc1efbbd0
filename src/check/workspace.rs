//! The workspace: writable, and with the free space the daemon's disk
//! guard wants ([`crate::workspace::free_space`], the same function and
//! the same threshold).

use super::Check;
use crate::config::format_memory;
use std::io::Write;
use std::path::Path;

/// A file can be created in `dir`.
pub(super) fn writable(dir: &Path) -> Check {
    let probe = dir.join(format!(".ados-check-{}", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => Check::pass("workspace writable", dir.display().to_string()),
        Err(e) => {
            let _ = std::fs::remove_file(&probe);
            Check::fail(
                "workspace writable",
                format!("cannot create a file in {}: {e}", dir.display()),
                "make WORKSPACE_DIR writable by the runner's user (a volume owned by it)",
            )
        }
    }
}

/// Free space of `dir` against `ADOS_MIN_FREE_DISK`, read the way the
/// dispatcher's disk guard reads it.
pub(super) fn free_space(dir: &Path, min: u64) -> Check {
    match crate::workspace::free_space(dir) {
        Ok(free) => disk_check(dir, free, min),
        Err(e) => Check::fail(
            "workspace free space",
            format!("cannot read free space of {}: {e}", dir.display()),
            "check that WORKSPACE_DIR is on a mounted volume",
        ),
    }
}

fn disk_check(dir: &Path, free: u64, min: u64) -> Check {
    let name = "workspace free space";
    if min == 0 {
        return Check::pass(
            name,
            format!(
                "{} free (check disabled: ADOS_MIN_FREE_DISK=0)",
                format_memory(free)
            ),
        );
    }
    if free >= min {
        Check::pass(
            name,
            format!("{} free in {}", format_memory(free), dir.display()),
        )
    } else {
        Check::fail(
            name,
            format!(
                "{} free in {}, below ADOS_MIN_FREE_DISK ({}); new jobs would be refused",
                format_memory(free),
                dir.display(),
                format_memory(min)
            ),
            "free space on that volume, give it a bigger volume, or lower ADOS_MIN_FREE_DISK",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::temp_dir;
    use super::*;

    #[test]
    fn workspace_and_disk() {
        let dir = temp_dir("wsw");
        assert!(writable(&dir).ok);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file removed"
        );
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(!writable(&file).ok, "a file is not a workspace");
        assert!(crate::workspace::free_space(&dir).unwrap() > 0);
        assert!(crate::workspace::free_space(&dir.join("missing")).is_err());
        assert!(disk_check(&dir, 3 << 30, 2 << 30).ok);
        let low = disk_check(&dir, 1 << 30, 2 << 30);
        assert!(
            !low.ok && low.detail.contains("1GB free") && low.detail.contains("(2GB)"),
            "{low:?}"
        );
        assert!(disk_check(&dir, 0, 0).ok);
    }
}
