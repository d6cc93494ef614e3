//! Waiting for a condition with a deadline, and saying what was last seen.
//!
//! The probe returns `Ok(value)` when the condition holds, or `Err(seen)`
//! describing what it observed instead; on timeout the error (or panic)
//! quotes the last `seen`, so a failing test says *why* it waited in vain.

use std::fmt::Display;
use std::time::{Duration, Instant};

/// A condition that did not come true in time.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {waited:.1?} waiting for {what}; last seen: {last_seen}")]
pub struct Timeout {
    pub what: String,
    pub waited: Duration,
    pub last_seen: String,
}

/// Poll `probe` until it returns `Ok` or `timeout` passes. Polls quickly at
/// first (10 ms), backing off to 250 ms.
pub fn try_wait_until<T, S: Display>(
    timeout: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, S>,
) -> Result<T, Timeout> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(10);
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(seen) if start.elapsed() >= timeout => {
                return Err(Timeout {
                    what: what.to_string(),
                    waited: start.elapsed(),
                    last_seen: seen.to_string(),
                });
            }
            Err(_) => {}
        }
        std::thread::sleep(interval.min(timeout.saturating_sub(start.elapsed())));
        interval = (interval * 2).min(Duration::from_millis(250));
    }
}

/// [`try_wait_until`] that panics with the [`Timeout`] message.
#[track_caller]
pub fn wait_until<T, S: Display>(
    timeout: Duration,
    what: &str,
    probe: impl FnMut() -> Result<T, S>,
) -> T {
    match try_wait_until(timeout, what, probe) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_value_once_the_probe_succeeds() {
        let mut calls = 0;
        let v = wait_until(Duration::from_secs(5), "third call", || {
            calls += 1;
            if calls == 3 {
                Ok(calls * 10)
            } else {
                Err(format!("call {calls}"))
            }
        });
        assert_eq!(v, 30);
    }

    #[test]
    fn timeout_quotes_what_was_last_seen() {
        let mut n = 0;
        let err = try_wait_until(Duration::from_millis(60), "n to reach 1000", || {
            n += 1;
            Err::<(), _>(format!("n={n}"))
        })
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("waiting for n to reach 1000"), "{msg}");
        assert!(msg.contains(&format!("last seen: n={n}")), "{msg}");
        assert!(err.waited >= Duration::from_millis(60));
    }

    #[test]
    #[should_panic(expected = "last seen: still down")]
    fn wait_until_panics_with_the_message() {
        wait_until(Duration::from_millis(20), "link up", || {
            Err::<(), _>("still down")
        });
    }
}
