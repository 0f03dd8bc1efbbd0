//! `ados-work-runner check`: the doctor. Runs every check a runner needs to
//! work (configuration, git, agent CLIs, workspace, the API and the
//! WebSocket handshake), prints one ✓/✗ line each with a fix under every
//! failure, and exits 1 if anything failed.
//!
//! Checks that need a valid configuration (workspace, API, WebSocket) are
//! left out when the configuration itself fails: its ✗ already lists every
//! problem, and checking with half a configuration would only add noise.
//!
//! Agent CLIs: the check fails only when *no* agent (built-in or custom)
//! answers `--version`; a runner with just one agent is a valid runner, so
//! the others are listed as "not found" in the detail.
//!
//! The WebSocket check performs a real handshake and closes the connection
//! right away without sending `hello`, so the control plane never sees a
//! runner session. Run it while the daemon is stopped if your control plane
//! drops the older connection for a runner id (close code 4009).

use crate::config::{
    format_memory, parse_http_url, Config, ConfigErrors, HttpUrl, Purpose, RawEnv, BUILTIN_AGENTS,
};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Oldest git the runner supports (`git switch`/`restore`, `--no-tags`
/// fetch refspecs and protocol v2 defaults are all there from 2.31 on).
pub const MIN_GIT: (u32, u32, u32) = (2, 31, 0);

/// Timeout for each network check and each `--version`.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`git`, `API reachable`).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found; may span several lines.
    pub detail: String,
    /// What to do about a failure.
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &str, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Run every check against the real system.
pub fn run_checks(env: &RawEnv) -> Vec<Check> {
    let path = env
        .get("PATH")
        .unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .to_string();
    run_checks_with(env, &|program| version_of(program, &path))
}

/// [`run_checks`] with the program probe injected: `probe(program)` is the
/// first line of `program --version`, or why it could not be had.
pub fn run_checks_with(env: &RawEnv, probe: &dyn Fn(&str) -> Result<String, String>) -> Vec<Check> {
    let config = Config::from_raw(env, Purpose::Daemon);
    let mut out = vec![config_check(&config), git_check(probe("git"))];
    let mut agents: Vec<(String, Result<String, String>)> = BUILTIN_AGENTS
        .iter()
        .map(|a| (a.to_string(), probe(a)))
        .collect();
    if let Ok(cfg) = &config {
        for custom in &cfg.custom_agents {
            if let Some(program) = custom.command.first() {
                agents.push((custom.name.clone(), probe(program)));
            }
        }
    }
    out.push(agents_check(&agents));
    if let Ok(cfg) = &config {
        out.push(workspace_writable(&cfg.workspace_dir));
        out.push(match free_disk_bytes(&cfg.workspace_dir) {
            Ok(free) => disk_check(&cfg.workspace_dir, free, cfg.min_free_disk),
            Err(e) => Check::fail(
                "workspace free space",
                format!(
                    "cannot read free space of {}: {e}",
                    cfg.workspace_dir.display()
                ),
                "check that WORKSPACE_DIR is on a mounted volume",
            ),
        });
        out.push(api_check(cfg));
        out.push(websocket_check(cfg));
    }
    out
}

/// The report as printed: one `✓`/`✗` line per check, continuation lines
/// indented, and `fix:` under each failure.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let mark = if c.ok { '✓' } else { '✗' };
        let mut lines = c.detail.lines();
        let _ = writeln!(out, "{mark} {}: {}", c.name, lines.next().unwrap_or(""));
        for l in lines {
            let _ = writeln!(out, "    {l}");
        }
        if let (false, Some(fix)) = (c.ok, &c.fix) {
            let _ = writeln!(out, "    fix: {fix}");
        }
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        out.push_str("all checks passed\n");
    } else {
        let _ = writeln!(out, "{failed} check(s) failed");
    }
    out
}

/// The exit code for a report: 0 when every check passed, else 1.
pub fn exit_code(checks: &[Check]) -> i32 {
    i32::from(checks.iter().any(|c| !c.ok))
}

/// Print the report to stdout and return the exit code.
pub fn print(checks: &[Check]) -> i32 {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(render(checks).as_bytes());
    let _ = stdout.flush();
    exit_code(checks)
}

fn config_check(config: &Result<Config, ConfigErrors>) -> Check {
    match config {
        Ok(c) => Check::pass(
            "configuration",
            format!(
                "valid (runner {}, group {}, mode {}, {} job slot(s), {} CPU(s), {} memory)",
                c.runner_id,
                c.group,
                c.mode.as_str(),
                c.max_jobs,
                c.cpus,
                format_memory(c.memory_bytes)
            ),
        ),
        Err(errs) => Check::fail(
            "configuration",
            errs.to_string().trim_end().to_string(),
            "set each variable listed above as its example shows",
        ),
    }
}

/// `git version 2.43.0`, `git version 2.39.3 (Apple Git-146)`,
/// `git version 2.45.1.windows.1` → the numeric version.
pub fn parse_git_version(output: &str) -> Option<(u32, u32, u32)> {
    let v = output.trim().strip_prefix("git version ")?;
    let v = v.split_whitespace().next()?;
    let mut nums = v.split('.').map(|p| p.parse::<u32>());
    let major = nums.next()?.ok()?;
    let minor = nums.next()?.ok()?;
    let patch = nums.next().and_then(Result::ok).unwrap_or(0);
    Some((major, minor, patch))
}

fn git_check(probe: Result<String, String>) -> Check {
    const FIX: &str = "install git 2.31 or newer and put it on PATH";
    match probe {
        Err(e) => Check::fail("git", format!("git: {e}"), FIX),
        Ok(out) => match parse_git_version(&out) {
            Some(v) if v >= MIN_GIT => Check::pass("git", format!("{}.{}.{}", v.0, v.1, v.2)),
            Some(v) => Check::fail(
                "git",
                format!("{}.{}.{} is older than 2.31", v.0, v.1, v.2),
                FIX,
            ),
            None => Check::fail(
                "git",
                format!("unrecognised `git --version` output: {out}"),
                FIX,
            ),
        },
    }
}

fn agents_check(agents: &[(String, Result<String, String>)]) -> Check {
    let detail = agents
        .iter()
        .map(|(name, r)| match r {
            Ok(v) => format!("{name} {v}"),
            Err(e) => format!("{name}: {e}"),
        })
        .collect::<Vec<_>>()
        .join("; ");
    if agents.iter().any(|(_, r)| r.is_ok()) {
        Check::pass("agent CLIs", detail)
    } else {
        Check::fail(
            "agent CLIs",
            format!("no agent CLI found ({detail})"),
            "install at least one: npm install -g @anthropic-ai/claude-code (claude), @openai/codex (codex) or @github/copilot (copilot)",
        )
    }
}

fn workspace_writable(dir: &Path) -> Check {
    let probe = dir.join(format!(".ados-check-{}", std::process::id()));
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
        .and_then(|mut f| f.write_all(b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match result {
        Ok(()) => Check::pass("workspace writable", dir.display().to_string()),
        Err(e) => {
            let _ = std::fs::remove_file(&probe);
            Check::fail(
                "workspace writable",
                format!("cannot create a file in {}: {e}", dir.display()),
                "make WORKSPACE_DIR writable by the runner's user (a volume owned by it)",
            )
        }
    }
}

/// Bytes available to an unprivileged user on the file system of `path`.
///
/// # Errors
///
/// `statvfs(2)` failed (no such path, not mounted).
pub fn free_disk_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: statvfs writes into a zeroed struct we own; `c` is a valid
    // NUL-terminated path for the duration of the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    #[expect(
        clippy::useless_conversion,
        reason = "the field types differ between libc targets"
    )]
    Ok(u64::from(st.f_bavail).saturating_mul(u64::from(st.f_frsize)))
}

fn disk_check(dir: &Path, free: u64, min: u64) -> Check {
    let name = "workspace free space";
    if min == 0 {
        return Check::pass(
            name,
            format!(
                "{} free (check disabled: ADOS_MIN_FREE_DISK=0)",
                format_memory(free)
            ),
        );
    }
    if free >= min {
        Check::pass(
            name,
            format!("{} free in {}", format_memory(free), dir.display()),
        )
    } else {
        Check::fail(
            name,
            format!(
                "{} free in {}, below ADOS_MIN_FREE_DISK ({}); new jobs would be refused",
                format_memory(free),
                dir.display(),
                format_memory(min)
            ),
            "free space on that volume, give it a bigger volume, or lower ADOS_MIN_FREE_DISK",
        )
    }
}

/// `<api>/api/v1/health`, or `<api>/health` when the URL already ends in
/// `/api/v1` (the same rule as the WebSocket URL).
fn health_url(api_url: &str) -> String {
    let base = api_url.trim_end_matches('/');
    if base.ends_with("/api/v1") {
        format!("{base}/health")
    } else {
        format!("{base}/api/v1/health")
    }
}

/// What an HTTP status from the API's health endpoint means.
fn classify_api(url: &str, status: u16) -> Check {
    let name = "API reachable";
    match status {
        200..=299 => Check::pass(name, format!("{url} answered {status}")),
        401 | 403 => Check::fail(
            name,
            format!("{url} is reachable but refused the token (HTTP {status})"),
            "check ADOS_TOKEN (and ADOS_TENANT_ID): create a new runner token in the dashboard",
        ),
        _ => Check::fail(
            name,
            format!("{url} answered HTTP {status}"),
            "check that ADOS_API_URL is the API's base URL (example: https://api.ados.dev)",
        ),
    }
}

fn api_check(cfg: &Config) -> Check {
    let url = health_url(&cfg.api_url);
    let (secure, host) = match parse_http_url(&cfg.api_url) {
        Ok(u) => (u.secure, u.host),
        Err(e) => {
            return Check::fail(
                "API reachable",
                format!("ADOS_API_URL {e}"),
                "set ADOS_API_URL",
            )
        }
    };
    let proxy = match cfg.proxy.proxy_for(secure, &host).map(ureq::Proxy::new) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => {
            return Check::fail(
                "API reachable",
                format!("the proxy URL is unusable: {e}"),
                "fix HTTPS_PROXY / HTTP_PROXY",
            )
        }
    };
    let ca = match &cfg.ca_cert {
        None => Vec::new(),
        Some(p) => match load_ca(p) {
            Ok(c) => c,
            Err(e) => return Check::fail("API reachable", e, "fix ADOS_CA_CERT"),
        },
    };
    let get = |roots: ureq::tls::RootCerts| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(proxy.clone())
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(roots)
                    .unversioned_rustls_crypto_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .build(),
            )
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .user_agent(format!("ados-work-runner/{}", crate::VERSION))
            .build()
            .into();
        agent
            .get(&url)
            .header("Authorization", &format!("Bearer {}", cfg.token))
            .header("X-Ados-Runner-Id", &cfg.runner_id)
            .call()
            .map(|r| r.status().as_u16())
    };
    // ureq's root list is either the embedded Mozilla roots or a specific
    // list, not both (ureq takes full certificates, webpki-roots has only
    // trust anchors). A chain ends at one root, so trying the private CA
    // and then the public roots accepts exactly what the union would.
    let result = if secure && !ca.is_empty() {
        let certs: Vec<ureq::tls::Certificate<'static>> = ca
            .iter()
            .map(|d| ureq::tls::Certificate::from_der(d.as_ref()).to_owned())
            .collect();
        match get(ureq::tls::RootCerts::new_with_certs(&certs)) {
            Ok(s) => Ok(s),
            Err(private) => get(ureq::tls::RootCerts::WebPki).map_err(|public| {
                format!("with ADOS_CA_CERT: {private}; with the public roots: {public}")
            }),
        }
    } else {
        get(ureq::tls::RootCerts::WebPki).map_err(|e| e.to_string())
    };
    match result {
        Ok(status) => classify_api(&url, status),
        Err(e) => Check::fail(
            "API reachable",
            format!("{url}: {e}"),
            "check ADOS_API_URL, DNS, the firewall, HTTPS_PROXY/NO_PROXY, and ADOS_CA_CERT for a private CA",
        ),
    }
}

fn load_ca(path: &Path) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("ADOS_CA_CERT {}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("ADOS_CA_CERT {}: {e}", path.display()))
}

/// Mozilla's roots plus `ADOS_CA_CERT`, for the WebSocket's rustls.
fn rustls_config(ca_cert: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(p) = ca_cert {
        for cert in load_ca(p)? {
            roots
                .add(cert)
                .map_err(|e| format!("ADOS_CA_CERT {}: {e}", p.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A TCP connection to `host:port`, through an HTTP CONNECT proxy when
/// one applies, with every read and write bounded by [`TIMEOUT`].
fn connect(host: &str, port: u16, proxy: Option<&str>) -> Result<TcpStream, String> {
    let (target_host, target_port, auth) = match proxy {
        None => (host.to_string(), port, None),
        Some(url) => {
            let rest = url.get(7..).unwrap_or("").trim_end_matches('/');
            let (userinfo, hostport) = match rest.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, rest),
            };
            let (h, p) = hostport
                .rsplit_once(':')
                .ok_or("the proxy URL has no port")?;
            let p: u16 = p.parse().map_err(|_| "the proxy URL has a bad port")?;
            (
                h.trim_matches(['[', ']']).to_string(),
                p,
                userinfo.map(|u| crate::base64::encode(u.as_bytes())),
            )
        }
    };
    let addrs = (target_host.as_str(), target_port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target_host}: {e}"))?;
    let mut last = format!("{target_host} has no address");
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    if proxy.is_some() {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(a) = auth {
            let _ = write!(req, "Proxy-Authorization: Basic {a}\r\n");
        }
        req.push_str("\r\n");
        stream
            .write_all(req.as_bytes())
            .map_err(|e| format!("proxy: {e}"))?;
        // Read the proxy's answer byte by byte so nothing of the tunnel
        // that follows is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 16 * 1024 {
                return Err("proxy: answer to CONNECT too long".into());
            }
            match stream.read(&mut byte) {
                Ok(0) => return Err("proxy closed the connection during CONNECT".into()),
                Ok(_) => head.push(byte[0]),
                Err(e) => return Err(format!("proxy: {e}")),
            }
        }
        let status_line = String::from_utf8_lossy(&head);
        let status_line = status_line.lines().next().unwrap_or("");
        if status_line.split_whitespace().nth(1) != Some("200") {
            return Err(format!("proxy refused CONNECT: {status_line}"));
        }
    }
    Ok(stream)
}

fn websocket_check(cfg: &Config) -> Check {
    const NAME: &str = "WebSocket handshake";
    const FIX_NET: &str = "check that the API allows WebSocket upgrades (load balancer, proxy) and HTTPS_PROXY/NO_PROXY";
    let url = cfg.ws_url();
    let HttpUrl { secure, host, port } = match parse_http_url(&cfg.api_url) {
        Ok(u) => u,
        Err(e) => return Check::fail(NAME, format!("ADOS_API_URL {e}"), "set ADOS_API_URL"),
    };
    let uri: tungstenite::http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Check::fail(NAME, format!("{url}: {e}"), "fix ADOS_API_URL"),
    };
    let connector = if secure {
        match rustls_config(cfg.ca_cert.as_deref()) {
            Ok(c) => tungstenite::Connector::Rustls(c),
            Err(e) => return Check::fail(NAME, e, "fix ADOS_CA_CERT"),
        }
    } else {
        tungstenite::Connector::Plain
    };
    let stream = match connect(&host, port, cfg.proxy.proxy_for(secure, &host)) {
        Ok(s) => s,
        Err(e) => return Check::fail(NAME, format!("{url}: {e}"), FIX_NET),
    };
    let mut request = tungstenite::ClientRequestBuilder::new(uri)
        .with_header("Authorization", format!("Bearer {}", cfg.token))
        .with_header("X-Ados-Runner-Id", cfg.runner_id.clone())
        .with_header("User-Agent", format!("ados-work-runner/{}", crate::VERSION));
    if let Some(t) = &cfg.tenant_id {
        request = request.with_header("X-Ados-Tenant-Id", t.clone());
    }
    match tungstenite::client_tls_with_config(request, stream, None, Some(connector)) {
        Ok((mut ws, response)) => {
            // Leave at once: no `hello`, so no runner session starts.
            let _ = ws.close(None);
            let _ = ws.flush();
            Check::pass(
                NAME,
                format!("{url} accepted the token ({})", response.status().as_u16()),
            )
        }
        Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response))) => {
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                Check::fail(
                    NAME,
                    format!("{url} refused the token (HTTP {status})"),
                    "check ADOS_TOKEN, ADOS_RUNNER_ID and ADOS_TENANT_ID against the dashboard",
                )
            } else {
                Check::fail(
                    NAME,
                    format!("{url} answered HTTP {status} instead of 101"),
                    FIX_NET,
                )
            }
        }
        Err(tungstenite::HandshakeError::Interrupted(_)) => Check::fail(
            NAME,
            format!("{url}: handshake timed out after {}s", TIMEOUT.as_secs()),
            FIX_NET,
        ),
        Err(tungstenite::HandshakeError::Failure(e)) => {
            Check::fail(NAME, format!("{url}: {e}"), FIX_NET)
        }
    }
}

/// `<program> --version`'s first line, through the process module (own
/// process group, stdin null, an environment of PATH only, 10 s limit).
fn version_of(program: &str, path: &str) -> Result<String, String> {
    let Some(found) = crate::agents::find_program(program, path) else {
        return Err("not found on PATH".into());
    };
    let mut spec =
        crate::process::CommandSpec::new(found.display().to_string(), std::env::temp_dir());
    spec.args = vec!["--version".into()];
    spec.env = vec![("PATH".into(), path.to_string())];
    spec.timeout = Some(TIMEOUT);
    spec.kill_grace = Duration::from_secs(1);
    let redactor = crate::redact::Redactor::empty();
    let cancel = crate::job::CancelToken::never();
    let opts = crate::process::RunOptions {
        cancel: &cancel,
        redactor: &redactor,
        observer: None,
    };
    let out = crate::process::run_captured(&spec, &opts, 64 * 1024)
        .map_err(|e| format!("cannot be started: {e}"))?;
    if !out.outcome.success() {
        return Err(format!(
            "`{program} --version` failed ({})",
            out.outcome.describe()
        ));
    }
    out.stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(String::from)
        .ok_or_else(|| format!("`{program} --version` printed nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "ados-check-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        p
    }

    fn config_for(api_url: &str, token: &str) -> Config {
        let ws = temp_dir("ws");
        Config::from_raw(
            &RawEnv::from_pairs([
                ("ADOS_API_URL", api_url),
                ("ADOS_TOKEN", token),
                ("ADOS_RUNNER_ID", "runner-1"),
                ("WORKSPACE_DIR", ws.to_str().unwrap()),
                ("ADOS_CPUS", "1"),
                ("ADOS_MEMORY", "4G"),
            ]),
            Purpose::Daemon,
        )
        .unwrap()
    }

    #[test]
    fn git_versions() {
        assert_eq!(parse_git_version("git version 2.43.0\n"), Some((2, 43, 0)));
        assert_eq!(
            parse_git_version("git version 2.39.3 (Apple Git-146)"),
            Some((2, 39, 3))
        );
        assert_eq!(
            parse_git_version("git version 2.45.1.windows.1"),
            Some((2, 45, 1))
        );
        assert_eq!(parse_git_version("git version 2.31"), Some((2, 31, 0)));
        assert_eq!(parse_git_version("hub version 2.14"), None);
        assert!(git_check(Ok("git version 2.31.0".into())).ok);
        let old = git_check(Ok("git version 2.30.9".into()));
        assert!(!old.ok && old.detail.contains("older than 2.31"), "{old:?}");
        assert!(!git_check(Err("not found on PATH".into())).ok);
    }

    #[test]
    fn real_programs_are_probed() {
        let path = std::env::var("PATH").unwrap();
        let git = version_of("git", &path).unwrap();
        assert!(git.starts_with("git version "), "{git}");
        assert!(
            git_check(Ok(git)).ok,
            "this machine's git is too old for the runner"
        );
        assert_eq!(
            version_of("ados-no-such-program", &path),
            Err("not found on PATH".into())
        );
        assert!(version_of("false", &path).unwrap_err().contains("failed"));
    }

    #[test]
    fn agents_fail_only_when_none_is_found() {
        let missing = || Err::<String, String>("not found on PATH".into());
        let one = agents_check(&[
            ("claude".into(), Ok("2.0.14 (Claude Code)".into())),
            ("codex".into(), missing()),
            ("copilot".into(), missing()),
        ]);
        assert!(one.ok);
        assert_eq!(
            one.detail,
            "claude 2.0.14 (Claude Code); codex: not found on PATH; copilot: not found on PATH"
        );
        let none = agents_check(&[("claude".into(), missing()), ("codex".into(), missing())]);
        assert!(!none.ok && none.fix.unwrap().contains("install at least one"));
    }

    #[test]
    fn render_marks_failures_with_their_fix() {
        let checks = vec![
            Check::pass("git", "2.43.0"),
            Check::fail(
                "configuration",
                "invalid configuration:\n  - ADOS_TOKEN: is required",
                "set it",
            ),
        ];
        assert_eq!(
            render(&checks),
            "✓ git: 2.43.0\n✗ configuration: invalid configuration:\n      - ADOS_TOKEN: is required\n    fix: set it\n1 check(s) failed\n"
        );
        assert_eq!(exit_code(&checks), 1);
        assert_eq!(exit_code(&checks[..1]), 0);
        assert!(render(&checks[..1]).ends_with("all checks passed\n"));
    }

    #[test]
    fn workspace_and_disk() {
        let dir = temp_dir("wsw");
        assert!(workspace_writable(&dir).ok);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "probe file removed"
        );
        let file = dir.join("f");
        std::fs::write(&file, "x").unwrap();
        assert!(!workspace_writable(&file).ok, "a file is not a workspace");
        assert!(free_disk_bytes(&dir).unwrap() > 0);
        assert!(free_disk_bytes(&dir.join("missing")).is_err());
        assert!(disk_check(&dir, 3 << 30, 2 << 30).ok);
        let low = disk_check(&dir, 1 << 30, 2 << 30);
        assert!(
            !low.ok && low.detail.contains("1GB free") && low.detail.contains("(2GB)"),
            "{low:?}"
        );
        assert!(disk_check(&dir, 0, 0).ok);
    }

    #[test]
    fn api_status_meanings() {
        assert_eq!(health_url("https://a.b"), "https://a.b/api/v1/health");
        assert_eq!(
            health_url("https://a.b/api/v1"),
            "https://a.b/api/v1/health"
        );
        assert!(classify_api("u", 200).ok);
        assert!(classify_api("u", 401).detail.contains("refused the token"));
        assert!(!classify_api("u", 403).ok);
        assert!(classify_api("u", 404).fix.unwrap().contains("ADOS_API_URL"));
        assert!(!classify_api("u", 502).ok);
        assert_eq!(crate::base64::encode(b"user:pass"), "dXNlcjpwYXNz");
    }

    /// A plain-HTTP API on 127.0.0.1 whose /api/v1/health wants the token.
    fn api_server(token: &'static str) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
        let addr = server.server_addr().to_ip().unwrap();
        let t = std::thread::spawn(move || {
            let rq = server.recv().unwrap();
            let authorized = rq.headers().iter().any(|h| {
                h.field.equiv("Authorization") && h.value.as_str() == format!("Bearer {token}")
            });
            let code = match (rq.url(), authorized) {
                ("/api/v1/health", true) => 200,
                ("/api/v1/health", false) => 401,
                _ => 404,
            };
            rq.respond(tiny_http::Response::empty(code)).unwrap();
        });
        (addr, t)
    }

    use std::net::SocketAddr;

    #[test]
    fn api_check_against_a_local_server() {
        let (addr, t) = api_server("good");
        let ok = api_check(&config_for(&format!("http://{addr}"), "good"));
        t.join().unwrap();
        assert!(ok.ok, "{ok:?}");
        let (addr, t) = api_server("good");
        let refused = api_check(&config_for(&format!("http://{addr}"), "bad"));
        t.join().unwrap();
        assert!(
            !refused.ok && refused.detail.contains("refused the token"),
            "{refused:?}"
        );
        assert!(
            !refused.detail.contains("bad"),
            "token must not be printed: {refused:?}"
        );
        // Nothing listening.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        assert!(!api_check(&config_for(&format!("http://{closed}"), "good")).ok);
    }

    /// A WebSocket endpoint that accepts only `Bearer <token>`.
    #[expect(
        clippy::result_large_err,
        reason = "tungstenite's Callback fixes the error type"
    )]
    fn ws_server(token: &'static str) -> (SocketAddr, std::thread::JoinHandle<()>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let callback =
                |rq: &tungstenite::handshake::server::Request,
                 resp: tungstenite::handshake::server::Response| {
                    assert_eq!(rq.uri().path(), "/api/v1/work/runners/ws");
                    assert_eq!(rq.headers()["X-Ados-Runner-Id"], "runner-1");
                    if rq.headers()["Authorization"] == format!("Bearer {token}").as_str() {
                        Ok(resp)
                    } else {
                        Err(tungstenite::http::Response::builder()
                            .status(401)
                            .body(None)
                            .unwrap())
                    }
                };
            if let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) {
                // The check closes without a hello.
                while let Ok(msg) = ws.read() {
                    assert!(msg.is_close(), "unexpected {msg:?}");
                }
            }
        });
        (addr, t)
    }

    #[test]
    fn websocket_check_against_a_local_server() {
        let (addr, t) = ws_server("good");
        let ok = websocket_check(&config_for(&format!("http://{addr}"), "good"));
        t.join().unwrap();
        assert!(ok.ok, "{ok:?}");
        let (addr, t) = ws_server("good");
        let refused = websocket_check(&config_for(&format!("http://{addr}"), "bad"));
        t.join().unwrap();
        assert!(
            !refused.ok && refused.detail.contains("refused the token (HTTP 401)"),
            "{refused:?}"
        );
    }

    #[test]
    fn invalid_configuration_skips_dependent_checks() {
        let checks = run_checks_with(&RawEnv::default(), &|p| match p {
            "git" => Ok("git version 2.43.0".into()),
            "codex" => Ok("codex-cli 0.46.0".into()),
            _ => Err("not found on PATH".into()),
        });
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["configuration", "git", "agent CLIs"]);
        assert!(!checks[0].ok && checks[0].detail.contains("ADOS_TOKEN"));
        assert!(checks[1].ok && checks[2].ok);
    }

    /// A private CA and a `localhost`/127.0.0.1 server certificate made
    /// with the openssl CLI: (ca.pem, server chain, server key).
    fn test_pki() -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        let dir = temp_dir("pki");
        let run = |args: &[&str]| {
            let st = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdin(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(st.success(), "openssl {args:?}");
        };
        std::fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ados-test-ca",
            ],
        ]
        .concat());
        run(&[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "srv.key",
                "-out",
                "srv.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat());
        run(&[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        (dir.join("ca.pem"), dir.join("srv.pem"), dir.join("srv.key"))
    }

    /// A TLS server for `conns` connections; each is handed to `serve`.
    fn tls_server(
        cert: &Path,
        key: &Path,
        conns: usize,
        serve: fn(rustls::StreamOwned<rustls::ServerConnection, TcpStream>),
    ) -> (SocketAddr, std::thread::JoinHandle<()>) {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(key).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            for _ in 0..conns {
                let (tcp, _) = listener.accept().unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let conn = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
                serve(rustls::StreamOwned::new(conn, tcp));
            }
        });
        (addr, t)
    }

    fn https_ok(mut s: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                _ => return, // the client refused our certificate
            }
        }
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = s.flush();
        s.conn.send_close_notify();
        let _ = s.flush();
    }

    fn wss_accept(s: rustls::StreamOwned<rustls::ServerConnection, TcpStream>) {
        if let Ok(mut ws) = tungstenite::accept(s) {
            while ws.read().is_ok() {}
        }
    }

    fn tls_config_for(port: u16, ca: Option<&Path>) -> Config {
        let ws = temp_dir("tls");
        let mut pairs = vec![
            (
                "ADOS_API_URL".to_string(),
                format!("https://localhost:{port}"),
            ),
            ("ADOS_TOKEN".into(), "tok".into()),
            ("ADOS_RUNNER_ID".into(), "runner-1".into()),
            ("WORKSPACE_DIR".into(), ws.display().to_string()),
            ("ADOS_CPUS".into(), "1".into()),
            ("ADOS_MEMORY".into(), "4G".into()),
            // localhost must bypass any proxy of the machine running tests.
            ("NO_PROXY".into(), "localhost".into()),
        ];
        if let Some(ca) = ca {
            pairs.push(("ADOS_CA_CERT".into(), ca.display().to_string()));
        }
        Config::from_raw(&RawEnv::from_pairs(pairs), Purpose::Daemon).unwrap()
    }

    #[test]
    fn private_ca_is_trusted_for_api_and_websocket() {
        let (ca, cert, key) = test_pki();

        // With ADOS_CA_CERT: the first (private-CA) attempt succeeds.
        let (addr, t) = tls_server(&cert, &key, 1, https_ok);
        let api = api_check(&tls_config_for(addr.port(), Some(&ca)));
        t.join().unwrap();
        assert!(api.ok, "{api:?}");

        // Without it: private CA attempt skipped, the public roots refuse.
        let (addr, t) = tls_server(&cert, &key, 1, https_ok);
        let api = api_check(&tls_config_for(addr.port(), None));
        t.join().unwrap();
        assert!(!api.ok && api.detail.contains("certificate"), "{api:?}");

        let (addr, t) = tls_server(&cert, &key, 1, wss_accept);
        let ws = websocket_check(&tls_config_for(addr.port(), Some(&ca)));
        t.join().unwrap();
        assert!(ws.ok, "{ws:?}");

        let (addr, t) = tls_server(&cert, &key, 1, wss_accept);
        let ws = websocket_check(&tls_config_for(addr.port(), None));
        t.join().unwrap();
        assert!(!ws.ok && ws.detail.contains("certificate"), "{ws:?}");
    }

    /// A fake CONNECT proxy for one connection: it checks the CONNECT line
    /// and credentials, answers 200, then plays the target itself (no real
    /// tunnel is needed to test the client side).
    fn fake_proxy(
        target: &'static str,
        then: fn(TcpStream),
    ) -> (SocketAddr, std::thread::JoinHandle<String>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(s.read(&mut b).unwrap(), 1);
                head.push(b[0]);
            }
            let head = String::from_utf8(head).unwrap();
            assert!(
                head.starts_with(&format!("CONNECT {target} HTTP/1.1\r\n")),
                "{head}"
            );
            s.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .unwrap();
            then(s);
            head
        });
        (addr, t)
    }

    fn proxied_config(proxy: SocketAddr) -> Config {
        let ws = temp_dir("proxy");
        Config::from_raw(
            &RawEnv::from_pairs([
                ("ADOS_API_URL", "http://api.ados.invalid:8081"),
                ("ADOS_TOKEN", "tok"),
                ("ADOS_RUNNER_ID", "runner-1"),
                ("WORKSPACE_DIR", ws.to_str().unwrap()),
                ("ADOS_CPUS", "1"),
                ("ADOS_MEMORY", "4G"),
                ("HTTP_PROXY", &format!("http://user:pass@{proxy}")),
            ]),
            Purpose::Daemon,
        )
        .unwrap()
    }

    #[test]
    fn checks_go_through_the_proxy() {
        // The target host does not resolve: only the proxy can reach it.
        let (addr, t) = fake_proxy("api.ados.invalid:8081", |s| {
            if let Ok(mut ws) = tungstenite::accept(s) {
                while ws.read().is_ok() {}
            }
        });
        let ws = websocket_check(&proxied_config(addr));
        let head = t.join().unwrap();
        assert!(ws.ok, "{ws:?}");
        assert!(
            head.contains("Proxy-Authorization: Basic dXNlcjpwYXNz\r\n"),
            "{head}"
        );

        let (addr, t) = fake_proxy("api.ados.invalid:8081", |mut s| {
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                head.push(b[0]);
            }
            assert!(head.starts_with(b"GET /api/v1/health HTTP/1.1"));
            s.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                .unwrap();
        });
        let api = api_check(&proxied_config(addr));
        t.join().unwrap();
        assert!(api.ok, "{api:?}");
    }
}
