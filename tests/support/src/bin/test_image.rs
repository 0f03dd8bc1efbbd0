//! `ados-test-image base|job`: print the tag of a Docker image the tests
//! use, building it first when it is missing (see `docker.rs`). The
//! benchmarks use it to run jobs in the tests' job image.

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("base") => println!("{}", ados_test_support::docker::base_image()),
        Some("job") => println!("{}", ados_test_support::docker::job_image()),
        _ => {
            eprintln!("usage: ados-test-image base|job");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
