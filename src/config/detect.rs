//! Defaults detected from the host when a variable is unset: CPUs and
//! memory (the cgroup v2 limits first, because in a container those are what
//! the runner may really use, then the machine's), and the host name.
//!
//! The parsers are pure functions over file contents so they can be tested
//! without a cgroup; the `detect_*` functions only read the files.

use std::fs;

/// cgroup v2 CPU limit of this container.
const CPU_MAX: &str = "/sys/fs/cgroup/cpu.max";
/// cgroup v2 memory limit of this container.
const MEMORY_MAX: &str = "/sys/fs/cgroup/memory.max";

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
    fs::read_to_string(CPU_MAX)
        .ok()
        .and_then(|c| cpus_from_cpu_max(&c))
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
    fs::read_to_string(MEMORY_MAX)
        .ok()
        .and_then(|c| memory_from_memory_max(&c))
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
