//! Interning keeps a large table small.

use std::net::Ipv4Addr;
use std::sync::Arc;

use super::*;
use crate::rib::{AdjRibOut, Path};

#[test]
fn a_path_is_small() {
    assert!(
        std::mem::size_of::<Path>() <= 48,
        "{}",
        std::mem::size_of::<Path>()
    );
    assert!(std::mem::size_of::<(IpNet, Path)>() <= 64);
}

#[test]
fn interned_attributes_are_shared_and_freed() {
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let b = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65001));
    announce(&mut rib, a, "203.0.113.0/24", attrs(&[65001]), "192.0.2.10");
    announce(
        &mut rib,
        b,
        "198.51.100.0/24",
        attrs(&[65001]),
        "192.0.2.20",
    );
    let x = rib.paths(&net("203.0.113.0/24"))[0].attrs.clone();
    let y = rib.paths(&net("198.51.100.0/24"))[0].attrs.clone();
    assert!(Arc::ptr_eq(&x, &y));
    drop((x, y));
    assert_eq!(rib.interner().len(), 1);
    withdraw(&mut rib, a, "203.0.113.0/24");
    rib.gc();
    assert_eq!(rib.interner().len(), 1);
    // The reported change holds the old best path (and its attributes)
    // until dropped; the next collection frees what nothing uses.
    let changes = withdraw(&mut rib, b, "198.51.100.0/24");
    rib.gc();
    assert_eq!(rib.interner().len(), 1);
    drop(changes);
    rib.gc();
    assert_eq!(rib.interner().len(), 0);
    assert_eq!(rib.route_count(), 0);
}

#[test]
fn many_prefixes_share_one_attribute_set() {
    // 1,000,000 takes ~12 s unoptimised; 200,000 shows the same sharing.
    const N: u32 = 200_000;
    let mut rib = Rib::new(config());
    let a = add(&mut rib, info("192.0.2.10", "1.1.1.1", 65001));
    let e = add(&mut rib, info("192.0.2.20", "2.2.2.2", 65002));
    let nlri: Vec<Nlri> = (0..N)
        .map(|i| {
            let addr = Ipv4Addr::from(0x2000_0000 + (i << 8));
            Nlri::new(IpNet::new(IpAddr::V4(addr), 24).unwrap())
        })
        .collect();
    let decided = decide(
        &mut rib,
        vec![RibChange::Announce {
            peer: a,
            attrs: attrs(&[65001, 65100]),
            next_hop: ip("192.0.2.10"),
            nlri,
        }],
    );
    assert_eq!(decided.len(), N as usize);
    assert_eq!(rib.len(), N as usize);
    assert_eq!(rib.interner().len(), 1);
    assert_eq!(rib.route_count(), 1, "one route shared by every prefix");
    // Re-advertising everything to an eBGP peer costs one more entry.
    let mut out = AdjRibOut::new(e);
    let diff = out.apply(&mut rib, &decided);
    rib.settle(decided);
    assert_eq!(diff.announce.len(), 1);
    assert_eq!(diff.announce[0].prefixes.len(), N as usize);
    drop(diff);
    assert_eq!(rib.interner().len(), 2);
    out.clear(&mut rib);
    let changes = rib.peer_down(a).unwrap();
    assert_eq!(changes.len(), N as usize);
    drop(changes);
    rib.gc();
    assert_eq!(rib.interner().len(), 0);
    assert!(rib.is_empty());
}
