//! The network layer: everything the runner needs to reach a server,
//! shared by the control-plane link, `check` and the HTTP (REST) client.
//!
//! - [`url`]: the one URL parser (RFC 3986 authority, as curl and git read it).
//! - [`no_proxy`]: the one `NO_PROXY` matcher (curl / Go conventions).
//! - [`proxy`]: which proxy applies, and the HTTP CONNECT tunnel.
//! - [`tls`]: the rustls client configuration (Mozilla roots + `ADOS_CA_CERT`).
//! - [`dial`]: a TCP connection to a target, direct or tunnelled.
//! - [`http`]: the `ureq::Agent` that connects through `dial` and `tls`.
//!
//! [`Network`] is built once from the configuration and handed to whoever
//! talks to a server, so the doctor (`check`) and the daemon cannot route
//! or trust differently.

pub mod dial;
pub mod http;
pub mod no_proxy;
pub mod proxy;
pub mod tls;
pub mod url;

pub use no_proxy::NoProxy;
pub use proxy::{Proxy, ProxySettings};
pub use url::{RemotePolicy, Url};

use rustls::ClientConfig;
use std::path::Path;
use std::sync::Arc;

/// Proxy settings, TLS configuration and the HTTP agent, built once.
#[derive(Clone)]
pub struct Network {
    /// Where connections go (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    pub proxy: ProxySettings,
    /// The TLS client configuration.
    pub tls: Arc<ClientConfig>,
    /// The HTTP client (REST calls, `check`).
    pub http: ::ureq::Agent,
}

impl Network {
    /// Build from the proxy settings and `ADOS_CA_CERT`.
    ///
    /// # Errors
    /// `ADOS_CA_CERT` cannot be used (see [`tls::client_config`]).
    pub fn new(proxy: &ProxySettings, ca_cert: Option<&Path>) -> std::io::Result<Network> {
        let tls = tls::client_config(ca_cert)?;
        Ok(Network {
            proxy: proxy.clone(),
            http: http::agent(proxy.clone(), tls.clone()),
            tls,
        })
    }
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}
