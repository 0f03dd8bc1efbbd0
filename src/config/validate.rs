//! Checks of single values (URLs, durations, ids, secrets). Each returns
//! the parsed value or a message saying what is wrong; the caller adds the
//! variable's name and an example. Messages never echo a secret.

use crate::net::url::{Url, UrlError};
use std::time::Duration;

/// An `http(s)://host[:port][/path]` URL (`ADOS_API_URL`). Credentials
/// in the authority are refused: the runner authenticates with
/// `ADOS_TOKEN`, and a password in a URL ends up in logs.
pub fn parse_http_url(s: &str) -> Result<Url, String> {
    let url = Url::parse(s).map_err(|e| match e {
        UrlError::NoScheme => "must start with https:// or http://".to_string(),
        e => e.to_string(),
    })?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("must start with https:// or http://".into());
    }
    if url.rest().contains(['?', '#']) {
        return Err("must not contain a query (?) or fragment (#)".into());
    }
    if url.userinfo().is_some() {
        return Err("must not contain credentials (user@ or user:password@)".into());
    }
    Ok(url)
}

/// The levels a log filter may name.
const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// A log filter (`ADOS_LOG_LEVEL`, `RUST_LOG`): comma-separated
/// directives, each a level (`info`) or `module=level`
/// (`ados_work_runner::link=debug`). A bare word that is not a level is
/// refused although env_logger would read it as a module name: `verbose`
/// would then silence every line, and a module needs its `=level` here.
pub fn check_log_filter(s: &str) -> Result<(), String> {
    let levels = LOG_LEVELS.join(", ");
    let is_level = |w: &str| LOG_LEVELS.contains(&w.trim().to_ascii_lowercase().as_str());
    let is_module = |m: &str| {
        !m.is_empty()
            && m.split("::").all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
    };
    // env_logger's `/text` suffix filters messages; the directives are before it.
    let directives = s.split_once('/').map_or(s, |(d, _)| d);
    if directives.trim().is_empty() {
        return Err(format!("is empty; give a level ({levels})"));
    }
    for d in directives
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let ok = match d.split_once('=') {
            Some((module, level)) => is_module(module.trim()) && is_level(level),
            None => is_level(d),
        };
        if !ok {
            return Err(format!(
                "`{d}` is not a level ({levels}) or a `module=level` directive"
            ));
        }
    }
    Ok(())
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
        let u = parse_http_url("https://api.ados.dev").unwrap();
        assert_eq!(
            (u.is_tls(), u.host(), u.port_or_default()),
            (true, "api.ados.dev", Some(443))
        );
        assert_eq!(
            parse_http_url("http://127.0.0.1:8080/api/v1")
                .unwrap()
                .port(),
            Some(8080)
        );
        assert_eq!(parse_http_url("HTTP://[::1]:9/").unwrap().host(), "::1");
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
