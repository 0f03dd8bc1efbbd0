//! Which Copilot CLI the runner is talking to, and what that version can
//! do (agents.md, "Versions matter"):
//!
//! | band | from | output | sessions |
//! |---|---|---|---|
//! | [`CopilotBand::Text`] | — | text lines, success by exit code | cannot resume |
//! | [`CopilotBand::Json`] | 0.0.422 | `--output-format json` | `--resume=<sessionId>` of the `result` line |
//! | [`CopilotBand::SessionId`] | 1.0.51 | `--output-format json` | `--session-id <uuid>` on every turn |
//!
//! The version is asked **once per job** (a chat session is one job), not
//! once per runner: the CLI is an npm package that an operator upgrades
//! (or that updates itself) under a long-running runner, and a cached
//! answer would then drive the new CLI with the old band's flags — an
//! unknown option fails every job until a restart. One `copilot --version`
//! per job costs a fraction of a second against an agent run of minutes,
//! and within one job (every attempt, repair and chat turn) the answer
//! stays fixed, so a session is always resumed the way it was created.

use std::fmt;

/// A Copilot CLI version (`1.0.60`), as `copilot --version` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CopilotVersion {
    major: u32,
    minor: u32,
    patch: u32,
}

impl CopilotVersion {
    /// The first version with `--output-format json`.
    pub const JSON_OUTPUT: CopilotVersion = CopilotVersion::new(0, 0, 422);
    /// The first version whose sessions can be resumed (`--resume=`): a
    /// chat needs at least this one.
    pub const RESUME: CopilotVersion = CopilotVersion::JSON_OUTPUT;
    /// The first version with `--session-id`.
    pub const SESSION_ID: CopilotVersion = CopilotVersion::new(1, 0, 51);

    /// The version `major.minor.patch`.
    pub const fn new(major: u32, minor: u32, patch: u32) -> CopilotVersion {
        CopilotVersion {
            major,
            minor,
            patch,
        }
    }

    /// The first `X.Y.Z` in what `copilot --version` printed (`1.0.60`,
    /// `GitHub Copilot CLI 0.0.339`, `v1.0.51-beta.2`); `None` when there
    /// is none.
    pub fn parse(printed: &str) -> Option<CopilotVersion> {
        printed
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .find_map(|word| {
                let mut parts = word.split('.');
                let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
                let v = CopilotVersion::new(next()?, next()?, next()?);
                Some(v)
            })
    }

    /// What this version can do.
    pub fn band(self) -> CopilotBand {
        if self >= CopilotVersion::SESSION_ID {
            CopilotBand::SessionId
        } else if self >= CopilotVersion::JSON_OUTPUT {
            CopilotBand::Json
        } else {
            CopilotBand::Text
        }
    }
}

impl fmt::Display for CopilotVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The versions that are driven alike (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CopilotBand {
    /// Before 0.0.422: text output only (`--output-format` is an unknown
    /// option there); each stdout line is a message, success is exit 0.
    Text,
    /// 0.0.422 to before 1.0.51: JSON lines; a session is resumed with
    /// `--resume=<sessionId>` from the `result` line.
    Json,
    /// 1.0.51 and later: JSON lines; `--session-id <uuid>` on every turn.
    /// Also what an unknown version is driven as: the runner's main
    /// target, and an older CLI then fails with its own "unknown option".
    #[default]
    SessionId,
}

/// How a Copilot session can be continued in a later turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopilotResume {
    /// Not at all: the CLI prints no session id (before 0.0.422).
    Unsupported,
    /// `--resume=<sessionId>`, the id from the first turn's `result`
    /// line; the first turn passes nothing.
    ResumeFlag,
    /// `--session-id <uuid>` on every turn: the runner makes the UUID,
    /// the first turn creates the session and the next ones resume it.
    SessionId,
}

impl CopilotBand {
    /// The band of the CLI that printed `printed` for `copilot --version`;
    /// the newest when no version can be read from it.
    pub fn of(printed: &str) -> CopilotBand {
        CopilotVersion::parse(printed).map_or_else(CopilotBand::default, CopilotVersion::band)
    }

    /// Whether `--output-format json` exists.
    pub fn json_output(self) -> bool {
        self != CopilotBand::Text
    }

    /// How a session of this band is resumed.
    pub fn resume(self) -> CopilotResume {
        match self {
            CopilotBand::Text => CopilotResume::Unsupported,
            CopilotBand::Json => CopilotResume::ResumeFlag,
            CopilotBand::SessionId => CopilotResume::SessionId,
        }
    }
}

impl CopilotResume {
    /// The session arguments of one turn: `session` is the session to
    /// resume (`None`: a first turn). `new_id` makes the UUID of a new
    /// session where the runner names it.
    pub fn args(self, session: Option<&str>, new_id: impl FnOnce() -> String) -> Vec<String> {
        match (self, session) {
            (CopilotResume::SessionId, Some(id)) => vec!["--session-id".into(), id.to_string()],
            (CopilotResume::SessionId, None) => vec!["--session-id".into(), new_id()],
            (CopilotResume::ResumeFlag, Some(id)) => vec![format!("--resume={id}")],
            (CopilotResume::ResumeFlag, None) | (CopilotResume::Unsupported, _) => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_what_the_cli_prints() {
        let v = |s| CopilotVersion::parse(s).map(|v| v.to_string());
        assert_eq!(v("1.0.60").as_deref(), Some("1.0.60"));
        assert_eq!(v("GitHub Copilot CLI 0.0.339").as_deref(), Some("0.0.339"));
        assert_eq!(v("v1.0.51-beta.2\n").as_deref(), Some("1.0.51"));
        assert_eq!(v("copilot 2"), None);
        assert_eq!(v(""), None);
        assert_eq!(v("99999999999.0.1"), None, "no overflow: not a version");
    }

    #[test]
    fn each_band_starts_at_its_version() {
        let band = |s| CopilotVersion::parse(s).map(CopilotVersion::band);
        assert_eq!(band("0.0.421"), Some(CopilotBand::Text));
        assert_eq!(band("0.0.422"), Some(CopilotBand::Json));
        assert_eq!(band("1.0.50"), Some(CopilotBand::Json));
        assert_eq!(band("1.0.51"), Some(CopilotBand::SessionId));
        assert_eq!(band("2.0.0"), Some(CopilotBand::SessionId));
        assert_eq!(
            CopilotBand::of("GitHub Copilot CLI 0.0.339"),
            CopilotBand::Text
        );
        assert_eq!(CopilotBand::of("no version here"), CopilotBand::SessionId);
        assert_eq!(
            CopilotVersion::RESUME.band().resume(),
            CopilotResume::ResumeFlag
        );
        assert!(!CopilotBand::Text.json_output());
        assert!(CopilotBand::Json.json_output());
    }

    #[test]
    fn each_band_resumes_its_own_way() {
        let id = "aa778ea0-6eab-4ce9-b87e-11d6d33dab4f";
        let fresh = || "fresh-uuid".to_string();
        let sid = CopilotBand::SessionId.resume();
        assert_eq!(sid.args(None, fresh), ["--session-id", "fresh-uuid"]);
        assert_eq!(sid.args(Some(id), fresh), ["--session-id", id]);
        let flag = CopilotBand::Json.resume();
        assert!(flag.args(None, fresh).is_empty());
        assert_eq!(flag.args(Some(id), fresh), [format!("--resume={id}")]);
        let none = CopilotBand::Text.resume();
        assert_eq!(none, CopilotResume::Unsupported);
        assert!(none.args(Some(id), fresh).is_empty());
    }
}
