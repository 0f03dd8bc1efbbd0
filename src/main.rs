//! The `ados-work-runner` binary: parse the command line, run it, map the
//! outcome to an exit code. Everything else lives in the library.

fn main() -> std::process::ExitCode {
    ados_work_runner::cli::main()
}
