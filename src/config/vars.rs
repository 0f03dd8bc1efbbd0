//! Readers for one kind of variable each (secret, label, flag, proxy URL,
//! directory, CA file): each records a problem and lets checking go on.

use super::error::Problems;
use super::raw::RawEnv;
use super::validate;
use crate::net::Proxy;
use std::path::{Path, PathBuf};

/// A secret variable. Unset is an error only when `required`; an optional
/// secret set to the empty string counts as unset (compose files write
/// `GITHUB_TOKEN=${GITHUB_TOKEN}`), a required one does not.
///
/// Every secret may instead be given as `<NAME>_FILE`, the path of a file
/// that holds it (the Docker and Kubernetes secrets convention): read whole
/// (at most 64 KiB, links followed: Kubernetes mounts secrets through
/// them), one trailing newline dropped. Both set is an error.
pub(super) fn secret(
    env: &RawEnv,
    errs: &mut Problems,
    var: &'static str,
    required: bool,
    example: &'static str,
) -> Option<String> {
    let file_var = format!("{var}_FILE");
    let from_file = env.get(&file_var).map(str::trim).map(str::to_string);
    if let Some(path) = from_file {
        if env.get_raw(var).is_some_and(|v| !v.is_empty()) {
            return errs.add(
                var,
                format!("and {file_var} are both set; set one of them"),
                example,
            );
        }
        return match read_secret_file(&path) {
            Ok(v) => match validate::secret_problem(&v) {
                Some(p) => errs.add(var, format!("(from {file_var} {path}) {p}"), example),
                None => Some(v),
            },
            Err(p) => errs.add(var, format!("{file_var}: {p}"), example),
        };
    }
    match env.get_raw(var) {
        None if required => errs.add(var, "is required but not set", example),
        None => None,
        Some(v) if v.is_empty() && !required => None,
        Some(v) => match validate::secret_problem(v) {
            Some(p) => errs.add(var, p, example),
            None => Some(v.to_string()),
        },
    }
}

/// The most a secret file may hold.
const SECRET_FILE_MAX: u64 = 64 * 1024;

/// A secret from a file: a regular file (links followed), bounded, with one
/// trailing newline (`\n` or `\r\n`) dropped.
fn read_secret_file(path: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{path} is not a regular file"));
    }
    let mut text = String::new();
    file.take(SECRET_FILE_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {path} as text: {e}"))?;
    if text.len() as u64 > SECRET_FILE_MAX {
        return Err(format!("{path} is larger than 64 KiB: not a secret file"));
    }
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text)
        .to_string();
    if text.is_empty() {
        return Err(format!("{path} is empty"));
    }
    Ok(text)
}

pub(super) fn label(
    env: &RawEnv,
    errs: &mut Problems,
    var: &'static str,
    example: &'static str,
) -> Option<String> {
    let v = env.get(var)?.trim();
    match validate::check_label(v) {
        Ok(()) => Some(v.to_string()),
        Err(p) => errs.add(var, p, example),
    }
}

/// A flag: on (`1 true yes on`), off (`0 false no off`, unset), or an error,
/// so that `ADOS_ALLOW_HTTP=ture` is not silently off.
pub(super) fn flag(env: &RawEnv, errs: &mut Problems, var: &'static str) -> bool {
    flag_or(env, errs, var, false)
}

/// A flag that is `default` when unset; a value that is neither on nor
/// off is an error (and the default is used meanwhile).
pub(super) fn flag_or(env: &RawEnv, errs: &mut Problems, var: &'static str, default: bool) -> bool {
    match env.get(var).map(|v| v.trim().to_ascii_lowercase()) {
        None => default,
        Some(v) => match v.as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                // The example turns the default around: what one sets it for.
                let example = if default { "0" } else { "1" };
                errs.push(var, "must be 1/true/yes/on or 0/false/no/off", example);
                default
            }
        },
    }
}

/// The upper-case variable wins over the lower-case one when both are set.
pub(super) fn proxy_var(
    env: &RawEnv,
    errs: &mut Problems,
    upper: &'static str,
    lower: &'static str,
) -> Option<Proxy> {
    let (var, v) = match (env.get(upper), env.get(lower)) {
        (Some(v), _) => (upper, v),
        (None, Some(v)) => (lower, v),
        (None, None) => return None,
    };
    match Proxy::parse(var, v) {
        Ok(p) => Some(p),
        Err(p) => errs.add(var, p, "http://proxy.internal:3128"),
    }
}

pub(super) fn workspace_dir(env: &RawEnv, errs: &mut Problems) -> PathBuf {
    const EX: &str = "/var/lib/ados/work";
    let Some(v) = env.get("WORKSPACE_DIR").map(str::trim) else {
        return errs.add("WORKSPACE_DIR", "is required but not set", EX);
    };
    let path = PathBuf::from(v);
    if !path.is_absolute() {
        return errs.add(
            "WORKSPACE_DIR",
            format!("`{v}` must be an absolute path"),
            EX,
        );
    }
    // A file where a directory should be: git's "File exists" or "Not a
    // directory" would not say which path is the file.
    let file = path
        .ancestors()
        .find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir()));
    if let Some(file) = file {
        let problem = if file == path {
            format!("{} is a file, not a directory", path.display())
        } else {
            format!(
                "{} cannot be created: {} is a file, not a directory",
                path.display(),
                file.display()
            )
        };
        return errs.add("WORKSPACE_DIR", problem, EX);
    }
    if let Err(e) = std::fs::create_dir_all(&path) {
        return errs.add(
            "WORKSPACE_DIR",
            format!(
                "{} does not exist and cannot be created: {e}",
                path.display()
            ),
            EX,
        );
    }
    if !path.is_dir() {
        return errs.add(
            "WORKSPACE_DIR",
            format!("{} is not a directory", path.display()),
            EX,
        );
    }
    path
}

/// `ADOS_CA_CERT` must hold at least one PEM certificate, all parseable.
pub(super) fn check_ca_file(path: &Path) -> Result<(), String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{} cannot be read: {e}", path.display()))?;
    let mut n = 0;
    for cert in iter {
        cert.map_err(|e| format!("{} has a bad PEM certificate: {e}", path.display()))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!(
            "{} contains no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(())
}
