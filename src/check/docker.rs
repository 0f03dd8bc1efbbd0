//! The Docker executor's checks (`ADOS_EXECUTOR=docker`): the runner can
//! use Docker from where it runs, the daemon answers, its socket is
//! writable, `ADOS_JOB_IMAGE` exists locally and which agent CLIs it
//! holds (instead of the host's agent CLIs, which jobs do not use then),
//! and the egress mode (`ADOS_JOB_EGRESS`) and whether its fence works.

use super::Check;
use crate::agents::AgentRegistry;
use crate::config::Config;
use crate::executors::DockerRuntime;

/// Every Docker check for `cfg`, whose executor is Docker.
pub(super) fn checks(cfg: &Config, settings: &crate::config::DockerSettings) -> Vec<Check> {
    let rt = match DockerRuntime::new(cfg, settings) {
        Ok(rt) => rt,
        Err(e) => {
            return vec![Check::fail(
                "Docker executor",
                e,
                "change what the line above says, or set ADOS_EXECUTOR=host",
            )]
        }
    };
    let agents = AgentRegistry::new(&cfg.custom_agents).programs();
    let mut findings = rt.check(&agents);
    // Only where the image is usable: the fence check runs it.
    if findings.iter().all(|f| f.fix.is_none()) {
        findings.push(rt.egress_finding(cfg));
    }
    findings
        .into_iter()
        .map(|f| match f.fix {
            None => Check::pass(f.name, f.detail),
            Some(fix) => Check::fail(f.name, f.detail, fix),
        })
        .collect()
}
