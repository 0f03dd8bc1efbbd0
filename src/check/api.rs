//! Is the API reachable with this token: `GET <api>/api/v1/health` with
//! the runner's headers, through the runner's own HTTP client
//! ([`crate::net::Network::http`]: its proxy routing, its TLS roots).

use super::{Check, TIMEOUT};
use crate::config::Config;
use crate::net::Network;

/// `<api>/api/v1/health` (the same rule as the WebSocket URL).
pub(super) fn health_url(api_url: &str) -> String {
    crate::link::url::api_endpoint(api_url, "/health")
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

/// `GET` the health endpoint with the token.
pub(super) fn api_check(cfg: &Config, net: &Network) -> Check {
    let url = health_url(&cfg.api_url);
    let result = net
        .http
        .get(&url)
        .config()
        .timeout_global(Some(TIMEOUT))
        .build()
        .header("Authorization", &format!("Bearer {}", cfg.token))
        .header("X-Ados-Runner-Id", &cfg.runner_id)
        .call()
        .map(|r| r.status().as_u16());
    match result {
        Ok(status) => classify_api(&url, status),
        Err(e) => Check::fail(
            "API reachable",
            format!("{url}: {e}"),
            "check ADOS_API_URL, DNS, the firewall, HTTPS_PROXY/NO_PROXY, and ADOS_CA_CERT for a private CA",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{api_check_for, config_for};
    use super::*;
    use std::net::SocketAddr;

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

    #[test]
    fn api_check_against_a_local_server() {
        let (addr, t) = api_server("good");
        let ok = api_check_for(&config_for(&format!("http://{addr}"), "good"));
        t.join().unwrap();
        assert!(ok.ok, "{ok:?}");
        let (addr, t) = api_server("good");
        let refused = api_check_for(&config_for(&format!("http://{addr}"), "bad"));
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
        assert!(!api_check_for(&config_for(&format!("http://{closed}"), "good")).ok);
    }
}
