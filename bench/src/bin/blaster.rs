//! `blaster`: open one BGP session and push a full table through it as fast
//! as the socket takes it.
//!
//! The table (N prefixes sharing ORIGIN IGP, AS_PATH [local AS] and
//! NEXT_HOP = our address) is encoded before the OPEN is sent, for both
//! message sizes (4096 and, with RFC 8654, 65535 octets), so sending is one
//! `write_all` of a ready buffer and the blaster is never the bottleneck.
//! After the table and End-of-RIB it keeps the session up (keepalives every
//! hold/3) until killed.
//!
//! Prints JSON lines on stdout, times on CLOCK_MONOTONIC in seconds:
//! `{"event":"established","t":...}`, then
//! `{"event":"sent","established_at":...,"last_byte_written_at":...,...}`.
//!
//! `blaster --peer 10.0.1.2 --local-as 65001 --count 1000000`

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use manul_bench::clock;
use manul_bench::prefixes::generate;
use manul_bench::session::{MessageReader, handshake, keepalive, our_open};
use manul_bench::updates::{Table, encode_table};
use manul_bgp::types::Family;
use manul_bgp::wire::{Context, Message};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(about = "Blast a pre-encoded BGP table at a peer")]
struct Args {
    /// The peer's address.
    #[arg(long)]
    peer: IpAddr,
    #[arg(long, default_value_t = 179)]
    port: u16,
    #[arg(long, default_value_t = 65001)]
    local_as: u32,
    /// Check the peer's AS.
    #[arg(long)]
    peer_as: Option<u32>,
    #[arg(long, default_value = "10.255.0.1")]
    router_id: Ipv4Addr,
    /// Families to announce in the OPEN (ipv4, ipv6); default: the family of --start.
    #[arg(long, value_delimiter = ',')]
    families: Vec<String>,
    /// Hold time to offer: 0 (no keepalives) or at least 3.
    #[arg(long, default_value_t = 90)]
    hold: u16,
    /// Number of prefixes.
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    /// First prefix address; the family of the table.
    #[arg(long, default_value = "11.0.0.0")]
    start: IpAddr,
    #[arg(long, default_value_t = 24)]
    prefix_len: u8,
    /// Next hop; default: our address on the connection.
    #[arg(long)]
    next_hop: Option<IpAddr>,
    /// Do not offer RFC 8654 extended messages.
    #[arg(long)]
    no_extended_message: bool,
    /// Keep trying to connect this long (the peer may still be starting).
    #[arg(long, default_value_t = 30)]
    connect_timeout: u64,
    /// Exit once the table is written instead of keeping the session up.
    #[arg(long)]
    exit_after_send: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let family = match args.start {
        IpAddr::V4(_) => Family::Ipv4Unicast,
        IpAddr::V6(_) => Family::Ipv6Unicast,
    };
    let families = parse_families(&args.families, family)?;
    let prefixes = generate(args.start, args.prefix_len, args.count)?;

    let stream = connect(
        SocketAddr::new(args.peer, args.port),
        Duration::from_secs(args.connect_timeout),
    )?;
    stream.set_nodelay(true)?;
    let next_hop = match args.next_hop {
        Some(nh) => nh,
        None => stream.local_addr()?.ip(),
    };

    let encode_start = Instant::now();
    let base = Context {
        four_octet_as: true,
        ..Context::default()
    };
    let extended = Context {
        extended_message: true,
        ..base.clone()
    };
    let mut tables: Vec<(Context, Table)> = Vec::new();
    for ctx in [base, extended] {
        if ctx.extended_message && args.no_extended_message {
            continue;
        }
        let t = encode_table(&ctx, family, args.local_as, next_hop, &prefixes)?;
        tables.push((ctx, t));
    }
    let encode_secs = encode_start.elapsed().as_secs_f64();
    drop(prefixes);

    let ours = our_open(
        args.local_as,
        args.router_id,
        args.hold,
        &families,
        !args.no_extended_message,
    );
    let mut reader = MessageReader::new(stream.try_clone()?);
    let mut writer = stream.try_clone()?;
    let (negotiated, _theirs) = handshake(&mut reader, &mut writer, &ours, args.peer_as)?;
    let established_at = clock::now();
    let ctx = negotiated.context.clone();
    println!(
        "{}",
        json!({
            "event": "established",
            "t": established_at,
            "extended_message": ctx.extended_message,
            "four_octet_as": ctx.four_octet_as,
            "hold_time": negotiated.hold_time,
        })
    );
    // Drain whatever the peer sends so it never blocks on us; a
    // NOTIFICATION or a closed connection ends the process.
    let drain_ctx = ctx.clone();
    std::thread::spawn(move || drain(reader, &drain_ctx));

    // An unexpected context (no 4-octet AS, ADD-PATH...) is encoded now,
    // inside the timed window, and the output says so.
    let encoded_in_window = !tables.iter().any(|(c, _)| *c == ctx);
    if encoded_in_window {
        let prefixes = generate(args.start, args.prefix_len, args.count)?;
        let t = encode_table(&ctx, family, args.local_as, next_hop, &prefixes)?;
        tables.push((ctx.clone(), t));
    }
    let (_, table) = tables
        .iter()
        .find(|(c, _)| *c == ctx)
        .expect("just encoded");
    writer
        .write_all(&table.bytes)
        .context("writing the table")?;
    let last_byte_written_at = clock::now();
    println!(
        "{}",
        json!({
            "event": "sent",
            "established_at": established_at,
            "last_byte_written_at": last_byte_written_at,
            "prefixes": table.prefixes,
            "messages": table.messages,
            "bytes": table.bytes.len(),
            "encode_secs": encode_secs,
            "encoded_in_window": encoded_in_window,
        })
    );
    if args.exit_after_send {
        // Our own shutdown (or the peer closing now) is the expected end:
        // the drain thread must not turn it into a failure exit.
        SENT_AND_LEAVING.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        return Ok(());
    }
    keep_alive(&mut writer, negotiated.hold_time)
}

fn parse_families(names: &[String], default: Family) -> Result<Vec<Family>> {
    if names.is_empty() {
        return Ok(vec![default]);
    }
    names
        .iter()
        .map(|n| match n.as_str() {
            "ipv4" => Ok(Family::Ipv4Unicast),
            "ipv6" => Ok(Family::Ipv6Unicast),
            other => bail!("unknown family {other:?} (ipv4, ipv6)"),
        })
        .collect()
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => return Ok(s),
            Err(e) if Instant::now() >= deadline => {
                return Err(e).with_context(|| format!("connecting to {addr}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Set once the table is sent and the process is about to exit by itself.
static SENT_AND_LEAVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn drain(mut reader: MessageReader<TcpStream>, ctx: &Context) {
    let leaving = || SENT_AND_LEAVING.load(std::sync::atomic::Ordering::SeqCst);
    loop {
        match reader.next_message(ctx) {
            Ok(Some(bytes)) => {
                if let Ok(Message::Notification(n)) = Message::decode(bytes, ctx) {
                    println!(
                        "{}",
                        json!({"event": "notification", "t": clock::now(), "code": n.code, "subcode": n.subcode})
                    );
                    std::process::exit(2);
                }
            }
            Ok(None) if leaving() => return,
            Ok(None) => {
                println!("{}", json!({"event": "closed", "t": clock::now()}));
                std::process::exit(2);
            }
            Err(_) if leaving() => return,
            Err(e) => {
                println!(
                    "{}",
                    json!({"event": "error", "t": clock::now(), "error": format!("{e:#}")})
                );
                std::process::exit(2);
            }
        }
    }
}

fn keep_alive(writer: &mut TcpStream, hold_time: u16) -> Result<()> {
    let ka = keepalive();
    loop {
        if hold_time == 0 {
            std::thread::park();
            continue;
        }
        std::thread::sleep(Duration::from_secs(u64::from(hold_time / 3).max(1)));
        writer.write_all(&ka).context("sending KEEPALIVE")?;
    }
}
