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
        "welcome" => {
            let heartbeat_s = match v.get("heartbeat_s") {
                None | Some(Value::Null) => 15,
                Some(h) => h.as_u64().filter(|h| *h > 0).ok_or(bad("heartbeat_s"))?,
            };
            let mut acks = Vec::new();
            if let Some(list) = v.get("acks").and_then(Value::as_array) {
                for a in list {
                    if let (Some(j), Some(s)) = (
                        a.get("job_id").and_then(Value::as_str),
                        a.get("seq").and_then(Value::as_u64),
                    ) {
                        acks.push((j.to_string(), s));
                    }
                }
            }
            ServerMessage::Welcome { heartbeat_s, acks }
        }
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

    #[test]
    fn rejected_keeps_missing_id_as_null() {
        let v: Value = serde_json::from_str(&rejected(None, "r", false)).expect("json");
        assert!(v["job_id"].is_null());
        assert_eq!(v["retryable"], false);
    }
}
