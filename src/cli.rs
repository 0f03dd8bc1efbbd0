//! The command line: subcommands and their exit codes.

use std::process::ExitCode;

/// Parse `std::env::args`, run the subcommand, return the exit code.
pub fn main() -> ExitCode {
    ExitCode::SUCCESS
}
