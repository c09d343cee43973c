//! Retry scheduling: delays from the config, one per retry, each with ±20 % jitter so a burst of
//! failures against one endpoint does not come back as a burst (svix `calculate_retry_delay`).

use std::time::Duration;

use rand_core::{OsRng, RngCore};

/// A retry schedule: `delays[i]` is the wait after the (i+1)-th failed attempt; once they are
/// used up the delivery is marked failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// Jitter as a fraction of the delay, either way.
const JITTER: f64 = 0.2;

impl RetrySchedule {
    /// A schedule from explicit delays.
    pub fn new(delays: Vec<Duration>) -> Self {
        Self { delays }
    }

    /// The default for wallet pushes: about 16 hours in 9 retries (30 s … 8 h).
    pub fn wallet_default() -> Self {
        Self::new(
            [30, 120, 600, 1_800, 3_600, 7_200, 14_400, 28_800, 28_800]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    /// The default for SMS: 5 retries within about 15 minutes.
    pub fn sms_default() -> Self {
        Self::new(
            [10, 30, 60, 300, 600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
        )
    }

    /// The delays.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// Attempts in total (first try + retries).
    pub fn max_attempts(&self) -> usize {
        self.delays.len().saturating_add(1)
    }

    /// The jittered wait after `attempts_made` failed attempts, or `None` when exhausted.
    pub fn next_delay(&self, attempts_made: usize) -> Option<Duration> {
        let base = self.delays.get(attempts_made.checked_sub(1)?)?;
        Some(jitter(*base))
    }
}

/// `base` scaled by a uniform factor in [1 − JITTER, 1 + JITTER].
pub fn jitter(base: Duration) -> Duration {
    // 53 random bits → uniform f64 in [0, 1).
    let unit = (OsRng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    let factor = 1.0 - JITTER + 2.0 * JITTER * unit;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_schedule_with_bounded_jitter() {
        let s = RetrySchedule::new(vec![Duration::from_secs(10), Duration::from_secs(100)]);
        assert_eq!(s.max_attempts(), 3);
        assert_eq!(s.next_delay(0), None);
        for _ in 0..200 {
            let d = s.next_delay(1).unwrap();
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
            let d = s.next_delay(2).unwrap();
            assert!(
                d >= Duration::from_secs(80) && d <= Duration::from_secs(120),
                "{d:?}"
            );
        }
        assert_eq!(s.next_delay(3), None);
    }

    #[test]
    fn default_wallet_schedule_spans_hours() {
        let total: Duration = RetrySchedule::wallet_default().delays().iter().sum();
        assert!(total > Duration::from_secs(10 * 3600));
    }
}
