//! The wire messages of protocol.md §2–3, with no I/O: parsing what the
//! server sends and building what the runner sends.

use serde::Serialize;
use serde_json::{json, Value};

/// A message from the control plane.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome {
        /// Heartbeat interval the server wants (default 15).
        heartbeat_s: u64,
        /// For each job: the last seq the server has stored.
        acks: Vec<(String, u64)>,
    },
    /// A job; the raw spec is validated by the dispatcher.
    Assign(Value),
    /// Stop a job.
    Cancel {
        /// The job.
        job_id: String,
        /// Why (free text).
        reason: Option<String>,
    },
    /// The server stored every event of `job_id` up to `seq`.
    Ack {
        /// The job.
        job_id: String,
        /// Cumulative seq.
        seq: u64,
    },
    /// The next user message of a chat session.
    ChatInput {
        /// The session.
        job_id: String,
        /// The message id.
        message_id: String,
        /// The text.
        text: String,
        /// `create_pr` or none.
        action: Option<String>,
    },
    /// The user closed the chat.
    ChatEnd {
        /// The session.
        job_id: String,
    },
    /// Stop taking new jobs.
    Drain,
    /// Resume taking jobs.
    Undrain,
    /// A `type` this runner does not know (ignored, logged at debug).
    Unknown(String),
}

/// Why a frame could not be understood (logged as a warning, answered
/// with nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// Not valid JSON, or not an object.
    NotJson(String),
    /// No string field `type`.
    NoType,
    /// A known type with a missing or mistyped field.
    BadField {
        /// The message type.
        kind: String,
        /// The field.
        field: &'static str,
    },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::NotJson(e) => write!(f, "frame is not a JSON object: {e}"),
            FrameError::NoType => write!(f, "frame has no string field `type`"),
            FrameError::BadField { kind, field } => {
                write!(f, "`{kind}` frame has a missing or invalid `{field}`")
            }
        }
    }
}

fn field_str(v: &Value, kind: &str, field: &'static str) -> Result<String, FrameError> {
    match v.get(field) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(FrameError::BadField {
            kind: kind.to_string(),
            field,
        }),
    }
}

fn opt_str(v: &Value, field: &str) -> Option<String> {
    v.get(field).and_then(Value::as_str).map(str::to_string)
}

/// `welcome.heartbeat_s` when absent or not a number.
pub const HEARTBEAT_DEFAULT_S: u64 = 15;
/// The shortest heartbeat accepted: below it the runner would spend its
/// time on heartbeats (0 or a negative number would spin).
pub const HEARTBEAT_MIN_S: u64 = 1;
/// The longest heartbeat accepted: a dead connection must still be
/// noticed within 3 × this, and the deadline arithmetic must not overflow.
pub const HEARTBEAT_MAX_S: u64 = 3600;

/// `welcome.heartbeat_s`, never a reason to drop the frame: a number (an
/// integer or not: `15.0` is 15) is rounded and clamped to
/// [`HEARTBEAT_MIN_S`]..=[`HEARTBEAT_MAX_S`]; anything else (absent,
/// `null`, `"15"`, `true`) is [`HEARTBEAT_DEFAULT_S`]. A `welcome` carries
/// the acks; discarding it whole for this one field made the runner resend
/// everything and reconnect forever.
fn welcome_heartbeat(v: Option<&Value>) -> u64 {
    let Some(n) = v.and_then(Value::as_f64) else {
        return HEARTBEAT_DEFAULT_S;
    };
    let (min, max) = (HEARTBEAT_MIN_S as f64, HEARTBEAT_MAX_S as f64);
    // Clamped first, so the cast is exact; JSON has no NaN.
    n.round().clamp(min, max) as u64
}

/// `welcome.acks`: each entry read on its own; an entry without a string
/// `job_id` and a whole non-negative `seq` is skipped, never the others.
fn welcome_acks(v: Option<&Value>) -> Vec<(String, u64)> {
    let Some(list) = v.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|a| {
            let job_id = a.get("job_id")?.as_str()?;
            Some((job_id.to_string(), whole_number(a.get("seq")?)?))
        })
        .collect()
}

/// A JSON number that is a whole number from 0 to `u64::MAX` (`56` or
/// `56.0`).
fn whole_number(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // Below 2^53 a whole f64 converts exactly.
    (f >= 0.0 && f.fract() == 0.0 && f < 9_007_199_254_740_992.0).then_some(f as u64)
}

/// Parse one text frame.
pub fn parse_server_message(text: &str) -> Result<ServerMessage, FrameError> {
    let v: Value = serde_json::from_str(text).map_err(|e| FrameError::NotJson(e.to_string()))?;
    if !v.is_object() {
        return Err(FrameError::NotJson("not an object".into()));
    }
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .ok_or(FrameError::NoType)?
        .to_string();
    let bad = |field| FrameError::BadField {
        kind: kind.clone(),
        field,
    };
    Ok(match kind.as_str() {
        "welcome" => ServerMessage::Welcome {
            heartbeat_s: welcome_heartbeat(v.get("heartbeat_s")),
            acks: welcome_acks(v.get("acks")),
        },
        "job.assign" => match v.get("job") {
            Some(job @ Value::Object(_)) => ServerMessage::Assign(job.clone()),
            _ => return Err(bad("job")),
        },
        "job.cancel" => ServerMessage::Cancel {
            job_id: field_str(&v, &kind, "job_id")?,
            reason: opt_str(&v, "reason"),
        },
        "ack" => ServerMessage::Ack {
            job_id: field_str(&v, &kind, "job_id")?,
            seq: v.get("seq").and_then(Value::as_u64).ok_or(bad("seq"))?,
        },
        "chat.input" => ServerMessage::ChatInput {
            job_id: field_str(&v, &kind, "job_id")?,
            message_id: opt_str(&v, "message_id").unwrap_or_default(),
            text: opt_str(&v, "text").unwrap_or_default(),
            action: opt_str(&v, "action"),
        },
        "chat.end" => ServerMessage::ChatEnd {
            job_id: field_str(&v, &kind, "job_id")?,
        },
        "drain" => ServerMessage::Drain,
        "undrain" => ServerMessage::Undrain,
        _ => ServerMessage::Unknown(kind),
    })
}

/// A job the runner still holds, as listed in `hello.jobs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeldJob {
    /// The job.
    pub job_id: String,
    /// `running`, or `finished` (result written, not yet acknowledged).
    pub state: &'static str,
    /// The last seq written to the journal.
    pub last_seq: u64,
}

/// The static part of `hello`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HelloInfo {
    /// `ADOS_RUNNER_ID`.
    pub runner_id: String,
    /// `ADOS_GROUP`.
    pub group: String,
    /// `chat|issue|all`.
    pub mode: String,
    /// Host name.
    pub hostname: String,
    /// CPUs.
    pub cpus: u32,
    /// Memory as text (`8GB`).
    pub memory: String,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// `ADOS_DEPLOY_ID`.
    pub deploy_id: Option<String>,
    /// `ADOS_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// Runner version.
    pub version: String,
    /// `host` or `docker`.
    pub executor: String,
    /// Agent CLIs found.
    pub agents: Vec<String>,
    /// Worker slots.
    pub slots: usize,
}

/// The `hello` frame.
pub fn hello(info: &HelloInfo, jobs: &[HeldJob]) -> String {
    let mut v = serde_json::to_value(info).unwrap_or_else(|_| json!({}));
    if let Value::Object(m) = &mut v {
        m.insert("type".into(), json!("hello"));
        m.insert("protocol".into(), json!(1));
        m.insert("jobs".into(), json!(jobs));
    }
    v.to_string()
}

/// The live, changing part of a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunnerState {
    /// Slots free for new jobs (0 while draining).
    pub free_slots: usize,
    /// Ids of running jobs.
    pub running: Vec<String>,
    /// Whether the runner is draining.
    pub draining: bool,
}

/// The `heartbeat` frame.
pub fn heartbeat(state: &RunnerState) -> String {
    json!({"type":"heartbeat","free_slots":state.free_slots,"running":state.running,
           "draining":state.draining})
    .to_string()
}

/// `job.accepted`.
pub fn accepted(job_id: &str) -> String {
    json!({"type":"job.accepted","job_id":job_id}).to_string()
}

/// `job.rejected`; `job_id` exactly as received (`None` → `null`).
pub fn rejected(job_id: Option<&str>, reason: &str, retryable: bool) -> String {
    json!({"type":"job.rejected","job_id":job_id,"reason":reason,"retryable":retryable}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_server_message() {
        assert_eq!(
            parse_server_message(
                r#"{"type":"welcome","heartbeat_s":1,"acks":[{"job_id":"j","seq":4}]}"#
            ),
            Ok(ServerMessage::Welcome {
                heartbeat_s: 1,
                acks: vec![("j".into(), 4)]
            })
        );
        assert_eq!(
            parse_server_message(r#"{"type":"ack","job_id":"j","seq":9,"extra":1}"#),
            Ok(ServerMessage::Ack {
                job_id: "j".into(),
                seq: 9
            })
        );
        assert_eq!(
            parse_server_message(r#"{"type":"drain"}"#),
            Ok(ServerMessage::Drain)
        );
        assert_eq!(
            parse_server_message(r#"{"type":"x.new"}"#),
            Ok(ServerMessage::Unknown("x.new".into()))
        );
        assert_eq!(
            parse_server_message(r#"{"no":"type"}"#),
            Err(FrameError::NoType)
        );
        assert!(matches!(
            parse_server_message("nope"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            parse_server_message("[1]"),
            Err(FrameError::NotJson(_))
        ));
        assert!(matches!(
            parse_server_message(r#"{"type":"ack","job_id":"j"}"#),
            Err(FrameError::BadField { field: "seq", .. })
        ));
    }

    /// Every odd `heartbeat_s` gives a usable interval and keeps the acks.
    #[test]
    fn a_bad_heartbeat_never_drops_the_welcome() {
        let table: &[(&str, u64)] = &[
            ("15", 15),
            ("15.0", 15),
            ("14.6", 15),
            ("0", HEARTBEAT_MIN_S),
            ("-1", HEARTBEAT_MIN_S),
            ("0.2", HEARTBEAT_MIN_S),
            ("1e30", HEARTBEAT_MAX_S),
            ("-1e30", HEARTBEAT_MIN_S),
            ("18446744073709551615", HEARTBEAT_MAX_S),
            ("\"15\"", HEARTBEAT_DEFAULT_S),
            ("true", HEARTBEAT_DEFAULT_S),
            ("null", HEARTBEAT_DEFAULT_S),
            ("{}", HEARTBEAT_DEFAULT_S),
        ];
        for (raw, want) in table {
            let frame = format!(
                r#"{{"type":"welcome","heartbeat_s":{raw},"acks":[{{"job_id":"j","seq":56}}]}}"#
            );
            assert_eq!(
                parse_server_message(&frame),
                Ok(ServerMessage::Welcome {
                    heartbeat_s: *want,
                    acks: vec![("j".into(), 56)]
                }),
                "heartbeat_s {raw}"
            );
        }
        assert_eq!(
            parse_server_message(r#"{"type":"welcome"}"#),
            Ok(ServerMessage::Welcome {
                heartbeat_s: HEARTBEAT_DEFAULT_S,
                acks: vec![]
            })
        );
    }

    /// A bad ack entry is skipped on its own; the others still count.
    #[test]
    fn acks_are_read_one_by_one() {
        let frame = r#"{"type":"welcome","heartbeat_s":"x","acks":[
            {"job_id":"a","seq":1},{"job_id":"b","seq":-1},{"job_id":"c","seq":2.5},
            {"job_id":7,"seq":1},{"seq":3},"junk",{"job_id":"d","seq":4.0},
            {"job_id":"e","seq":1e300},{"job_id":"f","seq":18446744073709551615}]}"#;
        assert_eq!(
            parse_server_message(frame),
            Ok(ServerMessage::Welcome {
                heartbeat_s: HEARTBEAT_DEFAULT_S,
                acks: vec![("a".into(), 1), ("d".into(), 4), ("f".into(), u64::MAX)]
            })
        );
        let not_a_list = r#"{"type":"welcome","heartbeat_s":5,"acks":{"job_id":"a"}}"#;
        assert!(matches!(
            parse_server_message(not_a_list),
            Ok(ServerMessage::Welcome { heartbeat_s: 5, .. })
        ));
    }

    #[test]
    fn rejected_keeps_missing_id_as_null() {
        let v: Value = serde_json::from_str(&rejected(None, "r", false)).expect("json");
        assert!(v["job_id"].is_null());
        assert_eq!(v["retryable"], false);
    }
}
