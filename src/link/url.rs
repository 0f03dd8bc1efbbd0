//! The WebSocket URL derived from `ADOS_API_URL` (protocol.md §1).

/// `https://api.ados.dev` → `wss://api.ados.dev/api/v1/work/runners/ws`;
/// a URL already ending in `/api/v1` only gets `/work/runners/ws`.
pub fn ws_url(api_url: &str) -> String {
    let trimmed = api_url.trim().trim_end_matches('/');
    let swapped = if let Some(rest) = trimmed.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        trimmed.to_string()
    };
    if swapped.ends_with("/api/v1") {
        format!("{swapped}/work/runners/ws")
    } else {
        format!("{swapped}/api/v1/work/runners/ws")
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
