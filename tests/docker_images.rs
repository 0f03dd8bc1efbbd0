//! The Docker images the tests build for themselves (no registry): the
//! debootstrapped base and the job image with the fake agents.

use ados_test_support::docker;

#[test]
fn the_job_image_runs_the_fake_agents_with_git_and_python() {
    if !docker::available_or_skip("the_job_image_runs_the_fake_agents_with_git_and_python") {
        return;
    }
    let image = docker::job_image();
    let out = docker::docker(&[
        "run", "--rm", "--network", "none", &image, "sh", "-c",
        "git --version && python3 --version && claude --version && codex --version && copilot --version",
    ]);
    assert!(out.contains("git version"), "{out}");
    assert!(out.contains("Python 3"), "{out}");
    assert!(
        out.lines().count() >= 5,
        "every fake agent answers --version: {out}"
    );
}
