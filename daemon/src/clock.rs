//! Time as a port: domain code takes `now` as an argument, adapters ask a
//! [`Clock`]. The system clock is read here and nowhere else.
//!
//! `helpdeskd --now TIME` shifts the system clock of the process by a fixed
//! offset (set once at start), so tests and dry runs can put the daemon at
//! any instant — an SLA due tomorrow — without sleeping or touching the host.

use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

static OFFSET: OnceLock<Duration> = OnceLock::new();

#[allow(clippy::disallowed_methods)] // the one place that reads the system clock
fn system_now() -> DateTime<Utc> {
    Utc::now()
}

/// Makes the process clock read `at` now (and run on from there). Only the
/// first call counts; returns false if the clock was already shifted.
pub fn start_at(at: DateTime<Utc>) -> bool {
    OFFSET.set(at - system_now()).is_ok()
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        system_now() + OFFSET.get().copied().unwrap_or_else(Duration::zero)
    }
}
