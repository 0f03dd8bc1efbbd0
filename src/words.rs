//! Small helpers for text a person reads: counts with their noun in the
//! right number (`1 job`, `2 jobs`, never `job(s)`) and durations as they
//! are written in configuration (`30m`, `1h30m`, `45s`).

use std::time::Duration;

/// `n` and `noun`, pluralised with an `s` when `n` is not 1 (every noun
/// the runner counts is regular).
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A duration in whole hours, minutes and seconds (`30m`, `1h30m`, `45s`,
/// `0s`), rounded to the nearest second.
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs() + u64::from(d.subsec_millis() >= 500);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_durations_read_as_written() {
        assert_eq!(count(1, "job"), "1 job");
        assert_eq!(count(0, "job"), "0 jobs");
        assert_eq!(count(3, "problem"), "3 problems");
        assert_eq!(duration(Duration::from_secs(1800)), "30m");
        assert_eq!(duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(duration(Duration::from_secs(3601)), "1h1s");
        assert_eq!(duration(Duration::from_millis(45_400)), "45s");
        assert_eq!(duration(Duration::ZERO), "0s");
    }
}
