//! Egress control of job containers: `ADOS_JOB_EGRESS` (open or
//! allowlist) and `ADOS_EGRESS_ALLOW`. The fence needs a container to put
//! the job in, so `allowlist` is an error with the host executor.

use super::error::Problems;
use super::executor::ExecutorSetting;
use super::raw::RawEnv;
use crate::egress::Allowlist;

/// `ADOS_JOB_EGRESS`, and what `allowlist` allows besides each job's agent
/// API and registries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum EgressSetting {
    /// Job containers reach whatever their Docker network reaches (the
    /// default in this release).
    #[default]
    Open,
    /// Job containers reach only the runner's egress proxy.
    Allowlist(Allowlist),
}

impl EgressSetting {
    /// `open` or `allowlist`, for `check` and logs.
    pub fn name(&self) -> &'static str {
        match self {
            EgressSetting::Open => "open",
            EgressSetting::Allowlist(_) => "allowlist",
        }
    }
}

/// Read `ADOS_JOB_EGRESS` and `ADOS_EGRESS_ALLOW`.
pub(super) fn egress(
    env: &RawEnv,
    errs: &mut Problems,
    executor: &ExecutorSetting,
) -> EgressSetting {
    const VAR: &str = "ADOS_JOB_EGRESS";
    const ALLOW: &str = "ADOS_EGRESS_ALLOW";
    let allowlist = match env.get(VAR).map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "open" => false,
        Some(v) if v == "allowlist" => true,
        Some(_) => {
            errs.push(VAR, "must be open or allowlist", "allowlist");
            false
        }
    };
    let allow = match Allowlist::parse(ALLOW, env.get(ALLOW).unwrap_or_default()) {
        Ok(a) => a,
        Err(problems) => {
            for p in problems {
                let p = p
                    .strip_prefix("ADOS_EGRESS_ALLOW: ")
                    .unwrap_or(&p)
                    .to_string();
                errs.push(ALLOW, p, "registry.npmjs.org,*.pypi.org,10.0.0.0/8");
            }
            Allowlist::default()
        }
    };
    if !allowlist {
        if env.get(ALLOW).is_some() {
            errs.push(
                ALLOW,
                "has no effect unless ADOS_JOB_EGRESS=allowlist; set that too, or unset it",
                "registry.npmjs.org",
            );
        }
        return EgressSetting::Open;
    }
    match executor {
        ExecutorSetting::Host => errs.push(
            VAR,
            "=allowlist needs the Docker executor (on the host there is no container to fence in): set ADOS_EXECUTOR=docker and ADOS_JOB_IMAGE, or set ADOS_JOB_EGRESS=open",
            "open",
        ),
        ExecutorSetting::Docker(_) if env.get("ADOS_JOB_NETWORK").is_some() => errs.push(
            VAR,
            "=allowlist gives each job container no network but the runner's proxy (--network none), so ADOS_JOB_NETWORK cannot apply: unset ADOS_JOB_NETWORK",
            "allowlist",
        ),
        ExecutorSetting::Docker(_) => {}
    }
    EgressSetting::Allowlist(allow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DockerSettings;

    fn docker() -> ExecutorSetting {
        ExecutorSetting::Docker(DockerSettings {
            image: crate::config::JobImage::Named("img".into()),
            cpus_milli: 1000,
            memory_bytes: 1 << 30,
            pids_limit: 100,
            network: "bridge".into(),
            cli_env: Vec::new(),
        })
    }

    fn load(pairs: &[(&str, &str)], executor: &ExecutorSetting) -> (EgressSetting, Vec<String>) {
        let env = RawEnv::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut errs = Problems::default();
        let got = egress(&env, &mut errs, executor);
        (got, errs.0.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn open_by_default_and_allowlist_with_docker() {
        assert_eq!(
            load(&[], &ExecutorSetting::Host),
            (EgressSetting::Open, vec![])
        );
        let (got, errs) = load(
            &[
                ("ADOS_JOB_EGRESS", "Allowlist"),
                ("ADOS_EGRESS_ALLOW", "pypi.org, *.npmjs.org"),
            ],
            &docker(),
        );
        assert!(errs.is_empty(), "{errs:?}");
        let EgressSetting::Allowlist(a) = got else {
            panic!("{got:?}")
        };
        assert_eq!(a.entries().len(), 2);
        assert_eq!(
            load(&[("ADOS_JOB_EGRESS", "open")], &docker()).0.name(),
            "open"
        );
    }

    #[test]
    fn every_mistake_names_its_variable_and_the_fix() {
        let (_, errs) = load(&[("ADOS_JOB_EGRESS", "allowlist")], &ExecutorSetting::Host);
        assert!(
            errs[0].starts_with("ADOS_JOB_EGRESS: =allowlist needs the Docker executor"),
            "{errs:?}"
        );
        assert!(errs[0].contains("ADOS_EXECUTOR=docker"), "{errs:?}");
        let (_, errs) = load(&[("ADOS_JOB_EGRESS", "closed")], &docker());
        assert!(errs[0].contains("must be open or allowlist"), "{errs:?}");
        let (_, errs) = load(
            &[
                ("ADOS_JOB_EGRESS", "allowlist"),
                (
                    "ADOS_EGRESS_ALLOW",
                    "ok.example,http://x.example,10.0.0.0/40",
                ),
            ],
            &docker(),
        );
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("ADOS_EGRESS_ALLOW: entry `http://x.example`"),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("ADOS_EGRESS_ALLOW: entry `10.0.0.0/40`"),
            "{errs:?}"
        );
        let (_, errs) = load(&[("ADOS_EGRESS_ALLOW", "pypi.org")], &docker());
        assert!(errs[0].contains("ADOS_JOB_EGRESS=allowlist"), "{errs:?}");
        let (_, errs) = load(
            &[
                ("ADOS_JOB_EGRESS", "allowlist"),
                ("ADOS_JOB_NETWORK", "host"),
            ],
            &docker(),
        );
        assert!(errs[0].contains("unset ADOS_JOB_NETWORK"), "{errs:?}");
    }
}
