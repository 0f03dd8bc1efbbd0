//! Where jobs run (`ADOS_EXECUTOR`) and, for the Docker executor, the job
//! containers' image, limits and network (`ADOS_JOB_*`), plus the few
//! variables the `docker` CLI itself reads (`DOCKER_HOST`, …), which go to
//! that CLI only.

use super::error::Problems;
use super::raw::RawEnv;

/// `ADOS_JOB_PIDS_LIMIT` when unset: enough for a build's parallel
/// compilers, low enough to stop a fork bomb.
pub const DEFAULT_JOB_PIDS_LIMIT: u32 = 4096;

/// `ADOS_JOB_NETWORK` when unset.
pub const DEFAULT_JOB_NETWORK: &str = "bridge";

/// The least memory a job container is given (below it `docker run`
/// refuses, or the agent's Node.js cannot start).
const MIN_JOB_MEMORY: u64 = 16 << 20;

/// The variables the `docker` CLI reads that the runner passes on to it
/// (and to nothing else); `DOCKER_CONFIG` is always set, see
/// `executors/docker`.
pub const DOCKER_CLI_VARS: &[&str] = &[
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
];

/// Which executor runs the jobs' agents and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExecutorSetting {
    /// On the runner's own host (the default).
    #[default]
    Host,
    /// In a container per job.
    Docker(DockerSettings),
}

/// The Docker executor's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerSettings {
    /// `ADOS_JOB_IMAGE`.
    pub image: JobImage,
    /// `ADOS_JOB_CPUS` in thousandths of a CPU (`--cpus`).
    pub cpus_milli: u64,
    /// `ADOS_JOB_MEMORY` in bytes (`--memory`).
    pub memory_bytes: u64,
    /// `ADOS_JOB_PIDS_LIMIT` (`--pids-limit`).
    pub pids_limit: u32,
    /// `ADOS_JOB_NETWORK` (`--network`).
    pub network: String,
    /// The `docker` CLI's own variables, as set for the runner
    /// ([`DOCKER_CLI_VARS`]).
    pub cli_env: Vec<(String, String)>,
}

/// The image job containers start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobImage {
    /// An image reference (`ados-work-runner:latest`, an id).
    Named(String),
    /// `self`: the image of the container the runner itself runs in.
    OwnContainer,
}

impl DockerSettings {
    /// `--cpus` as docker reads it: `1`, `1.5`, `0.25`.
    pub fn cpus_arg(&self) -> String {
        format_milli(self.cpus_milli)
    }
}

/// Read `ADOS_EXECUTOR` and, for `docker`, the job container settings;
/// defaults for cpus and memory are the runner's divided by its slots.
pub(super) fn executor(
    env: &RawEnv,
    errs: &mut Problems,
    cpus: u32,
    memory_bytes: u64,
    slots: usize,
) -> ExecutorSetting {
    let docker = match env
        .get("ADOS_EXECUTOR")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => false,
        Some(v) if v == "host" => false,
        Some(v) if v == "docker" => true,
        Some(_) => {
            errs.push("ADOS_EXECUTOR", "must be host or docker", "docker");
            false
        }
    };
    if !docker {
        return ExecutorSetting::Host;
    }
    let slots = u64::try_from(slots.max(1)).unwrap_or(1);
    let image = match env.get("ADOS_JOB_IMAGE").map(str::trim) {
        None => errs.add(
            "ADOS_JOB_IMAGE",
            "is required with ADOS_EXECUTOR=docker: the image each job's container starts from (self: the runner's own image)",
            "ados-work-runner:latest",
        ),
        Some("self") => Some(JobImage::OwnContainer),
        Some(v) => match check_image(v) {
            Ok(()) => Some(JobImage::Named(v.to_string())),
            Err(p) => errs.add("ADOS_JOB_IMAGE", p, "ados-work-runner:latest"),
        },
    };
    let cpus_milli = match env.get("ADOS_JOB_CPUS") {
        None => (u64::from(cpus) * 1000 / slots).max(10),
        Some(v) => parse_milli(v).unwrap_or_else(|p| {
            errs.push("ADOS_JOB_CPUS", p, "1.5");
            1000
        }),
    };
    let memory_bytes = match env.get("ADOS_JOB_MEMORY") {
        None => (memory_bytes / slots).max(MIN_JOB_MEMORY),
        Some(v) => match super::parse_memory(v) {
            Ok(b) if b >= MIN_JOB_MEMORY => b,
            Ok(_) => errs.add("ADOS_JOB_MEMORY", "must be at least 16M", "2G"),
            Err(p) => errs.add("ADOS_JOB_MEMORY", p, "2G"),
        },
    };
    let pids_limit = match env.get("ADOS_JOB_PIDS_LIMIT") {
        None => DEFAULT_JOB_PIDS_LIMIT,
        Some(v) => match super::validate::parse_count(v, 4_194_304) {
            Ok(n) => u32::try_from(n).unwrap_or(DEFAULT_JOB_PIDS_LIMIT),
            Err(p) => errs.add("ADOS_JOB_PIDS_LIMIT", p, "4096"),
        },
    };
    let network = match env.get("ADOS_JOB_NETWORK").map(str::trim) {
        None => DEFAULT_JOB_NETWORK.to_string(),
        Some(v) => match crate::job::spec::check_name("ADOS_JOB_NETWORK", v) {
            Ok(()) if !v.starts_with('-') => v.to_string(),
            Ok(()) => errs.add("ADOS_JOB_NETWORK", "must not start with -", "bridge"),
            Err(e) => errs.add("ADOS_JOB_NETWORK", e.problem, "bridge"),
        },
    };
    let cli_env = DOCKER_CLI_VARS
        .iter()
        .filter_map(|name| env.get(name).map(|v| (name.to_string(), v.to_string())))
        .collect();
    match image {
        Some(image) => ExecutorSetting::Docker(DockerSettings {
            image,
            cpus_milli,
            memory_bytes,
            pids_limit,
            network,
            cli_env,
        }),
        // Reported above; the configuration fails as a whole.
        None => ExecutorSetting::Host,
    }
}

/// An image reference as docker accepts one: `[registry/]name[:tag][@digest]`
/// characters only, not an option.
fn check_image(v: &str) -> Result<(), String> {
    if v.len() > 255 {
        return Err("is longer than 255 characters".into());
    }
    if v.starts_with('-') {
        return Err("must not start with -".into());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@')))
    {
        return Err(format!(
            "contains {c:?}; an image reference has only A-Z a-z 0-9 . _ - / : @"
        ));
    }
    Ok(())
}

/// A CPU count with at most three decimals (`1`, `1.5`, `0.25`), from
/// 0.01 to 4096, in thousandths.
fn parse_milli(v: &str) -> Result<u64, String> {
    const PROBLEM: &str = "must be a number of CPUs from 0.01 to 4096, at most three decimals";
    let v = v.trim();
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    if whole.is_empty() && frac.is_empty()
        || frac.len() > 3
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || whole.len() > 4
    {
        return Err(PROBLEM.into());
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| PROBLEM.to_string())?
    };
    let frac_milli: u64 = format!("{frac:0<3}")
        .parse()
        .map_err(|_| PROBLEM.to_string())?;
    let milli = whole * 1000 + frac_milli;
    if (10..=4_096_000).contains(&milli) {
        Ok(milli)
    } else {
        Err(PROBLEM.into())
    }
}

/// Thousandths as a decimal with no trailing zeros (`1500` → `1.5`).
fn format_milli(milli: u64) -> String {
    let whole = milli / 1000;
    let frac = milli % 1000;
    if frac == 0 {
        return whole.to_string();
    }
    let s = format!("{whole}.{frac:03}");
    s.trim_end_matches('0').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_are_read_and_shown_in_thousandths() {
        assert_eq!(parse_milli("1.5"), Ok(1500));
        assert_eq!(parse_milli("2"), Ok(2000));
        assert_eq!(parse_milli(".25"), Ok(250));
        for bad in ["0", "0.001", "1.2345", "x", "-1", "1e3", "", ".", "5000"] {
            assert!(parse_milli(bad).is_err(), "{bad}");
        }
        assert_eq!(format_milli(1500), "1.5");
        assert_eq!(format_milli(2000), "2");
        assert_eq!(format_milli(333), "0.333");
        assert_eq!(format_milli(50), "0.05");
    }

    #[test]
    fn image_references_are_checked() {
        for good in [
            "ados-work-runner:latest",
            "ghcr.io/o/r:1.2",
            "sha256:abc",
            "r@sha256:0f",
        ] {
            assert!(check_image(good).is_ok(), "{good}");
        }
        for bad in ["-v", "a b", "x;y"] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }
}
