//! One connection to the egress proxy, from request head to the end of
//! its tunnel: who sent it (the token), may that job go there (the rules),
//! connect upstream (the runner's own network, through its own proxy when
//! one applies), then copy.

use super::allow::Allowlist;
use super::head::{self, HeadError, Request};
use super::proxy::{Inner, JobState, SocketConn};
use super::relay::{self, Duplex};
use super::rules::{self, Refusal};
use crate::net::dial;
use std::io::Write;
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;

/// At most this many addresses of one name are checked and tried.
const MAX_ADDRS: usize = 16;

/// How a connection ended, for the runner's log.
pub(super) enum Served {
    /// Tunnelled or forwarded to its end (or the upstream was unreachable).
    Done,
    /// Refused by the rules: the line went to the job's stream.
    Refused { job_id: String, line: String },
    /// Not a request from a known job; answered and closed.
    Dropped,
}

/// Answer a client the proxy has no room for.
pub(super) fn reject_busy(mut conn: Box<dyn Duplex>) {
    let _ = respond(
        &mut conn,
        503,
        "Service Unavailable",
        "the egress proxy is at its connection limit\n",
        "",
    );
    conn.close(Shutdown::Both);
}

/// Answer a connection on `job`'s socket that is past the job's bound,
/// before its request is read (so without its destination): `503`,
/// counted and reported like any refusal. The line.
pub(super) fn refuse_at_accept(inner: &Inner, job: &JobState, mut conn: Box<dyn Duplex>) -> String {
    inner.metrics.inc_egress_denied();
    let why = Refusal::TooManyConnections(inner.limits.per_job);
    let line = format!("egress refused: another connection ({why})\n");
    job.refused(line.clone());
    let _ = conn.timeouts(inner.limits.head, inner.limits.head);
    let _ = respond(&mut conn, 503, "Service Unavailable", &line, "");
    conn.close(Shutdown::Both);
    line
}

fn respond(
    conn: &mut Box<dyn Duplex>,
    code: u16,
    reason: &str,
    body: &str,
    extra: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body.as_bytes())?;
    conn.flush()
}

/// The token in a `Proxy-Authorization: Basic …` value: the password of
/// the proxy URL (`http://ados:<token>@host:port`), or its user name when
/// there is no password (`http://<token>@host:port`). Both forms because
/// clients differ: Python's urllib sends credentials only when the URL has
/// a password, others send a lone user name with an empty one.
fn token_of(auth: &str) -> Option<String> {
    let (scheme, value) = auth.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let plain = String::from_utf8(crate::base64::decode(value.trim())?).ok()?;
    let (user, pass) = plain.split_once(':').unwrap_or((&plain, ""));
    Some(if pass.is_empty() { user } else { pass }.to_string())
}

/// Serve one connection. `only`: the job whose own socket it came in on,
/// told once the connection is decided.
pub(super) fn serve(
    inner: &Inner,
    mut conn: Box<dyn Duplex>,
    mut only: Option<SocketConn>,
) -> Served {
    let _ = conn.timeouts(inner.limits.head, inner.limits.head);
    let (req, early) = match head::read(&mut conn) {
        Ok(r) => r,
        Err(HeadError::Bad(why)) => {
            let _ = respond(&mut conn, 400, "Bad Request", &format!("{why}\n"), "");
            return Served::Dropped;
        }
        Err(HeadError::Io(_)) => return Served::Dropped,
    };
    let token = req.proxy_auth.as_deref().and_then(token_of);
    let job = token.and_then(|t| inner.job_by_token(&t));
    let job = match (job, only.as_ref().map(SocketConn::job)) {
        (Some(j), Some(o)) if j.token == o.token => j,
        (Some(j), None) => j,
        _ => {
            let _ = respond(
                &mut conn,
                407,
                "Proxy Authentication Required",
                "this proxy serves the runner's jobs only: use the HTTPS_PROXY the job was given\n",
                "Proxy-Authenticate: Basic realm=\"ados-egress\"\r\n",
            );
            return Served::Dropped;
        }
    };
    let target = req.target();
    let refuse = |conn: &mut Box<dyn Duplex>, why: Refusal, code: u16, reason: &str| {
        inner.metrics.inc_egress_denied();
        let line = format!("egress refused: {target} ({why})\n");
        job.refused(line.clone());
        let _ = respond(conn, code, reason, &line, "");
        Served::Refused {
            job_id: job.job_id.clone(),
            line,
        }
    };
    // Counted before anything slow, released however this ends.
    let open = job.open.fetch_add(1, Ordering::AcqRel);
    let _slot = Slot(&job.open);
    if open >= inner.limits.per_job {
        let why = Refusal::TooManyConnections(inner.limits.per_job);
        return refuse(&mut conn, why, 503, "Service Unavailable");
    }
    let tls = req.forward.is_none();
    let via_proxy = inner.upstream.route(tls, &req.host, req.port).is_some();
    let addrs = resolve(&req.host, req.port);
    let verdict = if addrs.is_empty() && via_proxy {
        // The runner's own proxy resolves what the runner cannot (a
        // corporate network's DNS): only a name entry can allow that.
        name_allowed(&job.allow, &req)
    } else {
        {
            let own = inner.own_host();
            let docker = inner.docker_endpoints();
            let protected = rules::Protected {
                own: &own,
                docker: &docker,
            };
            rules::decide(&job.allow, &req.host, req.port, &addrs, protected)
        }
    };
    if let Err(why) = verdict {
        return refuse(&mut conn, why, 403, "Forbidden");
    }
    // Decided: a job that closes need not wait for the tunnel.
    if let Some(o) = only.as_mut() {
        o.decided();
    }
    let upstream = match connect(inner, &req, &addrs, via_proxy) {
        Ok(u) => u,
        Err(why) => {
            let _ = respond(
                &mut conn,
                502,
                "Bad Gateway",
                &format!("cannot reach {target}: {why}\n"),
                "",
            );
            return Served::Done;
        }
    };
    let mut upstream: Box<dyn Duplex> = Box::new(upstream);
    let sent = match &req.forward {
        None => conn
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .and_then(|()| upstream.write_all(&early)),
        Some(head) => upstream
            .write_all(head)
            .and_then(|()| upstream.write_all(&early)),
    };
    if sent.is_ok() {
        let _ = relay::relay(conn, upstream, inner.limits.idle);
    }
    Served::Done
}

/// Gives a job's connection slot back.
struct Slot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn name_allowed(allow: &Allowlist, req: &Request) -> Result<(), Refusal> {
    if allow.allows(&req.host, req.port, &[]) {
        Ok(())
    } else {
        Err(Refusal::NotAllowed)
    }
}

/// The addresses of `host` (itself for an IP literal); none when it does
/// not resolve.
fn resolve(host: &str, port: u16) -> Vec<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![ip];
    }
    match (host, port).to_socket_addrs() {
        Ok(addrs) => {
            let mut out: Vec<IpAddr> = Vec::new();
            for a in addrs.map(|a| a.ip()) {
                if !out.contains(&a) && out.len() < MAX_ADDRS {
                    out.push(a);
                }
            }
            out
        }
        Err(_) => Vec::new(),
    }
}

/// Connect upstream: through the runner's own proxy when its settings say
/// so (the same routing and CONNECT as the link), else to the very
/// addresses the rules were checked on, so a second DNS answer cannot
/// differ from the first.
fn connect(
    inner: &Inner,
    req: &Request,
    addrs: &[IpAddr],
    via_proxy: bool,
) -> Result<TcpStream, String> {
    let limits = &inner.limits;
    if via_proxy {
        let tls = req.forward.is_none();
        return dial::open(
            &inner.upstream,
            tls,
            &req.host,
            req.port,
            limits.connect,
            limits.idle,
        )
        .map_err(|e| e.to_string());
    }
    let mut last = String::from("no address");
    for ip in addrs {
        let addr = SocketAddr::new(*ip, req.port);
        match TcpStream::connect_timeout(&addr, limits.connect) {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_proxy_urls_password_or_lone_user_name() {
        let b = |s: &str| format!("Basic {}", crate::base64::encode(s.as_bytes()));
        assert_eq!(token_of(&b("ados:tok")).as_deref(), Some("tok"));
        assert_eq!(token_of(&b("tok:")).as_deref(), Some("tok"));
        assert_eq!(token_of(&b("tok")).as_deref(), Some("tok"));
        assert_eq!(token_of(&b(":tok")).as_deref(), Some("tok"));
        assert_eq!(
            token_of(&format!("basic  {}", crate::base64::encode(b"x:t"))).as_deref(),
            Some("t")
        );
        assert_eq!(token_of("Bearer tok"), None);
        assert_eq!(token_of("Basic !!!"), None);
    }
}
