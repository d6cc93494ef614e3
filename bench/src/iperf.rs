//! iperf3 between two namespaces, as the throughput benchmarks run it:
//! one TCP stream, the receiver's rate from iperf3's JSON.

use std::net::Ipv4Addr;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use manul_tests::Netns;

/// The number after `marker` in `text` (JSON or iperf3/nft text).
pub fn number_after(text: &str, marker: &str) -> Option<f64> {
    let i = text.find(marker)? + marker.len();
    let rest = text[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '+' || c == '-'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One iperf3 run from `client` to `server` at `addr`: Gbit/s received.
pub fn iperf(server: &Netns, client: &Netns, addr: Ipv4Addr, secs: u32) -> Result<f64> {
    let addr = addr.to_string();
    let mut srv = server
        .command("iperf3")
        .args(["-s", "-1", "-B", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 (apt-get install iperf3)")?;
    let mut last = None;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(200));
        match client.exec("iperf3", &["-c", &addr, "-t", &secs.to_string(), "-J"]) {
            Ok(out) => {
                last = Some(out);
                break;
            }
            Err(e) if e.to_string().contains("refused") => continue,
            Err(e) => {
                let _ = srv.kill();
                let _ = srv.wait();
                return Err(e);
            }
        }
    }
    let _ = srv.kill();
    let _ = srv.wait();
    let out = last.ok_or_else(|| anyhow!("iperf3 server on {addr} never answered"))?;
    let received = &out[out
        .find("\"sum_received\"")
        .ok_or_else(|| anyhow!("no sum_received in iperf3 output"))?..];
    Ok(number_after(received, "\"bits_per_second\":").ok_or_else(|| anyhow!("no rate"))? / 1e9)
}
