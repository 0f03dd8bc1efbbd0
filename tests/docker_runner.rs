//! The runner's own images, run with real Docker as the ADOS docs run
//! them: `minimal` runs `version`; `full` with the socket and a workspace
//! volume (or bind mount) runs jobs end to end; three `full` runners side
//! by side, one killed mid-job and restarted.
//!
//! Every container and volume a test makes carries its name's prefix or
//! the label `ados.test=<test>`, and is removed before and after the test.

use ados_test_support::docker::{self, available_or_skip};

#[test]
fn the_minimal_image_runs_version() {
    if !available_or_skip("the_minimal_image_runs_version") {
        return;
    }
    let image = docker::minimal_image();
    let out = docker::docker(&["run", "--rm", "--network", "none", &image, "version"]);
    assert_eq!(out, format!("ados-work-runner {}", env!("CARGO_PKG_VERSION")));
    // Nothing but the binary: no shell to run.
    let shell = docker::docker_output(&["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", &image]);
    assert!(!shell.status.success(), "the minimal image has a shell");
}
