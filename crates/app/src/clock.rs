//! The one clock. Everything that depends on "now" (filing windows, deadlines, sessions, tokens,
//! emails, audit entries) reads it, never the system time directly.
//!
//! A simulated clock starts at a configured instant and then runs on at real speed, so the demo
//! lives inside ITN7's calendar (June 2021) and tests can also move it forward.

use chrono::{DateTime, Duration, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `None`: real time. `Some(t)`: the clock read `t` when the process created it.
    start: Option<(DateTime<Utc>, Instant)>,
    /// Extra offset in microseconds, moved by `advance` (tests).
    offset_micros: AtomicI64,
}

impl Clock {
    pub fn system() -> Self {
        Clock {
            inner: Arc::new(Inner {
                start: None,
                offset_micros: AtomicI64::new(0),
            }),
        }
    }

    pub fn starting_at(at: DateTime<Utc>) -> Self {
        Clock {
            inner: Arc::new(Inner {
                start: Some((at, Instant::now())),
                offset_micros: AtomicI64::new(0),
            }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        let base = match self.inner.start {
            None => Utc::now(),
            Some((at, origin)) => {
                at + Duration::from_std(origin.elapsed()).unwrap_or_else(|_| Duration::zero())
            }
        };
        base + Duration::microseconds(self.inner.offset_micros.load(Ordering::Relaxed))
    }

    /// Whether the clock is not the real one (the UI says so discreetly).
    pub fn is_simulated(&self) -> bool {
        self.inner.start.is_some() || self.inner.offset_micros.load(Ordering::Relaxed) != 0
    }

    /// Moves the clock forward (tests, demonstrations).
    pub fn advance(&self, by: Duration) {
        self.inner
            .offset_micros
            .fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_simulated_clock_runs_on_from_its_start() {
        let start = Utc.with_ymd_and_hms(2021, 6, 1, 7, 0, 0).unwrap();
        let c = Clock::starting_at(start);
        assert!(c.is_simulated());
        let now = c.now();
        assert!(now >= start && now < start + Duration::seconds(5));
        c.advance(Duration::days(2));
        assert!(c.now() >= start + Duration::days(2));
        assert!(!Clock::system().is_simulated());
    }
}
