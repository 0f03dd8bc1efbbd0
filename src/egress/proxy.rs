//! The egress proxy: one per runner, serving every job whose container is
//! fenced (`ADOS_JOB_EGRESS=allowlist`). It listens on a TCP address (the
//! runner's side; tests, a runner that shares a network with its jobs) and
//! on one unix socket per job (bind-mounted into that job's container,
//! where the forwarder relays the container's loopback to it).
//!
//! Which job a connection belongs to comes from the credentials in its
//! proxy URL (`http://ados:<token>@127.0.0.1:<port>`): a random token per job,
//! a secret like any other (the job's redactor knows it). On a job's own
//! socket, only that job's token is accepted.
//!
//! Synchronous, like the rest of the runner: an accept thread per listener,
//! a thread per connection (two while a tunnel copies), at most
//! [`Limits::per_job`] connections per job and [`Limits::total`] in all;
//! a tunnel idle for [`Limits::idle`] is closed.

use super::allow::Allowlist;
use super::conn::{self, Served};
use super::relay::Duplex;
use crate::metrics::Metrics;
use crate::net::ProxySettings;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Refusals kept for a job until its thread reads them; more are counted.
const REFUSALS_QUEUED: usize = 64;

/// Stack of a connection thread: a head buffer and a relay.
const CONN_STACK: usize = 128 * 1024;

/// The proxy's bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections one job may have open at once.
    pub per_job: usize,
    /// Connections the proxy serves at once, all jobs together.
    pub total: usize,
    /// A tunnel that moved no byte for this long is closed.
    pub idle: Duration,
    /// How long a client has to send its request head.
    pub head: Duration,
    /// How long connecting upstream may take.
    pub connect: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            per_job: 64,
            total: 1024,
            idle: Duration::from_secs(300),
            head: Duration::from_secs(30),
            connect: Duration::from_secs(30),
        }
    }
}

/// What the proxy knows of one job.
pub(super) struct JobState {
    pub(super) job_id: String,
    pub(super) token: String,
    pub(super) allow: Allowlist,
    pub(super) open: AtomicUsize,
    /// Connections on the job's socket, from their accept to their end.
    on_socket: AtomicUsize,
    /// Connections on the job's socket not decided yet: a job that
    /// closes waits for them, so no refusal comes after its last look.
    deciding: AtomicUsize,
    refusals: Sender<String>,
    dropped: AtomicU64,
}

impl JobState {
    /// Queue a refusal line for the job's stream (never blocks).
    pub(super) fn refused(&self, line: String) {
        if let Err(TrySendError::Full(_)) = self.refusals.try_send(line) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A connection on a job's own socket: counted in its `on_socket` until
/// it ends (the job's bound, from its accept on: a connection that sends
/// nothing holds a thread too), and in its `deciding` until the proxy has
/// decided on it.
pub(super) struct SocketConn {
    job: Arc<JobState>,
    deciding: bool,
}

impl SocketConn {
    fn new(job: &Arc<JobState>) -> SocketConn {
        job.on_socket.fetch_add(1, Ordering::AcqRel);
        job.deciding.fetch_add(1, Ordering::AcqRel);
        SocketConn {
            job: Arc::clone(job),
            deciding: true,
        }
    }

    /// The job whose socket the connection came in on.
    pub(super) fn job(&self) -> &JobState {
        &self.job
    }

    /// The proxy has decided on it (refused, or about to connect).
    pub(super) fn decided(&mut self) {
        if std::mem::take(&mut self.deciding) {
            self.job.deciding.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for SocketConn {
    fn drop(&mut self) {
        self.decided();
        self.job.on_socket.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Shared by the listeners and the connection threads.
pub(super) struct Inner {
    jobs: Mutex<HashMap<String, Arc<JobState>>>,
    pub(super) upstream: ProxySettings,
    pub(super) metrics: Arc<Metrics>,
    pub(super) limits: Limits,
    open: AtomicUsize,
    stop: AtomicBool,
    /// The Docker daemon's TCP addresses (`DOCKER_HOST=tcp://…`).
    docker: Mutex<Vec<SocketAddr>>,
    /// Addresses of the runner's host that are not its own interfaces'
    /// (for a runner in a container, the Docker host's gateways).
    host: Mutex<Vec<IpAddr>>,
}

impl Inner {
    /// The Docker daemon's TCP addresses, when it has any.
    pub(super) fn docker_endpoints(&self) -> Vec<SocketAddr> {
        self.docker.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The runner's host: this host's interfaces' addresses, and those
    /// given by [`EgressProxy::protect_host`]. Read at each decision.
    pub(super) fn own_host(&self) -> Vec<IpAddr> {
        let mut own = super::rules::own_addresses();
        if let Ok(h) = self.host.lock() {
            own.extend(h.iter().copied());
        }
        own
    }

    /// The job whose token is `token`.
    pub(super) fn job_by_token(&self, token: &str) -> Option<Arc<JobState>> {
        self.jobs.lock().ok()?.get(token).cloned()
    }
}

/// The TCP accept thread and a second handle on its listener (to wake it).
type Acceptor = (JoinHandle<()>, TcpListener);

/// The runner's egress proxy.
#[derive(Clone)]
pub struct EgressProxy {
    inner: Arc<Inner>,
    addr: SocketAddr,
    accept: Arc<Mutex<Option<Acceptor>>>,
}

impl EgressProxy {
    /// Start serving on `bind` (`127.0.0.1:0` picks a port); upstream
    /// connections follow `upstream` (the runner's own `HTTPS_PROXY`,
    /// `HTTP_PROXY`, `NO_PROXY`).
    ///
    /// # Errors
    /// The address cannot be bound, or the accept thread cannot start.
    pub fn start(
        bind: SocketAddr,
        upstream: ProxySettings,
        metrics: Arc<Metrics>,
        limits: Limits,
    ) -> io::Result<EgressProxy> {
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let waker = listener.try_clone()?;
        let inner = Arc::new(Inner {
            jobs: Mutex::new(HashMap::new()),
            upstream,
            metrics,
            limits,
            open: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            docker: Mutex::new(Vec::new()),
            host: Mutex::new(Vec::new()),
        });
        let i2 = Arc::clone(&inner);
        let accept = std::thread::Builder::new()
            .name("ados-egress".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if i2.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        spawn_conn(&i2, Box::new(conn), None);
                    }
                }
            })?;
        Ok(EgressProxy {
            inner,
            addr,
            accept: Arc::new(Mutex::new(Some((accept, waker)))),
        })
    }

    /// The TCP address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Keep jobs off the Docker daemon at `addrs` (the runner's
    /// `DOCKER_HOST=tcp://…`) unless an entry names it exactly.
    pub fn protect_docker(&self, addrs: Vec<SocketAddr>) {
        if let Ok(mut d) = self.inner.docker.lock() {
            *d = addrs;
        }
    }

    /// Treat `addrs` as the runner's own host too (for a runner in a
    /// container: the Docker host, on its networks' gateways), reached
    /// only with an entry naming the exact `host:port`.
    pub fn protect_host(&self, addrs: Vec<IpAddr>) {
        if let Ok(mut h) = self.inner.host.lock() {
            *h = addrs;
        }
    }

    /// Register a job: connections with its token are held to `allow`.
    /// Dropping the returned handle forgets the job and closes its socket.
    pub fn register(&self, job_id: &str, allow: Allowlist) -> JobEgress {
        let token = random_token();
        let (tx, rx) = crossbeam_channel::bounded(REFUSALS_QUEUED);
        let state = Arc::new(JobState {
            job_id: job_id.to_string(),
            token: token.clone(),
            allow,
            open: AtomicUsize::new(0),
            on_socket: AtomicUsize::new(0),
            deciding: AtomicUsize::new(0),
            refusals: tx,
            dropped: AtomicU64::new(0),
        });
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            jobs.insert(token, Arc::clone(&state));
        }
        JobEgress {
            inner: Arc::clone(&self.inner),
            state,
            refusals: rx,
            socket: Mutex::new(None),
        }
    }

    /// Stop accepting (connections already open run on to their end).
    pub fn stop(&self) {
        self.inner.stop.store(true, Ordering::Relaxed);
        if let Some((h, waker)) = self.accept.lock().ok().and_then(|mut a| a.take()) {
            wake_accept(waker.as_raw_fd());
            let _ = h.join();
        }
    }
}

/// Serve `conn` on a thread of its own, if the proxy has room.
fn spawn_conn(inner: &Arc<Inner>, conn: Box<dyn Duplex>, only: Option<SocketConn>) {
    if inner.open.fetch_add(1, Ordering::AcqRel) >= inner.limits.total {
        inner.open.fetch_sub(1, Ordering::AcqRel);
        conn::reject_busy(conn);
        return;
    }
    let i2 = Arc::clone(inner);
    let started = std::thread::Builder::new()
        .name("ados-egress-conn".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            match conn::serve(&i2, conn, only) {
                Served::Refused { job_id, line } => {
                    log::info!("job {job_id}: {}", line.trim_end());
                }
                Served::Done | Served::Dropped => {}
            }
            i2.open.fetch_sub(1, Ordering::AcqRel);
        });
    if started.is_err() {
        inner.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One job's registration with the proxy.
pub struct JobEgress {
    inner: Arc<Inner>,
    state: Arc<JobState>,
    refusals: Receiver<String>,
    socket: Mutex<Option<JobSocket>>,
}

struct JobSocket {
    path: PathBuf,
    accept: Option<JoinHandle<()>>,
    /// A second handle on the listener, to wake its accept at the end.
    waker: UnixListener,
    stop: Arc<AtomicBool>,
}

impl JobEgress {
    /// The job's proxy token (a secret: add it to the job's redactor).
    pub fn token(&self) -> &str {
        &self.state.token
    }

    /// The proxy URL for a client reaching the proxy at `host_port`.
    pub fn proxy_url(&self, host_port: &str) -> String {
        format!("http://ados:{}@{host_port}", self.state.token)
    }

    /// The variables a job's processes get: the proxy for http and https
    /// in both cases, and `NO_PROXY` holding only loopback.
    pub fn env(&self, host_port: &str) -> Vec<(String, String)> {
        let url = self.proxy_url(host_port);
        let mut out = Vec::new();
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
            out.push((name.to_string(), url.clone()));
        }
        for name in ["NO_PROXY", "no_proxy"] {
            out.push((name.to_string(), "localhost,127.0.0.1,::1".to_string()));
        }
        out
    }

    /// Refusal lines (`egress refused: host:port (why)\n`) waiting to be
    /// written to the job's stream, oldest first; a last line counts those
    /// that did not fit the queue.
    pub fn take_refusals(&self) -> Vec<String> {
        let mut out: Vec<String> = self.refusals.try_iter().collect();
        let dropped = self.state.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            out.push(format!("egress refused {dropped} more connection(s)\n"));
        }
        out
    }

    /// The channel the refusal lines arrive on (for a `select!`).
    pub fn refusals(&self) -> &Receiver<String> {
        &self.refusals
    }

    /// Serve this job on a unix socket at `path` (created, mode 0666: the
    /// container's user connects; the directory bounds who can reach it).
    /// Once: a later call while it serves does nothing.
    ///
    /// # Errors
    /// The socket cannot be bound, or its thread cannot start.
    pub fn listen_unix(&self, path: &Path) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let mut socket = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        if socket.is_some() {
            return Ok(());
        }
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        let waker = listener.try_clone()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (inner, state, stop2) = (
            Arc::clone(&self.inner),
            Arc::clone(&self.state),
            Arc::clone(&stop),
        );
        let accept = std::thread::Builder::new()
            .name("ados-egress-sock".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    if state.on_socket.load(Ordering::Acquire) >= inner.limits.per_job {
                        // Answered here, without a thread: the job is at
                        // its bound, even with connections that send
                        // nothing, and other jobs keep their share.
                        let line = conn::refuse_at_accept(&inner, &state, Box::new(conn));
                        log::info!("job {}: {}", state.job_id, line.trim_end());
                    } else {
                        spawn_conn(&inner, Box::new(conn), Some(SocketConn::new(&state)));
                    }
                }
            })?;
        *socket = Some(JobSocket {
            path: path.to_path_buf(),
            accept: Some(accept),
            waker,
            stop,
        });
        Ok(())
    }

    /// The job's container is gone: stop serving its socket (a
    /// connection still waiting in it is not served) and wait, up to
    /// `wait`, until the connections already taken are decided, so that
    /// [`JobEgress::take_refusals`] then has every refusal of the job,
    /// those of a process it left behind after its last command too.
    /// A later [`JobEgress::listen_unix`] serves the socket again.
    pub fn close(&self, wait: Duration) {
        let socket = self
            .socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(s) = socket {
            s.end();
        }
        let deadline = std::time::Instant::now() + wait;
        while self.state.deciding.load(Ordering::Acquire) > 0
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl JobSocket {
    /// Stop its accept thread (every connection it took is then counted
    /// in its job's `deciding`) and remove the socket.
    fn end(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        wake_accept(self.waker.as_raw_fd());
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for JobEgress {
    fn drop(&mut self) {
        if let Ok(mut jobs) = self.inner.jobs.lock() {
            jobs.remove(&self.state.token);
        }
        self.close(Duration::ZERO);
    }
}

/// End a blocked `accept` on the listening socket `fd`: `shutdown(2)` makes
/// it return at once on Linux (a connect to the socket's path would not
/// reach it once the path was removed with the job's directory).
fn wake_accept(fd: std::os::fd::RawFd) {
    // SAFETY: `fd` is a listening socket this process owns.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// 32 random hex characters from the kernel (`getrandom`): a job's proxy
/// token. Falls back to `/dev/urandom`; without either the token is the
/// time and pid mixed, which only a process on the runner's host could
/// guess (and that one can read the job's environment anyway).
fn random_token() -> String {
    let mut b = [0u8; 16];
    // SAFETY: getrandom writes at most `len` bytes into the buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if usize::try_from(n).ok() != Some(b.len()) {
        use std::io::Read;
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
        if read.is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                ^ (u128::from(std::process::id()) << 64);
            b = t.to_le_bytes();
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_job_environment_points_both_cases_at_the_proxy_and_exempts_only_loopback() {
        let p = EgressProxy::start(
            "127.0.0.1:0".parse().unwrap(),
            ProxySettings::default(),
            Arc::new(Metrics::new()),
            Limits::default(),
        )
        .unwrap();
        let job = p.register("j1", Allowlist::default());
        let env: HashMap<String, String> = job.env("127.0.0.1:3128").into_iter().collect();
        let url = format!("http://ados:{}@127.0.0.1:3128", job.token());
        for v in ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"] {
            assert_eq!(env[v], url, "{v}");
        }
        assert_eq!(env["NO_PROXY"], "localhost,127.0.0.1,::1");
        assert_eq!(env["no_proxy"], env["NO_PROXY"]);
        assert!(p.inner.job_by_token(job.token()).is_some());
        let token = job.token().to_string();
        drop(job);
        assert!(p.inner.job_by_token(&token).is_none());
        p.stop();
    }
}
