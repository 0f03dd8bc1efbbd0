//! Does the control plane accept this runner's WebSocket: the daemon's own
//! connection code ([`crate::link::connect::open`]: the same proxy
//! routing, CONNECT tunnel, TLS configuration and handshake headers), then
//! an immediate close without `hello`, so no runner session starts.

use super::{Check, TIMEOUT};
use crate::config::Config;
use crate::link::connect::{self, ConnectError, Dial};
use crate::net::Network;

/// Open and close the WebSocket.
pub(super) fn websocket_check(cfg: &Config, net: &Network) -> Check {
    const NAME: &str = "WebSocket handshake";
    const FIX_NET: &str = "check that the API allows WebSocket upgrades (load balancer, proxy) and HTTPS_PROXY/NO_PROXY";
    let url = cfg.ws_url();
    let target = match connect::target(&url) {
        Ok(t) => t,
        Err(e) => return Check::fail(NAME, e.to_string(), "fix ADOS_API_URL"),
    };
    let dial = Dial {
        url: &url,
        token: &cfg.token,
        runner_id: &cfg.runner_id,
        tenant_id: cfg.tenant_id.as_deref(),
        proxy: &net.proxy,
        tls: &net.tls,
    };
    match connect::open(&dial, &target, TIMEOUT) {
        Ok((mut ws, response)) => {
            // Leave at once: no `hello`, so no runner session starts.
            let _ = ws.close(None);
            let _ = ws.flush();
            Check::pass(
                NAME,
                format!("{url} accepted the token ({})", response.status().as_u16()),
            )
        }
        Err(ConnectError::Auth(status)) => Check::fail(
            NAME,
            format!("{url} refused the token (HTTP {status})"),
            "check ADOS_TOKEN, ADOS_RUNNER_ID and ADOS_TENANT_ID against the dashboard",
        ),
        Err(ConnectError::Http(status)) => Check::fail(
            NAME,
            format!("{url} answered HTTP {status} instead of 101"),
            FIX_NET,
        ),
        Err(e @ ConnectError::Tls(_)) => {
            Check::fail(NAME, format!("{url}: {e}"), "fix ADOS_CA_CERT")
        }
        Err(e) => Check::fail(NAME, format!("{url}: {e}"), FIX_NET),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{config_for, websocket_check_for};
    use std::net::SocketAddr;

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
        let ok = websocket_check_for(&config_for(&format!("http://{addr}"), "good"));
        t.join().unwrap();
        assert!(ok.ok, "{ok:?}");
        let (addr, t) = ws_server("good");
        let refused = websocket_check_for(&config_for(&format!("http://{addr}"), "bad"));
        t.join().unwrap();
        assert!(
            !refused.ok && refused.detail.contains("refused the token (HTTP 401)"),
            "{refused:?}"
        );
    }
}
