//! `manul-bgpd`: the speaker as a standalone daemon, driven by a TOML file.
//! Used by interop tests and benchmarks; the node agent embeds the speaker.
//!
//! `manul-bgpd --check CONFIG.toml` validates a configuration and prints a
//! summary of it.

mod config;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, path) = match &args[..] {
        [flag, path] if flag == "--check" => (true, path),
        [path] => (false, path),
        _ => bail!("usage: manul-bgpd [--check] CONFIG.toml"),
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let config = config::parse(&text, path)?;
    if !check {
        bail!("running the speaker is not available yet; use --check to validate {path}");
    }
    print_summary(&config);
    Ok(())
}

fn print_summary(c: &config::Config) {
    let s = &c.speaker;
    println!("router id {} AS {}", s.router_id, s.asn);
    for l in &s.listen {
        println!("listen {l}");
    }
    if let Some(id) = s.cluster_id {
        println!("route reflector, cluster id {id}");
    }
    for p in &c.peers {
        println!("peer {} port {} AS {}", p.address, p.port, p.asn);
    }
    for r in &s.listen_ranges {
        println!("listen range {}", r.range);
    }
    for p in &c.prefixes {
        println!("originate {}", p.prefix);
    }
    if let Some(status) = &c.status {
        println!("status socket {}", status.display());
    }
}
