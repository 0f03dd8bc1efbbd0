//! Restart recovery: what a runner does with the journals an earlier run
//! (killed, crashed, or power-cut) left behind.
//!
//! First, the job containers of a killed run (Docker executor: labelled
//! with this runner's id) are removed, so nothing of a job is left running
//! when it is reported failed. Then, for a job that was running: SIGKILL
//! every process group it had recorded, remove its job directory, and append a `failed` result saying the runner
//! restarted (after a `restart-result` marker: that result's seq is settled
//! by the next `welcome`, see `docs/journal.md`). Every held job (finished
//! or just failed) is handed to the outbox, so its unsent events are resent
//! after the first `welcome` and listed in `hello.jobs`; the result goes
//! last.

use crate::dispatch::JobTable;
use crate::executors::ExecutorKind;
use crate::job::{JobResult, Reporter};
use crate::journal::Journal;
use crate::link::{Outbox, Waker};
use crate::redact::Redactor;
use crate::workspace::Workspace;
use std::sync::Arc;

/// The error of a job found running at startup.
pub const RESTARTED: &str =
    "the runner restarted while the job was running; its processes were stopped and its workspace removed";

/// Recover every journal under `journal`, after removing what
/// `executors` left running; see the module doc.
pub fn recover(
    journal: &Journal,
    workspace: &Workspace,
    executors: &ExecutorKind,
    redactor: &Redactor,
    outbox: &mut Outbox,
    table: &mut JobTable,
) {
    executors.remove_leftovers();
    let found = match journal.recover() {
        Ok(f) => f,
        Err(e) => {
            log::error!(
                "cannot read the journals in {}: {e}; earlier jobs' unsent events are not resent",
                journal.root().display()
            );
            Vec::new()
        }
    };
    for job in found {
        let id = job.stream.job_id().clone();
        if !job.finished {
            let mut killed = 0;
            for pgid in &job.pgids {
                if crate::process::kill_group(*pgid, libc::SIGKILL) {
                    killed += 1;
                }
            }
            log::warn!(
                "job {id} was running when the runner stopped: {killed} process group(s) killed, its directory removed; reporting it failed"
            );
            // The result's seq is the journal's last plus one; the server
            // may have stored more than the journal kept (a power cut), so
            // that seq is settled when the next `welcome` gives its ack.
            if let Err(e) = job.stream.mark_result_unconfirmed() {
                log::error!("job {id}: {e}; if the server holds more events than the journal, its result may not be delivered");
            }
            let sink = job.stream.sink(Waker::noop());
            let mut reporter = Reporter::resume(
                id.clone(),
                job.stream.next_seq(),
                Box::new(sink),
                Arc::new(redactor.clone()),
            );
            reporter.finish(JobResult::failed(RESTARTED));
        } else {
            log::info!("job {id}: finished earlier; its unacknowledged events will be resent");
        }
        table.hold_finished(id);
        outbox.track(job.stream);
    }
    // No job runs yet: every job directory is a leftover (its journal, if
    // any, was handled above).
    match workspace.sweep_orphans() {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => log::info!("removed leftover job directories: {}", removed.join(", ")),
        Err(e) => log::warn!("cannot sweep old job directories: {e}"),
    }
}
