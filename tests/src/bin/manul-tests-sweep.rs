//! Remove what dead test processes left behind: their network namespaces,
//! daemons and temp dirs (see `manul_tests::scratch`). `scripts/test` runs it
//! after the suite; it prints nothing when there was nothing to sweep.

fn main() {
    let report = manul_tests::scratch::sweep_stale();
    if !report.is_empty() {
        eprintln!("manul-tests-sweep: removed leftovers of killed test processes: {report}");
    }
}
