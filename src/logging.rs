//! Logging setup: `env_logger` with the filter from `ADOS_LOG_LEVEL` (or
//! `RUST_LOG`), as human-readable text or one JSON object per line
//! (`ADOS_LOG_FORMAT=json`) for log collectors.

use crate::config::LogFormat;
use std::io::Write;

/// Install the global logger. Calling it twice keeps the first logger (a
/// second `init` would panic inside env_logger, and tests call this freely).
///
/// Every record passes through a redactor of the runner's own `secrets`
/// (defence in depth: no code path should log one, and if one does it is
/// masked), and crates known to trace secrets (tungstenite writes the
/// handshake request, `Authorization` included, at `trace`) are capped at
/// `debug` whatever the filter says.
pub fn init_logging(format: LogFormat, level: &str, secrets: Vec<String>) {
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(level);
    if level.contains("trace") {
        for target in crate::link::SECRET_TRACE_TARGETS {
            builder.filter_module(target, log::LevelFilter::Debug);
        }
    }
    let redactor = crate::redact::Redactor::new(secrets);
    builder.format(move |buf, record| {
        let msg = record.args().to_string();
        let msg = redactor.redact(&msg);
        let ts = crate::job::reporter::rfc3339_now();
        match format {
            LogFormat::Json => {
                let line = json_line(&ts, record.level(), record.target(), &msg);
                writeln!(buf, "{line}")
            }
            LogFormat::Text => {
                writeln!(buf, "{ts} {:5} {}: {msg}", record.level(), record.target())
            }
        }
    });
    let _ = builder.try_init();
}

/// One JSON log line: `{"ts","level","target","msg"}`.
fn json_line(ts: &str, level: log::Level, target: &str, msg: &str) -> String {
    serde_json::json!({
        "ts": ts,
        "level": level.as_str(),
        "target": target,
        "msg": msg,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_the_four_fields_and_escapes() {
        let line = json_line(
            "2026-11-24T10:00:00.000Z",
            log::Level::Warn,
            "ados::link",
            "a \"b\"\nc",
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ts"], "2026-11-24T10:00:00.000Z");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["target"], "ados::link");
        assert_eq!(v["msg"], "a \"b\"\nc");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn init_twice_does_not_panic() {
        init_logging(LogFormat::Json, "off", Vec::new());
        init_logging(LogFormat::Text, "info", Vec::new());
    }
}
