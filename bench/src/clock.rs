//! One clock for every process of a run: `CLOCK_MONOTONIC` as seconds.
//! The blaster, the sink and the driver each read it, so their timestamps
//! compare directly (network namespaces do not change it).

/// Seconds on `CLOCK_MONOTONIC` (since boot).
pub fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
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
