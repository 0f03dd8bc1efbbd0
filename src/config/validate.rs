//! Checks of single values (URLs, durations, ids, secrets). Each returns
//! the parsed value or a message saying what is wrong; the caller adds the
//! variable's name and an example. Messages never echo a secret.

use std::time::Duration;

/// The parts of an `http(s)://host[:port][/path]` URL the runner needs.
#[derive(Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// `https` or `http`.
    pub secure: bool,
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Explicit port, else the scheme's default.
    pub port: u16,
}

/// Split `http(s)://authority/...`. Credentials in the authority are
/// refused: the runner authenticates with `ADOS_TOKEN`, and a password in a
/// URL ends up in logs.
pub fn parse_http_url(s: &str) -> Result<HttpUrl, String> {
    let lower = s.to_ascii_lowercase();
    let (secure, rest) = if lower.starts_with("https://") {
        (true, &s[8..])
    } else if lower.starts_with("http://") {
        (false, &s[7..])
    } else {
        return Err("must start with https:// or http://".into());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if tail.contains(['?', '#']) {
        return Err("must not contain a query (?) or fragment (#)".into());
    }
    if authority.contains('@') {
        return Err("must not contain credentials (user@ or user:password@)".into());
    }
    let (host, port) = split_host_port(authority)?;
    Ok(HttpUrl {
        secure,
        host,
        port: port.unwrap_or(if secure { 443 } else { 80 }),
    })
}

/// A proxy URL: `http://[user:password@]host:port`. Never echoes the
/// value, which may hold a password.
pub fn check_proxy_url(s: &str) -> Result<(), String> {
    let rest = if s.to_ascii_lowercase().starts_with("http://") {
        &s[7..]
    } else {
        return Err("must be an http:// proxy URL".into());
    };
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '?', '#']) {
        return Err("must be only http://host:port, without a path".into());
    }
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match split_host_port(hostport)? {
        (_, Some(_)) => Ok(()),
        (_, None) => Err("must include a port (http://host:port)".into()),
    }
}

fn split_host_port(authority: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or("has an unclosed `[` in its host")?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("has no host".into());
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("has whitespace in its host".into());
    }
    let port = match port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or("has a port that is not a number from 1 to 65535")?,
        ),
    };
    Ok((host.to_string(), port))
}

/// A duration: plain seconds (`600`) or a number with `s`, `m` or `h`
/// (`10m`). At most a day: a longer grace period is surely a typo.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| "must be a whole number of seconds, or a number with s, m or h".to_string())?;
    if unit.trim() == "ms" {
        return Ok(Duration::from_millis(n.min(86_400_000)));
    }
    let mult = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => return Err(format!("has unknown unit `{other}` (use ms, s, m or h)")),
    };
    let secs = n.saturating_mul(mult);
    if secs > 86_400 {
        return Err("must be at most 24h".into());
    }
    Ok(Duration::from_secs(secs))
}

/// A positive integer not above `max`.
pub fn parse_count(s: &str, max: u64) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from 1 to {max}")),
    }
}

/// A secret's shape. `None` only when fine; the message never contains the
/// value. Whitespace inside a token is refused rather than trimmed: it is
/// almost always a pasted line break, and a trimmed token that still fails
/// later is much harder to diagnose.
pub fn secret_problem(value: &str) -> Option<&'static str> {
    if value.is_empty() {
        Some("is set but empty")
    } else if value.trim().is_empty() {
        Some("is set but blank (only whitespace)")
    } else if value.chars().any(char::is_whitespace) {
        Some("contains whitespace (a pasted line break or space?); the value is not shown")
    } else if value.chars().any(char::is_control) {
        Some("contains control characters; the value is not shown")
    } else {
        None
    }
}

/// A free-form label that ends up in a header or the `hello` frame
/// (`ADOS_HOSTNAME`, `ADOS_DEPLOY_ID`, `ADOS_TENANT_ID`): visible ASCII, no
/// spaces, at most 253 characters.
pub fn check_label(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be at most 253 characters".into());
    }
    if let Some(c) = s.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(format!(
            "contains {c:?}; only visible ASCII without spaces is allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls() {
        assert_eq!(
            parse_http_url("https://api.ados.dev"),
            Ok(HttpUrl {
                secure: true,
                host: "api.ados.dev".into(),
                port: 443
            })
        );
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/api/v1").unwrap().port,
            8080
        );
        assert_eq!(parse_http_url("HTTP://[::1]:9/").unwrap().host, "::1");
        for bad in [
            "api.ados.dev",
            "ftp://x",
            "https://",
            "https://:80",
            "https://u:p@h",
            "https://h:0",
            "https://h:99999",
            "https://h?x=1",
            "https://h/#f",
            "https://[::1",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn proxy_urls() {
        assert!(check_proxy_url("http://proxy:3128").is_ok());
        assert!(check_proxy_url("http://user:pw@proxy:3128/").is_ok());
        let e = check_proxy_url("http://user:s3cr3t@proxy").unwrap_err();
        assert!(e.contains("port") && !e.contains("s3cr3t"));
        assert!(check_proxy_url("socks5://p:1").is_err());
        assert!(check_proxy_url("proxy:3128").is_err());
        assert!(check_proxy_url("http://p:1/path").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        for bad in ["", "m", "10x", "-5", "1.5m", "25h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn counts_secrets_labels() {
        assert_eq!(parse_count("4", 256), Ok(4));
        for bad in ["0", "257", "-1", "x", ""] {
            assert!(parse_count(bad, 256).is_err(), "{bad}");
        }
        assert_eq!(secret_problem("tok_123"), None);
        assert_eq!(secret_problem(""), Some("is set but empty"));
        assert!(secret_problem("  ").is_some());
        let p = secret_problem("tok_123\n").unwrap();
        assert!(p.contains("whitespace") && !p.contains("tok_123"));
        assert!(check_label("server-01.example").is_ok());
        assert!(check_label("a b").is_err());
        assert!(check_label(&"x".repeat(254)).is_err());
    }
}
