//! Measurements and the Markdown appended to `RESULTS.md`: the date, the
//! machine, the versions, a table per scenario, the ratios of manul to
//! BIRD and GoBGP, and whether the issue's targets are met.

use manul_bench::machine::{loadavg, machine, manul_version, sh};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::dut::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    Receive,
    Pass,
}

impl Scenario {
    pub fn label(self) -> &'static str {
        match self {
            Scenario::Receive => "receive",
            Scenario::Pass => "pass-through",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Receive => {
                "Receive: blaster → receiver, time from Established until the receiver's RIB holds N"
            }
            Scenario::Pass => {
                "Pass-through: blaster → device under test → sink (eBGP, export all), time from the blaster's Established until the sink holds N"
            }
        }
    }
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub scenario: Scenario,
    pub kind: Kind,
    pub n: usize,
    pub secs: Option<f64>,
    /// Established until the blaster's last byte was written.
    pub write_secs: Option<f64>,
    pub rss_kib: Option<u64>,
    /// CPU time the receiver / device under test used in the window.
    pub cpu_secs: Option<f64>,
    pub note: String,
}

impl Outcome {
    pub fn failed(scenario: Scenario, kind: Kind, n: usize, why: String) -> Self {
        Self {
            scenario,
            kind,
            n,
            secs: None,
            write_secs: None,
            rss_kib: None,
            cpu_secs: None,
            note: format!("FAILED: {}", why.lines().next().unwrap_or("")),
        }
    }

    pub fn one_line(&self) -> String {
        match (self.secs, self.rss_kib) {
            (Some(s), Some(r)) => format!(
                "{:.3} s, cpu {:.3} s, peak RSS {:.1} MiB ({})",
                s,
                self.cpu_secs.unwrap_or(0.0),
                r as f64 / 1024.0,
                self.note
            ),
            _ => self.note.clone(),
        }
    }
}

fn find(all: &[Outcome], s: Scenario, k: Kind, n: usize) -> Option<&Outcome> {
    all.iter()
        .find(|o| o.scenario == s && o.kind == k && o.n == n)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("—".to_string(), |r| format!("{r:.2}×"))
}

/// The Markdown section of one run.
pub fn render(
    all: &[Outcome],
    codec: Option<&str>,
    poll_ms: u64,
    import_filter: usize,
) -> Result<String> {
    let mut t = String::new();
    let date = sh("date", &["-u"]);
    writeln!(t, "## Run of {date}\n")?;
    writeln!(t, "- machine: {}", machine())?;
    writeln!(
        t,
        "- versions: {}, {}, {}, {}",
        manul_version(),
        sh("bird", &["--version"]),
        sh("gobgpd", &["--version"]),
        sh("rustc", &["--version"]),
    )?;
    writeln!(
        t,
        "- load: `/proc/loadavg` {} at the end of the run (the machine may be shared: \
         CPU time of the receiver is the column least affected by other load)",
        loadavg()
    )?;
    writeln!(
        t,
        "- IPv4 /24 prefixes from 11.0.0.0, one attribute set (ORIGIN IGP, AS_PATH [65001]); \
         receivers polled every {poll_ms} ms through a per-session counter (manul `peers` \
         accepted, BIRD `show protocols all` imported, GoBGP `neighbor -j` accepted), then the \
         whole RIB counted once (manul `summary`, BIRD `show route count`, GoBGP `global rib \
         summary`); the pass-through sink timestamps the moment itself. One run per cell.{}\n",
        if import_filter > 0 {
            format!(
                "\n- import filter on the blaster's session: {import_filter} rules that every \
                 announced prefix passes to the default accept (manul-bgpd `[[peer.import_rule]]`; \
                 BIRD the function Calico's confd renders from a BGPFilter, called before \
                 `accept;`; `bgp-bench --import-filter {import_filter}`)"
            )
        } else {
            String::new()
        }
    )?;

    let mut sizes: Vec<usize> = all.iter().map(|o| o.n).collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for o in all {
        if !scenarios.contains(&o.scenario) {
            scenarios.push(o.scenario);
        }
    }
    for &s in &scenarios {
        writeln!(t, "### {}\n", s.title())?;
        writeln!(
            t,
            "| prefixes | implementation | time (s) | prefixes/s | CPU time (s) | peak RSS (MiB) | blaster done writing (s) | notes |"
        )?;
        writeln!(t, "|---:|---|---:|---:|---:|---:|---:|---|")?;
        for o in all.iter().filter(|o| o.scenario == s) {
            writeln!(
                t,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                o.n,
                o.kind.label(),
                o.secs.map_or("—".into(), |v| format!("{v:.3}")),
                o.secs
                    .map_or("—".into(), |v| format!("{:.0}", o.n as f64 / v)),
                o.cpu_secs.map_or("—".into(), |v| format!("{v:.2}")),
                o.rss_kib
                    .map_or("—".into(), |v| format!("{:.1}", v as f64 / 1024.0)),
                o.write_secs.map_or("—".into(), |v| format!("{v:.3}")),
                o.note
            )?;
        }
        writeln!(
            t,
            "\n| prefixes | time manul/BIRD | time manul/GoBGP | CPU manul/BIRD | CPU manul/GoBGP | RSS manul/BIRD | RSS manul/GoBGP |"
        )?;
        writeln!(t, "|---:|---:|---:|---:|---:|---:|---:|")?;
        for &n in &sizes {
            let get = |k| find(all, s, k, n);
            let secs = |k| get(k).and_then(|o| o.secs);
            let rss = |k| get(k).and_then(|o| o.rss_kib).map(|v| v as f64);
            let cpu = |k| get(k).and_then(|o| o.cpu_secs);
            writeln!(
                t,
                "| {n} | {} | {} | {} | {} | {} | {} |",
                fmt_ratio(ratio(secs(Kind::Manul), secs(Kind::Bird))),
                fmt_ratio(ratio(secs(Kind::Manul), secs(Kind::Gobgp))),
                fmt_ratio(ratio(cpu(Kind::Manul), cpu(Kind::Bird))),
                fmt_ratio(ratio(cpu(Kind::Manul), cpu(Kind::Gobgp))),
                fmt_ratio(ratio(rss(Kind::Manul), rss(Kind::Bird))),
                fmt_ratio(ratio(rss(Kind::Manul), rss(Kind::Gobgp))),
            )?;
        }
        writeln!(t)?;
    }

    if let Some(&big) = sizes.last() {
        writeln!(
            t,
            "### Targets (issue): at {big} prefixes, manul ≤ 0.5× BIRD's time and peak RSS ≤ BIRD's\n"
        )?;
        for &s in &scenarios {
            let get = |k| find(all, s, k, big);
            let time = ratio(
                get(Kind::Manul).and_then(|o| o.secs),
                get(Kind::Bird).and_then(|o| o.secs),
            );
            let rss = ratio(
                get(Kind::Manul).and_then(|o| o.rss_kib).map(|v| v as f64),
                get(Kind::Bird).and_then(|o| o.rss_kib).map(|v| v as f64),
            );
            let verdict = |r: Option<f64>, limit: f64| match r {
                Some(r) if r <= limit => "met",
                Some(_) => "NOT met",
                None => "not measured",
            };
            writeln!(
                t,
                "- {}: time {} ({}), peak RSS {} ({})",
                s.label(),
                fmt_ratio(time),
                verdict(time, 0.5),
                fmt_ratio(rss),
                verdict(rss, 1.0)
            )?;
        }
        writeln!(t)?;
    }

    if let Some(out) = codec {
        writeln!(
            t,
            "### Codec micro-benchmarks (`cargo bench -p manul-bgp --bench codec`)\n"
        )?;
        writeln!(t, "```")?;
        for l in codec_lines(out) {
            writeln!(t, "{l}")?;
        }
        writeln!(t, "```\n")?;
    }
    Ok(t)
}

/// The benchmark names and their time/throughput lines of criterion's output.
pub fn codec_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            let s = l.trim_start();
            let name = !l.starts_with(' ') && l.contains('/') && !l.starts_with("Benchmarking");
            // Criterion's comparison with the previous run also starts
            // with time:/thrpt:, in percent; leave it out.
            let measure = (s.starts_with("time:") || s.starts_with("thrpt:")) && !s.contains('%');
            name || measure
        })
        .collect()
}

/// Append `text` to `path`, creating it with a heading if new.
pub fn append(path: &Path, text: &str) -> Result<()> {
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    if new {
        writeln!(
            f,
            "# BGP benchmark results\n\nAppended by `bench/run`; see `bench/README.md` for what each number measures.\n"
        )?;
    }
    writeln!(f, "{text}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn codec_lines_keep_names_and_measures_only() {
        let out = "Benchmarking a/b: Warming up\na/b/c\n   time:   [1 µs 2 µs 3 µs]\n   thrpt:  [1 Melem/s 2 Melem/s 3 Melem/s]\n   change:\n   time:   [-1% +0% +1%] (p = 0.5)\nFound 2 outliers\n";
        assert_eq!(
            super::codec_lines(out),
            [
                "a/b/c",
                "   time:   [1 µs 2 µs 3 µs]",
                "   thrpt:  [1 Melem/s 2 Melem/s 3 Melem/s]"
            ]
        );
    }
}
