//! The control-plane link: the one thread that owns the WebSocket.
//!
//! Other threads never touch the socket. They hand the link control frames
//! and job streams through [`Link`] (a crossbeam channel plus a waker), and
//! receive what the server says as [`FromLink`] messages. Job events are not
//! pushed through the channel: the link pulls them from each job's journal
//! through the [`crate::journal::Outbox`], so a disconnect or a slow server
//! never makes memory grow and never loses an event.

pub mod proto;
pub mod url;

use crate::config::ProxySettings;
use crate::job::spec::JobId;
use crate::journal::JobStream;
use proto::{HelloInfo, RunnerState, ServerMessage};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

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
