//! Counters and gauges the runner exposes on `/metrics` and summarises on
//! `/health`. Threads update them with atomics (or a short lock for the
//! labelled families); nothing here blocks a job or the link.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Repositories that get a `repo` label of their own on `ados_jobs_total`;
/// jobs of any further repository count under `repo="other"`. The control
/// plane chooses repository names, so an unbounded label set would grow a
/// series per repository for the life of the runner.
///
/// The first repositories seen keep their label for the life of the
/// process rather than the busiest ones at each scrape: re-ranking would
/// move counts out of `other` (a counter that goes down reads as a reset)
/// and make series vanish.
pub const MAX_REPO_LABELS: usize = 20;

/// The `repo` label of the jobs past [`MAX_REPO_LABELS`] repositories.
/// Real repositories are `owner/name`, so it names none of them.
pub const OTHER_REPO: &str = "other";

/// Histogram buckets for agent run time, in seconds.
pub const AGENT_BUCKETS: [f64; 10] = [
    5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 2700.0, 3600.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; AGENT_BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// The runner's metrics. One instance, shared by `Arc`.
#[derive(Default)]
pub struct Metrics {
    connected: AtomicBool,
    /// Unix ms of the last change of `connected` (0 = never connected).
    since_ms: AtomicU64,
    /// Unix ms the process started.
    started_ms: AtomicU64,
    reconnects: AtomicU64,
    egress_denied: AtomicU64,
    active_jobs: AtomicU64,
    free_slots: AtomicU64,
    draining: AtomicBool,
    events_unacked: AtomicU64,
    disk_problem: Mutex<Option<String>>,
    degraded: Mutex<Option<String>>,
    /// Whether `ados_jobs_total` has a `repo` label (`ADOS_METRICS_REPO_LABEL`).
    repo_label: AtomicBool,
    jobs_total: Mutex<JobCounts>,
    agent_duration: Mutex<BTreeMap<String, Histogram>>,
}

/// `ados_jobs_total` by (status, repo label, agent); `None` for the repo
/// when the label is off.
#[derive(Default)]
struct JobCounts {
    counts: BTreeMap<(String, Option<String>, String), u64>,
    /// Repositories with a label of their own, at most [`MAX_REPO_LABELS`].
    labelled: BTreeSet<String>,
}

impl JobCounts {
    fn repo_label(&mut self, repo: &str) -> String {
        if self.labelled.contains(repo) {
            return repo.to_string();
        }
        if self.labelled.len() < MAX_REPO_LABELS {
            self.labelled.insert(repo.to_string());
            return repo.to_string();
        }
        OTHER_REPO.to_string()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A snapshot for `/health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Whether the WebSocket is up (welcome received).
    pub connected: bool,
    /// Unix ms since when `connected` has had its value.
    pub since_ms: u64,
    /// Running jobs.
    pub running_jobs: u64,
    /// Free worker slots.
    pub free_slots: u64,
    /// Draining.
    pub draining: bool,
    /// Why new jobs are refused for lack of disk, if they are.
    pub disk_problem: Option<String>,
    /// Why the runner is degraded (a worker thread died), if it is.
    pub degraded: Option<String>,
}

impl Metrics {
    /// Fresh metrics; "disconnected since now".
    pub fn new() -> Metrics {
        let m = Metrics::default();
        let now = now_ms();
        m.started_ms.store(now, Ordering::Relaxed);
        m.since_ms.store(now, Ordering::Relaxed);
        m.repo_label.store(true, Ordering::Relaxed);
        m
    }

    /// Whether `ados_jobs_total` carries a `repo` label
    /// (`ADOS_METRICS_REPO_LABEL`; on in [`Metrics::new`]). Set it before
    /// the first job ends.
    pub fn set_repo_label(&self, on: bool) {
        self.repo_label.store(on, Ordering::Relaxed);
    }

    /// The link connected or disconnected.
    pub fn set_connected(&self, up: bool) {
        if self.connected.swap(up, Ordering::SeqCst) != up {
            self.since_ms.store(now_ms(), Ordering::SeqCst);
        }
    }

    /// One more reconnect attempt after a lost or failed connection.
    pub fn inc_reconnects(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// The egress proxy refused a job's connection.
    pub fn inc_egress_denied(&self) {
        self.egress_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections the egress proxy refused since start.
    pub fn egress_denied(&self) -> u64 {
        self.egress_denied.load(Ordering::Relaxed)
    }

    /// Slots and draining, as the dispatcher sees them.
    pub fn set_slots(&self, active: u64, free: u64, draining: bool) {
        self.active_jobs.store(active, Ordering::Relaxed);
        self.free_slots.store(free, Ordering::Relaxed);
        self.draining.store(draining, Ordering::Relaxed);
    }

    /// Events written to journals and not yet acknowledged.
    pub fn set_events_unacked(&self, n: u64) {
        self.events_unacked.store(n, Ordering::Relaxed);
    }

    /// Set or clear the disk-space problem.
    pub fn set_disk_problem(&self, problem: Option<String>) {
        if let Ok(mut p) = self.disk_problem.lock() {
            *p = problem;
        }
    }

    /// Mark the runner degraded (or clear it): `/health` answers 503.
    pub fn set_degraded(&self, why: Option<String>) {
        if let Ok(mut d) = self.degraded.lock() {
            *d = why;
        }
    }

    /// A job ended.
    pub fn job_finished(&self, status: &str, repo: &str, agent: &str) {
        let with_repo = self.repo_label.load(Ordering::Relaxed);
        if let Ok(mut m) = self.jobs_total.lock() {
            let repo = with_repo.then(|| m.repo_label(repo));
            let n = m
                .counts
                .entry((status.into(), repo, agent.into()))
                .or_default();
            *n = n.saturating_add(1);
        }
    }

    /// An agent attempt took `secs`.
    pub fn observe_agent(&self, agent: &str, secs: f64) {
        if let Ok(mut m) = self.agent_duration.lock() {
            let h = m.entry(agent.to_string()).or_default();
            for (i, b) in AGENT_BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// The state `/health` reports.
    pub fn health(&self) -> HealthSnapshot {
        HealthSnapshot {
            connected: self.connected.load(Ordering::SeqCst),
            since_ms: self.since_ms.load(Ordering::SeqCst),
            running_jobs: self.active_jobs.load(Ordering::Relaxed),
            free_slots: self.free_slots.load(Ordering::Relaxed),
            draining: self.draining.load(Ordering::Relaxed),
            disk_problem: self.disk_problem.lock().ok().and_then(|p| p.clone()),
            degraded: self.degraded.lock().ok().and_then(|d| d.clone()),
        }
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "ados_up",
            "The runner process is up.",
            "gauge",
            "1".into(),
        );
        gauge(
            &mut out,
            "ados_connected",
            "1 while the control-plane WebSocket is connected.",
            "gauge",
            u8::from(self.connected.load(Ordering::SeqCst)).to_string(),
        );
        gauge(
            &mut out,
            "ados_reconnects_total",
            "Reconnects to the control plane since start.",
            "counter",
            self.reconnects.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "ados_egress_denied_total",
            "Connections from job containers the egress proxy refused (ADOS_JOB_EGRESS=allowlist).",
            "counter",
            self.egress_denied().to_string(),
        );
        gauge(
            &mut out,
            "ados_active_jobs",
            "Jobs running now.",
            "gauge",
            self.active_jobs.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "ados_free_slots",
            "Worker slots free for new jobs.",
            "gauge",
            self.free_slots.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "ados_events_unacked",
            "Job events journaled but not yet acknowledged by the control plane.",
            "gauge",
            self.events_unacked.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP ados_jobs_total Jobs finished, by result status, repository (the first {MAX_REPO_LABELS}, then \"{OTHER_REPO}\") and agent.\n# TYPE ados_jobs_total counter"
        );
        if let Ok(m) = self.jobs_total.lock() {
            for ((status, repo, agent), n) in m.counts.iter() {
                let repo = match repo {
                    Some(r) => format!(",repo=\"{}\"", label(r)),
                    None => String::new(),
                };
                let _ = writeln!(
                    out,
                    "ados_jobs_total{{status=\"{}\"{repo},agent=\"{}\"}} {n}",
                    label(status),
                    label(agent)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP ados_agent_duration_seconds Wall time of agent attempts.\n# TYPE ados_agent_duration_seconds histogram"
        );
        if let Ok(m) = self.agent_duration.lock() {
            for (agent, h) in m.iter() {
                let a = label(agent);
                for (i, b) in AGENT_BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "ados_agent_duration_seconds_bucket{{agent=\"{a}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "ados_agent_duration_seconds_bucket{{agent=\"{a}\",le=\"+Inf\"}} {}\nados_agent_duration_seconds_sum{{agent=\"{a}\"}} {}\nados_agent_duration_seconds_count{{agent=\"{a}\"}} {}",
                    h.count, h.sum, h.count
                );
            }
        }
        out
    }
}

/// Escape a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_required_families() {
        let m = Metrics::new();
        m.set_connected(true);
        m.job_finished("completed", "o/r", "claude");
        m.observe_agent("claude", 12.0);
        let t = m.render();
        for needle in [
            "ados_up 1",
            "ados_connected 1",
            "ados_reconnects_total 0",
            "ados_active_jobs 0",
            "ados_jobs_total{status=\"completed\",repo=\"o/r\",agent=\"claude\"} 1",
            "ados_agent_duration_seconds_bucket{agent=\"claude\",le=\"5\"} 0",
            "ados_agent_duration_seconds_bucket{agent=\"claude\",le=\"15\"} 1",
            "ados_agent_duration_seconds_count{agent=\"claude\"} 1",
            "ados_events_unacked 0",
        ] {
            assert!(t.contains(needle), "missing {needle} in\n{t}");
        }
    }

    #[test]
    fn repo_labels_are_bounded_and_the_rest_is_other() {
        let m = Metrics::new();
        for i in 0..1000 {
            m.job_finished("completed", &format!("o/r{i}"), "claude");
        }
        // A labelled repository keeps its label after the set is full.
        m.job_finished("completed", "o/r0", "claude");
        let t = m.render();
        let series = t
            .lines()
            .filter(|l| l.starts_with("ados_jobs_total{"))
            .count();
        assert_eq!(series, MAX_REPO_LABELS + 1, "{t}");
        assert!(
            t.contains("ados_jobs_total{status=\"completed\",repo=\"o/r0\",agent=\"claude\"} 2")
        );
        let other = 1000 - MAX_REPO_LABELS;
        assert!(
            t.contains(&format!(
                "ados_jobs_total{{status=\"completed\",repo=\"other\",agent=\"claude\"}} {other}"
            )),
            "{t}"
        );
        assert!(!t.contains("o/r999"), "{t}");
    }

    #[test]
    fn the_repo_label_can_be_turned_off() {
        let m = Metrics::new();
        m.set_repo_label(false);
        for i in 0..50 {
            m.job_finished("completed", &format!("o/r{i}"), "codex");
        }
        m.job_finished("failed", "o/r1", "codex");
        let t = m.render();
        assert!(
            t.contains("ados_jobs_total{status=\"completed\",agent=\"codex\"} 50"),
            "{t}"
        );
        assert!(t.contains("ados_jobs_total{status=\"failed\",agent=\"codex\"} 1"));
        assert!(!t.contains("repo="), "{t}");
    }
}
