//! `sink`: accept one BGP session and count the prefixes it announces.
//!
//! Passive: listens, accepts the first connection, answers its OPEN (any
//! peer AS unless `--peer-as`), then decodes every UPDATE with manul's codec
//! and keeps the set of announced-and-not-withdrawn prefixes. When the set
//! first holds `--expect` prefixes it prints the time; it then exits
//! (`--exit`) or keeps the session up, sending keepalives, until killed.
//!
//! Prints JSON lines on stdout, times on CLOCK_MONOTONIC in seconds:
//! `{"event":"listening","addr":...}`, `{"event":"established","t":...}`,
//! `{"event":"reached","t":...,"count":N,...}`, `{"event":"end_of_rib",...}`.
//!
//! `sink --listen 10.0.2.1:179 --asn 65002 --expect 1000000`

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use manul_bench::clock;
use manul_bench::counter::PrefixSet;
use manul_bench::session::{MessageReader, handshake, keepalive, our_open};
use manul_bgp::types::Family;
use manul_bgp::wire::Message;
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Accept one BGP session and report when it holds N prefixes")]
struct Args {
    /// Address and port to listen on (port 0: any; the `listening` line says which).
    #[arg(long, default_value = "0.0.0.0:179")]
    listen: SocketAddr,
    #[arg(long, default_value_t = 65002)]
    asn: u32,
    /// Check the peer's AS.
    #[arg(long)]
    peer_as: Option<u32>,
    #[arg(long, default_value = "10.255.0.2")]
    router_id: Ipv4Addr,
    /// Families to announce in the OPEN (ipv4, ipv6).
    #[arg(long, value_delimiter = ',', default_value = "ipv4")]
    families: Vec<String>,
    /// Hold time to offer: 0 (no keepalives) or at least 3.
    #[arg(long, default_value_t = 90)]
    hold: u16,
    /// Report when this many prefixes are held.
    #[arg(long)]
    expect: usize,
    /// Exit once `--expect` is reached.
    #[arg(long)]
    exit: bool,
    /// Do not offer RFC 8654 extended messages.
    #[arg(long)]
    no_extended_message: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let families = args
        .families
        .iter()
        .map(|n| match n.as_str() {
            "ipv4" => Ok(Family::Ipv4Unicast),
            "ipv6" => Ok(Family::Ipv6Unicast),
            other => bail!("unknown family {other:?} (ipv4, ipv6)"),
        })
        .collect::<Result<Vec<_>>>()?;
    let listener =
        TcpListener::bind(args.listen).with_context(|| format!("binding {}", args.listen))?;
    println!(
        "{}",
        json!({"event": "listening", "addr": listener.local_addr()?.to_string()})
    );
    let (stream, remote) = listener.accept().context("accepting")?;
    drop(listener);
    stream.set_nodelay(true)?;
    let ours = our_open(
        args.asn,
        args.router_id,
        args.hold,
        &families,
        !args.no_extended_message,
    );
    let mut reader = MessageReader::new(stream.try_clone()?);
    let mut writer = stream.try_clone()?;
    let (negotiated, theirs) = handshake(&mut reader, &mut writer, &ours, args.peer_as)?;
    println!(
        "{}",
        json!({
            "event": "established",
            "t": clock::now(),
            "peer": remote.to_string(),
            "peer_as": theirs.asn,
            "extended_message": negotiated.context.extended_message,
            "hold_time": negotiated.hold_time,
        })
    );
    if negotiated.hold_time > 0 {
        let period = Duration::from_secs(u64::from(negotiated.hold_time / 3).max(1));
        std::thread::spawn(move || send_keepalives(writer, period));
    }

    let ctx = negotiated.context;
    let mut set = PrefixSet::default();
    let mut reached = args.expect == 0;
    loop {
        let Some(bytes) = reader.next_message(&ctx)? else {
            println!(
                "{}",
                json!({"event": "closed", "t": clock::now(), "count": set.len()})
            );
            return Ok(());
        };
        let msg = Message::decode(bytes, &ctx).map_err(|e| anyhow::anyhow!("decoding: {e:?}"))?;
        match msg {
            Message::Update(u) => {
                let had_eor = set.end_of_rib;
                set.apply(&u);
                if !reached && set.len() >= args.expect {
                    reached = true;
                    println!(
                        "{}",
                        json!({"event": "reached", "t": clock::now(), "count": set.len(), "updates": set.updates})
                    );
                    if args.exit {
                        return Ok(());
                    }
                }
                if set.end_of_rib && !had_eor {
                    println!(
                        "{}",
                        json!({"event": "end_of_rib", "t": clock::now(), "count": set.len()})
                    );
                }
            }
            Message::Notification(n) => {
                println!(
                    "{}",
                    json!({"event": "notification", "t": clock::now(), "code": n.code, "subcode": n.subcode})
                );
                std::process::exit(2);
            }
            _ => {}
        }
    }
}

fn send_keepalives(mut writer: TcpStream, period: Duration) {
    let ka = keepalive();
    loop {
        std::thread::sleep(period);
        if writer.write_all(&ka).is_err() {
            return;
        }
    }
}
