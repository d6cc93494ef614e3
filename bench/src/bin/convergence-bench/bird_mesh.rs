//! The anchor: the same mesh of BIRD 2 routers configured as calico-node
//! configures BIRD, from Calico's confd templates (`bird.cfg.template`,
//! `bird_aggr.cfg.template`, `bird_ipam.cfg.template`), translated from
//! BIRD 1.6 syntax (Calico's fork) to BIRD 2:
//!
//! - the BGP template: `local as`, `multihop`, `gateway recursive`,
//!   `import all`, export `calico_export_to_bgp_peers`, `add paths on`,
//!   `graceful restart`, `connect delay time 2`, `connect retry time 5`,
//!   `error wait time 5,30`;
//! - one `Mesh_<ip>` protocol per other node, `source address` the node's
//!   own, `passive on` when the peer's address string compares greater
//!   (`{{if gt $onode_ip $node_ip}}`);
//! - the node's block as a static blackhole route (`bird_aggr`), exported
//!   by `calico_aggr` (the block exactly, nothing beneath it) and the
//!   pool filter (`bird_ipam`);
//! - `protocol kernel` with `learn`, `persist`, `scan time 2`, `graceful
//!   restart`, `merge paths on`, exporting `calico_kernel_programming`
//!   (for a pool without IPIP or VXLAN: everything, `krt_tunnel` unset);
//!   `protocol device` and `protocol direct` as the template has them;
//! - BIRD started with `-R` (graceful-restart recovery), as calico-node's
//!   runit script starts it: kernel writes wait for the sessions'
//!   End-of-RIB.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// BIRD 2's configuration for the node at `me` (its block `block`) in a
/// mesh with `others`, pool `pool`, AS 64512.
pub fn config(me: Ipv4Addr, block: Ipv4Net, others: &[Ipv4Addr], pool: Ipv4Net) -> String {
    let mut c = String::new();
    let _ = write!(
        c,
        r#"router id {me};
log stderr {{ warning, error, fatal, bug }};

filter calico_kernel_programming {{
  accept;
}}

protocol kernel {{
  learn;
  persist;
  scan time 2;
  graceful restart;
  merge paths on;
  ipv4 {{ import all; export filter calico_kernel_programming; }};
}}

protocol device {{
  scan time 2;
}}

protocol direct {{
  ipv4;
  interface -"cali*", -"kube-ipvs*", "*";
}}

protocol static {{
  ipv4;
  route {block} blackhole;
}}

function calico_aggr() {{
  if ( net = {block} ) then {{ accept; }}
  if ( net ~ {block} ) then {{ reject; }}
}}

filter calico_export_to_bgp_peers {{
  calico_aggr();
  if ( net ~ {pool} ) then {{ accept; }}
  reject;
}}

template bgp bgp_template {{
  description "Connection to BGP peer";
  local as 64512;
  multihop;
  ipv4 {{
    gateway recursive;
    import all;
    export filter calico_export_to_bgp_peers;
    add paths on;
  }};
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}
"#
    );
    for peer in others.iter().filter(|p| **p != me) {
        let id = peer.to_string().replace('.', "_");
        let _ = writeln!(
            c,
            "protocol bgp Mesh_{id} from bgp_template {{\n  neighbor {peer} as 64512;\n  source address {me};"
        );
        if peer.to_string() > me.to_string() {
            let _ = writeln!(c, "  passive on;");
        }
        let _ = writeln!(c, "}}");
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_passive_side_per_pair_by_address_string() {
        let a: Ipv4Addr = "10.88.0.9".parse().unwrap();
        let b: Ipv4Addr = "10.88.0.10".parse().unwrap();
        let pool = "10.65.0.0/16".parse().unwrap();
        let ca = config(a, "10.65.0.0/26".parse().unwrap(), &[a, b], pool);
        let cb = config(b, "10.65.0.64/26".parse().unwrap(), &[a, b], pool);
        // "10.88.0.9" > "10.88.0.10": b is passive towards a, a connects.
        assert!(!ca.contains("passive on"), "{ca}");
        assert!(cb.contains("protocol bgp Mesh_10_88_0_9"), "{cb}");
        assert!(cb.contains("passive on"), "{cb}");
        assert!(ca.contains("route 10.65.0.0/26 blackhole"));
        assert!(
            !ca.contains("Mesh_10_88_0_9 "),
            "no session to itself: {ca}"
        );
    }
}
