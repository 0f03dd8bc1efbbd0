//! A smart-HTTP git server for tests: tiny_http on `127.0.0.1:0` running
//! `git http-backend` as a CGI, with pushes enabled. It demands HTTP Basic
//! auth with one configured user and token (`401` + `WWW-Authenticate:
//! Basic` otherwise) and records every request, so tests can assert what
//! the runner did on the wire (a fetch rather than a full clone, no
//! unauthenticated request).

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET` / `POST`.
    pub method: String,
    /// The URL path (`/o/r.git/info/refs`).
    pub path: String,
    /// The query string (`service=git-upload-pack`), empty when none.
    pub query: String,
    /// The request carried the right Basic credentials.
    pub authorized: bool,
    /// The HTTP status answered.
    pub status: u16,
    /// Body size in bytes, as sent.
    pub body_len: usize,
    /// `have` lines in an upload-pack request body (a fetch into an
    /// existing repository has some; a fresh clone has none). Zero for a
    /// gzip-encoded body.
    pub haves: usize,
}

impl RecordedRequest {
    /// `POST …/git-upload-pack`: objects were negotiated or sent.
    pub fn is_upload_pack_post(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/git-upload-pack")
    }

    /// `POST …/git-receive-pack`: a push.
    pub fn is_receive_pack_post(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/git-receive-pack")
    }
}

/// The running server; stops when dropped.
pub struct GitServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    thread: Option<JoinHandle<()>>,
    root: PathBuf,
}

impl GitServer {
    /// Serves the bare repositories under `root`, accepting only
    /// `user`:`token`.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub fn start(root: &Path, user: &str, token: &str) -> GitServer {
        GitServer::start_on("127.0.0.1", root, user, token)
    }

    /// [`GitServer::start`] listening on `host` (the Docker bridge's
    /// gateway, so a runner in a container reaches it).
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub fn start_on(host: &str, root: &Path, user: &str, token: &str) -> GitServer {
        let server =
            Arc::new(tiny_http::Server::http(format!("{host}:0")).expect("bind git server"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("git server listens on an IP address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let expected = format!("Basic {}", base64(format!("{user}:{token}").as_bytes()));
        let thread = {
            let server = server.clone();
            let requests = requests.clone();
            let root = root.to_path_buf();
            let user = user.to_string();
            std::thread::Builder::new()
                .name("test-git-server".into())
                .spawn(move || {
                    while let Ok(req) = server.recv() {
                        let rec = handle(req, &root, &user, &expected);
                        if let Ok(mut v) = requests.lock() {
                            v.push(rec);
                        }
                    }
                })
                .expect("spawn git server thread")
        };
        GitServer {
            addr,
            server,
            requests,
            thread: Some(thread),
            root: root.to_path_buf(),
        }
    }

    /// `http://<host>:<port>/<repo>`.
    pub fn url_for(&self, repo: &str) -> String {
        format!("http://{}/{}", self.addr, repo.trim_start_matches('/'))
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        if let Ok(mut v) = self.requests.lock() {
            v.clear();
        }
    }

    /// Makes the server refuse any push to `branch` of `repo` (relative to
    /// the root), the way a protected branch is refused.
    pub fn protect_branch(&self, repo: &str, branch: &str) {
        let hooks = self.root.join(repo).join("hooks");
        std::fs::create_dir_all(&hooks).expect("create hooks dir");
        let hook = hooks.join("pre-receive");
        let script = format!(
            "#!/bin/sh\nwhile read old new ref; do\n  if [ \"$ref\" = \"refs/heads/{branch}\" ]; then\n    echo \"GH006: Protected branch update failed for $ref\" >&2\n    exit 1\n  fi\ndone\nexit 0\n"
        );
        std::fs::write(&hook, script).expect("write pre-receive hook");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
            .expect("chmod pre-receive hook");
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header<'r>(req: &'r tiny_http::Request, name: &str) -> Option<&'r str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn handle(mut req: tiny_http::Request, root: &Path, user: &str, expected: &str) -> RecordedRequest {
    let method = req.method().as_str().to_string();
    let (path, query) = match req.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.url().to_string(), String::new()),
    };
    let authorized = header(&req, "Authorization") == Some(expected);
    let content_type = header(&req, "Content-Type").unwrap_or("").to_string();
    let encoding = header(&req, "Content-Encoding").unwrap_or("").to_string();
    let protocol = header(&req, "Git-Protocol").unwrap_or("").to_string();
    let mut body = Vec::new();
    let _ = req.as_reader().read_to_end(&mut body);
    let haves = if encoding.is_empty() {
        body.windows(5).filter(|w| w == b"have ").count()
    } else {
        0
    };
    let mut rec = RecordedRequest {
        method: method.clone(),
        path: path.clone(),
        query: query.clone(),
        authorized,
        status: 0,
        body_len: body.len(),
        haves,
    };
    if !authorized {
        rec.status = 401;
        let resp = tiny_http::Response::from_string("authentication required\n")
            .with_status_code(401)
            .with_header(
                tiny_http::Header::from_bytes("WWW-Authenticate", "Basic realm=\"test-git\"")
                    .expect("static header is valid"),
            );
        let _ = req.respond(resp);
        return rec;
    }
    let mut cmd = Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", &query)
        .env("REQUEST_METHOD", &method)
        .env("CONTENT_TYPE", &content_type)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_USER", user)
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !encoding.is_empty() {
        cmd.env("HTTP_CONTENT_ENCODING", &encoding);
    }
    if !protocol.is_empty() {
        cmd.env("GIT_PROTOCOL", &protocol);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            rec.status = 500;
            let _ = req.respond(
                tiny_http::Response::from_string(format!("cannot run git: {e}"))
                    .with_status_code(500),
            );
            return rec;
        }
    };
    // Body written on its own thread: http-backend may answer before it
    // has read everything, and a full pipe must not deadlock us.
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&body);
        })
    });
    let mut out = Vec::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_end(&mut out);
    }
    let _ = child.wait();
    if let Some(w) = writer {
        let _ = w.join();
    }
    let (status, headers, body) = parse_cgi(&out);
    rec.status = status;
    let mut resp = tiny_http::Response::from_data(body).with_status_code(status);
    for (k, v) in headers {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            resp = resp.with_header(h);
        }
    }
    let _ = req.respond(resp);
    rec
}

/// Splits CGI output into status, headers and body.
fn parse_cgi(out: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = match find(out, b"\r\n\r\n") {
        Some(i) => (&out[..i], &out[i + 4..]),
        None => match find(out, b"\n\n") {
            Some(i) => (&out[..i], &out[i + 2..]),
            None => (out, &[][..]),
        },
    };
    let mut status = 200;
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("Status") {
            status = v
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500);
        } else {
            headers.push((k.to_string(), v.to_string()));
        }
    }
    (status, headers, body.to_vec())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard padded base64 (what HTTP Basic uses).
pub fn base64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
