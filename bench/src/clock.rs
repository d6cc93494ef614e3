//! One clock for every process of a run: `CLOCK_MONOTONIC` as seconds.
//! The blaster, the sink and the driver each read it, so their timestamps
//! compare directly (network namespaces do not change it).

/// Seconds on `CLOCK_MONOTONIC` (since boot).
pub fn now() -> f64 {
    use nix::time::{ClockId, clock_gettime};
    // CLOCK_MONOTONIC always exists.
    let ts = clock_gettime(ClockId::CLOCK_MONOTONIC);
    debug_assert!(ts.is_ok());
    ts.map_or(0.0, |ts| ts.tv_sec() as f64 + ts.tv_nsec() as f64 * 1e-9)
}

#[cfg(test)]
mod tests {
    #[test]
    fn is_monotonic() {
        let a = super::now();
        let b = super::now();
        assert!(a > 0.0 && b >= a);
    }
}
