//! Real Docker for the tests, with no registry: the images the tests need
//! are built on this machine and cached by tag.
//!
//! - [`base_image`]: a minimal Debian (bookworm) with git, python3 and
//!   ca-certificates, made by `debootstrap` into a folder and imported with
//!   `docker import`. About a minute the first time; afterwards the tag is
//!   found and nothing is built.
//! - [`job_image`]: the base plus the fake agent CLIs of
//!   `tests/fixtures/agents` in `/usr/local/bin` (tagged by a hash of
//!   their contents, so editing a fake rebuilds it).
//! - [`full_image`] and [`minimal_image`]: the project's `Dockerfile`
//!   targets, built exactly as docs/docker.md says, from the static binary
//!   `make static` leaves in `dist/` (tagged by a hash of the Dockerfile,
//!   the binary and the base). `full` is built on the job image with no npm
//!   package, so its agents are the fakes.
//!
//! Builds are serialised across test processes by a lock file, so two test
//! binaries starting at once build an image once.
//!
//! Where Docker is absent a test calls [`available_or_skip`], which prints
//! that it was skipped — unless `ADOS_REQUIRE_DOCKER` is set (CI sets it),
//! where a missing Docker fails the test instead of skipping it.

use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The tag of the Debian base: bump the suffix when its package list changes.
pub const BASE_TAG: &str = "ados-test-base:bookworm-1";

/// Packages `debootstrap` adds to its minimal base.
const BASE_PACKAGES: &str = "git,python3,ca-certificates,procps";

/// Whether `docker info` answers.
pub fn available() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// `true` when Docker can be used. Otherwise prints that `test` was skipped
/// and returns `false` — or panics when `ADOS_REQUIRE_DOCKER` is set, so CI
/// never passes by skipping.
pub fn available_or_skip(test: &str) -> bool {
    if available() {
        return true;
    }
    if std::env::var_os("ADOS_REQUIRE_DOCKER").is_some_and(|v| !v.is_empty()) {
        panic!("{test}: Docker is required (ADOS_REQUIRE_DOCKER is set) but `docker info` failed: start the Docker daemon");
    }
    eprintln!("{test}: skipped: docker not available (`docker info` failed)");
    false
}

/// Run `docker args…`, returning its output; panics with its stderr when it
/// fails.
pub fn docker(args: &[&str]) -> String {
    let out = docker_output(args);
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Run `docker args…` and return its output whatever its exit status.
pub fn docker_output(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the docker CLI")
}

/// Whether an image with this tag exists locally.
pub fn image_exists(tag: &str) -> bool {
    docker_output(&["image", "inspect", "--format", "{{.Id}}", tag])
        .status
        .success()
}

/// The ids of containers (running or not) carrying `label` (`k=v`).
pub fn containers_labelled(label: &str) -> Vec<String> {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label={label}"),
    ])
    .lines()
    .map(str::to_string)
    .filter(|l| !l.is_empty())
    .collect()
}

/// Remove every container carrying `label`, running or not.
pub fn remove_containers_labelled(label: &str) {
    for id in containers_labelled(label) {
        let _ = docker_output(&["rm", "-f", &id]);
    }
}

/// The address of this host on Docker's default bridge (`docker0`): where
/// a container reaches a test server. The network's gateway, else the
/// first address of its subnet (what the daemon gives docker0).
pub fn bridge_gateway() -> String {
    let out = docker(&[
        "network",
        "inspect",
        "bridge",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}} {{.Subnet}}{{end}}",
    ]);
    let mut parts = out.split_whitespace();
    let (first, second) = (parts.next().unwrap_or(""), parts.next());
    if second.is_some() && !first.contains('/') {
        return first.to_string();
    }
    let subnet = if first.contains('/') {
        first
    } else {
        second.unwrap_or("")
    };
    let net = subnet.split('/').next().unwrap_or("");
    let mut octets: Vec<u8> = net.split('.').filter_map(|o| o.parse().ok()).collect();
    assert_eq!(octets.len(), 4, "the bridge network's subnet: {out}");
    octets[3] = octets[3].saturating_add(1);
    octets
        .iter()
        .map(u8::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The Debian base image's tag, building it first if it is missing.
pub fn base_image() -> String {
    let _lock = BuildLock::take();
    if !image_exists(BASE_TAG) {
        build_base();
    }
    BASE_TAG.to_string()
}

/// The job image: the base with the fake agent CLIs in `/usr/local/bin`.
pub fn job_image() -> String {
    let base = base_image();
    let agents = agents_source();
    let tag = format!("ados-test-job:{:016x}", hash_dir(&agents));
    let _lock = BuildLock::take();
    if image_exists(&tag) {
        return tag;
    }
    let context = scratch_dir("job-image");
    let into = context.join("agents");
    std::fs::create_dir_all(&into).expect("create the build context");
    for entry in std::fs::read_dir(&agents).expect("read tests/fixtures/agents") {
        let entry = entry.expect("list tests/fixtures/agents");
        std::fs::copy(entry.path(), into.join(entry.file_name())).expect("copy a fake agent");
    }
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {base}\nCOPY agents/ /usr/local/bin/\nRUN chmod 0755 /usr/local/bin/claude /usr/local/bin/codex /usr/local/bin/copilot && chmod 0644 /usr/local/bin/fakelib.py\n"),
    )
    .expect("write the job image's Dockerfile");
    let context_arg = context.to_string_lossy().to_string();
    docker(&["build", "-q", "-t", &tag, &context_arg]);
    let _ = std::fs::remove_dir_all(&context);
    tag
}

/// The runner image `full` (the Dockerfile's default target), built on the
/// job image with `AGENT_PACKAGES` empty.
///
/// # Panics
///
/// When `dist/ados-work-runner` is missing (`make static` builds it; `make
/// test` runs it first) or the build fails.
pub fn full_image() -> String {
    let base = job_image();
    runner_image(
        "full",
        &[
            "--build-arg",
            &format!("BASE_IMAGE={base}"),
            "--build-arg",
            "AGENT_PACKAGES=",
        ],
        &base,
    )
}

/// The runner image `minimal` (`FROM scratch`, the static binary alone).
///
/// # Panics
///
/// As [`full_image`].
pub fn minimal_image() -> String {
    runner_image("minimal", &[], "scratch")
}

/// The repository's root (the Dockerfile's build context).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The static binary `make static` builds.
pub fn static_binary() -> PathBuf {
    let bin = repo_root().join("dist/ados-work-runner");
    assert!(
        bin.is_file(),
        "{} is missing: run `make static` first (`make test` does)",
        bin.display()
    );
    bin
}

/// Build the Dockerfile's `target` with `args`, tagged by what it is made of.
fn runner_image(target: &str, args: &[&str], base: &str) -> String {
    let root = repo_root();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(root.join("Dockerfile"))
        .expect("read the Dockerfile")
        .hash(&mut h);
    std::fs::read(static_binary())
        .expect("read dist/ados-work-runner")
        .hash(&mut h);
    base.hash(&mut h);
    let tag = format!("ados-test-runner-{target}:{:016x}", h.finish());
    let _lock = BuildLock::take();
    if image_exists(&tag) {
        return tag;
    }
    eprintln!("building the runner image {tag} from the Dockerfile (target {target})");
    let root_arg = root.to_string_lossy().to_string();
    let mut argv = vec!["build", "-q", "--target", target, "-t", &tag];
    argv.extend_from_slice(args);
    argv.push(&root_arg);
    docker(&argv);
    // Each new binary makes a new tag: drop the older ones of this target
    // (one in use by a container stays, `rmi` refuses it).
    let repo = format!("ados-test-runner-{target}");
    let listed = docker(&["images", "--format", "{{.Repository}}:{{.Tag}}", &repo]);
    for old in listed.lines().filter(|t| *t != tag && !t.is_empty()) {
        let _ = docker_output(&["rmi", old]);
    }
    tag
}

/// `tests/fixtures/agents`.
fn agents_source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/agents")
}

/// debootstrap a minimal bookworm and `docker import` it as [`BASE_TAG`].
fn build_base() {
    let mirror = std::env::var("ADOS_TEST_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".to_string());
    let root = scratch_dir("debootstrap");
    let root_arg = root.to_string_lossy().to_string();
    eprintln!(
        "building the Docker test base image {BASE_TAG} with debootstrap (about a minute, once)"
    );
    let out = Command::new("debootstrap")
        .args([
            "--variant=minbase",
            &format!("--include={BASE_PACKAGES}"),
            "bookworm",
            &root_arg,
            &mirror,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("run debootstrap ({e}): install it (`apt-get install debootstrap`) to build the Docker test base image")
        });
    assert!(
        out.status.success(),
        "debootstrap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Files a container must not inherit from this machine.
    for f in ["etc/hostname", "etc/resolv.conf"] {
        let _ = std::fs::remove_file(root.join(f));
    }
    let _ = std::fs::remove_dir_all(root.join("var/cache/apt/archives"));
    let mut tar = Command::new("tar")
        .args(["-C", &root_arg, "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tar");
    let tar_out = tar.stdout.take().expect("tar's stdout");
    let import = Command::new("docker")
        .args(["import", "-c", "CMD [\"/bin/sh\"]", "-", BASE_TAG])
        .stdin(tar_out)
        .output()
        .expect("run docker import");
    let tar_status = tar.wait().expect("wait for tar");
    assert!(tar_status.success(), "tar of the debootstrap folder failed");
    assert!(
        import.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&import.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A fresh directory under /var/tmp (large, and not a tmpfs).
fn scratch_dir(what: &str) -> PathBuf {
    let dir = PathBuf::from("/var/tmp").join(format!(
        "ados-test-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("create a scratch directory under /var/tmp");
    dir
}

/// A hash of a directory's file names and contents (sorted).
fn hash_dir(dir: &Path) -> u64 {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("read a directory to hash")
        .map(|e| e.expect("list a directory to hash").path())
        .collect();
    names.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for path in names {
        path.file_name().hash(&mut h);
        std::fs::read(&path)
            .expect("read a file to hash")
            .hash(&mut h);
    }
    h.finish()
}

/// An exclusive lock across test processes while an image is built.
struct BuildLock {
    _file: File,
}

impl BuildLock {
    fn take() -> BuildLock {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/tmp/ados-test-images.lock")
            .expect("open the image build lock");
        // SAFETY: flock on a file descriptor this struct owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "lock /tmp/ados-test-images.lock");
        let mut f = &file;
        let _ = writeln!(f, "{}", std::process::id());
        BuildLock { _file: file }
    }
}
