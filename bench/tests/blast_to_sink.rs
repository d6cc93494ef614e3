//! The blaster's table arrives whole at the sink: a correctness check of
//! both tools on loopback (no namespaces, no timing assertions).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn the_sink_counts_every_prefix_the_blaster_sends() -> anyhow::Result<()> {
    let mut sink = Command::new(env!("CARGO_BIN_EXE_sink"))
        .args(["--listen", "127.0.0.1:0", "--expect", "20000", "--exit"])
        .args(["--peer-as", "65001", "--hold", "0"])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(sink.stdout.take().expect("piped")).lines();
    let listening: Value = serde_json::from_str(&lines.next().expect("a line")?)?;
    let addr: std::net::SocketAddr = listening["addr"].as_str().expect("addr").parse()?;

    let blaster = Command::new(env!("CARGO_BIN_EXE_blaster"))
        .args(["--peer", "127.0.0.1", "--port", &addr.port().to_string()])
        .args([
            "--local-as",
            "65001",
            "--count",
            "20000",
            "--prefix-len",
            "32",
        ])
        .args(["--exit-after-send", "--connect-timeout", "10"])
        .output()?;
    assert!(blaster.status.success(), "{blaster:?}");
    let out = String::from_utf8(blaster.stdout)?;
    let sent: Value = serde_json::from_str(out.lines().last().expect("a line"))?;
    assert_eq!(sent["event"], "sent");
    assert_eq!(sent["prefixes"], 20000);
    // Extended messages were negotiated: 20000 /32s fit in two UPDATEs.
    assert_eq!(sent["messages"], 2);

    let events: Vec<Value> = lines
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("JSON"))
        .collect();
    assert!(sink.wait()?.success());
    let reached = events
        .iter()
        .find(|e| e["event"] == "reached")
        .expect("reached");
    assert_eq!(reached["count"], 20000);
    Ok(())
}
