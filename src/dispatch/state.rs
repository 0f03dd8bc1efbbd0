//! The job table and the accept/reject decision, free of I/O so every rule
//! can be unit-tested.

use crate::cancel::{CancelReason, Canceller};
use crate::config::{Config, Mode};
use crate::job::spec::{JobId, JobKind, JobSpec};
use crate::link::proto::RunnerState;
use serde_json::Value;
use std::collections::BTreeMap;

/// What the runner holds of a job.
#[derive(Debug)]
enum Held {
    /// Running on a worker.
    Running(Canceller),
    /// Result written; kept until the server acknowledges it, so a repeated
    /// `job.assign` is answered `accepted` and not run twice.
    Finished,
}

/// What to answer a `job.assign`.
#[derive(Debug)]
pub enum Decision {
    /// Start it.
    Accept(Box<JobSpec>),
    /// Already held: answer `job.accepted` again, start nothing.
    AlreadyHeld(JobId),
    /// Refuse it.
    Reject {
        /// Why, naming the field for an invalid spec.
        reason: String,
        /// Whether the server may try again later (or elsewhere).
        retryable: bool,
    },
}

/// Every job the runner holds, plus slot accounting and draining.
#[derive(Debug)]
pub struct JobTable {
    jobs: BTreeMap<JobId, Held>,
    max_jobs: usize,
    /// No new jobs (drain, or shutting down).
    pub draining: bool,
}

impl JobTable {
    /// An empty table with `max_jobs` slots.
    pub fn new(max_jobs: usize) -> JobTable {
        JobTable {
            jobs: BTreeMap::new(),
            max_jobs,
            draining: false,
        }
    }

    /// Jobs held from an earlier run (restart recovery): finished, with
    /// results waiting for acknowledgement.
    pub fn hold_finished(&mut self, id: JobId) {
        self.jobs.insert(id, Held::Finished);
    }

    /// Decide on a raw `job.assign` spec.
    pub fn decide(&self, raw: &Value, cfg: &Config, disk_problem: Option<&str>) -> Decision {
        // Idempotency comes first: a held job is never re-validated or
        // started again, whatever else has changed.
        if let Some(id) = JobSpec::raw_job_id(raw).and_then(|s| JobId::parse(&s).ok()) {
            if self.jobs.contains_key(&id) {
                return Decision::AlreadyHeld(id);
            }
        }
        let spec = match JobSpec::from_json(raw, cfg.remote_policy) {
            Ok(s) => s,
            Err(e) => {
                return Decision::Reject {
                    reason: e.to_string(),
                    retryable: false,
                }
            }
        };
        let kind_allowed = match (cfg.mode, spec.kind) {
            (Mode::All, _) => true,
            (Mode::Issue, k) => k == JobKind::Issue,
            (Mode::Chat, k) => k == JobKind::Chat,
        };
        if !kind_allowed {
            return Decision::Reject {
                reason: format!(
                    "this runner's ADOS_MODE is {} and does not take {} jobs",
                    cfg.mode.as_str(),
                    match spec.kind {
                        JobKind::Issue => "issue",
                        JobKind::Chat => "chat",
                    }
                ),
                retryable: true,
            };
        }
        if self.draining {
            return Decision::Reject {
                reason: "the runner is draining and takes no new jobs".into(),
                retryable: true,
            };
        }
        if let Some(problem) = disk_problem {
            return Decision::Reject {
                reason: format!("not enough disk space: {problem}"),
                retryable: true,
            };
        }
        if self.running_count() >= self.max_jobs {
            return Decision::Reject {
                reason: format!("no free slot (all {} busy)", self.max_jobs),
                retryable: true,
            };
        }
        Decision::Accept(Box::new(spec))
    }

    /// A worker thread is gone for good: one slot fewer.
    pub fn lose_slot(&mut self) {
        self.max_jobs = self.max_jobs.saturating_sub(1);
    }

    /// A job was started.
    pub fn started(&mut self, id: JobId, canceller: Canceller) {
        self.jobs.insert(id, Held::Running(canceller));
    }

    /// A job's result was written.
    pub fn finished(&mut self, id: &JobId) {
        if let Some(h) = self.jobs.get_mut(id) {
            *h = Held::Finished;
        }
    }

    /// The server acknowledged a finished job's result.
    pub fn release(&mut self, id: &JobId) {
        if matches!(self.jobs.get(id), Some(Held::Finished)) {
            self.jobs.remove(id);
        }
    }

    /// Cancel one running job; false when it is not running.
    pub fn cancel(&self, id: &JobId, reason: CancelReason) -> bool {
        match self.jobs.get(id) {
            Some(Held::Running(c)) => {
                c.cancel(reason);
                true
            }
            _ => false,
        }
    }

    /// Cancel every running job.
    pub fn cancel_all(&self, reason: CancelReason) {
        for h in self.jobs.values() {
            if let Held::Running(c) = h {
                c.cancel(reason);
            }
        }
    }

    /// Jobs running now.
    pub fn running_count(&self) -> usize {
        self.jobs
            .values()
            .filter(|h| matches!(h, Held::Running(_)))
            .count()
    }

    /// Whether the runner holds no job at all (none running, none waiting
    /// for its result's ack).
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty()
    }

    /// Whether the runner holds `id` in any state.
    pub fn holds(&self, id: &JobId) -> bool {
        self.jobs.contains_key(id)
    }

    /// The heartbeat's view.
    pub fn runner_state(&self) -> RunnerState {
        let running: Vec<String> = self
            .jobs
            .iter()
            .filter(|(_, h)| matches!(h, Held::Running(_)))
            .map(|(id, _)| id.to_string())
            .collect();
        let free = if self.draining {
            0
        } else {
            self.max_jobs.saturating_sub(running.len())
        };
        RunnerState {
            free_slots: free,
            running,
            draining: self.draining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::cancel_pair;
    use crate::config::{Purpose, RawEnv};
    use serde_json::json;

    fn cfg(mode: &str) -> Config {
        let dir = std::env::temp_dir().join("ados-dispatch-test");
        let env = RawEnv::from_pairs([
            ("ADOS_API_URL", "http://127.0.0.1:9"),
            ("ADOS_TOKEN", "test-token-123"),
            ("ADOS_RUNNER_ID", "r1"),
            ("WORKSPACE_DIR", dir.to_str().unwrap_or("/tmp")),
            ("ADOS_MODE", mode),
            ("ADOS_MAX_JOBS", "1"),
        ]);
        Config::from_raw(&env, Purpose::Daemon).expect("config")
    }

    fn job(id: &str, kind: &str) -> Value {
        json!({"job_id":id,"kind":kind,"repo":{"owner":"o","name":"r"}})
    }

    #[test]
    fn accepts_then_refuses_when_full_and_answers_repeat_as_held() {
        let c = cfg("all");
        let mut t = JobTable::new(1);
        let Decision::Accept(spec) = t.decide(&job("a", "issue"), &c, None) else {
            panic!("should accept")
        };
        t.started(spec.job_id.clone(), cancel_pair().0);
        assert!(matches!(
            t.decide(&job("b", "issue"), &c, None),
            Decision::Reject {
                retryable: true,
                ..
            }
        ));
        assert!(matches!(
            t.decide(&job("a", "issue"), &c, None),
            Decision::AlreadyHeld(_)
        ));
        t.finished(&spec.job_id);
        assert!(matches!(
            t.decide(&job("a", "issue"), &c, None),
            Decision::AlreadyHeld(_)
        ));
        t.release(&spec.job_id);
        assert!(matches!(
            t.decide(&job("a", "issue"), &c, None),
            Decision::Accept(_)
        ));
    }

    #[test]
    fn mode_draining_disk_and_invalid_spec() {
        let c = cfg("issue");
        let mut t = JobTable::new(1);
        match t.decide(&job("a", "chat"), &c, None) {
            Decision::Reject { reason, retryable } => {
                assert!(retryable);
                assert!(reason.contains("ADOS_MODE"), "{reason}");
            }
            d => panic!("{d:?}"),
        }
        match t.decide(&job("../x", "issue"), &c, None) {
            Decision::Reject { reason, retryable } => {
                assert!(!retryable);
                assert!(reason.contains("job_id"), "{reason}");
            }
            d => panic!("{d:?}"),
        }
        assert!(matches!(
            t.decide(&job("a", "issue"), &c, Some("low")),
            Decision::Reject {
                retryable: true,
                ..
            }
        ));
        t.draining = true;
        assert!(matches!(
            t.decide(&job("a", "issue"), &c, None),
            Decision::Reject {
                retryable: true,
                ..
            }
        ));
        assert_eq!(t.runner_state().free_slots, 0);
    }
}
