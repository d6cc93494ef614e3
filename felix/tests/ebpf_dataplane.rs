//! The eBPF dataplane forwarding real traffic between namespaces the test
//! creates: two hosts on one segment, pods A and B on host1 and C on host2
//! (Calico-style: /32 and /128 on the pod's eth0, a link-local gateway, the
//! host's routes written by felix's reconciler, maps by felix's dataplane).
//!
//! With the programs attached: ping and TCP both ways, same host and cross
//! host, IPv4 and IPv6, and the forwarded counters move (and, with the
//! uplink program on each host's eth0, the delivered counters); packets A sends
//! with B's addresses never reach B or C (raw socket for IPv4, a freebind
//! socket for IPv6) while A's real packets do, and A's spoof counter counts
//! them. Before attaching, the same forged packet does arrive (the kernel's
//! rp_filter is off on the workload interfaces here, so the drop is the
//! program's). After detaching, plain kernel forwarding carries on.
//!
//! Pings every 10 ms (same host IPv4, cross host IPv4 and IPv6) lose
//! nothing while the programs are detached and attached again.

use std::io::{Read, Write};
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket,
};
use std::time::{Duration, Instant};

use manul_tests::{Lab, Need, PinDir, require, try_wait_until};
use pods::Pod;
use pods::hosts::{TwoHosts, WAIT, counters, dataplane, two_hosts};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

mod pods;

fn ping_all(from: &Pod, to: &Pod) {
    for ip in to.ips() {
        from.ns
            .ping(ip, 3)
            .unwrap_or_else(|e| panic!("ping {ip} from {}: {e}", from.v4));
    }
}

/// An echo over TCP from `from` to `to` on both families.
fn tcp_all(from: &Pod, to: &Pod, port: u16) {
    for ip in to.ips() {
        let listener = to
            .ns
            .run(|| TcpListener::bind(SocketAddr::new(ip, port)))
            .unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let mut client = from
            .ns
            .run(|| TcpStream::connect_timeout(&SocketAddr::new(ip, port), Duration::from_secs(5)))
            .unwrap_or_else(|e| panic!("tcp to {ip}: {e}"));
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client.write_all(b"hello").unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        server.join().unwrap();
    }
}

/// A UDP socket on port 9999 (both families) in `pod`.
fn receiver(pod: &Pod) -> UdpSocket {
    let s = pod
        .ns
        .run(|| UdpSocket::bind("[::]:9999"))
        .expect("bind [::]:9999");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    s
}

/// Payloads `sock` receives until `want` have all arrived and then `grace`
/// has passed, or `WAIT` is over.
fn collect(sock: &UdpSocket, want: &[&str], grace: Duration) -> Vec<String> {
    let start = Instant::now();
    let mut got: Vec<String> = Vec::new();
    let mut done_at: Option<Instant> = None;
    while start.elapsed() < WAIT {
        let mut buf = [0u8; 64];
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        if done_at.is_none() && want.iter().all(|w| got.iter().any(|g| g == w)) {
            done_at = Some(Instant::now());
        }
        if done_at.is_some_and(|t| t.elapsed() >= grace) {
            break;
        }
    }
    got
}

/// An IPv4/UDP packet from `src` to `dst`:9999 sent through a raw socket
/// in `pod` (the kernel fills in the header checksum and length).
fn send_forged_v4(pod: &Pod, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
    let udp_len = 8 + payload.len();
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&40000u16.to_be_bytes());
    p.extend_from_slice(&9999u16.to_be_bytes());
    p.extend_from_slice(&(udp_len as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
    p.extend_from_slice(payload);
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    pod.ns.run(|| {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .unwrap();
        s.send_to(&p, &SockAddr::from(SocketAddrV4::new(dst, 0)))
            .unwrap();
    });
}

/// An IPv6/UDP datagram from `src` (not `pod`'s: bound with IPV6_FREEBIND).
fn send_forged_v6(pod: &Pod, src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) {
    pod.ns.run(|| {
        let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
        s.set_freebind_v6(true).unwrap();
        s.bind(&SockAddr::from(SocketAddr::new(IpAddr::V6(src), 0)))
            .unwrap();
        s.send_to(
            payload,
            &SockAddr::from(SocketAddr::new(IpAddr::V6(dst), 9999)),
        )
        .unwrap();
    });
}

fn send_real(pod: &Pod, dst: IpAddr, payload: &[u8]) {
    pod.ns.run(|| {
        let bind = if dst.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let s = UdpSocket::bind(bind).unwrap();
        s.send_to(payload, SocketAddr::new(dst, 9999)).unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_talk_through_the_programs_and_forged_sources_are_dropped() {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("ping"));
    let lab = Lab::builder().hosts(2).build().unwrap();
    let (h1, h2) = (lab.host(1), lab.host(2));
    let TwoHosts {
        a,
        b,
        c,
        in1,
        in2,
        routes: _routes,
    } = two_hosts(h1, h2).await;
    // The reconciler turns on strict rp_filter (Calico's setting); off
    // here, so that dropping forged packets is shown to be the program's.
    for (h, p) in [(h1, &a), (h1, &b), (h2, &c)] {
        h.ns.sysctl(&format!("net.ipv4.conf.{}.rp_filter", p.host_if), "0")
            .unwrap();
    }

    // Plain kernel forwarding first: it works (once neighbours and
    // IPv6 router state have settled), and it lets a forged packet by.
    for (from, to) in [(&a, &b), (&a, &c), (&c, &b)] {
        for ip in to.ips() {
            try_wait_until(WAIT, &format!("ping {ip}"), || {
                from.ns.ping(ip, 1).map_err(|e| e.to_string())
            })
            .unwrap();
        }
    }
    let rc = receiver(&c);
    send_forged_v4(&a, b.v4, c.v4, b"control");
    let got = collect(&rc, &["control"], Duration::ZERO);
    assert!(
        got.iter().any(|g| g == "control"),
        "without the programs a forged packet arrives (else this test proves nothing): {got:?}"
    );

    let pins1 = PinDir::new("dp1").unwrap();
    let pins2 = PinDir::new("dp2").unwrap();
    let mut dp1 = dataplane(h1, &pins1, &in1, &[&a, &b]);
    let mut dp2 = dataplane(h2, &pins2, &in2, &[&c]);

    // Same host and cross host, both directions, both families.
    ping_all(&a, &b);
    ping_all(&b, &a);
    ping_all(&a, &c);
    ping_all(&c, &a);
    tcp_all(&a, &b, 7001);
    tcp_all(&a, &c, 7002);
    tcp_all(&c, &b, 7003);
    let (ca, cb, cc) = (
        counters(&dp1, h1, &a),
        counters(&dp1, h1, &b),
        counters(&dp2, h2, &c),
    );
    eprintln!("counters A {ca:?}\n         B {cb:?}\n         C {cc:?}");
    // A: 6 pings x 2 families to B and C, 2 TCP sessions x 2 families.
    assert!(ca.forwarded_packets >= 24, "A forwarded: {ca:?}");
    assert!(cb.forwarded_packets >= 12, "B forwarded (replies): {cb:?}");
    assert!(cc.forwarded_packets >= 12, "C forwarded (replies): {cc:?}");
    assert!(ca.forwarded_bytes > ca.forwarded_packets * 28);
    // The uplink program delivered C's packets into A, and A's into C.
    assert!(ca.delivered_packets >= 6, "delivered into A: {ca:?}");
    assert!(cc.delivered_packets >= 12, "delivered into C: {cc:?}");
    assert_eq!(
        ca.spoofed_packets + cb.spoofed_packets + cc.spoofed_packets,
        0
    );

    // A forges B's addresses towards B and C; its real packets follow.
    let rb = receiver(&b);
    let spoofed_before = ca.spoofed_packets;
    for to in [&b, &c] {
        send_forged_v4(&a, b.v4, to.v4, b"forged-v4");
        send_forged_v6(&a, b.v6, to.v6, b"forged-v6");
        send_real(&a, IpAddr::V4(to.v4), b"real-v4");
        send_real(&a, IpAddr::V6(to.v6), b"real-v6");
    }
    let grace = Duration::from_millis(500);
    for (name, sock) in [("B", &rb), ("C", &rc)] {
        let got = collect(sock, &["real-v4", "real-v6"], grace);
        assert!(
            got.iter().any(|g| g == "real-v4") && got.iter().any(|g| g == "real-v6"),
            "{name} receives A's real packets: {got:?}"
        );
        assert!(
            !got.iter().any(|g| g.starts_with("forged")),
            "{name} never receives a forged packet: {got:?}"
        );
    }
    let ca = counters(&dp1, h1, &a);
    assert_eq!(
        ca.spoofed_packets - spoofed_before,
        4,
        "two forged packets per family were dropped and counted: {ca:?}"
    );

    // Detached: plain kernel forwarding, the counters stand still.
    for p in [&a, &b] {
        assert!(dp1.detach(&p.host_if).unwrap());
    }
    assert!(dp2.detach(&c.host_if).unwrap());
    assert!(dp1.detach(&h1.iface).unwrap());
    assert!(dp2.detach(&h2.iface).unwrap());
    let before = counters(&dp1, h1, &a);
    ping_all(&a, &b);
    ping_all(&a, &c);
    tcp_all(&c, &a, 7004);
    assert_eq!(
        counters(&dp1, h1, &a),
        before,
        "no program runs after detach"
    );
}

/// `ping -i 0.01 -c <count>` from `from` to `to`, started now.
fn start_ping(from: &Pod, to: IpAddr, count: u32) -> std::process::Child {
    from.ns
        .command("ping")
        .args([
            "-n",
            "-q",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
        ])
        .arg(to.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ping")
}

/// (transmitted, received) from a finished ping's summary.
fn ping_result(child: std::process::Child) -> (u32, u32, String) {
    let out = child.wait_with_output().expect("ping output");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or_else(|| panic!("no summary: {text}"));
    let num = |word: &str| -> u32 {
        let words: Vec<&str> = line.split([',', ' ']).filter(|w| !w.is_empty()).collect();
        let i = words.iter().position(|w| *w == word).expect(word);
        words[i - 1].parse().unwrap()
    };
    (num("packets"), num("received"), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_every_10ms_lose_nothing_across_a_detach_and_a_reattach() {
    require!(Need::Root, Need::Bin("ip"), Need::Bin("ping"));
    let lab = Lab::builder().hosts(2).build().unwrap();
    let (h1, h2) = (lab.host(1), lab.host(2));
    let TwoHosts {
        a,
        b,
        c,
        in1,
        in2,
        routes: _routes,
    } = two_hosts(h1, h2).await;
    let pins1 = PinDir::new("nl1").unwrap();
    let pins2 = PinDir::new("nl2").unwrap();
    let mut dp1 = dataplane(h1, &pins1, &in1, &[&a, &b]);
    let mut dp2 = dataplane(h2, &pins2, &in2, &[&c]);
    let flows: [(&Pod, IpAddr); 3] = [
        (&a, IpAddr::V4(b.v4)),
        (&a, IpAddr::V4(c.v4)),
        (&c, IpAddr::V6(b.v6)),
    ];
    // Neighbours and IPv6 router state settled first.
    for (from, to) in flows {
        try_wait_until(WAIT, &format!("ping {to}"), || {
            from.ns.ping(to, 1).map_err(|e| e.to_string())
        })
        .unwrap();
    }
    let before = counters(&dp1, h1, &a).forwarded_packets;
    let pings: Vec<_> = flows.iter().map(|(f, t)| start_ping(f, *t, 300)).collect();
    // 3 s of pings: the programs carry the first second, the kernel the
    // next, the programs again the last.
    std::thread::sleep(Duration::from_secs(1));
    for p in [&a, &b] {
        assert!(dp1.detach(&p.host_if).unwrap());
    }
    assert!(dp1.detach(&h1.iface).unwrap());
    assert!(dp2.detach(&c.host_if).unwrap());
    assert!(dp2.detach(&h2.iface).unwrap());
    let mid = counters(&dp1, h1, &a).forwarded_packets;
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        counters(&dp1, h1, &a).forwarded_packets,
        mid,
        "detached: the kernel forwards"
    );
    for p in [&a, &b] {
        dp1.attach(&p.host_if).unwrap();
    }
    dp2.attach(&c.host_if).unwrap();
    for (i, child) in pings.into_iter().enumerate() {
        let (sent, got, text) = ping_result(child);
        assert_eq!((sent, got), (300, 300), "flow {i} lost packets: {text}");
    }
    let after = counters(&dp1, h1, &a).forwarded_packets;
    assert!(
        mid - before >= 100,
        "the programs forwarded before the detach"
    );
    assert!(after - mid >= 100, "and again after the re-attach");
}
