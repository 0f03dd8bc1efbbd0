//! The test-and-repair step: run the test command (the spec's, else the
//! detected one); while it fails and repairs are left, give the agent the
//! failing output and run the tests again.

use super::agent::{attempt, attempt_record, millis};
use super::context::{fail_with, JobRunner, Stop};
use super::prepare::Prepared;
use super::prompt;
use crate::job::event::{Event, JobResult, LogStream, Status, TestSummary};
use crate::job::spec::{AgentSpec, JobSpec};
use crate::job::Reporter;
use crate::process::{self, CommandSpec};
use std::time::{Duration, Instant};

/// The longest a test run may take (the job's deadline caps it further).
const TEST_RUN_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bytes of test output kept for the repair prompt.
const TEST_OUTPUT_KEEP: usize = 256 * 1024;

/// What the step found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tested {
    /// A test command ran.
    pub ran: bool,
    /// The last run passed (true when none ran).
    pub green: bool,
    /// The last repair run's final text, when it said something.
    pub repair_text: Option<String>,
}

/// The test command as argv: the spec's `test_command` split without a
/// shell, else the one detected in `workdir`; empty: no tests.
///
/// # Errors
/// A `test_command` that cannot be split (an unterminated quote).
pub fn test_argv(
    spec: &JobSpec,
    files: &super::repo_file::RepoFiles,
    workdir: &std::path::Path,
) -> Result<Vec<String>, String> {
    match &spec.test_command {
        Some(cmd) => {
            prompt::split_command(cmd).map_err(|e| format!("test_command cannot be parsed: {e}"))
        }
        None => Ok(prompt::detect_test_command(files, workdir).unwrap_or_default()),
    }
}

/// Test, and repair with `agent` while the tests fail and the spec's
/// `max_repair_attempts` allow. The last test summary, repair attempts
/// and their usage go into `res`.
///
/// # Errors
/// `cancelled` / time limit, or `failed` for an unparsable test command.
pub fn test_and_repair(
    job: &JobRunner,
    r: &mut Reporter,
    res: &mut JobResult,
    p: &Prepared,
    agent: &AgentSpec,
    base_prompt: &str,
) -> Result<Tested, Stop> {
    let argv = test_argv(job.spec, &p.files, &p.workdir).map_err(|e| fail_with(res, e))?;
    let mut tested = Tested {
        ran: !argv.is_empty(),
        green: true,
        repair_text: None,
    };
    if argv.is_empty() {
        r.log(
            LogStream::Runner,
            "no test command given or detected: tests skipped\n",
        );
        return Ok(tested);
    }
    let command = argv.join(" ");
    let mut repairs_left = job.spec.max_repair_attempts;
    loop {
        job.check_cancel(r, res)?;
        r.status(Status::Testing, Some(command.clone()));
        let (summary, output) = run_tests(job, r, &argv, p, res)?;
        tested.green = summary.passed;
        res.tests = Some(summary);
        if tested.green || repairs_left == 0 {
            return Ok(tested);
        }
        repairs_left -= 1;
        r.status(Status::Repairing, Some(agent.name.clone()));
        let repair_prompt = prompt::repair(base_prompt, &command, &prompt::failure_tail(&output));
        match attempt(job, r, p, agent, &repair_prompt, false) {
            Ok(rep) => {
                res.usage.add(&rep.verdict.usage);
                res.attempts.push(attempt_record(agent, &rep));
                if let Some(stop) = job.interrupted("the repair run", &rep.outcome, res) {
                    return Err(stop);
                }
                let text = rep.verdict.final_text.trim();
                if !text.is_empty() {
                    tested.repair_text = Some(text.to_string());
                }
            }
            Err(e) => {
                r.log(LogStream::Runner, &format!("repair run: {e}\n"));
                return Ok(tested);
            }
        }
    }
}

/// One test run: its summary (also sent as a `test` event) and the tail
/// of its output.
fn run_tests(
    job: &JobRunner,
    r: &mut Reporter,
    argv: &[String],
    p: &Prepared,
    partial: &JobResult,
) -> Result<(TestSummary, String), Stop> {
    let mut env = process::allowlisted_env(None);
    env.retain(|(k, _)| k != "HOME" && k != "TMPDIR");
    env.push(("HOME".into(), p.job_dir.home().display().to_string()));
    env.push(("TMPDIR".into(), p.job_dir.tmp().display().to_string()));
    env.push(("CI".into(), "true".into()));
    let command = argv.join(" ");
    let Some((program, args)) = argv.split_first() else {
        let summary = TestSummary {
            command,
            exit_code: 127,
            passed: false,
        };
        return Ok((summary, String::new()));
    };
    let workdir = p
        .workdir(&job.spec.repo.path)
        .map_err(|e| fail_with(partial, e))?;
    p.job_dir.hand_to(job.executor.run_as()).map_err(|e| {
        fail_with(
            partial,
            format!("cannot give the job directory to the job's user: {e}"),
        )
    })?;
    let mut cmd = CommandSpec::new(program.as_str(), workdir);
    cmd.args = args.to_vec();
    cmd.env = env;
    cmd.timeout = Some(job.budget(TEST_RUN_TIMEOUT));
    let mut output = OutputTail::new(TEST_OUTPUT_KEEP);
    let started = Instant::now();
    let opts = job.opts(&p.redactor);
    let outcome = job.executor.run(&cmd, &opts, &mut |_, line| {
        r.log(LogStream::Test, &format!("{line}\n"));
        output.push(line);
    });
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            let msg = e.to_string();
            r.log(
                LogStream::Runner,
                &format!("tests could not start: {msg}\n"),
            );
            r.emit(Event::Test {
                command: command.clone(),
                exit_code: 127,
                duration_ms: 0,
                passed: false,
            });
            let summary = TestSummary {
                command,
                exit_code: 127,
                passed: false,
            };
            return Ok((summary, msg));
        }
    };
    if let Some(stop) = job.interrupted("the tests", &outcome, partial) {
        return Err(stop);
    }
    let exit_code = outcome.exit_code.unwrap_or(-1);
    let passed = outcome.success();
    r.emit(Event::Test {
        command: command.clone(),
        exit_code,
        duration_ms: millis(started.elapsed()),
        passed,
    });
    Ok((
        TestSummary {
            command,
            exit_code,
            passed,
        },
        output.text,
    ))
}

/// The last part of a run's output, kept within a bound as lines arrive
/// (the failure is usually at the end).
struct OutputTail {
    keep: usize,
    text: String,
}

impl OutputTail {
    fn new(keep: usize) -> OutputTail {
        OutputTail {
            keep,
            text: String::new(),
        }
    }

    /// Add a line; past the bound, drop the oldest half.
    fn push(&mut self, line: &str) {
        if self.text.len() >= self.keep {
            let mut cut = self.text.len() - self.keep / 2;
            while !self.text.is_char_boundary(cut) {
                cut += 1;
            }
            self.text.drain(..cut);
        }
        self.text.push_str(line);
        self.text.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_tail_keeps_the_end_within_its_bound() {
        let mut t = OutputTail::new(100);
        for i in 0..100 {
            t.push(&format!("line {i}"));
        }
        assert!(t.text.len() < 100 + 10, "{}", t.text.len());
        assert!(t.text.ends_with("line 99\n"));
        let mut t = OutputTail::new(10);
        t.push("ééééééééééé");
        t.push("x");
        assert!(t.text.ends_with("x\n"));
    }

    #[test]
    fn the_test_command_is_the_specs_split_or_the_detected_one() {
        use crate::job::spec::RemotePolicy;
        let spec = |cmd: serde_json::Value| {
            let v = serde_json::json!({"job_id":"j","repo":{"owner":"o","name":"r"},
                "prompt":"p","test_command": cmd});
            JobSpec::from_json(&v, RemotePolicy::default()).expect("valid spec")
        };
        let d = std::env::temp_dir().join(format!("ados-test-argv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("mkdir");
        let files = super::super::repo_file::RepoFiles::new(&d).expect("root");
        let dir = files.root().to_path_buf();
        assert_eq!(
            test_argv(&spec(serde_json::json!("make check 'a b'")), &files, &dir),
            Ok(vec!["make".into(), "check".into(), "a b".into()])
        );
        let err = test_argv(&spec(serde_json::json!("'open")), &files, &dir).expect_err("quote");
        assert!(err.starts_with("test_command cannot be parsed"), "{err}");
        assert_eq!(
            test_argv(&spec(serde_json::Value::Null), &files, &dir),
            Ok(vec![])
        );
        std::fs::write(dir.join("go.mod"), "module x\n").expect("write");
        assert_eq!(
            test_argv(&spec(serde_json::Value::Null), &files, &dir),
            Ok(vec!["go".into(), "test".into(), "./...".into()])
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
