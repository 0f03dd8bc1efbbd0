//! Which container this runner runs in, and what `docker inspect` says of
//! it: its image and its mounts.
//!
//! The id is read from the kernel's view of this process, never from
//! `$HOSTNAME`: with `--network host` (or `--hostname`) every container
//! carries a name that is not its id. Two sources, in order:
//!
//! - `/proc/self/mountinfo`: Docker bind-mounts `/etc/hostname`,
//!   `/etc/resolv.conf` and `/etc/hosts` from
//!   `…/containers/<id>/` on its host, and the mount's root names that
//!   directory (cgroup v1 and v2 alike, whatever the cgroup namespace);
//! - `/proc/self/cgroup`: `/docker/<id>` (cgroupfs driver) or
//!   `…/docker-<id>.scope` (systemd driver), visible on cgroup v1 and on v2
//!   without a private cgroup namespace.
//!
//! The parsers are pure functions over the files' text, tested on lines
//! taken from a real container; [`inspect`] is the one command here, run
//! through `crate::process`.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::cancel::CancelToken;
use crate::process::{self, CommandSpec, RunOptions};
use crate::redact::Redactor;

/// The files Docker bind-mounts from the container's own directory.
const CONTAINER_FILES: &[&str] = &["/etc/hostname", "/etc/resolv.conf", "/etc/hosts"];

/// How much of a `/proc` file is read: far more than any real one.
const PROC_READ_MAX: u64 = 1 << 20;

/// How much of `docker inspect`'s output is kept.
const INSPECT_MAX: usize = 4 << 20;

/// `docker inspect` answers at once; a daemon that does not is reported.
const INSPECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Variables the docker CLI needs to find and talk to its daemon (none is
/// a credential; `DOCKER_CONFIG`/`HOME` locate its own configuration).
const DOCKER_CLI_ENV: &[&str] = &[
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
];

/// A mount of the runner's container, as `docker inspect` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `volume`, `bind`, `tmpfs`, …
    pub kind: String,
    /// The volume's name (named volumes only).
    pub name: Option<String>,
    /// The directory on the daemon's host (empty for a tmpfs).
    pub source: PathBuf,
    /// Where the runner sees it.
    pub destination: PathBuf,
    /// Whether it is mounted writable.
    pub rw: bool,
}

/// What `docker inspect` tells of the runner's container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspected {
    /// The full container id.
    pub id: String,
    /// The image id it was started from.
    pub image: String,
    /// Its mounts.
    pub mounts: Vec<Mount>,
    /// The gateways of its networks: the Docker host's addresses there,
    /// which the egress proxy treats as the runner's own host.
    pub gateways: Vec<IpAddr>,
}

/// Whether `s` is a full Docker container id (64 lowercase hex digits).
fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The container id in the root of the mount of `/etc/hostname`,
/// `/etc/resolv.conf` or `/etc/hosts` (`…/containers/<id>/hostname`).
pub fn id_from_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        // id parent major:minor root mount-point options …
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        if !CONTAINER_FILES.contains(&mount_point) {
            return None;
        }
        let (_, after) = root.split_once("/containers/")?;
        let id = after.split('/').next()?;
        is_container_id(id).then(|| id.to_string())
    })
}

/// The container id in a cgroup path of `/proc/self/cgroup`
/// (`4:memory:/docker/<id>`, `0::/system.slice/docker-<id>.scope`).
pub fn id_from_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        let mut parts = path.split('/').rev();
        let last = parts.next()?;
        let scoped = last
            .strip_prefix("docker-")
            .and_then(|s| s.strip_suffix(".scope"));
        if let Some(id) = scoped.filter(|id| is_container_id(id)) {
            return Some(id.to_string());
        }
        (parts.next() == Some("docker") && is_container_id(last)).then(|| last.to_string())
    })
}

/// The id of the container this process runs in, if it runs in one.
pub fn own_id() -> Option<String> {
    read_proc("/proc/self/mountinfo")
        .and_then(|m| id_from_mountinfo(&m))
        .or_else(|| read_proc("/proc/self/cgroup").and_then(|c| id_from_cgroup(&c)))
}

/// A `/proc` file's text, bounded.
fn read_proc(path: &str) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(PROC_READ_MAX)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Parse `docker container inspect <id>` (a JSON array of one object).
///
/// # Errors
///
/// What is missing, for the message that reports it.
pub fn parse_inspect(json: &str) -> Result<Inspected, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| format!("not JSON ({e})"))?;
    let c = v
        .as_array()
        .and_then(|a| a.first())
        .ok_or("no container in the answer")?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
    let id = text(c, "Id").ok_or("no Id")?;
    let image = text(c, "Image").ok_or("no Image")?;
    let mounts = c
        .get("Mounts")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    Some(Mount {
                        kind: text(m, "Type")?,
                        name: text(m, "Name").filter(|n| !n.is_empty()),
                        source: PathBuf::from(text(m, "Source").unwrap_or_default()),
                        destination: PathBuf::from(text(m, "Destination")?),
                        rw: m.get("RW").and_then(Value::as_bool).unwrap_or(false),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let gateways = c
        .pointer("/NetworkSettings/Networks")
        .and_then(Value::as_object)
        .map(|nets| {
            nets.values()
                .flat_map(|n| [text(n, "Gateway"), text(n, "IPv6Gateway")])
                .filter_map(|g| g?.parse::<IpAddr>().ok())
                .collect()
        })
        .unwrap_or_default();
    Ok(Inspected {
        id,
        image,
        mounts,
        gateways,
    })
}

/// Why `docker inspect` of the runner's own container failed, as a fix.
pub fn inspect_failure(id: &str, stderr: &str, socket_exists: bool) -> String {
    let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
    let said = first.unwrap_or("no message");
    if !socket_exists {
        return format!(
            "the runner runs in container {} but cannot reach the Docker daemon ({said}): mount the socket, `-v /var/run/docker.sock:/var/run/docker.sock`",
            short(id)
        );
    }
    if said.contains("permission denied") {
        return format!(
            "the runner's user cannot use the Docker socket ({said}): run the container as root, or add `--group-add <gid of /var/run/docker.sock>`"
        );
    }
    if said.contains("No such") {
        return format!(
            "the Docker daemon behind the socket does not know this runner's container {} ({said}): mount the socket of the daemon that runs the runner",
            short(id)
        );
    }
    format!("`docker inspect {}` failed: {said}", short(id))
}

/// The first 12 characters of an id, as `docker ps` shows it.
pub fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Run `docker container inspect <id>`.
///
/// # Errors
///
/// A sentence saying what to change (see [`inspect_failure`]).
pub fn inspect(id: &str) -> Result<Inspected, String> {
    let tmp = std::env::temp_dir();
    let mut spec = CommandSpec::new("docker", &tmp)
        .envs(process::allowlisted_env(None))
        .args(["container", "inspect", id])
        .timeout(Some(INSPECT_TIMEOUT))
        .kill_grace(Duration::from_secs(1));
    for name in DOCKER_CLI_ENV {
        if let Ok(v) = std::env::var(name) {
            spec.set_env(*name, v);
        }
    }
    let opts = RunOptions {
        cancel: &CancelToken::never(),
        redactor: &Redactor::empty(),
        observer: None,
    };
    let out = process::run_captured(&spec, &opts, INSPECT_MAX).map_err(|e| {
        format!(
            "the runner runs in container {} but {e}: install the Docker CLI in its image",
            short(id)
        )
    })?;
    if !out.outcome.success() {
        let socket =
            std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists();
        return Err(inspect_failure(id, &out.stderr, socket));
    }
    parse_inspect(&out.stdout)
        .map_err(|e| format!("`docker inspect {}` answered oddly: {e}", short(id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "b8f229a022fcfa638905279d9501effa0cafaa02c25c6828bd43dff5dfe8482c";

    /// Lines of a real container's /proc/self/mountinfo (Docker 20.10,
    /// cgroup v1, a named volume on /workspace and a bind mount).
    const MOUNTINFO: &str = "\
69 45 0:39 / / rw,nodev,noatime master:2 - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=0,group_id=0,default_permissions,allow_other
75 74 0:29 /docker/b8f229a022fcfa638905279d9501effa0cafaa02c25c6828bd43dff5dfe8482c /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
86 69 254:0 /var/lib/docker/volumes/ados-img-probe/_data /workspace rw,relatime master:1 - ext4 /dev/vda rw,discard
87 69 254:0 /tmp /hostbind rw,relatime - ext4 /dev/vda rw,discard
88 69 254:0 /var/lib/docker/containers/b8f229a022fcfa638905279d9501effa0cafaa02c25c6828bd43dff5dfe8482c/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw,discard
89 69 254:0 /var/lib/docker/containers/b8f229a022fcfa638905279d9501effa0cafaa02c25c6828bd43dff5dfe8482c/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw,discard
";

    #[test]
    fn the_id_is_read_from_the_hostname_mount_not_from_a_cgroup_line() {
        assert_eq!(id_from_mountinfo(MOUNTINFO).as_deref(), Some(ID));
        // A host's mountinfo: no /etc/hostname bind mount.
        let host = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    30 22 254:0 /var/lib/docker/containers/x /mnt rw - ext4 /dev/vda rw\n";
        assert_eq!(id_from_mountinfo(host), None);
        // Something under /containers/ that is not an id.
        let odd = "89 69 254:0 /srv/containers/web/hostname /etc/hostname rw - ext4 /dev/vda rw\n";
        assert_eq!(id_from_mountinfo(odd), None);
        assert_eq!(id_from_mountinfo(""), None);
        assert_eq!(id_from_mountinfo("garbage\n1 2\n"), None);
    }

    #[test]
    fn the_id_is_read_from_cgroup_v1_v2_and_the_systemd_driver() {
        let v1 = format!("9:name=systemd:/docker/{ID}\n4:memory:/docker/{ID}\n0::/docker/{ID}\n");
        assert_eq!(id_from_cgroup(&v1).as_deref(), Some(ID));
        let systemd = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(id_from_cgroup(&systemd).as_deref(), Some(ID));
        // A host (v1, then v2), and a private cgroup namespace on v2.
        assert_eq!(id_from_cgroup("9:name=systemd:/\n8:pids:/\n"), None);
        assert_eq!(
            id_from_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
        assert_eq!(id_from_cgroup("0::/\n"), None);
        assert_eq!(id_from_cgroup("4:memory:/docker/not-an-id\n"), None);
    }

    #[test]
    fn inspect_gives_the_image_and_every_mount() {
        let json = format!(
            r#"[{{"Id":"{ID}","Image":"sha256:5410d5f78700","Mounts":[
            {{"Type":"volume","Name":"ados-workspace","Source":"/var/lib/docker/volumes/ados-workspace/_data","Destination":"/workspace","Driver":"local","Mode":"z","RW":true}},
            {{"Type":"bind","Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","Mode":"","RW":true}},
            {{"Type":"tmpfs","Source":"","Destination":"/scratch","RW":true}}],
            "NetworkSettings":{{"Networks":{{
            "bridge":{{"Gateway":"172.17.0.1","IPv6Gateway":"","IPAddress":"172.17.0.2"}},
            "ados":{{"Gateway":"10.9.0.1","IPv6Gateway":"fd00:9::1"}},
            "none":{{"Gateway":""}}}}}}}}]"#
        );
        let got = parse_inspect(&json).expect("parses");
        assert_eq!(got.id, ID);
        assert_eq!(got.image, "sha256:5410d5f78700");
        assert_eq!(got.mounts.len(), 3);
        assert_eq!(got.mounts[0].name.as_deref(), Some("ados-workspace"));
        assert_eq!(
            got.mounts[0].source,
            Path::new("/var/lib/docker/volumes/ados-workspace/_data")
        );
        assert!(got.mounts[1].rw && got.mounts[1].name.is_none());
        assert_eq!(got.mounts[2].kind, "tmpfs");
        let mut gateways: Vec<String> = got.gateways.iter().map(ToString::to_string).collect();
        gateways.sort();
        assert_eq!(gateways, ["10.9.0.1", "172.17.0.1", "fd00:9::1"]);
        assert!(parse_inspect("[]").is_err());
        assert!(parse_inspect("not json").is_err());
        assert!(parse_inspect(r#"[{"Id":"x"}]"#).is_err());
    }

    #[test]
    fn a_failed_inspect_says_what_to_change() {
        let no_socket = inspect_failure(
            ID,
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
            false,
        );
        assert!(
            no_socket.contains("-v /var/run/docker.sock:/var/run/docker.sock"),
            "{no_socket}"
        );
        assert!(
            no_socket.contains("b8f229a022fc") && !no_socket.contains(ID),
            "{no_socket}"
        );
        let denied = inspect_failure(
            ID,
            "Got permission denied while trying to connect to the Docker daemon socket",
            true,
        );
        assert!(denied.contains("--group-add"), "{denied}");
        let other = inspect_failure(ID, "Error: No such container: b8f2", true);
        assert!(other.contains("does not know"), "{other}");
    }
}
