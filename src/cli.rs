//! The command line: subcommands and their exit codes.
//!
//! Exit codes, in one place: 0 success; 1 a check or job failed; 2 bad
//! configuration or usage; 130 interrupted (Ctrl-C during `exec`).

use crate::config::{Config, Purpose, RawEnv};
use std::process::ExitCode;

/// The usage text of `--help`.
pub const USAGE: &str = "\
ados-work-runner — the self-hosted job runner of ADOS

USAGE:
    ados-work-runner [SUBCOMMAND] [OPTIONS]

SUBCOMMANDS:
    run           Connect to the control plane and run jobs (the default);
                  `run --once`: take exactly one job, deliver it, exit 0
                  (ephemeral runners; also ADOS_ONCE=1)
    exec          Run one job with no server: from a spec file or from flags
                  (see `ados-work-runner exec --help`)
    check         Check configuration, git, agent CLIs, disk and the control
                  plane; prints one line per check with the fix; exit 1 if any fails
    healthcheck   Exit 0 if /health on ADOS_HEALTH_ADDR answers 200, else 1
                  (for container HEALTHCHECKs in images without curl)
    version       Print the version
    help [env]    Print this help, or every environment variable with its
                  default and meaning (`help env-file`: the same as an env file)

`--help` after any subcommand prints its help. Configuration comes from
environment variables (ADOS_API_URL, ADOS_TOKEN, ADOS_RUNNER_ID,
WORKSPACE_DIR, ...): `ados-work-runner help env` lists them all.

EXIT CODES:
    0 success, 1 failure, 2 bad configuration or usage, 130 interrupted
";

/// The usage text of `check --help`.
const CHECK_USAGE: &str = "\
ados-work-runner check — check the setup before running

USAGE:
    ados-work-runner check

Checks the configuration (the same environment variables as `run`), git,
the agent CLIs, free disk in WORKSPACE_DIR and the control plane (its API
and the WebSocket handshake). Prints one line per check, with the fix for
each that fails. Exit 0 when every check passes, else 1.
";

/// The usage text of `healthcheck --help`.
const HEALTHCHECK_USAGE: &str = "\
ados-work-runner healthcheck — probe a running runner's /health

USAGE:
    ados-work-runner healthcheck

Asks http://ADOS_HEALTH_ADDR/health (default 0.0.0.0:8080, probed on the
loopback) and exits 0 if it answers 200, else 1. For container
HEALTHCHECKs in images without curl.
";

/// Parse `std::env::args`, run the subcommand, return the exit code.
///
/// First the process is made non-dumpable (its environment holds
/// `ADOS_TOKEN` and provider keys; agents run as the same uid) and a child
/// subreaper (what a job leaves behind, even outside its process group, is
/// the runner's to kill and reap): see `process`. Here, not in [`run`],
/// which tests call in-process.
pub fn main() -> ExitCode {
    if let Err(e) = crate::process::make_non_dumpable() {
        eprintln!("warning: cannot make the runner non-dumpable (prctl PR_SET_DUMPABLE): {e}; same-uid processes can read its environment");
    }
    if let Err(e) = crate::process::become_subreaper() {
        eprintln!("warning: cannot make the runner a child subreaper (prctl PR_SET_CHILD_SUBREAPER): {e}; orphaned job processes go to PID 1");
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    ExitCode::from(run(&args))
}

/// Run a command line (without the program name); returns the exit code.
pub fn run(args: &[String]) -> u8 {
    let (cmd, rest) = match args.split_first() {
        Some((c, rest)) => (c.as_str(), rest),
        None => ("run", &[][..]),
    };
    let help = |a: &String| a == "-h" || a == "--help";
    // `--help` anywhere after a subcommand prints its help and runs nothing.
    let wants_help = rest.iter().any(help);
    match cmd {
        "exec" => crate::exec::main(rest),
        // Hidden: the runner runs it inside a fenced job container.
        "egress-forward" => egress_forward(rest),
        "run" | "check" | "healthcheck" if wants_help => {
            print!(
                "{}",
                match cmd {
                    "check" => CHECK_USAGE,
                    "healthcheck" => HEALTHCHECK_USAGE,
                    _ => USAGE,
                }
            );
            0
        }
        "run" if rest.len() == 1 && rest[0] == "--once" => run_daemon(true),
        "run" | "check" | "healthcheck" if !rest.is_empty() => {
            eprintln!(
                "error: `{cmd}` takes no arguments (got `{}`); configure it with environment variables (`ados-work-runner help env`)",
                rest.join(" ")
            );
            2
        }
        "run" => run_daemon(false),
        "check" => {
            let env = RawEnv::from_process();
            let checks = crate::check::run_checks(&env);
            crate::check::print(&checks) as u8
        }
        "healthcheck" => {
            let env = RawEnv::from_process();
            let addr = env.get("ADOS_HEALTH_ADDR").unwrap_or("0.0.0.0:8080");
            if addr.trim().eq_ignore_ascii_case("off") {
                eprintln!(
                    "healthcheck: ADOS_HEALTH_ADDR=off: this runner serves no /health to probe"
                );
                1
            } else {
                crate::health::healthcheck(addr) as u8
            }
        }
        "version" | "--version" | "-V" => {
            println!("ados-work-runner {}", crate::VERSION);
            0
        }
        "help" | "--help" | "-h" => match rest.first().map(String::as_str) {
            Some("env") => {
                print!("{}", crate::config::variables::help_text());
                0
            }
            Some("env-file") => {
                print!("{}", crate::config::variables::env_file_text());
                0
            }
            None => {
                print!("{USAGE}");
                0
            }
            Some(topic) => {
                eprintln!(
                    "error: no help on `{topic}` (try `help`, `help env` or `help env-file`)"
                );
                2
            }
        },
        other => {
            eprintln!("error: unknown subcommand `{other}`\n\n{USAGE}");
            2
        }
    }
}

/// `egress-forward`: relay the container's loopback port to the job's
/// egress proxy socket until the container stops.
fn egress_forward(args: &[String]) -> u8 {
    use crate::egress::forward;
    match forward::parse_args(args) {
        Ok(a) => match forward::run(&a) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("egress-forward: cannot listen on {}: {e}", a.listen);
                1
            }
        },
        Err(e) => {
            eprint!("error: {e}");
            2
        }
    }
}

fn run_daemon(once: bool) -> u8 {
    let cfg = match Config::from_env(Purpose::Daemon) {
        Ok(mut c) => {
            c.once |= once;
            c
        }
        Err(errors) => {
            eprint!("{errors}");
            eprintln!("Fix the variables above and start again (`ados-work-runner check` tests the whole setup).");
            return 2;
        }
    };
    match crate::daemon::run(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
