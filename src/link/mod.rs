//! The control-plane link: the one thread that owns the WebSocket.
//!
//! Other threads never touch the socket. They hand the link control frames
//! and job streams through [`Link`] (a crossbeam channel plus a waker), and
//! receive what the server says as [`FromLink`] messages. Job events are not
//! pushed through the channel: the link pulls them from each job's journal
//! through the [`outbox::Outbox`], so a disconnect or a slow server
//! never makes memory grow and never loses an event.

pub mod backoff;
pub mod connect;
pub mod outbox;
pub mod proto;
pub mod session;
pub mod url;
mod worker;

use crate::config::ProxySettings;
use crate::job::spec::JobId;
use crate::journal::JobStream;
use crate::metrics::Metrics;
pub use outbox::Outbox;
use proto::{HelloInfo, RunnerState, ServerMessage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the link needs to connect.
#[derive(Clone)]
pub struct LinkConfig {
    /// `ws://` or `wss://` URL (see [`url::ws_url`]).
    pub url: String,
    /// `ADOS_TOKEN` (sent as `Authorization: Bearer`, never logged).
    pub token: String,
    /// `X-Ados-Runner-Id`.
    pub runner_id: String,
    /// `X-Ados-Tenant-Id`, when set.
    pub tenant_id: Option<String>,
    /// Extra PEM roots (`ADOS_CA_CERT`).
    pub ca_cert: Option<PathBuf>,
    /// Proxy settings (HTTP CONNECT tunnel).
    pub proxy: ProxySettings,
    /// The static part of `hello`.
    pub hello: HelloInfo,
    /// The longest wait between reconnect attempts, before ±20 % jitter
    /// (protocol.md §1: 30 s, set by the daemon). Also the wait after an
    /// authentication failure. Tests set it small.
    pub max_backoff: Duration,
}

impl LinkConfig {
    /// The link configuration of a runner configured by `cfg`.
    pub fn from_config(cfg: &crate::config::Config, hello: HelloInfo) -> LinkConfig {
        LinkConfig {
            url: cfg.ws_url(),
            token: cfg.token.clone(),
            runner_id: cfg.runner_id.clone(),
            tenant_id: cfg.tenant_id.clone(),
            ca_cert: cfg.ca_cert.clone(),
            proxy: cfg.proxy.clone(),
            hello,
            max_backoff: cfg.max_backoff,
        }
    }
}

/// Log targets that must never be let log at `trace`: tungstenite traces
/// the raw handshake request, `Authorization: Bearer <ADOS_TOKEN>`
/// included. The logger setup caps these at `debug` whatever `RUST_LOG`
/// says.
pub const SECRET_TRACE_TARGETS: &[&str] = &["tungstenite"];

/// The default of [`LinkConfig::max_backoff`].
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl std::fmt::Debug for LinkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkConfig")
            .field("url", &crate::net::url::without_credentials(&self.url))
            .field("token", &"[REDACTED]")
            .field("runner_id", &self.runner_id)
            .field("tenant_id", &self.tenant_id)
            .field("ca_cert", &self.ca_cert)
            .field("max_backoff", &self.max_backoff)
            .finish_non_exhaustive()
    }
}

/// Start the link thread (named `ados-link`). It connects at once and
/// keeps reconnecting until it is sent [`ToLink::Close`] (or every [`Link`]
/// is dropped); see [`session`] for how it works.
///
/// # Errors
/// The URL is not `ws://`/`wss://`, `ADOS_CA_CERT` cannot be used, or the
/// poller or thread cannot be created.
pub fn start(
    cfg: LinkConfig,
    outbox: Outbox,
    metrics: Arc<Metrics>,
    from_link: crossbeam_channel::Sender<FromLink>,
) -> std::io::Result<(Link, std::thread::JoinHandle<()>)> {
    let target = connect::target(&cfg.url)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    let tls = crate::net::tls::client_config(cfg.ca_cert.as_deref())?;
    let poller = Arc::new(polling::Poller::new()?);
    let (tx, rx) = crossbeam_channel::unbounded();
    let waker = {
        let poller = poller.clone();
        Waker::new(move || {
            if let Err(e) = poller.notify() {
                log::debug!("cannot wake the link thread: {e}");
            }
        })
    };
    let worker = worker::Worker::new(cfg, target, tls, outbox, metrics, from_link, rx, poller);
    let handle = std::thread::Builder::new()
        .name("ados-link".into())
        .spawn(move || worker.run())?;
    Ok((Link::new(tx, waker), handle))
}

/// Sent to the link thread.
#[derive(Debug)]
pub enum ToLink {
    /// A control frame (`job.accepted`, `job.rejected`); sent when
    /// connected, dropped when not (the server re-assigns on reconnect).
    Frame(String),
    /// Start delivering a job's journal.
    Track(Arc<JobStream>),
    /// New heartbeat state; a heartbeat with it is sent at once.
    State(RunnerState),
    /// Shut down: deliver what is unsent until `deadline`, close, exit.
    Close {
        /// When to give up flushing.
        deadline: Instant,
    },
}

/// Sent by the link thread to the dispatcher.
#[derive(Debug)]
pub enum FromLink {
    /// `welcome` received; the connection is up.
    Connected,
    /// The connection was lost; reconnecting.
    Disconnected,
    /// A message for the dispatcher (assign, cancel, chat, drain…).
    /// `welcome` and `ack` are handled inside the link.
    Message(ServerMessage),
    /// A finished job's result was acknowledged and its journal deleted:
    /// the runner no longer holds it.
    Released(JobId),
}

/// Wakes the link thread (latched: a wake while it is busy is not lost).
#[derive(Clone)]
pub struct Waker {
    wake: Arc<dyn Fn() + Send + Sync>,
}

impl Waker {
    /// A waker that calls `f`.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Waker {
        Waker { wake: Arc::new(f) }
    }

    /// A waker that does nothing (tests, `exec`).
    pub fn noop() -> Waker {
        Waker::new(|| {})
    }

    /// Wake the link thread.
    pub fn wake(&self) {
        (self.wake)()
    }
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Waker")
    }
}

/// The handle other threads use to talk to the link thread.
#[derive(Clone)]
pub struct Link {
    tx: crossbeam_channel::Sender<ToLink>,
    waker: Waker,
}

impl Link {
    /// A handle sending on `tx` and waking with `waker` ([`start`] makes
    /// the real one; tests may build one over their own channel).
    pub fn new(tx: crossbeam_channel::Sender<ToLink>, waker: Waker) -> Link {
        Link { tx, waker }
    }

    /// Send a message to the link thread and wake it.
    pub fn send(&self, msg: ToLink) {
        if self.tx.send(msg).is_err() {
            log::debug!("link thread gone; message dropped");
        }
        self.waker.wake();
    }

    /// The waker, for journal writers.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }
}
