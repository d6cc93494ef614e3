//! The inputs of the RIB: announcements and withdrawals from peers and
//! from ourselves, and their extraction from a decoded UPDATE.

use std::net::IpAddr;

use ipnet::IpNet;

use super::peer::PeerIndex;
use crate::wire::{Nlri, PathAttributes, Update};

/// One change to feed [`crate::rib::Rib::update`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RibChange {
    /// A peer announces `nlri` with these attributes (the prefixes replace
    /// any path the peer had for the same prefix and path ID).
    Announce {
        peer: PeerIndex,
        attrs: PathAttributes,
        next_hop: IpAddr,
        nlri: Vec<Nlri>,
    },
    /// A peer withdraws `nlri`.
    Withdraw { peer: PeerIndex, nlri: Vec<Nlri> },
    /// We originate `prefix`. Without a next hop the route is ours
    /// (unspecified address) and exports advertise our session address.
    Originate {
        prefix: IpNet,
        attrs: PathAttributes,
        next_hop: Option<IpAddr>,
    },
    /// We stop originating `prefix`.
    WithdrawLocal { prefix: IpNet },
}

/// The changes one UPDATE from `peer` carries: withdrawals first (classic
/// and MP_UNREACH, RFC 4760 §4), then the classic IPv4 NLRI with NEXT_HOP
/// (RFC 4271 §4.3) and the MP_REACH NLRI with its next hop (RFC 4760 §3).
/// IPv4 NLRI without a NEXT_HOP (which the codec should have refused) are
/// skipped.
pub fn changes_from_update(peer: PeerIndex, update: &Update) -> Vec<RibChange> {
    let mut out = Vec::new();
    if !update.withdrawn.is_empty() {
        out.push(RibChange::Withdraw {
            peer,
            nlri: update.withdrawn.clone(),
        });
    }
    if let Some(mp) = &update.mp_unreach {
        if !mp.withdrawn.is_empty() {
            out.push(RibChange::Withdraw {
                peer,
                nlri: mp.withdrawn.clone(),
            });
        }
    }
    if let (false, Some(nh)) = (update.nlri.is_empty(), update.attributes.next_hop) {
        out.push(RibChange::Announce {
            peer,
            attrs: update.attributes.clone(),
            next_hop: IpAddr::V4(nh),
            nlri: update.nlri.clone(),
        });
    }
    if let Some(mp) = &update.mp_reach {
        if !mp.nlri.is_empty() {
            out.push(RibChange::Announce {
                peer,
                attrs: update.attributes.clone(),
                next_hop: mp.next_hop,
                nlri: mp.nlri.clone(),
            });
        }
    }
    out
}
