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

/// Where Docker cannot be reached, a Docker test is skipped, saying so —
/// unless `ADOS_REQUIRE_DOCKER` is set, as `.ci/run` sets it before `make
/// test`: then it fails, so CI never passes by skipping. This test binary
/// runs its own image test again with a daemon address that answers
/// nothing.
#[test]
fn without_docker_a_test_skips_but_fails_when_docker_is_required() {
    let me = std::env::current_exe().expect("this test binary");
    let run = |require: bool| {
        let mut cmd = std::process::Command::new(&me);
        cmd.args([
            "--exact",
            "the_job_image_runs_the_fake_agents_with_git_and_python",
            "--nocapture",
        ])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env_remove("ADOS_REQUIRE_DOCKER");
        if require {
            cmd.env("ADOS_REQUIRE_DOCKER", "1");
        }
        let out = cmd.output().expect("run this test binary");
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, said) = run(false);
    assert!(ok, "{said}");
    assert!(said.contains("skipped: docker not available"), "{said}");
    let (ok, said) = run(true);
    assert!(!ok, "{said}");
    assert!(said.contains("Docker is required"), "{said}");

    let ci = std::fs::read_to_string(docker::repo_root().join(".ci/run")).expect("read .ci/run");
    let required = ci.find("\nexport ADOS_REQUIRE_DOCKER=1\n");
    let tests = ci.find("\nmake test\n");
    assert!(
        required.is_some() && tests.is_some() && required < tests,
        ".ci/run must require Docker before `make test`"
    );
}
