//! The fixed pool of worker threads jobs run on.
//!
//! `ADOS_MAX_JOBS` named threads take [`Task`]s from one bounded channel.
//! The dispatcher only submits when it has counted a free slot, so a submit
//! never blocks. Each job runs under `catch_unwind`: a panic in one job
//! becomes that job's `failed` result and the worker lives on. The pool
//! shuts down by closing its channel (dropping [`Pool`]), then joining.

use crate::job::spec::{JobId, JobSpec};
use crate::job::{CancelToken, JobResult, Reporter, ResultStatus};
use crate::journal::{JobStream, JournalSink};
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
}

/// The worker pool.
pub struct Pool {
    // Declared before `workers`: dropping the sender closes the channel so
    // the workers' loops end before they are joined.
    tx: Option<Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Start `size` workers; each finished job is reported on `done_tx`.
    pub fn start(
        size: usize,
        ctx: Arc<JobContext>,
        done_tx: Sender<(JobId, ResultStatus)>,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::bounded::<Task>(size.max(1));
        let mut workers = Vec::with_capacity(size);
        for i in 0..size.max(1) {
            let rx: Receiver<Task> = rx.clone();
            let ctx = ctx.clone();
            let done_tx = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("ados-worker-{i}"))
                .spawn(move || {
                    for task in rx {
                        let id = task.spec.job_id.clone();
                        let status = run_task(&ctx, task);
                        if done_tx.send((id, status)).is_err() {
                            break;
                        }
                    }
                })?;
            workers.push(handle);
        }
        Ok(Pool {
            tx: Some(tx),
            workers,
        })
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
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// Run one task to its result; never panics.
fn run_task(ctx: &Arc<JobContext>, task: Task) -> ResultStatus {
    let Task {
        spec,
        stream,
        cancel,
    } = task;
    let sink = JournalSink::new(stream.clone(), ctx.waker.clone());
    let redactor = Arc::new(ctx.redactor.with(spec.secrets()));
    let mut reporter = Reporter::new(spec.job_id.clone(), Box::new(sink), redactor);
    let runner = JobRunner::new(ctx, &spec, &cancel, Some(stream.clone()));
    let outcome = catch_unwind(AssertUnwindSafe(|| runner.run(&mut reporter)));
    let result = match outcome {
        Ok(result) => result,
        Err(_) => {
            log::error!("job {}: the job thread panicked", spec.job_id);
            JobResult::failed(
                "internal error: the runner's job thread panicked (a bug; please report it)",
            )
        }
    };
    let status = result.status;
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
