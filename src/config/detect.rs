//! Defaults detected from the host when a variable is unset: CPUs and
//! memory (the cgroup limits first, because in a container those are what
//! the runner may really use, then the machine's), and the host name.
//!
//! Both cgroup versions are read: v2's `cpu.max` and `memory.max`, else
//! v1's `cpu.cfs_quota_us`/`cpu.cfs_period_us` and `memory.limit_in_bytes`
//! (`docker run --cpus 1.5 --memory 1g` on a cgroup v1 host writes those).
//! In a container the controller's mount is the container's own cgroup; on
//! a host the process's cgroup path (`/proc/self/cgroup`) leads below it.
//!
//! The parsers are pure functions over file contents so they can be tested
//! without a cgroup; the `detect_*` functions only read the files.

use std::fs;

/// cgroup v2 CPU limit of this container.
const CPU_MAX: &str = "/sys/fs/cgroup/cpu.max";
/// cgroup v2 memory limit of this container.
const MEMORY_MAX: &str = "/sys/fs/cgroup/memory.max";
/// Where cgroup v1 controllers are mounted.
const CGROUP_V1: &str = "/sys/fs/cgroup";
/// At least this much in `memory.limit_in_bytes` means "no limit": the
/// kernel writes `i64::MAX` rounded down to a page (9223372036854771712).
const V1_NO_LIMIT: u64 = 1 << 62;
/// How much of a cgroup file is read (they are one short line).
const CGROUP_READ_MAX: u64 = 64 * 1024;

/// `cpu.max` is `"<quota> <period>"` or `"max <period>"`. A quota is turned
/// into whole CPUs, rounded up (150000/100000 → 2): a job may burst on a
/// partial CPU, and 0 slots would make the runner useless.
pub fn cpus_from_cpu_max(content: &str) -> Option<u32> {
    let mut parts = content.split_whitespace();
    let quota = parts.next()?;
    if quota == "max" {
        return None;
    }
    let quota: u64 = quota.parse().ok()?;
    let period: u64 = parts.next().unwrap_or("100000").parse().ok()?;
    if quota == 0 || period == 0 {
        return None;
    }
    u32::try_from(quota.div_ceil(period)).ok()
}

/// `memory.max` is a byte count or `"max"` (no limit).
pub fn memory_from_memory_max(content: &str) -> Option<u64> {
    match content.trim() {
        "max" => None,
        n => n.parse().ok().filter(|b| *b > 0),
    }
}

/// cgroup v1: `cpu.cfs_quota_us` (`-1`: no limit) over `cpu.cfs_period_us`,
/// rounded up like [`cpus_from_cpu_max`].
pub fn cpus_from_cfs(quota: &str, period: &str) -> Option<u32> {
    let quota: i64 = quota.trim().parse().ok()?;
    let period: u64 = period.trim().parse().ok()?;
    let quota = u64::try_from(quota).ok().filter(|q| *q > 0)?;
    if period == 0 {
        return None;
    }
    u32::try_from(quota.div_ceil(period)).ok()
}

/// cgroup v1: `memory.limit_in_bytes`, where a huge value means no limit.
pub fn memory_from_limit_in_bytes(content: &str) -> Option<u64> {
    content
        .trim()
        .parse()
        .ok()
        .filter(|b| *b > 0 && *b < V1_NO_LIMIT)
}

/// The cgroup v1 path of `controller` in `/proc/self/cgroup`
/// (`4:memory:/docker/<id>`, `1:cpu,cpuacct:/user.slice`).
pub fn v1_cgroup_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _hierarchy = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })
}

/// The directories where this process's v1 `controller` files may be: its
/// own cgroup's on a host, the mount's root in a container (where the
/// mount is that cgroup, and `/proc/self/cgroup` names the host's path).
fn v1_dirs(controller: &str) -> Vec<std::path::PathBuf> {
    let base = std::path::Path::new(CGROUP_V1).join(controller);
    let mut dirs = Vec::new();
    if let Some(path) = read_small("/proc/self/cgroup")
        .as_deref()
        .and_then(|c| v1_cgroup_path(c, controller))
    {
        let rel = path.trim_start_matches('/');
        if !rel.is_empty() && !rel.split('/').any(|c| c == "..") {
            dirs.push(base.join(rel));
        }
    }
    dirs.push(base);
    dirs
}

/// The v1 limit read by `parse` from the first of [`v1_dirs`] that has
/// `files`.
fn v1_limit<T>(
    controller: &str,
    files: &[&str],
    parse: impl Fn(&[String]) -> Option<T>,
) -> Option<T> {
    v1_dirs(controller).into_iter().find_map(|dir| {
        let texts: Option<Vec<String>> = files
            .iter()
            .map(|f| read_small(&dir.join(f).to_string_lossy()))
            .collect();
        texts.map(|t| parse(&t))
    })?
}

/// A small file's text, bounded.
fn read_small(path: &str) -> Option<String> {
    use std::io::Read;
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(CGROUP_READ_MAX)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// `MemTotal:  16318412 kB` from `/proc/meminfo`, in bytes.
pub fn memory_from_meminfo(content: &str) -> Option<u64> {
    let line = content.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut parts = line["MemTotal:".len()..].split_whitespace();
    let n: u64 = parts.next()?.parse().ok()?;
    match parts.next() {
        Some("kB") | None => n.checked_mul(1024),
        _ => None,
    }
}

/// CPUs this runner may use: the cgroup quota, else the CPUs the kernel
/// lets this process run on, else 1.
pub fn detect_cpus() -> u32 {
    read_small(CPU_MAX)
        .and_then(|c| cpus_from_cpu_max(&c))
        .or_else(|| {
            v1_limit("cpu", &["cpu.cfs_quota_us", "cpu.cfs_period_us"], |t| {
                cpus_from_cfs(&t[0], &t[1])
            })
        })
        .or_else(|| {
            std::thread::available_parallelism()
                .ok()
                .and_then(|n| u32::try_from(n.get()).ok())
        })
        .unwrap_or(1)
}

/// Memory this runner may use: the cgroup limit, else the machine's total.
/// `None` when neither can be read (the caller asks for `ADOS_MEMORY`).
pub fn detect_memory() -> Option<u64> {
    read_small(MEMORY_MAX)
        .and_then(|c| memory_from_memory_max(&c))
        .or_else(|| {
            v1_limit("memory", &["memory.limit_in_bytes"], |t| {
                memory_from_limit_in_bytes(&t[0])
            })
        })
        .or_else(|| {
            fs::read_to_string("/proc/meminfo")
                .ok()
                .and_then(|c| memory_from_meminfo(&c))
        })
}

/// The host name: the kernel's, else `gethostname(2)`.
pub fn detect_hostname() -> Option<String> {
    if let Ok(s) = fs::read_to_string("/proc/sys/kernel/hostname") {
        let s = s.trim();
        if !s.is_empty() {
            return Some(s.to_string());
        }
    }
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `buf.len()` bytes; gethostname writes at
    // most that many and we read only up to the first NUL below.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).trim().to_string();
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_max_quota_rounds_up_and_max_means_unlimited() {
        assert_eq!(cpus_from_cpu_max("max 100000\n"), None);
        assert_eq!(cpus_from_cpu_max("200000 100000\n"), Some(2));
        assert_eq!(cpus_from_cpu_max("150000 100000"), Some(2));
        assert_eq!(cpus_from_cpu_max("50000 100000"), Some(1));
        assert_eq!(cpus_from_cpu_max("garbage"), None);
        assert_eq!(cpus_from_cpu_max(""), None);
    }

    #[test]
    fn cgroup_v1_cfs_quota_and_memory_limit() {
        // `docker run --cpus 1.5 --memory 1g` on cgroup v1, as read in it.
        assert_eq!(cpus_from_cfs("150000\n", "100000\n"), Some(2));
        assert_eq!(cpus_from_cfs("200000", "100000"), Some(2));
        assert_eq!(cpus_from_cfs("50000", "100000"), Some(1));
        assert_eq!(cpus_from_cfs("-1\n", "100000\n"), None);
        assert_eq!(cpus_from_cfs("100000", "0"), None);
        assert_eq!(cpus_from_cfs("x", "100000"), None);
        assert_eq!(memory_from_limit_in_bytes("1073741824\n"), Some(1 << 30));
        // No limit: i64::MAX rounded down to a 4 KiB page.
        assert_eq!(memory_from_limit_in_bytes("9223372036854771712\n"), None);
        assert_eq!(memory_from_limit_in_bytes("0"), None);
        assert_eq!(memory_from_limit_in_bytes("lots"), None);
    }

    #[test]
    fn the_v1_cgroup_path_of_a_controller() {
        let container = "9:name=systemd:/docker/b8f2\n4:memory:/docker/b8f2\n1:cpu,cpuacct:/docker/b8f2\n0::/docker/b8f2\n";
        assert_eq!(v1_cgroup_path(container, "memory"), Some("/docker/b8f2"));
        assert_eq!(v1_cgroup_path(container, "cpu"), Some("/docker/b8f2"));
        assert_eq!(v1_cgroup_path(container, "cpuset"), None);
        assert_eq!(v1_cgroup_path("0::/user.slice\n", "cpu"), None);
        assert_eq!(
            v1_cgroup_path("9:name=systemd:/\n2:cpu:/\n", "cpu"),
            Some("/")
        );
    }

    #[test]
    fn memory_max_and_meminfo() {
        assert_eq!(memory_from_memory_max("max\n"), None);
        assert_eq!(memory_from_memory_max("8589934592\n"), Some(8 << 30));
        assert_eq!(memory_from_memory_max("x"), None);
        let meminfo = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n";
        assert_eq!(memory_from_meminfo(meminfo), Some(16318412 * 1024));
        assert_eq!(memory_from_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn detection_on_this_host_gives_usable_values() {
        assert!(detect_cpus() >= 1);
        assert!(detect_hostname().is_some_and(|h| !h.is_empty()));
    }
}
