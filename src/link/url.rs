//! URLs derived from `ADOS_API_URL` (protocol.md §1): the WebSocket and
//! the REST endpoints hang under `<api>/api/v1`.

use crate::net::Url;

/// `<api>/api/v1<path>`; a URL already ending in `/api/v1` only gets
/// `<path>`. `https://api.ados.dev` + `/health` →
/// `https://api.ados.dev/api/v1/health`.
pub fn api_endpoint(api_url: &str, path: &str) -> String {
    let base = api_url.trim().trim_end_matches('/');
    if base.ends_with("/api/v1") {
        format!("{base}{path}")
    } else {
        format!("{base}/api/v1{path}")
    }
}

/// `https://api.ados.dev` → `wss://api.ados.dev/api/v1/work/runners/ws`;
/// a URL already ending in `/api/v1` only gets `/work/runners/ws`.
pub fn ws_url(api_url: &str) -> String {
    let http = api_endpoint(api_url, "/work/runners/ws");
    match Url::parse(&http) {
        Ok(u) if u.scheme() == "https" => format!("wss://{}{}", u.host_port(), u.rest()),
        Ok(u) if u.scheme() == "http" => format!("ws://{}{}", u.host_port(), u.rest()),
        _ => http,
    }
}

#[cfg(test)]
mod tests {
    use super::ws_url;

    #[test]
    fn derivation_per_protocol() {
        assert_eq!(
            ws_url("https://api.ados.dev"),
            "wss://api.ados.dev/api/v1/work/runners/ws"
        );
        assert_eq!(
            ws_url("https://api.ados.dev/"),
            "wss://api.ados.dev/api/v1/work/runners/ws"
        );
        assert_eq!(
            ws_url("http://h:8/api/v1"),
            "ws://h:8/api/v1/work/runners/ws"
        );
        assert_eq!(
            ws_url("http://h:8/api/v1/"),
            "ws://h:8/api/v1/work/runners/ws"
        );
        assert_eq!(
            ws_url("https://h/ados"),
            "wss://h/ados/api/v1/work/runners/ws"
        );
    }
}
