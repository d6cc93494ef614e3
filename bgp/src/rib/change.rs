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
pub fn changes_from_update(peer: PeerIndex, update: Update) -> Vec<RibChange> {
    let mut out = Vec::new();
    let Update {
        withdrawn,
        attributes,
        nlri,
        mp_reach,
        mp_unreach,
    } = update;
    if !withdrawn.is_empty() {
        out.push(RibChange::Withdraw {
            peer,
            nlri: withdrawn,
        });
    }
    if let Some(mp) = mp_unreach {
        if !mp.withdrawn.is_empty() {
            out.push(RibChange::Withdraw {
                peer,
                nlri: mp.withdrawn,
            });
        }
    }
    let classic = match (nlri.is_empty(), attributes.next_hop) {
        (false, Some(nh)) => Some((IpAddr::V4(nh), nlri)),
        _ => None,
    };
    let mp = mp_reach.filter(|mp| !mp.nlri.is_empty());
    match (classic, mp) {
        (Some((next_hop, nlri)), Some(mp)) => {
            out.push(RibChange::Announce {
                peer,
                attrs: attributes.clone(),
                next_hop,
                nlri,
            });
            out.push(RibChange::Announce {
                peer,
                attrs: attributes,
                next_hop: mp.next_hop,
                nlri: mp.nlri,
            });
        }
        (Some((next_hop, nlri)), None) => out.push(RibChange::Announce {
            peer,
            attrs: attributes,
            next_hop,
            nlri,
        }),
        (None, Some(mp)) => out.push(RibChange::Announce {
            peer,
            attrs: attributes,
            next_hop: mp.next_hop,
            nlri: mp.nlri,
        }),
        (None, None) => {}
    }
    out
}
