//! git's `--progress` lines (`Receiving objects:  45% (450/1000), 2.10 GiB
//! | 1.00 MiB/s`), read into a step's status detail so a long clone or
//! fetch is visible, and the throttle that keeps them from flooding the
//! events: at most one per second, and only when the whole percent (or
//! the phase) changed.

use std::time::{Duration, Instant};

/// The least time between two progress details.
const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// The longest amount (`2.10 GiB`) kept; anything longer is not one.
const MAX_AMOUNT: usize = 24;

/// One state of git's progress output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// The phase, as git names it, lower case (`receiving objects`);
    /// a server-side phase keeps git's `remote` in front.
    pub phase: String,
    /// Whole percent, 0 to 100.
    pub percent: u8,
    /// The amount received so far (`2.10 GiB`), when git says it.
    pub amount: Option<String>,
}

impl Progress {
    /// The status detail: `receiving objects 45% (2.10 GiB)`.
    pub fn detail(&self) -> String {
        match &self.amount {
            Some(a) => format!("{} {}% ({a})", self.phase, self.percent),
            None => format!("{} {}%", self.phase, self.percent),
        }
    }
}

/// The progress in one line of git's stderr, or `None` for any other line.
pub fn parse(line: &str) -> Option<Progress> {
    let line = line.trim();
    let (remote, line) = match line.strip_prefix("remote: ") {
        Some(rest) => (true, rest.trim_start()),
        None => (false, line),
    };
    let (phase, rest) = line.split_once(':')?;
    if phase.is_empty()
        || phase.len() > 40
        || !phase.chars().all(|c| c.is_ascii_alphabetic() || c == ' ')
    {
        return None;
    }
    let rest = rest.trim_start();
    let (digits, after) = rest.split_once('%')?;
    let percent: u8 = digits.parse().ok().filter(|p| *p <= 100)?;
    // git always gives the counts: `(450/1000)`.
    let (done, total) = after
        .trim_start()
        .strip_prefix('(')?
        .split_once(')')?
        .0
        .split_once('/')?;
    if ![done, total]
        .iter()
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // `(450/1000), 2.10 GiB | 1.00 MiB/s` or `(3/3), done.`
    let amount = after
        .split_once("), ")
        .map(|(_, tail)| tail.split(['|', ',']).next().unwrap_or("").trim())
        .filter(|a| !a.is_empty() && a.len() <= MAX_AMOUNT && a.ends_with(['B', 's']))
        .filter(|a| a.starts_with(|c: char| c.is_ascii_digit()))
        .map(String::from);
    let phase = phase.trim().to_ascii_lowercase();
    Some(Progress {
        phase: if remote {
            format!("remote {phase}")
        } else {
            phase
        },
        percent,
        amount,
    })
}

/// Lets a progress detail through at most once per [`MIN_INTERVAL`], and
/// only when its phase or whole percent changed since the last one.
#[derive(Debug, Default)]
pub struct ProgressThrottle {
    last_at: Option<Instant>,
    last: Option<(String, u8)>,
}

impl ProgressThrottle {
    /// The detail to report for `p` seen at `now`, or `None` to drop it.
    pub fn offer(&mut self, p: &Progress, now: Instant) -> Option<String> {
        if self
            .last
            .as_ref()
            .is_some_and(|(phase, pct)| *phase == p.phase && *pct == p.percent)
        {
            return None;
        }
        if self
            .last_at
            .is_some_and(|at| now.saturating_duration_since(at) < MIN_INTERVAL)
        {
            return None;
        }
        self.last_at = Some(now);
        self.last = Some((p.phase.clone(), p.percent));
        Some(p.detail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_progress_lines_are_read() {
        let p = parse("Receiving objects:  45% (450/1000), 2.10 GiB | 1.00 MiB/s").unwrap();
        assert_eq!(p.detail(), "receiving objects 45% (2.10 GiB)");
        let p = parse("Receiving objects: 100% (1000/1000), 2.10 GiB | 1.00 MiB/s, done.").unwrap();
        assert_eq!((p.percent, p.amount.as_deref()), (100, Some("2.10 GiB")));
        let p = parse("Resolving deltas:  30% (3/10)").unwrap();
        assert_eq!(p.detail(), "resolving deltas 30%");
        let p = parse("remote: Counting objects: 100% (3/3), done.").unwrap();
        assert_eq!(p.detail(), "remote counting objects 100%");
        let p = parse("Unpacking objects: 100% (3/3), 213 bytes | 213.00 KiB/s, done.").unwrap();
        assert_eq!(p.detail(), "unpacking objects 100% (213 bytes)");
        for other in [
            "From https://example.test/o/r",
            "fatal: Authentication failed: 100% sure",
            "Receiving objects: 180% (1/1)",
            "error: 45% of x",
            "remote: Enumerating objects: 5, done.",
            "",
        ] {
            assert_eq!(parse(other), None, "{other}");
        }
    }

    #[test]
    fn the_throttle_keeps_one_a_second_and_only_changes() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let p = |pct: &str| {
            parse(&format!(
                "Receiving objects: {pct}% (1/9), 1.00 MiB | 1 MiB/s"
            ))
            .unwrap()
        };
        let mut t = ProgressThrottle::default();
        assert_eq!(
            t.offer(&p("1"), at(0)).as_deref(),
            Some("receiving objects 1% (1.00 MiB)")
        );
        assert_eq!(t.offer(&p("2"), at(500)), None, "within a second");
        assert_eq!(t.offer(&p("1"), at(1500)), None, "same percent");
        assert!(t.offer(&p("3"), at(1500)).is_some());
        assert_eq!(t.offer(&p("3"), at(9000)), None, "no change, however late");
        let d = parse("Resolving deltas:   3% (1/30)").unwrap();
        assert_eq!(
            t.offer(&d, at(9000)).as_deref(),
            Some("resolving deltas 3%")
        );
    }
}
