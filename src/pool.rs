//! The fixed pool of worker threads jobs run on.
//!
//! `ADOS_MAX_JOBS` named threads take [`Task`]s from one bounded channel.
//! The dispatcher only submits when it has counted a free slot, so a submit
//! never blocks. Each job runs under `catch_unwind`, from building its
//! runner to its result: a panic in one job becomes that job's `failed`
//! result and the worker lives on.
//!
//! Should a worker thread die anyway (a panic outside the job's own
//! `catch_unwind`, say while writing the result), a guard on its stack
//! still writes a `failed` result for the job it held and reports
//! [`WorkerReport::Died`]; the dispatcher then calls [`Pool::replace`] and
//! `/health` says the runner is degraded. A job never stays "running" with
//! no thread behind it.
//!
//! The pool shuts down by closing its channel ([`Pool::join`]), then joining.

use crate::cancel::CancelToken;
use crate::job::chat::ChatMsg;
use crate::job::spec::{JobId, JobSpec};
use crate::job::{JobResult, Reporter, ResultStatus};
use crate::journal::{JobStream, JournalSink};
use crate::link::Waker;
use crate::redact::Redactor;
use crate::run::{JobContext, JobRunner};
use crossbeam_channel::{Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One job for a worker.
pub struct Task {
    /// The validated spec.
    pub spec: JobSpec,
    /// The job's journal.
    pub stream: Arc<JobStream>,
    /// Cancellation from the dispatcher.
    pub cancel: CancelToken,
    /// A chat session's messages from the dispatcher (`None` for an issue
    /// job).
    pub chat: Option<Receiver<ChatMsg>>,
}

/// What a worker tells the dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerReport {
    /// A job ended; its result is in its journal.
    Done(JobId, ResultStatus),
    /// Worker `worker` died by a panic outside its job's `catch_unwind`.
    /// The job it held, if any, was given a `failed` result.
    Died {
        /// The worker's index, for [`Pool::replace`].
        worker: usize,
        /// The job it was running.
        job: Option<JobId>,
    },
}

/// What a worker does with a task. The daemon's runs the job pipeline;
/// tests give their own.
pub type RunTask = dyn Fn(Task) -> ResultStatus + Send + Sync;

/// The result given to a job whose worker thread died under it.
pub const WORKER_DIED: &str =
    "internal error: the runner's worker thread died running this job (a bug; please report it)";

/// The worker pool.
pub struct Pool {
    // Dropping the sender closes the channel so the workers' loops end
    // before they are joined.
    tx: Option<Sender<Task>>,
    rx: Receiver<Task>,
    run: Arc<RunTask>,
    reports: Sender<WorkerReport>,
    waker: Waker,
    workers: Vec<Option<JoinHandle<()>>>,
}

impl Pool {
    /// Start `size` workers running the job pipeline; each finished job
    /// (and each worker death) is reported on `reports`.
    pub fn start(
        size: usize,
        ctx: Arc<JobContext>,
        reports: Sender<WorkerReport>,
    ) -> std::io::Result<Pool> {
        let waker = ctx.waker.clone();
        let run: Arc<RunTask> = Arc::new(move |task| run_task(&ctx, task));
        Pool::with_runner(size, run, waker, reports)
    }

    /// Start `size` workers running `run` on each task. `waker` wakes the
    /// link after the result of a dead worker's job is written.
    pub fn with_runner(
        size: usize,
        run: Arc<RunTask>,
        waker: Waker,
        reports: Sender<WorkerReport>,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::bounded::<Task>(size.max(1));
        let mut pool = Pool {
            tx: Some(tx),
            rx,
            run,
            reports,
            waker,
            workers: Vec::with_capacity(size.max(1)),
        };
        for i in 0..size.max(1) {
            let handle = pool.spawn(i)?;
            pool.workers.push(Some(handle));
        }
        Ok(pool)
    }

    fn spawn(&self, index: usize) -> std::io::Result<JoinHandle<()>> {
        let rx = self.rx.clone();
        let run = self.run.clone();
        let reports = self.reports.clone();
        let waker = self.waker.clone();
        std::thread::Builder::new()
            .name(format!("ados-worker-{index}"))
            .spawn(move || {
                let mut guard = DeathGuard {
                    worker: index,
                    job: None,
                    reports: reports.clone(),
                    waker,
                };
                for task in rx {
                    let id = task.spec.job_id.clone();
                    guard.job = Some(task.stream.clone());
                    let status = run(task);
                    guard.job = None;
                    if reports.send(WorkerReport::Done(id, status)).is_err() {
                        break;
                    }
                }
            })
    }

    /// Start a new worker in place of dead worker `worker`.
    ///
    /// # Errors
    /// The thread cannot be created; the pool then has one slot fewer.
    pub fn replace(&mut self, worker: usize) -> std::io::Result<()> {
        let Some(slot) = self.workers.get_mut(worker) else {
            return Ok(());
        };
        if let Some(dead) = slot.take() {
            // It has ended (it said so while unwinding): joining is quick.
            let _ = dead.join();
        }
        let handle = self.spawn(worker)?;
        self.workers[worker] = Some(handle);
        Ok(())
    }

    /// Hand a task to a free worker.
    pub fn submit(&self, task: Task) {
        if let Some(tx) = &self.tx {
            if tx.send(task).is_err() {
                log::error!("worker pool is gone; job dropped");
            }
        }
    }

    /// Close the channel and wait for every worker.
    pub fn join(mut self) {
        self.tx.take();
        for w in self.workers.drain(..).flatten() {
            let _ = w.join();
        }
    }
}

/// Lives on a worker's stack: if the thread unwinds, the job it held gets
/// its `failed` result and the dispatcher hears of the death.
struct DeathGuard {
    worker: usize,
    job: Option<Arc<JobStream>>,
    reports: Sender<WorkerReport>,
    waker: Waker,
}

impl Drop for DeathGuard {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let job = self.job.take();
        log::error!(
            "worker {} died{}; it will be replaced",
            self.worker,
            job.as_ref()
                .map(|s| format!(" running job {}", s.job_id()))
                .unwrap_or_default()
        );
        if let Some(stream) = &job {
            if !stream.is_finished() {
                // A second panic here would abort the process: contain it.
                let _ = catch_unwind(AssertUnwindSafe(|| {
                    let sink = stream.sink(self.waker.clone());
                    let mut reporter = Reporter::resume(
                        stream.job_id().clone(),
                        stream.next_seq(),
                        Box::new(sink),
                        Arc::new(Redactor::new(Vec::new())),
                    );
                    reporter.finish(JobResult::failed(WORKER_DIED));
                }));
            }
        }
        let _ = self.reports.send(WorkerReport::Died {
            worker: self.worker,
            job: job.map(|s| s.job_id().clone()),
        });
    }
}

/// Run one task to its result. Everything that reads the spec, building the
/// runner included (its deadline arithmetic once panicked outside the
/// `catch_unwind`), runs under `catch_unwind`.
fn run_task(ctx: &Arc<JobContext>, task: Task) -> ResultStatus {
    let Task {
        spec,
        stream,
        cancel,
        chat,
    } = task;
    if spec.kind == crate::job::spec::JobKind::Chat {
        // A chat's content leaves the disk once acknowledged (docs/journal.md).
        stream.mark_private();
    }
    let sink = JournalSink::new(stream.clone(), ctx.waker.clone());
    let redactor = Arc::new(ctx.redactor.with(spec.secrets()));
    let sink = crate::job::step_log::StepLog::new(spec.job_id.clone(), Box::new(sink));
    let mut reporter = Reporter::new(spec.job_id.clone(), Box::new(sink), redactor);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        JobRunner::new(ctx, &spec, &cancel, Some(stream.clone()))
            .with_chat(chat)
            .run(&mut reporter)
    }));
    let result = match outcome {
        Ok(result) => result,
        Err(_) => {
            log::error!("job {}: the job thread panicked", spec.job_id);
            JobResult::failed(
                "internal error: the runner's job thread panicked (a bug; please report it)",
            )
        }
    };
    // An event the journal could not store ends the job `failed` whatever
    // the run says (the reporter writes that result; see docs/journal.md).
    let status = match reporter.write_error() {
        Some(_) => ResultStatus::Failed,
        None => result.status,
    };
    ctx.metrics.job_finished(
        status.as_str(),
        &format!("{}/{}", spec.repo.owner, spec.repo.name),
        result.agent.as_deref().unwrap_or(&spec.agent.name),
    );
    if !reporter.is_finished() {
        reporter.finish(result);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Purpose, RawEnv};
    use crate::journal::Journal;
    use crate::metrics::Metrics;
    use crate::testing::TempDir;
    use crate::workspace::Workspace;
    use serde_json::json;

    fn task(journal: &Journal, id: &str, prompt: &str) -> Task {
        let raw = json!({"job_id": id, "repo": {"owner":"o","name":"r",
            "clone_url": "/nonexistent/ados-pool-test.git"}, "prompt": prompt});
        let policy = crate::job::spec::RemotePolicy {
            allow_http: false,
            allow_file: true,
        };
        let spec = JobSpec::from_json(&raw, policy).expect("valid spec");
        let stream = journal.create(&spec.job_id).expect("journal");
        Task {
            spec,
            stream,
            cancel: CancelToken::never(),
            chat: None,
        }
    }

    /// The text of every journal file of a job.
    fn journal_text(stream: &JobStream) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(stream.dir())
            .expect("journal dir")
            .flatten()
        {
            out.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        out
    }

    #[test]
    fn a_dead_worker_fails_its_job_is_reported_and_is_replaced() {
        let dir = TempDir::new("replace");
        let journal = Journal::open(dir.path()).expect("journal");
        let run: Arc<RunTask> = Arc::new(|task: Task| {
            if task.spec.prompt.as_deref() == Some("die") {
                panic!("a bug outside the job's catch_unwind");
            }
            ResultStatus::Completed
        });
        let (tx, reports) = crossbeam_channel::unbounded();
        let mut pool = Pool::with_runner(1, run, Waker::noop(), tx).expect("pool");

        let doomed = task(&journal, "j-die", "die");
        let doomed_stream = doomed.stream.clone();
        pool.submit(doomed);
        assert_eq!(
            reports.recv().expect("report"),
            WorkerReport::Died {
                worker: 0,
                job: Some(JobId::parse("j-die").expect("id"))
            }
        );
        // The job got its result: it is not left "running".
        assert!(doomed_stream.is_finished());
        let text = journal_text(&doomed_stream);
        assert!(
            text.contains("\"failed\"") && text.contains("worker thread died"),
            "{text}"
        );

        pool.replace(0).expect("replace");
        pool.submit(task(&journal, "j-ok", "fine"));
        assert_eq!(
            reports.recv().expect("report"),
            WorkerReport::Done(JobId::parse("j-ok").expect("id"), ResultStatus::Completed)
        );
        pool.join();
    }

    #[test]
    fn a_panic_while_building_the_runner_is_the_jobs_failed_result() {
        let dir = TempDir::new("build");
        let ws = dir.path().join("ws");
        let env = RawEnv::from_pairs([
            ("WORKSPACE_DIR", ws.to_str().unwrap_or("/nonexistent")),
            ("ADOS_ALLOW_FILE_REMOTES", "1"),
        ]);
        let cfg = Arc::new(Config::from_raw(&env, Purpose::Exec).expect("config"));
        let workspace = Workspace::open(&ws).expect("workspace");
        let ctx = Arc::new(
            JobContext::new(
                cfg,
                workspace,
                crate::executors::ExecutorKind::Host,
                Arc::new(Metrics::new()),
                Waker::noop(),
            )
            .expect("context"),
        );
        let journal = Journal::open(&dir.path().join("journal")).expect("journal");
        let mut t = task(&journal, "j-huge", "p");
        // Past validation (a spec cannot say this any more): a deadline
        // that overflows `Instant + Duration` when the runner is built.
        t.spec.timeout_s = Some(u64::MAX);
        let stream = t.stream.clone();
        assert_eq!(run_task(&ctx, t), ResultStatus::Failed);
        assert!(stream.is_finished());
    }
}
