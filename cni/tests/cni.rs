//! manul-cni as a runtime runs it: the real binary, `CNI_*` variables and
//! the network configuration on stdin, inside a "host" namespace the test
//! creates (with a real etcd on its loopback), pods in namespaces of their
//! own.

use std::io::Write;
use std::net::IpAddr;
use std::process::Stdio;

use anyhow::{Context, Result, ensure};
use manul_tests::{Etcd, Need, Netns, require};
use serde_json::Value;

const POOL_KEY: &str = "/calico/resources/v3/projectcalico.org/ippools/default-ipv4-ippool";

struct Host {
    ns: Netns,
    etcd: Etcd,
}

fn host() -> Result<Host> {
    let ns = Netns::new("cnihost")?;
    ns.sysctl("net.ipv4.ip_forward", "1")?;
    // Proxy ARP answers only for addresses the host routes elsewhere: like a
    // real host, this one has a default route (to nowhere).
    ns.ip(&[
        "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1",
    ])?;
    ns.link_up("uplink1")?;
    ns.link_up("uplink0")?;
    ns.ip(&["route", "add", "default", "dev", "uplink0"])?;
    let etcd = Etcd::start_in(&ns, "127.0.0.1".parse()?)?;
    etcd.put(
        POOL_KEY,
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv4-ippool","creationTimestamp":null},"spec":{"cidr":"10.65.0.0/16","blockSize":26,"ipipMode":"Never","vxlanMode":"Never","nodeSelector":"all()"}}"#,
    )?;
    Ok(Host { ns, etcd })
}

fn conf(endpoint: &str) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"manul-cni",
            "etcd_endpoints":"{endpoint}","nodename":"host-a",
            "ipam":{{"type":"manul-ipam","assign_ipv4":"true"}}}}"#
    )
}

struct Out {
    ok: bool,
    json: Value,
}

/// Run the plugin in `host` like a runtime.
fn cni(
    host: &Netns,
    command: &str,
    id: &str,
    pod: Option<&Netns>,
    name: &str,
    stdin: &str,
) -> Result<Out> {
    let mut cmd = host.command(env!("CARGO_BIN_EXE_manul-cni"));
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", id)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/opt/cni/bin")
        .env(
            "CNI_ARGS",
            format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={name}"),
        )
        .env_remove("ETCD_ENDPOINTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match pod {
        Some(p) => cmd.env("CNI_NETNS", p.path()),
        None => cmd.env_remove("CNI_NETNS"),
    };
    let mut child = cmd.spawn().context("running manul-cni")?;
    child.stdin.take().unwrap().write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{command} printed no JSON: {text:?}; stderr {:?}",
                String::from_utf8_lossy(&out.stderr)
            )
        })?
    };
    Ok(Out {
        ok: out.status.success(),
        json,
    })
}

fn ip_of(add: &Value) -> Result<IpAddr> {
    let a = add["ips"][0]["address"]
        .as_str()
        .context("no address in result")?;
    Ok(a.trim_end_matches("/32").parse()?)
}

fn wep_key(pod: &str) -> String {
    format!(
        "/calico/resources/v3/projectcalico.org/workloadendpoints/default/host--a-k8s-{}-eth0",
        pod.replace('-', "--")
    )
}

#[test]
fn add_check_del_wire_two_pods_that_reach_each_other() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let h = host()?;
    let c = conf("http://127.0.0.1:2379");
    let (p1, p2) = (Netns::new("pod1")?, Netns::new("pod2")?);
    let a1 = cni(&h.ns, "ADD", "c1", Some(&p1), "web-1", &c)?;
    ensure!(a1.ok, "ADD failed: {}", a1.json);
    let a2 = cni(&h.ns, "ADD", "c2", Some(&p2), "web-2", &c)?;
    ensure!(a2.ok, "ADD failed: {}", a2.json);
    let (ip1, ip2) = (ip_of(&a1.json)?, ip_of(&a2.json)?);
    ensure!(ip1 != ip2);
    assert_eq!(a1.json["cniVersion"], "1.0.0");
    assert_eq!(a1.json["ips"][0]["gateway"], "169.254.1.1");
    let veth = a1.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    ensure!(veth.starts_with("cali") && veth.len() == 15, "{veth}");

    // The pod: its address, the default route onlink via the link-local gateway.
    let addrs = p1.ip(&["-4", "addr", "show", "dev", "eth0"])?;
    ensure!(addrs.contains(&format!("{ip1}/32")), "{addrs}");
    let routes = p1.ip(&["route", "show"])?;
    ensure!(
        routes.contains("default via 169.254.1.1 dev eth0") && routes.contains("onlink"),
        "{routes}"
    );
    // The host: proxy ARP on the veth, a protocol-80 route to the pod.
    let proxy =
        h.ns.run(|| std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{veth}/proxy_arp")))?;
    assert_eq!(proxy.trim(), "1");
    let host_routes = h.ns.ip(&["route", "show", "proto", "80"])?;
    ensure!(
        host_routes.contains(&format!("{ip1} dev {veth} scope link")),
        "{host_routes}"
    );

    // etcd: the WorkloadEndpoint and the IPAM handle.
    let wep: Value = serde_json::from_str(&h.etcd.get(&wep_key("web-1"))?.context("no WEP")?)?;
    assert_eq!(wep["spec"]["containerID"], "c1");
    assert_eq!(wep["spec"]["interfaceName"], veth.as_str());
    assert_eq!(wep["spec"]["ipNetworks"][0], format!("{ip1}/32"));
    assert_eq!(wep["spec"]["pod"], "web-1");
    assert_eq!(wep["metadata"]["namespace"], "default");
    ensure!(
        h.etcd
            .get("/calico/ipam/v2/handle/k8s-pod-network.c1")?
            .is_some()
    );
    let blocks = h
        .etcd
        .etcdctl(&["get", "--prefix", "/calico/ipam/v2/assignment/"])?;
    ensure!(
        blocks.contains(r#""namespace":"default""#) && blocks.contains(r#""pod":"web-1""#),
        "{blocks}"
    );

    // Pod to pod through the host.
    p1.ping(ip2, 3)?;
    p2.ping(ip1, 3)?;

    // CHECK passes, then fails naming the cause once the pod loses its address.
    let chk = cni(&h.ns, "CHECK", "c1", Some(&p1), "web-1", &c)?;
    ensure!(chk.ok, "CHECK failed: {}", chk.json);
    p1.ip(&["addr", "del", &format!("{ip1}/32"), "dev", "eth0"])?;
    let chk = cni(&h.ns, "CHECK", "c1", Some(&p1), "web-1", &c)?;
    ensure!(!chk.ok);
    assert_eq!(chk.json["code"], 102);
    ensure!(
        chk.json["msg"].as_str().unwrap().contains("eth0 holds"),
        "{}",
        chk.json
    );

    // DEL releases everything; a second DEL (and one without a netns) is fine.
    for pod in [Some(&p1), Some(&p1), None] {
        let d = cni(&h.ns, "DEL", "c1", pod, "web-1", &c)?;
        ensure!(d.ok, "DEL failed: {}", d.json);
    }
    ensure!(h.etcd.get(&wep_key("web-1"))?.is_none(), "WEP left behind");
    ensure!(
        h.etcd
            .get("/calico/ipam/v2/handle/k8s-pod-network.c1")?
            .is_none(),
        "handle left behind"
    );
    let links = h.ns.ip(&["link", "show"])?;
    ensure!(!links.contains(&veth), "{links}");
    ensure!(!p1.ip(&["link", "show"])?.contains("eth0"));
    let host_routes = h.ns.ip(&["route", "show", "proto", "80"])?;
    ensure!(!host_routes.contains(&ip1.to_string()), "{host_routes}");
    // The freed address is free in its block: the other pod still works.
    p2.ping(IpAddr::V4(std::net::Ipv4Addr::new(169, 254, 1, 1)), 1)
        .ok();
    let d = cni(&h.ns, "DEL", "c2", Some(&p2), "web-2", &c)?;
    ensure!(d.ok, "{}", d.json);
    let blocks = h
        .etcd
        .etcdctl(&["get", "--prefix", "/calico/ipam/v2/assignment/"])?;
    ensure!(
        !blocks.contains(r#""pod":"web"#),
        "addresses left assigned: {blocks}"
    );
    Ok(())
}

#[test]
fn errors_are_cni_json_with_a_code_and_leave_nothing() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let h = host()?;
    let c = conf("http://127.0.0.1:2379");
    let pod = Netns::new("podx")?;

    // VERSION.
    let v = cni(&h.ns, "VERSION", "x", None, "x", &c)?;
    ensure!(v.ok);
    assert_eq!(v.json["supportedVersions"][3], "1.0.0");

    // An unsupported version.
    let e = cni(
        &h.ns,
        "ADD",
        "x",
        Some(&pod),
        "x",
        &c.replace("1.0.0", "9.9.9"),
    )?;
    ensure!(!e.ok);
    assert_eq!(e.json["code"], 1);

    // Stdin that is not JSON.
    let e = cni(&h.ns, "ADD", "x", Some(&pod), "x", "{")?;
    assert_eq!(e.json["code"], 6);

    // etcd unreachable: try again later, naming etcd.
    let e = cni(
        &h.ns,
        "ADD",
        "x",
        Some(&pod),
        "x",
        &conf("http://127.0.0.1:1"),
    )?;
    ensure!(!e.ok);
    assert_eq!(e.json["code"], 11, "{}", e.json);
    ensure!(
        e.json["msg"].as_str().unwrap().contains("etcd"),
        "{}",
        e.json
    );

    // A netns that does not exist: the address assigned is released again.
    let mut cmd_ns = pod.path();
    cmd_ns.set_file_name("manul-no-such-netns");
    let gone = {
        let mut cmd = h.ns.command(env!("CARGO_BIN_EXE_manul-cni"));
        cmd.env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", "y")
            .env("CNI_IFNAME", "eth0")
            .env("CNI_NETNS", &cmd_ns)
            .env("CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=y")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn()?;
        child.stdin.take().unwrap().write_all(c.as_bytes())?;
        let out = child.wait_with_output()?;
        ensure!(!out.status.success());
        serde_json::from_slice::<Value>(&out.stdout)?
    };
    assert_eq!(gone["code"], 4, "{gone}");
    ensure!(
        gone["msg"]
            .as_str()
            .unwrap()
            .contains("manul-no-such-netns"),
        "{gone}"
    );
    ensure!(
        h.etcd
            .get("/calico/ipam/v2/handle/k8s-pod-network.y")?
            .is_none()
    );
    let links = h.ns.ip(&["link", "show"])?;
    ensure!(!links.contains("cali"), "{links}");

    // A missing variable.
    let mut cmd = h.ns.command(env!("CARGO_BIN_EXE_manul-cni"));
    cmd.env("CNI_COMMAND", "ADD").stdin(Stdio::null());
    let out = cmd.output()?;
    let e: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(e["code"], 4);
    ensure!(
        e["msg"].as_str().unwrap().contains("CNI_CONTAINERID"),
        "{e}"
    );
    Ok(())
}

#[test]
fn dual_stack_pods_get_a_v4_and_a_v6_address_and_reach_each_other() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip"),
        Need::Bin("ping")
    );
    let h = host()?;
    h.ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
    h.etcd.put(
        "/calico/resources/v3/projectcalico.org/ippools/default-ipv6-ippool",
        r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"default-ipv6-ippool","creationTimestamp":null},"spec":{"cidr":"fd00:65::/48","blockSize":122,"ipipMode":"Never","vxlanMode":"Never","nodeSelector":"all()"}}"#,
    )?;
    let c = conf("http://127.0.0.1:2379").replace(
        r#""assign_ipv4":"true""#,
        r#""assign_ipv4":"true","assign_ipv6":"true""#,
    );
    let (p1, p2) = (Netns::new("pod6a")?, Netns::new("pod6b")?);
    let a1 = cni(&h.ns, "ADD", "d1", Some(&p1), "dual-1", &c)?;
    ensure!(a1.ok, "ADD failed: {}", a1.json);
    let a2 = cni(&h.ns, "ADD", "d2", Some(&p2), "dual-2", &c)?;
    ensure!(a2.ok, "ADD failed: {}", a2.json);
    let v6 = |r: &Value| -> Result<IpAddr> {
        let a = r["ips"][1]["address"]
            .as_str()
            .context("no second address")?;
        Ok(a.trim_end_matches("/128").parse()?)
    };
    let (b6, a6) = (v6(&a2.json)?, v6(&a1.json)?);
    ensure!(b6.is_ipv6() && a6.is_ipv6());
    assert_eq!(a1.json["ips"][1]["gateway"], "fe80::ecee:eeff:feee:eeee");
    let routes = p1.ip(&["-6", "route", "show"])?;
    ensure!(
        routes.contains("default via fe80::ecee:eeff:feee:eeee dev eth0"),
        "{routes}"
    );
    let wep: Value = serde_json::from_str(&h.etcd.get(&wep_key("dual-1"))?.context("no WEP")?)?;
    assert_eq!(wep["spec"]["ipNetworks"][1], format!("{a6}/128"));
    // The host end's link-local address needs its DAD; then pods reach each other.
    manul_tests::wait_until(
        std::time::Duration::from_secs(10),
        "pod6a -> pod6b over IPv6",
        || p1.ping(b6, 1).map_err(|e| e.to_string()),
    );
    p1.ping(ip_of(&a2.json)?, 1)?;
    for (id, pod, name) in [("d1", &p1, "dual-1"), ("d2", &p2, "dual-2")] {
        let d = cni(&h.ns, "DEL", id, Some(pod), name, &c)?;
        ensure!(d.ok, "{}", d.json);
    }
    let blocks = h
        .etcd
        .etcdctl(&["get", "--prefix", "/calico/ipam/v2/assignment/"])?;
    ensure!(!blocks.contains(r#""pod":"dual"#), "{blocks}");
    Ok(())
}

#[test]
fn gc_releases_what_no_valid_attachment_holds_and_status_says_if_add_can_work() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("etcdctl"),
        Need::Bin("ip")
    );
    let h = host()?;
    let endpoint = "http://127.0.0.1:2379";
    let c = conf(endpoint);
    // STATUS: etcd answers and the pool is there.
    let s = cni(&h.ns, "STATUS", "", None, "", &c)?;
    ensure!(s.ok && s.json.is_null(), "STATUS: {}", s.json);

    let (keep, gone) = (Netns::new("gckeep")?, Netns::new("gcgone")?);
    let a = cni(&h.ns, "ADD", "keep1", Some(&keep), "keep", &c)?;
    ensure!(a.ok, "{}", a.json);
    let b = cni(&h.ns, "ADD", "gone1", Some(&gone), "gone", &c)?;
    ensure!(b.ok, "{}", b.json);
    let gone_veth = b.json["interfaces"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    // The runtime lost "gone1" (say, its sandbox was removed while the
    // plugin was not called): GC with only "keep1" valid.
    let gc_conf = format!(
        r#"{{"cniVersion":"1.1.0","name":"k8s-pod-network","type":"manul-cni",
            "etcd_endpoints":"{endpoint}","nodename":"host-a",
            "ipam":{{"type":"manul-ipam","assign_ipv4":"true"}},
            "cni.dev/valid-attachments":[{{"containerID":"keep1","ifname":"eth0"}}]}}"#
    );
    let g = cni(&h.ns, "GC", "", None, "", &gc_conf)?;
    ensure!(g.ok, "GC: {}", g.json);
    let handle = |id: &str| {
        h.etcd
            .get(&format!("/calico/ipam/v2/handle/k8s-pod-network.{id}"))
    };
    ensure!(handle("gone1")?.is_none(), "gone1's handle is still there");
    ensure!(
        h.etcd.get(&wep_key("gone"))?.is_none(),
        "gone's endpoint is still there"
    );
    ensure!(
        !h.ns.ip(&["link", "show"])?.contains(&gone_veth),
        "{gone_veth} left"
    );
    ensure!(handle("keep1")?.is_some(), "keep1's handle was released");
    ensure!(
        h.etcd.get(&wep_key("keep"))?.is_some(),
        "keep's endpoint was deleted"
    );
    // Nothing else was touched: the kept pod still checks out.
    let chk = cni(&h.ns, "CHECK", "keep1", Some(&keep), "keep", &c)?;
    ensure!(chk.ok, "CHECK after GC: {}", chk.json);

    // STATUS: not available (50) without an enabled pool, or without etcd.
    let pool = h.etcd.get(POOL_KEY)?.context("pool")?;
    h.etcd.put(
        POOL_KEY,
        &pool.replace(r#""nodeSelector""#, r#""disabled":true,"nodeSelector""#),
    )?;
    let s = cni(&h.ns, "STATUS", "", None, "", &c)?;
    ensure!(
        !s.ok && s.json["code"] == 50,
        "STATUS without a pool: {}",
        s.json
    );
    ensure!(
        s.json["msg"]
            .as_str()
            .unwrap_or("")
            .contains("no enabled IPv4 pool"),
        "{}",
        s.json
    );
    let s = cni(&h.ns, "STATUS", "", None, "", &conf("http://127.0.0.1:1"))?;
    ensure!(
        !s.ok && s.json["code"] == 50,
        "STATUS without etcd: {}",
        s.json
    );
    let d = cni(&h.ns, "DEL", "keep1", Some(&keep), "keep", &c)?;
    ensure!(d.ok, "{}", d.json);
    Ok(())
}
