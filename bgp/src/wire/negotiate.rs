//! What two OPENs negotiate (RFC 5492 §3): the codec [`Context`] and a
//! summary of the capabilities both sides support.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::Family;
use crate::wire::{AddPathMode, Capability, Context, GracefulRestart, Open};

/// Capabilities in effect for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// What the codec needs.
    pub context: Context,
    /// Families both sides announced (RFC 4760 §8; IPv4 unicast is implied
    /// for a side that announces no Multiprotocol capability).
    pub families: BTreeSet<Family>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub four_octet_as: bool,
    /// The peer's Graceful Restart capability (RFC 4724 §3), if any.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// Per family, which directions carry path identifiers (RFC 7911 §5),
    /// seen from us: `Send` = we send them, `Receive` = we receive them.
    pub add_path: BTreeMap<Family, AddPathMode>,
    /// IPv4 NLRI with IPv6 next hops, announced by both (RFC 8950).
    pub extended_next_hop_v4: bool,
    pub extended_message: bool,
    /// The smaller of the two hold times (RFC 4271 §4.2).
    pub hold_time: u16,
}

fn families(open: &Open) -> BTreeSet<Family> {
    let set: BTreeSet<Family> = open
        .capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::Multiprotocol(f) => Some(*f),
            _ => None,
        })
        .collect();
    let announced_any = open.capabilities.iter().any(|c| {
        matches!(c, Capability::Multiprotocol(_))
            || matches!(c, Capability::Unknown { code: 1, .. })
    });
    if announced_any {
        set
    } else {
        BTreeSet::from([Family::Ipv4Unicast])
    }
}

fn has(open: &Open, want: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities.iter().any(want)
}

fn add_path(open: &Open) -> BTreeMap<Family, AddPathMode> {
    let mut m = BTreeMap::new();
    for c in &open.capabilities {
        if let Capability::AddPath(list) = c {
            m.extend(list.iter().copied());
        }
    }
    m
}

fn ext_nh_v4(open: &Open) -> bool {
    has(open, |c| match c {
        Capability::ExtendedNextHop(l) => l
            .iter()
            .any(|&(f, nh)| f == Family::Ipv4Unicast && nh == crate::types::afi::IPV6),
        _ => false,
    })
}

/// Negotiates our OPEN against the peer's.
pub fn negotiate(ours: &Open, theirs: &Open) -> Negotiated {
    let families: BTreeSet<Family> = families(ours)
        .intersection(&families(theirs))
        .copied()
        .collect();
    let both = |f: &dyn Fn(&Capability) -> bool| has(ours, f) && has(theirs, f);
    let four_octet_as = ours.four_octet_asn().is_some() && theirs.four_octet_asn().is_some();
    let (our_ap, their_ap) = (add_path(ours), add_path(theirs));
    let mut add_path = BTreeMap::new();
    let mut context = Context {
        four_octet_as,
        extended_next_hop_v4: ext_nh_v4(ours) && ext_nh_v4(theirs),
        extended_message: both(&|c| matches!(c, Capability::ExtendedMessage)),
        ..Context::default()
    };
    for f in &families {
        let (Some(o), Some(t)) = (our_ap.get(f), their_ap.get(f)) else {
            continue;
        };
        let rx = o.can_receive() && t.can_send();
        let tx = o.can_send() && t.can_receive();
        if rx {
            context.add_path_rx.insert(*f);
        }
        if tx {
            context.add_path_tx.insert(*f);
        }
        let mode = match (rx, tx) {
            (true, true) => Some(AddPathMode::Both),
            (true, false) => Some(AddPathMode::Receive),
            (false, true) => Some(AddPathMode::Send),
            (false, false) => None,
        };
        if let Some(m) = mode {
            add_path.insert(*f, m);
        }
    }
    Negotiated {
        families,
        route_refresh: both(&|c| matches!(c, Capability::RouteRefresh)),
        enhanced_route_refresh: both(&|c| matches!(c, Capability::EnhancedRouteRefresh)),
        four_octet_as,
        peer_graceful_restart: theirs.capabilities.iter().find_map(|c| match c {
            Capability::GracefulRestart(gr) => Some(gr.clone()),
            _ => None,
        }),
        add_path,
        extended_next_hop_v4: context.extended_next_hop_v4,
        extended_message: context.extended_message,
        hold_time: ours.hold_time.min(theirs.hold_time),
        context,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn open(caps: Vec<Capability>) -> Open {
        Open::new(65001, 90, Ipv4Addr::new(1, 1, 1, 1), caps)
    }

    #[test]
    fn full_negotiation() {
        let gr = GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: vec![(Family::Ipv4Unicast, true)],
        };
        let ours = open(vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::EnhancedRouteRefresh,
            Capability::FourOctetAs(65001),
            Capability::AddPath(vec![
                (Family::Ipv4Unicast, AddPathMode::Both),
                (Family::Ipv6Unicast, AddPathMode::Send),
            ]),
            Capability::ExtendedNextHop(vec![(Family::Ipv4Unicast, 2)]),
            Capability::ExtendedMessage,
        ]);
        let mut theirs = open(vec![
            Capability::Multiprotocol(Family::Ipv4Unicast),
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::RouteRefresh,
            Capability::FourOctetAs(4_200_000_000),
            Capability::AddPath(vec![
                (Family::Ipv4Unicast, AddPathMode::Send),
                (Family::Ipv6Unicast, AddPathMode::Both),
            ]),
            Capability::ExtendedNextHop(vec![(Family::Ipv4Unicast, 2)]),
            Capability::ExtendedMessage,
            Capability::GracefulRestart(gr.clone()),
        ]);
        theirs.hold_time = 30;
        let n = negotiate(&ours, &theirs);
        assert_eq!(n.families, BTreeSet::from(Family::ALL));
        assert!(n.route_refresh && !n.enhanced_route_refresh && n.four_octet_as);
        assert_eq!(n.peer_graceful_restart, Some(gr));
        assert_eq!(
            n.add_path,
            BTreeMap::from([
                (Family::Ipv4Unicast, AddPathMode::Receive),
                (Family::Ipv6Unicast, AddPathMode::Send)
            ])
        );
        assert_eq!(n.context.add_path_rx, BTreeSet::from([Family::Ipv4Unicast]));
        assert_eq!(n.context.add_path_tx, BTreeSet::from([Family::Ipv6Unicast]));
        assert!(
            n.context.extended_next_hop_v4 && n.context.extended_message && n.context.four_octet_as
        );
        assert_eq!(n.context.max_message_len(), 65535);
        assert_eq!(n.hold_time, 30);
    }

    #[test]
    fn no_capabilities_means_ipv4_and_defaults() {
        let ours = open(vec![
            Capability::Multiprotocol(Family::Ipv6Unicast),
            Capability::FourOctetAs(65001),
        ]);
        let n = negotiate(&ours, &open(vec![]));
        assert!(n.families.is_empty());
        assert_eq!(n.context, Context::default());
        let n = negotiate(&open(vec![]), &open(vec![]));
        assert_eq!(n.families, BTreeSet::from([Family::Ipv4Unicast]));
    }
}
