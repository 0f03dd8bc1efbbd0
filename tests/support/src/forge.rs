//! Stand-ins for the forges' REST APIs: one local HTTP server per
//! provider, answering the paths, methods, headers and JSON bodies each
//! provider documents for pull (merge) requests.
//!
//! - GitHub: `GET|POST /repos/{owner}/{repo}/pulls`, `PATCH …/pulls/{n}`;
//!   `Authorization: Bearer`, a `User-Agent` demanded; `head=owner:branch`
//!   filter (a `head` without the owner is ignored, as GitHub does); `Link`
//!   pagination; 422 for a duplicate; 403 + `X-RateLimit-Remaining: 0`.
//! - GitLab: `GET|POST /api/v4/projects/{url-encoded path}/merge_requests`,
//!   `PUT …/merge_requests/{iid}`; `PRIVATE-TOKEN`; `state` and
//!   `source_branch` filters (every state unless asked); `X-Next-Page`;
//!   409 for a duplicate; 429 + `RateLimit-Reset`.
//! - Bitbucket Cloud: `GET|POST /2.0/repositories/{ws}/{slug}/pullrequests`,
//!   `PUT …/pullrequests/{id}`; HTTP Basic; OPEN only unless `state` says
//!   otherwise; `q=source.branch.name="…"`; `next` in the page; 400 for a
//!   duplicate; 429 + `Retry-After`.
//!
//! Every request is recorded (headers and body included) with the time of
//! a fake clock the test shares with the runner's injected one, so a test
//! can say that no request came before a rate limit's reset without
//! measuring wall time. Pages hold at most [`ForgeServer::set_page_size`]
//! items (10 by default) so a few dozen PRs take several pages.

use crate::git_server::base64;
use serde_json::{json, Value};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Which API the server stands in for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// api.github.com (routes at the root).
    GitHub,
    /// GitLab REST v4 (routes under `/api/v4`).
    GitLab,
    /// Bitbucket Cloud REST 2.0 (routes under `/2.0`).
    Bitbucket,
}

/// The credentials the server accepts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `PRIVATE-TOKEN: <token>` (GitLab).
    PrivateToken(String),
    /// HTTP Basic (Bitbucket user and app password).
    Basic(String, String),
}

/// A PR's state, in each provider's words when rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrState {
    /// Open / opened / OPEN.
    Open,
    /// Closed unmerged (GitHub, GitLab).
    Closed,
    /// Merged.
    Merged,
    /// Declined (Bitbucket).
    Declined,
}

/// A pull (merge) request the server holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pr {
    /// GitHub `number`, GitLab `iid`, Bitbucket `id` (set by the server).
    pub number: u64,
    /// Head / source branch.
    pub branch: String,
    /// Base / target / destination branch.
    pub base: String,
    /// State.
    pub state: PrState,
    /// `owner/name` of the repository the head lives in; another one
    /// than the server's is a fork.
    pub source_repo: String,
    /// Title.
    pub title: String,
    /// Body / description.
    pub body: String,
    /// Draft.
    pub draft: bool,
}

/// One request the server saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// `GET`, `POST`, `PATCH`, `PUT`.
    pub method: String,
    /// The path, as sent (still percent-encoded).
    pub path: String,
    /// The query string, as sent.
    pub query: String,
    /// Every header, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, as sent.
    pub body: String,
    /// The status answered.
    pub status: u16,
    /// The fake clock (Unix seconds) when it arrived.
    pub at: u64,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when none).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct State {
    kind: Kind,
    repo: String,
    auth: Auth,
    prs: Vec<Pr>,
    next_number: u64,
    page_size: usize,
    rate_limited_until: Option<u64>,
    fail_next: Vec<u16>,
    race_next_create: bool,
    /// `scheme://host:port` of next-page links, when not the server's own.
    link_origin: Option<String>,
    redirect_next: Option<String>,
    no_drafts: bool,
    requests: Vec<Recorded>,
}

/// The running server; stops when dropped.
pub struct ForgeServer {
    addr: SocketAddr,
    kind: Kind,
    server: Arc<tiny_http::Server>,
    state: Arc<Mutex<State>>,
    clock: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Where the fake clock starts: 2026-11-26T00:00:00Z.
pub const CLOCK_START: u64 = 1_795_651_200;

impl ForgeServer {
    /// A server for `repo` (`owner/name`; GitLab: `grp/sub/name`) accepting
    /// only `auth`.
    ///
    /// # Panics
    /// When the socket cannot be bound.
    pub fn start(kind: Kind, repo: &str, auth: Auth) -> ForgeServer {
        let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind forge server"));
        let addr = server
            .server_addr()
            .to_ip()
            .expect("forge server listens on an IP address");
        let state = Arc::new(Mutex::new(State {
            kind,
            repo: repo.to_string(),
            auth,
            prs: Vec::new(),
            next_number: 1,
            page_size: 10,
            rate_limited_until: None,
            fail_next: Vec::new(),
            race_next_create: false,
            link_origin: None,
            redirect_next: None,
            no_drafts: false,
            requests: Vec::new(),
        }));
        let clock = Arc::new(AtomicU64::new(CLOCK_START));
        let thread = {
            let server = server.clone();
            let state = state.clone();
            let clock = clock.clone();
            std::thread::Builder::new()
                .name("test-forge-server".into())
                .spawn(move || {
                    while let Ok(req) = server.recv() {
                        handle(req, addr, &state, &clock);
                    }
                })
                .expect("spawn forge server thread")
        };
        ForgeServer {
            addr,
            kind,
            server,
            state,
            clock,
            thread: Some(thread),
        }
    }

    /// The API root to give the runner as `repo.api_url`.
    pub fn api_url(&self) -> String {
        format!("http://{}{}", self.addr, prefix(self.kind))
    }

    /// The fake clock, Unix seconds: the server stamps requests with it
    /// and compares rate-limit resets to it; the test's injected clock
    /// advances it when the runner sleeps.
    pub fn clock(&self) -> Arc<AtomicU64> {
        self.clock.clone()
    }

    /// Adds a PR (its `number` is assigned); returns the number.
    pub fn add_pr(&self, mut pr: Pr) -> u64 {
        let mut s = self.state.lock().expect("forge state");
        pr.number = s.next_number;
        s.next_number += 1;
        let n = pr.number;
        s.prs.push(pr);
        n
    }

    /// Every PR the server holds, by number.
    pub fn prs(&self) -> Vec<Pr> {
        self.state.lock().map(|s| s.prs.clone()).unwrap_or_default()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// At most `n` items a page.
    pub fn set_page_size(&self, n: usize) {
        self.state.lock().expect("forge state").page_size = n.max(1);
    }

    /// Every request is refused as rate limited until the fake clock
    /// reaches `until` (Unix seconds).
    pub fn rate_limit_until(&self, until: u64) {
        self.state.lock().expect("forge state").rate_limited_until = Some(until);
    }

    /// The next requests are answered with these statuses, in order (a
    /// 429 with `Retry-After: 0`).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.state.lock().expect("forge state").fail_next = statuses.to_vec();
    }

    /// Next-page links point at `origin` (`http://host:port`) instead of
    /// the server: a server that sends the client elsewhere.
    pub fn set_link_origin(&self, origin: &str) {
        self.state.lock().expect("forge state").link_origin = Some(origin.to_string());
    }

    /// The next request is answered `301 Moved Permanently` to `location`
    /// (GitHub's answer for a renamed or transferred repository).
    pub fn redirect_next(&self, location: &str) {
        self.state.lock().expect("forge state").redirect_next = Some(location.to_string());
    }

    /// The repository cannot have draft PRs (GitHub: a private repository
    /// on a plan without them): a draft create is refused with 422.
    pub fn no_drafts(&self) {
        self.state.lock().expect("forge state").no_drafts = true;
    }

    /// The addresses the server listens on: `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next create finds that another run has just opened the same
    /// PR: the server adds it, then refuses the create as a duplicate.
    pub fn race_next_create(&self) {
        self.state.lock().expect("forge state").race_next_create = true;
    }
}

impl Drop for ForgeServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn prefix(kind: Kind) -> &'static str {
    match kind {
        Kind::GitHub => "",
        Kind::GitLab => "/api/v4",
        Kind::Bitbucket => "/2.0",
    }
}

/// A response: status, headers, JSON body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Reply {
    fn new(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn with(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

fn handle(mut req: tiny_http::Request, addr: SocketAddr, state: &Mutex<State>, clock: &AtomicU64) {
    let now = clock.load(Ordering::SeqCst);
    let method = req.method().as_str().to_string();
    let (path, query) = match req.url().split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.url().to_string(), String::new()),
    };
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    let mut body = String::new();
    let _ = req.as_reader().take(1 << 20).read_to_string(&mut body);
    let mut rec = Recorded {
        method,
        path,
        query,
        headers,
        body,
        status: 0,
        at: now,
    };
    let reply = {
        let mut s = state.lock().expect("forge state");
        let reply = answer(&mut s, &rec, addr, now);
        rec.status = reply.status;
        s.requests.push(rec);
        reply
    };
    let mut resp = tiny_http::Response::from_string(reply.body.to_string())
        .with_status_code(reply.status)
        .with_header(
            tiny_http::Header::from_bytes("Content-Type", "application/json")
                .expect("static header is valid"),
        );
    for (n, v) in reply.headers {
        resp = resp.with_header(
            tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).expect("header is valid"),
        );
    }
    let _ = req.respond(resp);
}

fn answer(s: &mut State, rec: &Recorded, addr: SocketAddr, now: u64) -> Reply {
    if let Some(location) = s.redirect_next.take() {
        return Reply::new(
            301,
            json!({"message": "Moved Permanently", "url": location}),
        )
        .with("Location", location);
    }
    if !s.fail_next.is_empty() {
        let status = s.fail_next.remove(0);
        if status == 429 {
            // A server that keeps saying "retry now".
            return Reply::new(status, json!({"message": "Too Many Requests"}))
                .with("Retry-After", "0");
        }
        return Reply::new(status, json!({"message": "Server Error"}));
    }
    if let Some(until) = s.rate_limited_until.filter(|u| now < *u) {
        return rate_limited(s.kind, until, now);
    }
    if let Some(r) = check_auth(s, rec) {
        return r;
    }
    let Some(rest) = rec.path.strip_prefix(prefix(s.kind)) else {
        return not_found(s.kind);
    };
    let segs: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let (repo_ok, tail) = match (s.kind, segs.as_slice()) {
        (Kind::GitHub, ["repos", o, r, tail @ ..]) => (format!("{o}/{r}") == s.repo, tail),
        (Kind::GitLab, ["projects", id, tail @ ..]) => (decode(id) == s.repo, tail),
        (Kind::Bitbucket, ["repositories", w, r, tail @ ..]) => {
            (format!("{w}/{r}") == s.repo, tail)
        }
        _ => (false, &[][..]),
    };
    if !repo_ok {
        return not_found(s.kind);
    }
    let collection = match s.kind {
        Kind::GitHub => "pulls",
        Kind::GitLab => "merge_requests",
        Kind::Bitbucket => "pullrequests",
    };
    match (rec.method.as_str(), tail) {
        ("GET", [c]) if *c == collection => list(s, rec, addr),
        ("POST", [c]) if *c == collection => create(s, rec, addr),
        ("PATCH", [c, n]) if *c == collection && s.kind == Kind::GitHub => update(s, rec, n, addr),
        ("PUT", [c, n]) if *c == collection && s.kind != Kind::GitHub => update(s, rec, n, addr),
        _ => not_found(s.kind),
    }
}

fn rate_limited(kind: Kind, until: u64, now: u64) -> Reply {
    match kind {
        Kind::GitHub => Reply::new(
            403,
            json!({"message": "API rate limit exceeded for user ID 1.",
                   "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}),
        )
        .with("X-RateLimit-Limit", "5000")
        .with("X-RateLimit-Remaining", "0")
        .with("X-RateLimit-Reset", until.to_string()),
        Kind::GitLab => Reply::new(429, json!({"message": "Retry later"}))
            .with("RateLimit-Remaining", "0")
            .with("RateLimit-Reset", until.to_string()),
        Kind::Bitbucket => Reply::new(429, json!({"type": "error", "error": {"message": "Rate limit for this resource has been exceeded"}}))
            .with("Retry-After", (until - now).to_string()),
    }
}

fn check_auth(s: &State, rec: &Recorded) -> Option<Reply> {
    let ok = match &s.auth {
        Auth::Bearer(t) => rec.header("authorization") == Some(&format!("Bearer {t}")),
        Auth::PrivateToken(t) => rec.header("private-token") == Some(t.as_str()),
        Auth::Basic(u, p) => {
            rec.header("authorization")
                == Some(&format!("Basic {}", base64(format!("{u}:{p}").as_bytes())))
        }
    };
    if s.kind == Kind::GitHub && rec.header("user-agent").is_none_or(str::is_empty) {
        return Some(Reply::new(
            403,
            json!({"message": "Request forbidden by administrative rules. Please make sure your request has a User-Agent header"}),
        ));
    }
    if ok {
        return None;
    }
    Some(match s.kind {
        Kind::GitHub => Reply::new(
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"}),
        ),
        Kind::GitLab => Reply::new(401, json!({"message": "401 Unauthorized"})),
        Kind::Bitbucket => Reply::new(
            401,
            json!({"type": "error", "error": {"message": "Invalid credentials"}}),
        ),
    })
}

fn not_found(kind: Kind) -> Reply {
    match kind {
        Kind::GitHub => Reply::new(404, json!({"message": "Not Found"})),
        Kind::GitLab => Reply::new(404, json!({"message": "404 Project Not Found"})),
        Kind::Bitbucket => Reply::new(
            404,
            json!({"type": "error", "error": {"message": "Repository not found"}}),
        ),
    }
}

/// The query's parameters, percent-decoded.
fn params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn param<'a>(ps: &'a [(String, String)], name: &str) -> Option<&'a str> {
    ps.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn state_word(kind: Kind, st: PrState) -> &'static str {
    match (kind, st) {
        (Kind::GitHub, PrState::Open) => "open",
        (Kind::GitHub, _) => "closed",
        (Kind::GitLab, PrState::Open) => "opened",
        (Kind::GitLab, PrState::Merged) => "merged",
        (Kind::GitLab, _) => "closed",
        (Kind::Bitbucket, PrState::Open) => "OPEN",
        (Kind::Bitbucket, PrState::Merged) => "MERGED",
        (Kind::Bitbucket, _) => "DECLINED",
    }
}

fn owner_of(repo: &str) -> &str {
    repo.rsplit_once('/').map_or(repo, |(o, _)| o)
}

fn render(s: &State, pr: &Pr, addr: SocketAddr) -> Value {
    let st = state_word(s.kind, pr.state);
    match s.kind {
        Kind::GitHub => json!({
            "number": pr.number,
            "id": 1000 + pr.number,
            "state": st,
            "merged_at": if pr.state == PrState::Merged { json!("2026-11-01T00:00:00Z") } else { Value::Null },
            "draft": pr.draft,
            "title": pr.title,
            "body": pr.body,
            "html_url": format!("http://{addr}/{}/pull/{}", s.repo, pr.number),
            "url": format!("http://{addr}/repos/{}/pulls/{}", s.repo, pr.number),
            "head": {"ref": pr.branch, "label": format!("{}:{}", owner_of(&pr.source_repo), pr.branch),
                     "repo": {"full_name": pr.source_repo}},
            "base": {"ref": pr.base, "repo": {"full_name": s.repo}},
        }),
        Kind::GitLab => json!({
            "id": 5000 + pr.number,
            "iid": pr.number,
            "project_id": 7,
            "state": st,
            "draft": pr.draft,
            "title": pr.title,
            "description": pr.body,
            "source_branch": pr.branch,
            "target_branch": pr.base,
            "source_project_id": if pr.source_repo == s.repo { 7 } else { 8 },
            "target_project_id": 7,
            "web_url": format!("http://{addr}/{}/-/merge_requests/{}", s.repo, pr.number),
        }),
        Kind::Bitbucket => json!({
            "id": pr.number,
            "type": "pullrequest",
            "state": st,
            "draft": pr.draft,
            "title": pr.title,
            "description": pr.body,
            "source": {"branch": {"name": pr.branch}, "repository": {"full_name": pr.source_repo}},
            "destination": {"branch": {"name": pr.base}, "repository": {"full_name": s.repo}},
            "links": {"html": {"href": format!("https://bitbucket.org/{}/pull-requests/{}", s.repo, pr.number)}},
        }),
    }
}

/// Does `pr` pass the list filters of the query, as the provider applies them?
fn listed(s: &State, pr: &Pr, ps: &[(String, String)]) -> bool {
    match s.kind {
        Kind::GitHub => {
            let state_ok = match param(ps, "state").unwrap_or("open") {
                "all" => true,
                "closed" => pr.state != PrState::Open,
                _ => pr.state == PrState::Open,
            };
            // GitHub ignores a `head` filter without the `user:` part.
            let head_ok = match param(ps, "head").and_then(|h| h.split_once(':')) {
                Some((owner, branch)) => owner == owner_of(&pr.source_repo) && branch == pr.branch,
                None => true,
            };
            let base_ok = param(ps, "base").is_none_or(|b| b == pr.base);
            state_ok && head_ok && base_ok
        }
        Kind::GitLab => {
            let state_ok = match param(ps, "state").unwrap_or("all") {
                "all" => true,
                word => word == state_word(s.kind, pr.state),
            };
            let source_ok = param(ps, "source_branch").is_none_or(|b| b == pr.branch);
            let target_ok = param(ps, "target_branch").is_none_or(|b| b == pr.base);
            state_ok && source_ok && target_ok
        }
        Kind::Bitbucket => {
            let states: Vec<&str> = ps
                .iter()
                .filter(|(k, _)| k == "state")
                .map(|(_, v)| v.as_str())
                .collect();
            let state_ok = if states.is_empty() {
                pr.state == PrState::Open
            } else {
                states.contains(&state_word(s.kind, pr.state))
            };
            // Only the one BBQL form the runner sends is understood.
            let q_ok = match param(ps, "q") {
                None => true,
                Some(q) => match q
                    .strip_prefix("source.branch.name=\"")
                    .and_then(|r| r.strip_suffix('"'))
                {
                    Some(b) => b.replace("\\\"", "\"").replace("\\\\", "\\") == pr.branch,
                    None => false,
                },
            };
            state_ok && q_ok
        }
    }
}

fn list(s: &State, rec: &Recorded, addr: SocketAddr) -> Reply {
    let ps = params(&rec.query);
    let matching: Vec<&Pr> = s.prs.iter().filter(|pr| listed(s, pr, &ps)).collect();
    let asked = match s.kind {
        Kind::Bitbucket => param(&ps, "pagelen"),
        _ => param(&ps, "per_page"),
    };
    let size = asked
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, s.page_size);
    let page = param(&ps, "page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|pr| render(s, pr, addr))
        .collect();
    let more = matching.len() > page * size;
    let next_url = || {
        let others: Vec<String> = rec
            .query
            .split('&')
            .filter(|p| !p.starts_with("page=") && !p.is_empty())
            .map(str::to_string)
            .collect();
        let origin = s
            .link_origin
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        format!(
            "{origin}{}?{}&page={}",
            rec.path,
            others.join("&"),
            page + 1
        )
    };
    match s.kind {
        Kind::GitHub => {
            let mut r = Reply::new(200, Value::Array(items));
            if more {
                r = r.with("Link", format!("<{}>; rel=\"next\"", next_url()));
            }
            r
        }
        Kind::GitLab => Reply::new(200, Value::Array(items))
            .with("X-Page", page.to_string())
            .with("X-Per-Page", size.to_string())
            .with("X-Total", matching.len().to_string())
            .with(
                "X-Next-Page",
                if more {
                    (page + 1).to_string()
                } else {
                    String::new()
                },
            ),
        Kind::Bitbucket => {
            let mut body =
                json!({"values": items, "pagelen": size, "page": page, "size": matching.len()});
            if more {
                body["next"] = json!(next_url());
            }
            Reply::new(200, body)
        }
    }
}

/// What a create or update asks for, in any provider's words.
struct Asked {
    head: Option<String>,
    base: Option<String>,
    title: Option<String>,
    body: Option<String>,
    draft: Option<bool>,
}

fn fields(kind: Kind, j: &Value) -> Asked {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let draft = j.get("draft").and_then(Value::as_bool);
    match kind {
        Kind::GitHub => Asked {
            head: s(j.get("head")),
            base: s(j.get("base")),
            title: s(j.get("title")),
            body: s(j.get("body")),
            draft,
        },
        Kind::GitLab => {
            let title = s(j.get("title"));
            Asked {
                head: s(j.get("source_branch")),
                base: s(j.get("target_branch")),
                draft: title.as_deref().map(|t| t.starts_with("Draft:")),
                title,
                body: s(j.get("description")),
            }
        }
        Kind::Bitbucket => Asked {
            head: s(j.pointer("/source/branch/name")),
            base: s(j.pointer("/destination/branch/name")),
            title: s(j.get("title")),
            body: s(j.get("description")),
            draft,
        },
    }
}

fn create(s: &mut State, rec: &Recorded, addr: SocketAddr) -> Reply {
    let j = rec.json();
    let Asked {
        head,
        base,
        title,
        body,
        draft,
    } = fields(s.kind, &j);
    let Some(head) = head else {
        return Reply::new(
            422,
            json!({"message": "Validation Failed", "errors": [{"message": "head is missing"}]}),
        );
    };
    let Some(title) = title else {
        return Reply::new(
            422,
            json!({"message": "Validation Failed", "errors": [{"message": "title is missing"}]}),
        );
    };
    // Bitbucket sends a PR without a destination to the main branch.
    let base = match (s.kind, base) {
        (_, Some(b)) => b,
        (Kind::Bitbucket, None) => "master".to_string(),
        (_, None) => {
            return Reply::new(
                422,
                json!({"message": "Validation Failed", "errors": [{"message": "base is missing"}]}),
            )
        }
    };
    if s.no_drafts && s.kind == Kind::GitHub && draft == Some(true) {
        return Reply::new(
            422,
            json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom",
                   "message": "Draft pull requests are not supported in this repository."}]}),
        );
    }
    if std::mem::take(&mut s.race_next_create) {
        let number = s.next_number;
        s.next_number += 1;
        s.prs.push(Pr {
            number,
            branch: head.clone(),
            base: base.clone(),
            state: PrState::Open,
            source_repo: s.repo.clone(),
            title: "opened by another run".into(),
            body: String::new(),
            draft: false,
        });
    }
    let duplicate = s.prs.iter().any(|p| {
        p.state == PrState::Open && p.branch == head && p.base == base && p.source_repo == s.repo
    });
    if duplicate {
        return match s.kind {
            Kind::GitHub => Reply::new(
                422,
                json!({"message": "Validation Failed", "errors": [{"resource": "PullRequest", "code": "custom",
                       "message": format!("A pull request already exists for {}:{head}.", owner_of(&s.repo))}]}),
            ),
            Kind::GitLab => Reply::new(
                409,
                json!({"message": ["Another open merge request already exists for this source branch"]}),
            ),
            Kind::Bitbucket => Reply::new(
                400,
                json!({"type": "error", "error": {"message": "There is already an open pull request from this branch."}}),
            ),
        };
    }
    let number = s.next_number;
    s.next_number += 1;
    let pr = Pr {
        number,
        branch: head,
        base,
        state: PrState::Open,
        source_repo: s.repo.clone(),
        title,
        body: body.unwrap_or_default(),
        draft: draft.unwrap_or(false),
    };
    let rendered = render(s, &pr, addr);
    s.prs.push(pr);
    Reply::new(201, rendered)
}

fn update(s: &mut State, rec: &Recorded, number: &str, addr: SocketAddr) -> Reply {
    let Ok(number) = number.parse::<u64>() else {
        return not_found(s.kind);
    };
    let j = rec.json();
    let Asked {
        base,
        title,
        body,
        draft,
        ..
    } = fields(s.kind, &j);
    let kind = s.kind;
    let Some(pr) = s.prs.iter_mut().find(|p| p.number == number) else {
        return not_found(kind);
    };
    if let Some(b) = base {
        pr.base = b;
    }
    if let Some(t) = title {
        pr.title = t;
    }
    if let Some(b) = body {
        pr.body = b;
    }
    // GitHub's REST update cannot change the draft state.
    if kind != Kind::GitHub {
        if let Some(d) = draft {
            pr.draft = d;
        }
    }
    let pr = pr.clone();
    Reply::new(200, render(s, &pr, addr))
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
