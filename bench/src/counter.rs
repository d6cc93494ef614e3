//! The sink's view of the table: the set of prefixes announced and not
//! withdrawn since the session came up, whatever UPDATE field carried them.

use ipnet::IpNet;
use manul_bgp::wire::Update;
use rustc_hash::FxHashSet;

/// Prefixes currently announced by the peer.
#[derive(Debug, Default)]
pub struct PrefixSet {
    set: FxHashSet<IpNet>,
    /// UPDATEs applied, End-of-RIB included.
    pub updates: u64,
    /// An End-of-RIB marker was seen.
    pub end_of_rib: bool,
}

impl PrefixSet {
    /// Apply one (effective, RFC 7606-treated) UPDATE.
    pub fn apply(&mut self, u: &Update) {
        self.updates += 1;
        if u.end_of_rib().is_some() {
            self.end_of_rib = true;
            return;
        }
        let withdrawn = u
            .withdrawn
            .iter()
            .chain(u.mp_unreach.iter().flat_map(|m| &m.withdrawn));
        for n in withdrawn {
            self.set.remove(&n.prefix);
        }
        let announced = u.nlri.iter().chain(u.mp_reach.iter().flat_map(|m| &m.nlri));
        for n in announced {
            self.set.insert(n.prefix);
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use manul_bgp::wire::Nlri;

    #[test]
    fn withdrawals_and_reannouncements_count_once() {
        let p = |s: &str| Nlri::new(s.parse().unwrap());
        let mut set = PrefixSet::default();
        set.apply(&Update {
            nlri: vec![p("11.0.0.0/24"), p("11.0.1.0/24")],
            ..Update::default()
        });
        set.apply(&Update {
            nlri: vec![p("11.0.1.0/24")],
            withdrawn: vec![p("11.0.0.0/24")],
            ..Update::default()
        });
        assert_eq!(set.len(), 1);
        set.apply(&Update::default());
        assert!(set.end_of_rib);
        assert_eq!(set.updates, 3);
    }
}
