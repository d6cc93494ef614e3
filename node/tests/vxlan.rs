//! VXLAN end to end with real agents on lab hosts (one L2 segment, a
//! router namespace as every host's gateway, etcd on it), pods added by
//! manul-cni as a runtime adds them:
//!
//! - a VXLAN-only cluster (`CALICO_NETWORKING_BACKEND=vxlan`): no BGP
//!   session anywhere and nothing listening on port 179; every pod
//!   reaches every other through `vxlan.calico`, and the packets on the
//!   wire are VXLAN (UDP 4789), counted by an `AF_PACKET` socket; the
//!   MTUs: the device has the uplink's less 50, pods get it, 1450-octet
//!   packets with the don't-fragment bit cross, larger ones get an ICMP
//!   "fragmentation needed" back (or a local "message too long" in a pod
//!   whose own MTU is already 1450);
//! - a VXLAN pool with BGP on (the mesh Established, the blocks
//!   advertised): pods still talk through `vxlan.calico`;
//! - `CrossSubnet` across two subnets: encapsulated across, plain
//!   within, counted on the wire;
//! - the tunnel address is kept across an agent restart (which also sets
//!   `FELIX_VXLANMTU`), and released when the pool stops being VXLAN: the
//!   IPAM handle gone, the Node's fields cleared, the device removed, the
//!   pod MTU back to the uplink's;
//! - node removal: host3's agent stopped, `manulctl delete node host3`
//!   frees its addresses and block, and host1's and host2's routes to
//!   that block go (felix's watch); `ipam check` is clean after.

mod common;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::{VxlanCapture, ping_df, received, status};
use manul_status::{Backend, NodeStatus, State};
use manul_tests::node::{RES, cni_call_with, mtu_file};
use manul_tests::scratch::ScratchDir;
use manul_tests::{Daemon, Etcd, Lab, Need, Netns, require, scratch, wait_until};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn pool(mode: &str) -> String {
    json!({"kind":"IPPool","apiVersion":"projectcalico.org/v3",
           "metadata":{"name":"pool","creationTimestamp":null},
           "spec":{"cidr":"10.65.0.0/16","blockSize":26,"ipipMode":"Never",
                   "vxlanMode":mode,"nodeSelector":"all()"}})
    .to_string()
}

/// manul-cni next to manul-node (built when missing).
fn cni_bin() -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_manul-node")).with_file_name("manul-cni");
    if !path.exists() {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", "manul-cni"])
                .status()?;
        ensure!(status.success(), "cargo build -p manul-cni failed");
    }
    Ok(path)
}

/// A lab with a router (`tor`, etcd on it), a pool, an agent per host.
struct Cluster {
    lab: Lab,
    etcd: Etcd,
    endpoint: String,
    logs: ScratchDir,
    agents: Vec<Daemon>,
    cni: PathBuf,
}

impl Cluster {
    fn new(hosts: usize, mode: &str) -> Result<Cluster> {
        let lab = Lab::builder().hosts(hosts).tor(true).build()?;
        let tor = lab.tor();
        let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
        let endpoint = format!("http://{}:2379", tor.ipv4);
        etcd.put(&format!("{RES}/ippools/pool"), &pool(mode))?;
        Ok(Cluster {
            logs: scratch::run().tempdir("vxlan-agents")?,
            lab,
            etcd,
            endpoint,
            agents: Vec::new(),
            cni: cni_bin()?,
        })
    }

    /// Start host `i`'s (0-based) agent with `env`.
    fn agent(&self, i: usize, env: &[(&str, &str)]) -> Result<Daemon> {
        common::agent(&self.lab.hosts[i], &self.endpoint, self.logs.path(), env)
    }

    fn start_all(&mut self, env: &[(&str, &str)]) -> Result<()> {
        for i in 0..self.lab.hosts.len() {
            let a = self.agent(i, env)?;
            self.agents.push(a);
        }
        Ok(())
    }

    fn mtu_file(&self, i: usize) -> PathBuf {
        mtu_file(self.logs.path(), &self.lab.hosts[i].name)
    }

    /// Host `i`'s status once it has its IPv4 VXLAN tunnel and its MTUs.
    fn wait_tunnel(&self, i: usize) -> NodeStatus {
        let h = &self.lab.hosts[i];
        wait_until(WAIT, &format!("{}: VXLAN tunnel and MTUs", h.name), || {
            let s = status(&h.ns).map_err(|e| e.to_string())?;
            let file = std::fs::read_to_string(self.mtu_file(i)).unwrap_or_default();
            (s.network.vxlan_v4.is_some() && s.network.mtu.is_some() && !file.is_empty())
                .then_some(s.clone())
                .ok_or(format!("{:?}, MTU file {file:?}", s.network))
        })
    }

    /// A pod on host `i` through manul-cni, with `extra` configuration.
    fn pod(&self, i: usize, id: &str, extra: &[(&str, Value)]) -> Result<(Netns, IpAddr)> {
        let h = &self.lab.hosts[i];
        let ns = Netns::new(id)?;
        let mut conf = vec![(
            "mtu_file",
            Value::from(self.mtu_file(i).display().to_string()),
        )];
        conf.extend(extra.iter().cloned());
        let r = cni_call_with(
            h.ns.command(&self.cni),
            &h.name,
            "ADD",
            id,
            &ns.path(),
            &self.endpoint,
            &conf,
        )?;
        let ip: IpAddr = r["ips"][0]["address"]
            .as_str()
            .context("no address in the CNI result")?
            .trim_end_matches("/32")
            .parse()?;
        Ok((ns, ip))
    }

    /// `per_host` pods on every host: (host, namespace, address).
    fn pods(&self, per_host: usize) -> Result<Vec<(usize, Netns, IpAddr)>> {
        let mut out = Vec::new();
        for i in 0..self.lab.hosts.len() {
            for p in 1..=per_host {
                let (ns, ip) = self.pod(i, &format!("h{}p{p}", i + 1), &[])?;
                out.push((i, ns, ip));
            }
        }
        Ok(out)
    }

    /// The routes felix owns on host `i`.
    fn routes(&self, i: usize) -> String {
        self.lab.hosts[i]
            .ns
            .ip(&["route", "show", "proto", "80"])
            .unwrap_or_default()
    }
}

/// Every pod reaches every other.
fn all_pairs(pods: &[(usize, Netns, IpAddr)]) {
    for (a, (i, ns, _)) in pods.iter().enumerate() {
        for (b, (j, _, dst)) in pods.iter().enumerate() {
            if a != b {
                wait_until(
                    WAIT,
                    &format!("pod on host{} -> {dst} (host{})", i + 1, j + 1),
                    || ns.ping(*dst, 1).map_err(|e| e.to_string()),
                );
            }
        }
    }
}

/// `n` pings from `from` to `to` all answered, and at least `n` VXLAN
/// packets each way between hosts `a` and `b` on the wire meanwhile.
fn pings_cross_as_vxlan(
    cap: &VxlanCapture,
    (a, b): (IpAddr, IpAddr),
    from: &Netns,
    to: IpAddr,
    n: u32,
) -> Result<()> {
    let (out0, back0) = (cap.count(a, b), cap.count(b, a));
    let out = ping_df(from, to, 56, n)?;
    ensure!(received(&out) == n, "pings to {to} lost: {out}");
    // The capture thread may trail the last reply by a read.
    let counted = wait_until(Duration::from_secs(2), "VXLAN packets counted", || {
        let c = (cap.count(a, b) - out0, cap.count(b, a) - back0);
        (c.0 >= u64::from(n) && c.1 >= u64::from(n))
            .then_some(c)
            .ok_or(format!("{c:?} of {n}; all: {:?}", cap.all()))
    });
    eprintln!("{n} pings {a} -> {b}: {counted:?} VXLAN packets (out, back) on the wire");
    Ok(())
}

/// Nothing listens on or talks to BGP's port in `ns`.
fn no_bgp_socket(ns: &Netns) -> Result<()> {
    let out = ns.exec("ss", &["-Htan"])?;
    ensure!(
        !out.contains(":179 "),
        "{}: a socket on port 179:\n{out}",
        ns.name()
    );
    Ok(())
}

#[test]
fn vxlan_only_cluster_has_no_bgp_and_its_pods_talk_through_vxlan() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping"),
        Need::Bin("ss")
    );
    let mut c = Cluster::new(3, "Always")?;
    c.start_all(&[("CALICO_NETWORKING_BACKEND", "vxlan")])?;
    let mut tunnels = Vec::new();
    for i in 0..3 {
        let s = c.wait_tunnel(i);
        ensure!(s.network.backend == Backend::Vxlan, "{:?}", s.network);
        let m = s.network.mtu.context("MTUs")?;
        ensure!(
            (m.host, m.vxlan, m.pod, m.host_detected) == (1500, 1450, 1450, true),
            "{m:?}"
        );
        tunnels.push(s.network.vxlan_v4.context("tunnel")?.address);
    }
    let pods = c.pods(2)?;
    all_pairs(&pods);

    // Routes to the other hosts' blocks via their tunnel addresses.
    for (i, _, ip) in &pods {
        if *i == 0 {
            continue;
        }
        let block = ipnet::Ipv4Net::new(
            match ip {
                IpAddr::V4(v4) => *v4,
                IpAddr::V6(_) => anyhow::bail!("an IPv6 pod"),
            },
            26,
        )?
        .trunc();
        let routes = c.routes(0);
        let want = format!("{block} via {} dev vxlan.calico", tunnels[*i]);
        ensure!(routes.contains(&want), "host1 has no `{want}`:\n{routes}");
    }

    // No BGP anywhere: no speaker, no peer, no socket on port 179. The
    // remote prefixes the status counts are the routes via the tunnel.
    for (i, h) in c.lab.hosts.iter().enumerate() {
        let s = status(&h.ns)?;
        ensure!(
            !s.routing.bgp && s.routing.peers.is_empty(),
            "host{}: {:?}",
            i + 1,
            s.routing
        );
        let via = c.routes(i).matches("dev vxlan.calico").count();
        ensure!(
            via == 2 && s.routing.routes.remote_prefixes == via,
            "host{}: {} remote prefixes, {via} routes via vxlan.calico",
            i + 1,
            s.routing.routes.remote_prefixes
        );
        no_bgp_socket(&h.ns)?;
    }

    // The wire carries VXLAN: counted from host1 to host2 and host3.
    let h = &c.lab.hosts;
    let cap = VxlanCapture::start(&h[0].ns)?;
    for j in [1, 2] {
        let to = pods.iter().find(|(i, _, _)| *i == j).context("pod")?.2;
        pings_cross_as_vxlan(&cap, (h[0].ipv4_ip(), h[j].ipv4_ip()), &pods[0].1, to, 20)?;
    }

    // MTUs: the device and the pods have 1450.
    let link = h[0].ns.ip(&["link", "show", "vxlan.calico"])?;
    ensure!(link.contains(" mtu 1450 "), "{link}");
    let eth0 = pods[0].1.ip(&["link", "show", "eth0"])?;
    ensure!(eth0.contains(" mtu 1450 "), "pod: {eth0}");
    ensure!(std::fs::read_to_string(c.mtu_file(0))? == "1450");
    // 1450-octet packets (1422 octets of ICMP payload) with DF cross.
    let to = pods[2].2; // host2's first pod
    let out = ping_df(&pods[0].1, to, 1422, 5)?;
    ensure!(received(&out) == 5, "1450-octet DF packets lost: {out}");
    // One octet more: the pod's own MTU refuses it, saying so.
    let out = ping_df(&pods[0].1, to, 1423, 1)?;
    ensure!(
        out.contains("mtu=1450") || out.contains("mtu = 1450"),
        "a 1451-octet DF packet: {out}"
    );
    // A pod with MTU 1500 (its CNI configuration's `mtu` wins over the
    // agent's file) sends 1500 octets with DF: the host answers
    // "fragmentation needed" with the VXLAN MTU, no silence.
    let (big, _) = c.pod(0, "h1big", &[("mtu", json!(1500))])?;
    let eth0 = big.ip(&["link", "show", "eth0"])?;
    ensure!(eth0.contains(" mtu 1500 "), "{eth0}");
    let out = ping_df(&big, to, 1472, 2)?;
    ensure!(
        out.contains("Frag needed") && out.contains("mtu = 1450"),
        "a 1500-octet DF packet into the tunnel: {out}"
    );
    drop(cap);
    drop(c.agents);
    drop(c.etcd);
    Ok(())
}

#[test]
fn a_vxlan_pool_with_bgp_on_talks_through_vxlan() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let mut c = Cluster::new(3, "Always")?;
    c.start_all(&[])?;
    for (i, h) in c.lab.hosts.iter().enumerate() {
        let s = c.wait_tunnel(i);
        ensure!(s.network.backend == Backend::Bird, "{:?}", s.network);
        wait_until(
            WAIT,
            &format!("{}: 2 mesh peers Established", h.name),
            || {
                let s = status(&h.ns).map_err(|e| e.to_string())?;
                let up = s
                    .routing
                    .peers
                    .iter()
                    .filter(|p| p.state == State::Established)
                    .count();
                (s.routing.bgp && up == 2)
                    .then_some(())
                    .ok_or(format!("{:?}", s.routing.peers))
            },
        );
    }
    let pods = c.pods(1)?;
    all_pairs(&pods);
    // Each host still advertises its block; the routes go through the tunnel.
    for (i, h) in c.lab.hosts.iter().enumerate() {
        let s = status(&h.ns)?;
        ensure!(
            !s.routing.originated.is_empty(),
            "host{}: {:?}",
            i + 1,
            s.routing
        );
        let routes = c.routes(i);
        ensure!(
            routes.matches("dev vxlan.calico").count() == 2,
            "host{}: {routes}",
            i + 1
        );
    }
    let h = &c.lab.hosts;
    let cap = VxlanCapture::start(&h[0].ns)?;
    pings_cross_as_vxlan(
        &cap,
        (h[0].ipv4_ip(), h[1].ipv4_ip()),
        &pods[0].1,
        pods[1].2,
        20,
    )?;
    drop(cap);
    drop(c.agents);
    drop(c.etcd);
    Ok(())
}

#[test]
fn cross_subnet_encapsulates_only_between_subnets() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let mut c = Cluster::new(3, "CrossSubnet")?;
    // host3 moves to a second subnet, 10.89.0.0/24, routed by the router.
    let tor = c.lab.tor();
    tor.ns.add_addr("eth0", "10.89.0.254/24")?;
    let h3 = &c.lab.hosts[2].ns;
    h3.ip(&["addr", "del", "10.88.0.3/24", "dev", "eth0"])?;
    h3.add_addr("eth0", "10.89.0.3/24")?;
    h3.ip(&["route", "replace", "default", "via", "10.89.0.254"])?;
    for i in 0..3 {
        let ip = if i == 2 {
            "10.89.0.3/24".to_string()
        } else {
            format!("{}/24", c.lab.hosts[i].ipv4)
        };
        let a = c.agent(i, &[("CALICO_NETWORKING_BACKEND", "vxlan"), ("IP", &ip)])?;
        c.agents.push(a);
    }
    let tunnel3 = c.wait_tunnel(2).network.vxlan_v4.context("tunnel")?.address;
    for i in 0..2 {
        c.wait_tunnel(i);
    }
    let pods = c.pods(1)?;
    all_pairs(&pods);
    let block = |ip: IpAddr| -> Result<String> {
        match ip {
            IpAddr::V4(v4) => Ok(ipnet::Ipv4Net::new(v4, 26)?.trunc().to_string()),
            IpAddr::V6(_) => anyhow::bail!("an IPv6 pod"),
        }
    };
    let routes = c.routes(0);
    let plain = format!("{} via 10.88.0.2 dev eth0", block(pods[1].2)?);
    let tunnelled = format!("{} via {tunnel3} dev vxlan.calico", block(pods[2].2)?);
    ensure!(
        routes.contains(&plain) && routes.contains(&tunnelled),
        "host1 wants `{plain}` and `{tunnelled}`:\n{routes}"
    );
    // On the wire: nothing encapsulated within the subnet, all across.
    let cap = VxlanCapture::start(&c.lab.hosts[0].ns)?;
    let (h1, h2, h3) = (
        c.lab.hosts[0].ipv4_ip(),
        c.lab.hosts[1].ipv4_ip(),
        "10.89.0.3".parse::<IpAddr>()?,
    );
    let out = ping_df(&pods[0].1, pods[1].2, 56, 10)?;
    ensure!(received(&out) == 10, "{out}");
    ensure!(
        cap.count(h1, h2) == 0 && cap.count(h2, h1) == 0,
        "VXLAN within the subnet: {:?}",
        cap.all()
    );
    pings_cross_as_vxlan(&cap, (h1, h3), &pods[0].1, pods[2].2, 10)?;
    drop(cap);
    drop(c.agents);
    drop(c.etcd);
    Ok(())
}

#[test]
fn the_tunnel_address_survives_a_restart_and_goes_with_the_pool() -> Result<()> {
    require!(Need::Root, Need::Bin("etcd"), Need::Bin("ip"));
    let mut c = Cluster::new(1, "Always")?;
    let vxlan = [("CALICO_NETWORKING_BACKEND", "vxlan")];
    c.start_all(&vxlan)?;
    let s = c.wait_tunnel(0);
    let t = s.network.vxlan_v4.context("tunnel")?;
    let node_key = format!("{RES}/nodes/host1");
    let handle = "/calico/ipam/v2/handle/vxlan-tunnel-addr-host1";
    let node = |etcd: &Etcd| -> Result<Value> {
        Ok(serde_json::from_str(
            &etcd.get(&node_key)?.context("no Node")?,
        )?)
    };
    let n = node(&c.etcd)?;
    ensure!(
        n["spec"]["ipv4VXLANTunnelAddr"] == t.address.to_string()
            && n["spec"]["vxlanTunnelMACAddr"] == t.mac,
        "{n}"
    );
    ensure!(c.etcd.get(handle)?.is_some(), "no IPAM handle");
    let host = &c.lab.hosts[0].ns;
    let wait_link = |want: &str| {
        wait_until(WAIT, &format!("vxlan.calico {want}"), || {
            let l = host
                .ip(&["-d", "addr", "show", "vxlan.calico"])
                .map_err(|e| e.to_string())?;
            (l.contains(want) && l.contains(&format!("inet {}/32", t.address)))
                .then_some(())
                .ok_or(l)
        })
    };
    wait_link(" mtu 1450 ");
    let revision = |etcd: &Etcd| -> Result<String> {
        let out = etcd.etcdctl(&["get", &node_key, "-w", "json"])?;
        let v: Value = serde_json::from_str(&out)?;
        Ok(v["kvs"][0]["mod_revision"].to_string())
    };
    let before = revision(&c.etcd)?;

    // Restarted (with a VXLAN MTU set): the same address, the Node not
    // rewritten; the device and the pods take the new MTU.
    ensure!(c.agents[0].stop(), "the agent ignored SIGTERM");
    c.agents[0] = c.agent(0, &[vxlan[0], ("FELIX_VXLANMTU", "1400")])?;
    let s = wait_until(WAIT, "the restarted agent's MTUs", || {
        let s = status(host).map_err(|e| e.to_string())?;
        (s.network.mtu.is_some_and(|m| m.vxlan == 1400) && s.network.vxlan_v4.is_some())
            .then_some(s.clone())
            .ok_or(format!("{:?}", s.network))
    });
    ensure!(s.network.vxlan_v4.as_ref() == Some(&t), "{:?}", s.network);
    ensure!(s.network.mtu.context("MTUs")?.pod == 1400);
    wait_link(" mtu 1400 ");
    wait_until(WAIT, "the pod MTU file says 1400", || {
        let f = std::fs::read_to_string(c.mtu_file(0)).unwrap_or_default();
        (f == "1400").then_some(()).ok_or(f)
    });
    ensure!(revision(&c.etcd)? == before, "the Node was rewritten");
    ensure!(c.etcd.get(handle)?.is_some(), "no IPAM handle");

    // The pool stops being VXLAN: released, cleared, the device gone.
    c.etcd.put(&format!("{RES}/ippools/pool"), &pool("Never"))?;
    wait_until(WAIT, "the tunnel released", || -> Result<(), String> {
        let n = node(&c.etcd).map_err(|e| e.to_string())?;
        let handle_left = c.etcd.get(handle).map_err(|e| e.to_string())?.is_some();
        let device = host.ip(&["link", "show", "vxlan.calico"]).is_ok();
        let s = status(host).map_err(|e| e.to_string())?;
        let cleared = n["spec"].get("ipv4VXLANTunnelAddr").is_none()
            && n["spec"].get("vxlanTunnelMACAddr").is_none();
        (cleared && !handle_left && !device && s.network.vxlan_v4.is_none())
            .then_some(())
            .ok_or(format!(
                "Node {n}, handle left {handle_left}, device {device}, {:?}",
                s.network
            ))
    });
    wait_until(WAIT, "the pod MTU back to the uplink's", || {
        let f = std::fs::read_to_string(c.mtu_file(0)).unwrap_or_default();
        (f == "1500").then_some(()).ok_or(f)
    });
    drop(c.agents);
    drop(c.etcd);
    Ok(())
}

/// manulctl next to manul-node (built when missing).
fn manulctl_bin() -> Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_BIN_EXE_manul-node")).with_file_name("manulctl");
    if !path.exists() {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "-p", "manulctl"])
                .status()?;
        ensure!(status.success(), "cargo build -p manulctl failed");
    }
    Ok(path)
}

/// Node removal in a live cluster: host3's agent is stopped, `manulctl
/// delete node host3` releases its pod's and tunnel's addresses and its
/// block, and the other hosts' felix drops the route to that block through
/// its watch; `ipam check` is clean and `ipam show` has no block of host3.
#[test]
fn deleting_a_stopped_node_removes_the_routes_to_its_block() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let ctl_bin = manulctl_bin()?;
    let mut c = Cluster::new(3, "Always")?;
    c.start_all(&[("CALICO_NETWORKING_BACKEND", "vxlan")])?;
    let mut tunnels = Vec::new();
    for i in 0..3 {
        tunnels.push(c.wait_tunnel(i).network.vxlan_v4.context("tunnel")?.address);
    }
    let pods = c.pods(1)?;
    all_pairs(&pods);
    let host3_pod = match pods[2].2 {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => anyhow::bail!("an IPv6 pod"),
    };
    let block = ipnet::Ipv4Net::new(host3_pod, 26)?.trunc();
    let via = format!("{block} via {} dev vxlan.calico", tunnels[2]);
    for i in [0, 1] {
        let routes = c.routes(i);
        ensure!(
            routes.contains(&via),
            "host{} has no `{via}`:\n{routes}",
            i + 1
        );
    }

    // host3's agent stops; then the node is deleted from the router.
    let mut host3 = c.agents.pop().context("host3's agent")?;
    host3.stop();
    let tor = c.lab.tor();
    let ctl = |args: &[&str]| -> Result<(i32, String, String)> {
        let out = tor
            .ns
            .command(&ctl_bin)
            .args(["--etcd-endpoints", &c.endpoint])
            .args(args)
            .output()?;
        Ok((
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    };
    let (code, out, err) = ctl(&["delete", "node", "host3"])?;
    ensure!(code == 0, "delete node: {code} {out} {err}");
    ensure!(out.contains(&format!("released {host3_pod} ")), "{out}");
    ensure!(
        out.contains(&format!("released {} ", tunnels[2])),
        "the tunnel address: {out}"
    );
    ensure!(
        out.contains(&format!(
            "released the affinity of host3 to block {block}; the block was empty and is deleted"
        )),
        "{out}"
    );
    ensure!(
        out.contains("node.projectcalico.org/host3 deleted"),
        "{out}"
    );

    // The other hosts' kernels stop routing to the block.
    for i in [0, 1] {
        let h = &c.lab.hosts[i].name;
        wait_until(WAIT, &format!("{h}: no route to {block}"), || {
            let routes = c.routes(i);
            (!routes.contains(&block.to_string()))
                .then_some(())
                .ok_or(routes)
        });
    }
    // host1 and host2 still reach each other.
    all_pairs(&pods[..2]);
    let (code, out, err) = ctl(&["ipam", "check"])?;
    ensure!(code == 0, "ipam check: {code} {out} {err}");
    let (code, out, err) = ctl(&["ipam", "show", "--show-blocks"])?;
    ensure!(
        code == 0 && !out.contains("host3"),
        "ipam show: {out} {err}"
    );
    drop(c.agents);
    drop(c.etcd);
    Ok(())
}
