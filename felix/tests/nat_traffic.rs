//! NAT outgoing with real traffic, through [`Felix`] as the agent runs it,
//! with kernel routes only and with the eBPF dataplane (TC programs on the
//! pods' interfaces and the uplink). A host namespace with two pods and an
//! external host on its uplink's segment; the external host knows only
//! that segment (no route to the pods), so a pod reaches it only when its
//! packets leave with the host's address.
//!
//! - natOutgoing on: pod A reaches the external host over IPv4 and IPv6
//!   TCP, and the external host sees the host's address as the peer;
//! - pod A → pod B, whose address is outside every pool (its pool was
//!   deleted), is masqueraded too, as Calico's rule says (destination
//!   outside every pool) — with eBPF on, the programs must leave such a
//!   packet to the stack instead of redirecting it into B themselves;
//! - natOutgoing off: the external host is out of reach, the pod still
//!   reaches the host.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ipnet::IpNet;
use manul_felix::desired::{Encap, Pool};
use manul_felix::ebpf::{DataplaneConfig, DriverConfig, Hosts};
use manul_felix::{Felix, FelixConfig, Inputs, ReconcilerConfig};
use manul_tests::{Need, Netns, PinDir, require};
use pods::{Pod, pod};

mod pods;

const HOST_V4: &str = "192.168.1.1";
const EXT_V4: &str = "192.168.1.2";
const HOST_V6: &str = "fd00:88::1";
const EXT_V6: &str = "fd00:88::2";

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// The host and the external host, joined by a veth pair (the uplink).
fn hosts() -> (Netns, Netns) {
    let host = Netns::new("nat-host").unwrap();
    let ext = Netns::new("nat-ext").unwrap();
    for ns in [&host, &ext] {
        ns.sysctl("net.ipv6.conf.all.accept_dad", "0").unwrap();
        ns.sysctl("net.ipv6.conf.default.accept_dad", "0").unwrap();
    }
    host.sysctl("net.ipv4.ip_forward", "1").unwrap();
    host.sysctl("net.ipv6.conf.all.forwarding", "1").unwrap();
    host.veth("eth0", &ext, "eth0").unwrap();
    host.add_addr("eth0", &format!("{HOST_V4}/24")).unwrap();
    host.add_addr("eth0", &format!("{HOST_V6}/64")).unwrap();
    ext.add_addr("eth0", &format!("{EXT_V4}/24")).unwrap();
    ext.add_addr("eth0", &format!("{EXT_V6}/64")).unwrap();
    (host, ext)
}

fn inputs(pods: &[&Pod], nat_outgoing: bool) -> Inputs {
    Inputs {
        local_blocks: vec![net("10.65.0.0/26")],
        workloads: pods.iter().map(|p| p.workload()).collect(),
        // Pod B's 10.99.0.5 and fd00:99::5 are in no pool.
        pools: [("v4", "10.65.0.0/16"), ("v6", "fd00:65::/48")]
            .into_iter()
            .map(|(name, cidr)| Pool {
                name: name.into(),
                cidr: net(cidr),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing,
            })
            .collect(),
        local_subnets: vec![net("192.168.1.0/24"), net("fd00:88::/64")],
        ..Inputs::default()
    }
}

/// The peer address `listener_ns` sees when `client_ns` connects to
/// `to:port` over TCP (and a byte goes each way); an error when the
/// connection cannot be made within a second.
fn peer_seen(
    listener_ns: &Netns,
    client_ns: &Netns,
    to: IpAddr,
    port: u16,
) -> Result<IpAddr, String> {
    let listener = listener_ns
        .run(|| TcpListener::bind(SocketAddr::new(to, port)))
        .map_err(|e| e.to_string())?;
    listener.set_nonblocking(false).unwrap();
    let server = std::thread::spawn(move || -> std::io::Result<IpAddr> {
        let (mut s, peer) = listener.accept()?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        s.write_all(&b)?;
        Ok(peer.ip())
    });
    let client = client_ns.run(|| -> std::io::Result<()> {
        let mut s = TcpStream::connect_timeout(&SocketAddr::new(to, port), Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"x")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
        Ok(())
    });
    match client {
        Ok(()) => server
            .join()
            .map_err(|_| "server panicked".to_string())?
            .map_err(|e| e.to_string()),
        Err(e) => {
            // Unblock the accept so the thread ends.
            let _ = listener_ns.run(|| TcpStream::connect(SocketAddr::new(to, port)));
            let _ = server.join();
            Err(format!("connecting to {to}:{port}: {e}"))
        }
    }
}

async fn nat_outgoing(ebpf: bool) {
    let (host, ext) = hosts();
    let a = pod(&host, "pod-a", "cali0000000000a", "10.65.0.2", "fd00:65::2");
    let b = pod(&host, "pod-b", "cali0000000000b", "10.99.0.5", "fd00:99::5");
    let pins = PinDir::new("nat").unwrap();
    let felix = Felix::start(FelixConfig {
        routes: ReconcilerConfig {
            netns: Some(host.path()),
            retry_interval: Duration::from_millis(200),
            ..ReconcilerConfig::default()
        },
        ebpf: ebpf.then(|| DriverConfig {
            dataplane: DataplaneConfig {
                pin_dir: pins.path().to_path_buf(),
                ..DataplaneConfig::default()
            },
            ..DriverConfig::default()
        }),
        ..FelixConfig::default()
    })
    .await
    .unwrap();
    assert_eq!(felix.ebpf_running(), ebpf);
    let program = |nat: bool| {
        felix.set_inputs(
            &inputs(&[&a, &b], nat),
            vec![a.endpoint(), b.endpoint()],
            Hosts {
                local: vec![HOST_V4.parse().unwrap(), HOST_V6.parse().unwrap()],
                remote: vec![],
            },
        )
    };
    let wait = |u| tokio::time::timeout(Duration::from_secs(30), felix.wait(u));
    wait(program(true)).await.unwrap();
    let nat = felix.watch_nat().borrow().clone();
    assert!(nat.in_sync, "{nat:?}");

    let host_v4: IpAddr = HOST_V4.parse().unwrap();
    let host_v6: IpAddr = HOST_V6.parse().unwrap();
    let (ext_v4, ext_v6): (IpAddr, IpAddr) = (EXT_V4.parse().unwrap(), EXT_V6.parse().unwrap());
    let mode = if ebpf { "ebpf" } else { "routes only" };
    let blocking =
        |f: Box<dyn FnOnce() -> Result<IpAddr, String> + Send>| tokio::task::spawn_blocking(f);

    // natOutgoing on: the external host answers, and sees the host.
    let (e, p) = (ext.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || peer_seen(&e, &p, ext_v4, 7001)))
        .await
        .unwrap();
    assert_eq!(seen, Ok(host_v4), "{mode}: pod A -> external host, IPv4");
    let (e, p) = (ext.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || peer_seen(&e, &p, ext_v6, 7002)))
        .await
        .unwrap();
    assert_eq!(seen, Ok(host_v6), "{mode}: pod A -> external host, IPv6");

    // Pod B is outside every pool: masqueraded as well (the source is
    // one of the host's addresses, not pod A's).
    let (bn, p) = (b.ns.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || {
        peer_seen(&bn, &p, "10.99.0.5".parse().unwrap(), 7003)
    }))
    .await
    .unwrap();
    let seen = seen.unwrap_or_else(|e| panic!("{mode}: pod A -> pod B: {e}"));
    assert_ne!(
        seen,
        IpAddr::from(a.v4),
        "{mode}: pod A -> pod B (outside every pool) is not masqueraded"
    );

    // natOutgoing off: the external host is out of reach; the host is not.
    wait(program(false)).await.unwrap();
    let (e, p) = (ext.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || peer_seen(&e, &p, ext_v4, 7004)))
        .await
        .unwrap();
    assert!(seen.is_err(), "{mode}: reached without NAT: {seen:?}");
    let (h, p) = (host.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || peer_seen(&h, &p, host_v4, 7005)))
        .await
        .unwrap();
    assert_eq!(
        seen,
        Ok(IpAddr::from(a.v4)),
        "{mode}: pod A -> host without NAT"
    );

    // And on again.
    wait(program(true)).await.unwrap();
    let (e, p) = (ext.clone(), a.ns.clone());
    let seen = blocking(Box::new(move || peer_seen(&e, &p, ext_v4, 7006)))
        .await
        .unwrap();
    assert_eq!(seen, Ok(host_v4), "{mode}: natOutgoing on again");
    if ebpf {
        let c = felix.observer().counters();
        assert!(
            c["cali0000000000a"].passed_packets > 0,
            "pod A's traffic to the external host went through the stack: {c:?}"
        );
    }
    drop(felix);
    manul_felix::nat::cleanup(Some(&host.path())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_outgoing_with_kernel_routes_only() {
    require!(Need::Root, Need::Bin("ip"));
    nat_outgoing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_outgoing_with_the_ebpf_dataplane() {
    require!(Need::Root, Need::Bin("ip"));
    nat_outgoing(true).await;
}
