//! The test-and-repair step: run the test command (the spec's, else the
//! detected one); while it fails and repairs are left, give the agent the
//! failing output and run the tests again.

use super::agent::{attempt, attempt_record, millis};
use super::context::{fail_with, outcome, JobRunner, Stop};
use super::prepare::Prepared;
use super::prompt;
use crate::git::ChangeKind;
use crate::job::event::{Event, JobResult, LogStream, ResultStatus, Status, TestSummary};
use crate::job::spec::{AgentSpec, JobSpec};
use crate::job::Reporter;
use crate::process::{self, CommandSpec};
use std::collections::BTreeSet;
use std::path::Path;
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

/// The test command to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestCommand {
    /// What runs: `sh -c <test_command>`, or the detected argv.
    pub argv: Vec<String>,
    /// What a person reads: the spec's command line, or the detected argv
    /// joined.
    pub shown: String,
}

/// The test command: the spec's `test_command` run by `sh -c` (a command
/// line the repository's owners wrote, like a CI script step), else the
/// one detected in `workdir`; `None`: no tests (an empty `test_command`,
/// or nothing detected).
pub fn test_command(
    spec: &JobSpec,
    files: &super::repo_file::RepoFiles,
    workdir: &std::path::Path,
) -> Option<TestCommand> {
    match &spec.test_command {
        Some(cmd) if cmd.trim().is_empty() => None,
        Some(cmd) => Some(TestCommand {
            argv: vec!["sh".into(), "-c".into(), cmd.clone()],
            shown: cmd.clone(),
        }),
        None => prompt::detect_test_command(files, workdir)
            .filter(|argv| !argv.is_empty())
            .map(|argv| TestCommand {
                shown: argv.join(" "),
                argv,
            }),
    }
}

/// The exit status of a command `sh` (or `execvp`) did not find.
const EXIT_NOT_FOUND: i32 = 127;

/// The program a shell said it did not find, from the run's output
/// (`sh: 1: pytest: not found`, `bash: pytest: command not found`), else
/// the command's first word.
fn missing_program(output: &str, shown: &str) -> String {
    let from_output = output.lines().rev().find_map(|line| {
        let head = line
            .strip_suffix(": command not found")
            .or_else(|| line.strip_suffix(": not found"))?;
        head.rsplit(": ")
            .next()
            .map(str::trim)
            .filter(|p| !p.is_empty())
    });
    from_output
        .or_else(|| shown.split_whitespace().next())
        .unwrap_or(shown)
        .to_string()
}

/// Test, and repair with `agent` while the tests fail and the spec's
/// `max_repair_attempts` allow. The last test summary, repair attempts
/// and their usage go into `res`.
///
/// # Errors
/// `cancelled` / time limit; `needs-human` when the test command was not
/// found (exit 127: no repair can fix the runner's image).
pub fn test_and_repair(
    job: &JobRunner,
    r: &mut Reporter,
    res: &mut JobResult,
    p: &Prepared,
    agent: &AgentSpec,
    base_prompt: &str,
) -> Result<Tested, Stop> {
    let mut tested = Tested {
        ran: false,
        green: true,
        repair_text: None,
    };
    let Some(test) = test_command(job.spec, &p.files, &p.workdir) else {
        r.log(
            LogStream::Runner,
            "no test command given or detected: tests skipped\n",
        );
        return Ok(tested);
    };
    tested.ran = true;
    let command = test.shown.clone();
    let mut repairs_left = job.spec.max_repair_attempts;
    loop {
        job.check_cancel(r, res)?;
        r.status(Status::Testing, Some(command.clone()));
        let before = tree_changes(job, r, p, res)?;
        let (summary, output) = run_tests(job, r, &test, p, res)?;
        remove_test_products(job, r, p, res, &before)?;
        tested.green = summary.passed;
        let not_found = summary.exit_code == EXIT_NOT_FOUND;
        res.tests = Some(summary);
        if not_found {
            let program = missing_program(&output, &command);
            let why = format!(
                "the tests could not run: `{program}`: command not found (exit 127 from `{command}`); install it where the job runs or fix test_command"
            );
            r.log(LogStream::Runner, &format!("{why}\n"));
            return Err(outcome(res, ResultStatus::NeedsHuman, why));
        }
        if tested.green || repairs_left == 0 {
            return Ok(tested);
        }
        repairs_left -= 1;
        r.status(Status::Repairing, Some(agent.name.clone()));
        let repair_prompt = prompt::repair(base_prompt, &command, &prompt::failure_tail(&output));
        match attempt(job, r, p, agent, &repair_prompt, false, None) {
            Ok(rep) => {
                res.usage.add(&rep.verdict.usage);
                res.attempts.push(attempt_record(agent, &rep));
                if let Some(stop) = job.interrupted("the repair run", &rep.outcome, res) {
                    return Err(stop);
                }
                let text = crate::agents::prose(&rep.verdict.final_text);
                if !text.is_empty() {
                    tested.repair_text = Some(text);
                }
            }
            Err(e) => {
                r.log(LogStream::Runner, &format!("repair run: {e}\n"));
                return Ok(tested);
            }
        }
    }
}

/// The paths that differ from the branch's start (changed, added,
/// untracked), read before a test run so that what it creates can be told
/// apart from the agent's work.
fn tree_changes(
    job: &JobRunner,
    r: &mut Reporter,
    p: &Prepared,
    partial: &JobResult,
) -> Result<BTreeSet<String>, Stop> {
    let changed = job
        .git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
        .map_err(|e| job.git_failure(partial, "status", e))?;
    Ok(changed.into_iter().map(|c| c.path).collect())
}

/// Remove every untracked file the test run created (`__pycache__`,
/// coverage reports, build output not covered by a `.gitignore`): it is
/// not the agent's work and must never reach the commit. Files the agent
/// made before the run (in `before`) stay, even when the tests rewrote
/// them; ignored files are never committed anyway. Directories left empty
/// are removed too. Runs after every test run, so a repair run starts from
/// the agent's work alone.
fn remove_test_products(
    job: &JobRunner,
    r: &mut Reporter,
    p: &Prepared,
    partial: &JobResult,
    before: &BTreeSet<String>,
) -> Result<(), Stop> {
    let after = job
        .git(r, &p.genv, &p.redactor, |g| p.checkout.changed_files(g))
        .map_err(|e| job.git_failure(partial, "status", e))?;
    let root = p.checkout.dir();
    let mut removed = 0usize;
    for file in after {
        if file.kind != ChangeKind::Untracked || before.contains(&file.path) {
            continue;
        }
        let rel = Path::new(&file.path);
        // Git names paths inside the work tree; anything else is left alone.
        if !rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
        {
            continue;
        }
        let path = root.join(rel);
        // A directory here is a nested repository the tests made (git
        // lists it whole): it goes whole.
        let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
        let gone = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match gone {
            Ok(()) => {
                removed = removed.saturating_add(1);
                remove_empty_parents(root, rel);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let why = format!(
                    "cannot remove {}, which the test run created (it must not be committed): {e}",
                    file.path
                );
                return Err(fail_with(partial, why));
            }
        }
    }
    if removed > 0 {
        r.log(
            LogStream::Runner,
            &format!(
                "removed {removed} {} the test run created (not the agent's work, never committed)\n",
                if removed == 1 { "file" } else { "files" }
            ),
        );
    }
    Ok(())
}

/// Remove the directories above `rel` (inside `root`) that are now empty.
fn remove_empty_parents(root: &Path, rel: &Path) {
    let mut dir = rel.parent();
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
        // Fails (and stops) at the first directory that still holds something.
        if std::fs::remove_dir(root.join(d)).is_err() {
            break;
        }
        dir = d.parent();
    }
}

/// One test run: its summary (also sent as a `test` event) and the tail
/// of its output.
fn run_tests(
    job: &JobRunner,
    r: &mut Reporter,
    test: &TestCommand,
    p: &Prepared,
    partial: &JobResult,
) -> Result<(TestSummary, String), Stop> {
    let mut env = process::allowlisted_env(None);
    env.retain(|(k, _)| k != "HOME" && k != "TMPDIR");
    env.push(("HOME".into(), p.job_dir.home().display().to_string()));
    env.push(("TMPDIR".into(), p.job_dir.tmp().display().to_string()));
    env.push(("CI".into(), "true".into()));
    let command = test.shown.clone();
    let Some((program, args)) = test.argv.split_first() else {
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
    // No hand-over here: tests always follow an agent attempt, which
    // handed the job directory to the job's user, and since then the runner
    // only removed files (the previous test run's products).
    let mut cmd = CommandSpec::new(program.as_str(), workdir);
    cmd.args = args.to_vec();
    cmd.env = env;
    cmd.timeout = Some(job.budget(TEST_RUN_TIMEOUT));
    let mut output = OutputTail::new(TEST_OUTPUT_KEEP);
    let started = Instant::now();
    let opts = job.opts(&p.redactor);
    let outcome = job.executor.run(&cmd, &opts, &mut |_, line| {
        crate::executors::pass_notes(job.executor.as_ref(), r);
        r.log(LogStream::Test, &format!("{line}\n"));
        output.push(line);
    });
    crate::executors::pass_notes(job.executor.as_ref(), r);
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
    fn the_test_command_is_the_specs_through_sh_or_the_detected_one() {
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
        let cmd = test_command(&spec(serde_json::json!("true && false")), &files, &dir)
            .expect("a command");
        assert_eq!(cmd.argv, ["sh", "-c", "true && false"]);
        assert_eq!(cmd.shown, "true && false");
        assert_eq!(
            test_command(&spec(serde_json::json!("  ")), &files, &dir),
            None
        );
        assert_eq!(
            test_command(&spec(serde_json::Value::Null), &files, &dir),
            None
        );
        std::fs::write(dir.join("go.mod"), "module x\n").expect("write");
        let detected =
            test_command(&spec(serde_json::Value::Null), &files, &dir).expect("detected");
        assert_eq!(detected.argv, ["go", "test", "./..."]);
        assert_eq!(detected.shown, "go test ./...");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_missing_program_is_read_from_the_shells_words() {
        assert_eq!(
            missing_program("collecting\nsh: 1: pytest: not found\n", "pytest -q"),
            "pytest"
        );
        assert_eq!(
            missing_program("bash: line 1: tox: command not found\n", "make && tox"),
            "tox"
        );
        assert_eq!(missing_program("", "npm test"), "npm");
    }
}
