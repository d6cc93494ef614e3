//! Services with the eBPF dataplane: kube-proxy (iptables mode) rewrites a
//! pod's connection to a Service IP into one to a backend pod, and the
//! kernel's conntrack rewrites the replies back. The programs' fast path
//! must not carry those replies past conntrack.
//!
//! Two hosts (pods A and B on host1, C on host2), the programs attached on
//! both, and on host1 the NAT rules kube-proxy's iptables mode writes for
//! four ClusterIP Services: one backed by C (another host) and one by B
//! (this host), in IPv4 and IPv6. A connects to each Service IP and
//! exchanges data; the backend sees A's own address (no SNAT). The same
//! flows are shown to work before the programs are attached (the rules are
//! right), and plain pod-to-pod traffic still takes the fast path, also
//! the acknowledgements of a bulk transfer whose large segments go to
//! the stack.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use manul_tests::{Host, Lab, Need, PinDir, require, try_wait_until};
use pods::Pod;
use pods::hosts::{TwoHosts, WAIT, counters, dataplane, two_hosts};

mod pods;

/// A Service: its cluster IP and port, and the backend pod and port.
struct Service {
    name: &'static str,
    ip: IpAddr,
    port: u16,
    backend: IpAddr,
    target: u16,
}

/// The nat table kube-proxy's iptables mode writes for `services` (one
/// endpoint each), in `iptables-restore` form: KUBE-SERVICES from
/// PREROUTING and OUTPUT, a KUBE-SVC chain per Service jumping to a
/// KUBE-SEP chain per endpoint that DNATs (and marks hairpin traffic for
/// masquerade), and KUBE-POSTROUTING masquerading what was marked.
fn kube_proxy_rules(services: &[&Service]) -> String {
    let mut chains = String::from(
        ":KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n",
    );
    let mut rules = String::from(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    for (i, s) in services.iter().enumerate() {
        let (svc, sep) = (format!("KUBE-SVC-{i:016}"), format!("KUBE-SEP-{i:016}"));
        let host_len = if s.ip.is_ipv4() { 32 } else { 128 };
        let target = match s.backend {
            IpAddr::V4(a) => format!("{a}:{}", s.target),
            IpAddr::V6(a) => format!("[{a}]:{}", s.target),
        };
        chains += &format!(":{svc} - [0:0]\n:{sep} - [0:0]\n");
        rules += &format!(
            "-A KUBE-SERVICES -d {}/{host_len} -p tcp -m comment --comment \"default/{}:http cluster IP\" -m tcp --dport {} -j {svc}\n\
             -A {svc} -m comment --comment \"default/{}:http -> {target}\" -j {sep}\n\
             -A {sep} -s {}/{host_len} -m comment --comment \"default/{}:http\" -j KUBE-MARK-MASQ\n\
             -A {sep} -p tcp -m comment --comment \"default/{}:http\" -m tcp -j DNAT --to-destination {target}\n",
            s.ip, s.name, s.port, s.name, s.backend, s.name, s.name,
        );
    }
    format!("*nat\n{chains}{rules}COMMIT\n")
}

/// Install `services` on `host` as kube-proxy would (both families).
fn install_services(host: &Host, services: &[Service]) {
    for (restore, v4) in [("iptables-restore", true), ("ip6tables-restore", false)] {
        let mine: Vec<&Service> = services.iter().filter(|s| s.ip.is_ipv4() == v4).collect();
        let rules = kube_proxy_rules(&mine);
        let mut child = host
            .ns
            .command(restore)
            .arg("-w")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(rules.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "{restore}:\n{rules}");
    }
}

/// `from` connects to `service` and exchanges a few messages with the
/// backend pod `to`; the backend must see `from`'s own address.
fn through_service(from: &Pod, to: &Pod, service: &Service) -> Result<(), String> {
    let listener = to
        .ns
        .run(|| TcpListener::bind(SocketAddr::new(service.backend, service.target)))
        .map_err(|e| format!("bind: {e}"))?;
    let server = std::thread::spawn(move || -> Result<IpAddr, String> {
        listener.set_nonblocking(false).map_err(|e| e.to_string())?;
        let (mut s, peer) = listener.accept().map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        for _ in 0..3 {
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf)
                .map_err(|e| format!("server read: {e}"))?;
            s.write_all(&buf)
                .map_err(|e| format!("server write: {e}"))?;
        }
        Ok(peer.ip())
    });
    let to_service = SocketAddr::new(service.ip, service.port);
    let exchange = from.ns.run(|| -> Result<(), String> {
        let mut c = TcpStream::connect_timeout(&to_service, Duration::from_secs(3))
            .map_err(|e| format!("connect {to_service}: {e}"))?;
        c.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        for msg in [b"one..", b"two..", b"three"] {
            c.write_all(msg).map_err(|e| format!("write: {e}"))?;
            let mut buf = [0u8; 5];
            c.read_exact(&mut buf)
                .map_err(|e| format!("read from {to_service}: {e}"))?;
            if &buf != msg {
                return Err(format!("{to_service} answered {buf:?}"));
            }
        }
        Ok(())
    });
    if let Err(e) = exchange {
        // Unblock the server's accept.
        let _ = to
            .ns
            .run(|| TcpStream::connect(SocketAddr::new(service.backend, service.target)));
        let _ = server.join();
        return Err(format!("{}: {e}", service.name));
    }
    let seen = server.join().map_err(|_| "server panicked".to_string())??;
    let own = if service.ip.is_ipv4() {
        IpAddr::V4(from.v4)
    } else {
        IpAddr::V6(from.v6)
    };
    if seen != own {
        return Err(format!(
            "{}: the backend saw {seen}, not the client {own}",
            service.name
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_of_service_connections_go_back_through_conntrack() {
    require!(
        Need::Root,
        Need::Bin("ip"),
        Need::Bin("iptables-restore"),
        Need::Bin("ip6tables-restore")
    );
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
    let services = [
        Service {
            name: "remote-v4",
            ip: "10.96.0.10".parse().unwrap(),
            port: 80,
            backend: IpAddr::V4(c.v4),
            target: 8080,
        },
        Service {
            name: "local-v4",
            ip: "10.96.0.11".parse().unwrap(),
            port: 80,
            backend: IpAddr::V4(b.v4),
            target: 8081,
        },
        Service {
            name: "remote-v6",
            ip: "fd00:96::10".parse().unwrap(),
            port: 80,
            backend: IpAddr::V6(c.v6),
            target: 8082,
        },
        Service {
            name: "local-v6",
            ip: "fd00:96::11".parse().unwrap(),
            port: 80,
            backend: IpAddr::V6(b.v6),
            target: 8083,
        },
    ];
    install_services(h1, &services);
    let backend = |s: &Service| {
        if s.backend == IpAddr::V4(c.v4) || s.backend == IpAddr::V6(c.v6) {
            &c
        } else {
            &b
        }
    };

    // The kernel alone: the rules are right (once neighbours and IPv6
    // router state have settled).
    for s in &services {
        try_wait_until(WAIT, &format!("{} without the programs", s.name), || {
            through_service(&a, backend(s), s)
        })
        .unwrap();
    }

    let pins1 = PinDir::new("svc1").unwrap();
    let pins2 = PinDir::new("svc2").unwrap();
    let dp1 = dataplane(h1, &pins1, &in1, &[&a, &b]);
    let dp2 = dataplane(h2, &pins2, &in2, &[&c]);

    // With the programs: every Service, several times (new connections).
    for round in 0..3 {
        for s in &services {
            through_service(&a, backend(s), s)
                .unwrap_or_else(|e| panic!("round {round} with the programs: {e}"));
        }
    }
    // Plain pod-to-pod traffic still takes the fast path: C's replies to
    // A's direct connection are delivered by host1's uplink program.
    let before = counters(&dp1, h1, &a).delivered_packets;
    let direct = Service {
        name: "direct-v4",
        ip: IpAddr::V4(c.v4),
        port: 9090,
        backend: IpAddr::V4(c.v4),
        target: 9090,
    };
    through_service(&a, &c, &direct).unwrap();
    let after = counters(&dp1, h1, &a).delivered_packets;
    assert!(
        after >= before + 4,
        "direct replies from C were not delivered by the program: {before} -> {after}"
    );

    // A bulk transfer from A to C: its large segments go to the stack
    // (they do not fit the fast path), but C's acknowledgements keep
    // coming through host1's uplink program (A's end is not recorded:
    // C is a workload, nothing rewrites it).
    let before = counters(&dp1, h1, &a).delivered_packets;
    let listener =
        c.ns.run(|| TcpListener::bind(SocketAddr::new(IpAddr::V4(c.v4), 9091)))
            .unwrap();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut total = 0usize;
        let mut buf = vec![0u8; 65536];
        loop {
            match s.read(&mut buf).unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    });
    a.ns.run(|| {
        let mut s = TcpStream::connect(SocketAddr::new(IpAddr::V4(c.v4), 9091)).unwrap();
        let chunk = vec![7u8; 65536];
        for _ in 0..128 {
            s.write_all(&chunk).unwrap();
        }
    });
    assert_eq!(sink.join().unwrap(), 128 * 65536);
    let after = counters(&dp1, h1, &a).delivered_packets;
    assert!(
        after >= before + 20,
        "C's acknowledgements of a bulk transfer left the fast path: {before} -> {after}"
    );
    drop((dp1, dp2));
}
