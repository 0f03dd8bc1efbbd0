//! The reconnect policy of protocol.md §1, with no clock and no I/O: how
//! long to wait before the next connection attempt.
//!
//! - An ordinary failure waits 0.5 s, then 1 s, 2 s, … up to the maximum
//!   (30 s in production, [`super::LinkConfig::max_backoff`]).
//! - An authentication failure (handshake 401/403, close codes 4001, 4003,
//!   4009) waits the maximum at once: retrying fast cannot fix a token.
//! - Every wait gets ±20 % jitter, so a fleet of runners cut off together
//!   does not come back in lockstep.
//! - A connection that stayed up for [`STABLE_AFTER`] resets the sequence.
//!
//! Randomness is injected ([`XorShift`] with a seed), so tests are exact.

use std::time::Duration;

/// The first wait after an ordinary failure.
pub const BASE: Duration = Duration::from_millis(500);

/// A connection that stayed up this long resets the backoff.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Jitter, as a fraction of the wait, either way.
const JITTER: f64 = 0.2;

/// Why the last attempt or connection ended, as far as backoff cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Network error, timeout, protocol error, server went away…
    Ordinary,
    /// The server refused our credentials or identity: retry slowly.
    Auth,
}

/// A tiny xorshift64* generator: enough for jitter, no dependency.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (0 is replaced: xorshift would stay at 0).
    pub fn new(seed: u64) -> XorShift {
        XorShift(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// Seeded from the clock and the process id: different runners started
    /// at the same moment still get different jitter.
    pub fn from_time() -> XorShift {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        XorShift::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// A number in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        // The top 53 bits make an exactly representable fraction.
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The backoff state of one link.
#[derive(Clone, Debug)]
pub struct Backoff {
    max: Duration,
    /// Ordinary failures since the last reset.
    failures: u32,
    rng: XorShift,
}

impl Backoff {
    /// A fresh policy capped at `max`.
    pub fn new(max: Duration, rng: XorShift) -> Backoff {
        Backoff {
            max,
            failures: 0,
            rng,
        }
    }

    /// The maximum wait (before jitter).
    pub fn max(&self) -> Duration {
        self.max
    }

    /// A connection stayed up long enough: start again from [`BASE`].
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Whether a connection that lasted `up` resets the backoff.
    pub fn should_reset(up: Duration) -> bool {
        up >= STABLE_AFTER
    }

    /// The wait before the next attempt, after a failure of `kind`.
    pub fn next_delay(&mut self, kind: Failure) -> Duration {
        let nominal = match kind {
            Failure::Auth => self.max,
            Failure::Ordinary => {
                // 2^20 × 0.5 s is far past any sane cap; stop doubling there.
                let factor = 1u32 << self.failures.min(20);
                self.failures = self.failures.saturating_add(1);
                BASE.saturating_mul(factor).min(self.max)
            }
        };
        let jitter = 1.0 - JITTER + 2.0 * JITTER * self.rng.next_f64();
        nominal.mul_f64(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn within(d: Duration, nominal: Duration) -> bool {
        d >= nominal.mul_f64(0.8) && d <= nominal.mul_f64(1.2)
    }

    #[test]
    fn ordinary_failures_double_from_half_a_second_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(30), XorShift::new(7));
        let expected = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0];
        for secs in expected {
            let d = b.next_delay(Failure::Ordinary);
            assert!(
                within(d, Duration::from_secs_f64(secs)),
                "{d:?} not {secs}s ±20%"
            );
        }
    }

    #[test]
    fn auth_failures_wait_the_maximum_at_once() {
        let mut b = Backoff::new(Duration::from_secs(30), XorShift::new(1));
        for _ in 0..5 {
            let d = b.next_delay(Failure::Auth);
            assert!(within(d, Duration::from_secs(30)), "{d:?}");
        }
        // Auth failures do not advance the ordinary sequence.
        assert!(within(
            b.next_delay(Failure::Ordinary),
            Duration::from_millis(500)
        ));
    }

    #[test]
    fn reset_starts_again_from_the_base() {
        let mut b = Backoff::new(Duration::from_secs(30), XorShift::new(3));
        for _ in 0..6 {
            b.next_delay(Failure::Ordinary);
        }
        b.reset();
        assert!(within(
            b.next_delay(Failure::Ordinary),
            Duration::from_millis(500)
        ));
        assert!(!Backoff::should_reset(Duration::from_secs(59)));
        assert!(Backoff::should_reset(Duration::from_secs(60)));
    }

    #[test]
    fn a_cap_below_the_base_caps_the_first_wait_too() {
        let mut b = Backoff::new(Duration::from_millis(100), XorShift::new(5));
        assert!(within(
            b.next_delay(Failure::Ordinary),
            Duration::from_millis(100)
        ));
    }

    #[test]
    fn jitter_spans_both_sides_and_stays_in_bounds() {
        let mut b = Backoff::new(Duration::from_secs(10), XorShift::new(42));
        let delays: Vec<f64> = (0..1000)
            .map(|_| b.next_delay(Failure::Auth).as_secs_f64())
            .collect();
        assert!(delays.iter().all(|d| (8.0..=12.0).contains(d)));
        assert!(delays.iter().any(|d| *d < 9.0), "never below 9 s");
        assert!(delays.iter().any(|d| *d > 11.0), "never above 11 s");
    }

    #[test]
    fn same_seed_same_sequence() {
        let mut a = Backoff::new(Duration::from_secs(30), XorShift::new(9));
        let mut b = Backoff::new(Duration::from_secs(30), XorShift::new(9));
        for _ in 0..10 {
            assert_eq!(
                a.next_delay(Failure::Ordinary),
                b.next_delay(Failure::Ordinary)
            );
        }
    }
}
