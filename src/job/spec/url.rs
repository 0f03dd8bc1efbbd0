//! The remote URL rules (§5): which schemes and hosts a clone URL may use,
//! under the runner's [`RemotePolicy`].

use super::SpecError;
pub use crate::net::RemotePolicy;
use crate::net::Url;

/// Checks a clone URL's scheme against §5 and the runner's policy.
pub fn check_clone_url(field: &str, url: &str, policy: RemotePolicy) -> Result<(), SpecError> {
    let lower = url.to_ascii_lowercase();
    if lower.contains("::") && !lower.starts_with("ssh://") && !lower.starts_with("http") {
        // git's transport::address syntax (ext::, fd::) runs commands.
        return Err(SpecError::new(
            field,
            "git `transport::address` remotes (ext::, fd::) are never allowed",
        ));
    }
    if url.starts_with('-') {
        return Err(SpecError::new(field, "must not start with `-`"));
    }
    if url.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(SpecError::new(
            field,
            "contains spaces or control characters",
        ));
    }
    if ["https://", "http://", "ssh://"]
        .iter()
        .any(|scheme| lower.starts_with(scheme))
    {
        // The host as git (curl) reads it: see `crate::net::url`.
        let parsed = Url::parse(url).map_err(|e| SpecError::new(field, e.to_string()))?;
        if parsed.scheme() == "http" && !(policy.allow_http || parsed.is_loopback()) {
            return Err(SpecError::new(
                field,
                "http:// remotes are refused unless the host is loopback or ADOS_ALLOW_HTTP=1 is set",
            ));
        }
        return Ok(());
    }
    if lower.starts_with("file://") || lower.starts_with('/') {
        if policy.allow_file {
            return Ok(());
        }
        return Err(SpecError::new(
            field,
            "file remotes are refused unless ADOS_ALLOW_FILE_REMOTES=1 is set",
        ));
    }
    // scp-like ssh syntax: user@host:path
    if let Some((userhost, _path)) = url.split_once(':') {
        if userhost.contains('@') && !userhost.contains('/') {
            return Ok(());
        }
    }
    Err(SpecError::new(
        field,
        "scheme must be https, http, ssh or file (e.g. https://github.com/o/r.git)",
    ))
}
