//! Counters and gauges the runner exposes on `/metrics` and summarises on
//! `/health`. Threads update them with atomics (or a short lock for the
//! labelled families); nothing here blocks a job or the link.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
    active_jobs: AtomicU64,
    free_slots: AtomicU64,
    draining: AtomicBool,
    events_unacked: AtomicU64,
    disk_problem: Mutex<Option<String>>,
    degraded: Mutex<Option<String>>,
    jobs_total: Mutex<BTreeMap<(String, String, String), u64>>,
    agent_duration: Mutex<BTreeMap<String, Histogram>>,
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
        m
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
        if let Ok(mut m) = self.jobs_total.lock() {
            *m.entry((status.into(), repo.into(), agent.into()))
                .or_default() += 1;
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
            "# HELP ados_jobs_total Jobs finished, by result status, repository and agent.\n# TYPE ados_jobs_total counter"
        );
        if let Ok(m) = self.jobs_total.lock() {
            for ((status, repo, agent), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ados_jobs_total{{status=\"{}\",repo=\"{}\",agent=\"{}\"}} {n}",
                    label(status),
                    label(repo),
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
}
