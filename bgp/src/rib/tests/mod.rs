//! RIB tests: shared fixtures, one file per concern.

mod bulk;
mod decided;
mod decision;
mod export;
mod filter;
mod gr;
mod memory;
mod multipath;
mod update;

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;

use super::{BestChange, Decided, PeerIndex, PeerInfo, Rib, RibChange, RibConfig};
use crate::policy::Policy;
use crate::types::Asn;
use crate::wire::{AsPath, AsSegment, Nlri, Origin, PathAttributes, SegmentKind};

pub const LOCAL_AS: Asn = 65000;

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn config() -> RibConfig {
    RibConfig::new(LOCAL_AS, v4("10.0.0.1"))
}

/// A peer at `addr` with router ID `id` in `asn`; our session address
/// 192.0.2.1 / 2001:db8::1.
pub fn info(addr: &str, id: &str, asn: Asn) -> PeerInfo {
    let mut p = PeerInfo::new(ip(addr), v4(id), asn, LOCAL_AS);
    p.local_v4 = Some(v4("192.0.2.1"));
    p.local_v6 = Some("2001:db8::1".parse().unwrap());
    p
}

pub fn add(rib: &mut Rib, info: PeerInfo) -> PeerIndex {
    rib.add_peer(info, Policy::accept_all(), Policy::accept_all())
}

/// IGP-origin attributes with an AS_SEQUENCE.
pub fn attrs(path: &[Asn]) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: if path.is_empty() {
                vec![]
            } else {
                vec![AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: path.to_vec(),
                }]
            },
        }),
        ..Default::default()
    }
}

pub fn announce(
    rib: &mut Rib,
    peer: PeerIndex,
    prefix: &str,
    attrs: PathAttributes,
    next_hop: &str,
) -> Vec<BestChange> {
    rib.update(vec![RibChange::Announce {
        peer,
        attrs,
        next_hop: ip(next_hop),
        nlri: vec![Nlri::new(net(prefix))],
    }])
    .unwrap()
}

pub fn withdraw(rib: &mut Rib, peer: PeerIndex, prefix: &str) -> Vec<BestChange> {
    rib.update(vec![RibChange::Withdraw {
        peer,
        nlri: vec![Nlri::new(net(prefix))],
    }])
    .unwrap()
}

pub fn originate(rib: &mut Rib, prefix: &str) -> Vec<BestChange> {
    rib.update(vec![RibChange::Originate {
        prefix: net(prefix),
        attrs: attrs(&[]),
        next_hop: None,
    }])
    .unwrap()
}

/// Stage `changes` and take the decisions, as the speaker does in a pass
/// (the caller settles).
pub fn decide(rib: &mut Rib, changes: Vec<RibChange>) -> Decided {
    rib.stage(changes).unwrap();
    rib.take_decided()
}

/// The peer of the best path to `prefix`.
pub fn best_peer(rib: &Rib, prefix: &str) -> Option<PeerIndex> {
    rib.best(&net(prefix)).map(|p| p.peer)
}
