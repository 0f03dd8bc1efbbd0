//! The name of a repository's mirror and lock ([`MirrorKey`]).

use std::fmt;

/// The name of a repository's mirror and lock (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MirrorKey(pub(super) String);

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
pub(super) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
