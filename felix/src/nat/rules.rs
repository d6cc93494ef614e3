//! What the NAT table should hold, from the pools (pure), and the
//! difference to what it holds.
//!
//! Calico's rule (felix's `masqManager`): traffic from an address in a
//! pool with `natOutgoing` to a destination outside every pool is
//! masqueraded to the host's address. Two sets per family say it: the
//! pools with `natOutgoing` (`masq-ipam-pools-v4`, Calico's
//! `cali40masq-ipam-pools`) and every pool, disabled ones included
//! (`all-ipam-pools-v4`, `cali40all-ipam-pools`). A disabled pool with
//! `natOutgoing` still masquerades, as in Calico: its existing pods keep
//! their way out.
//!
//! The sets are nftables interval sets: a pool is a range of addresses,
//! and overlapping or adjacent pools are merged into one range (an
//! interval set holds disjoint ranges), so a set's membership is the union
//! of its pools, as with Calico's `hash:net` ipsets.

use std::collections::BTreeMap;

use ipnet::IpNet;

use crate::desired::Pool;

/// An inclusive range of addresses of one family (IPv4 in the low 32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Range {
    /// First address.
    pub start: u128,
    /// Last address.
    pub end: u128,
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// Address length in bytes.
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The highest address.
    pub fn max(self) -> u128 {
        match self {
            Family::V4 => u128::from(u32::MAX),
            Family::V6 => u128::MAX,
        }
    }

    /// `addr` as bytes in network order.
    pub fn bytes(self, addr: u128) -> Vec<u8> {
        match self {
            Family::V4 => (addr as u32).to_be_bytes().to_vec(),
            Family::V6 => addr.to_be_bytes().to_vec(),
        }
    }

    /// Bytes in network order as an address; `None` when the length is wrong.
    pub fn addr(self, bytes: &[u8]) -> Option<u128> {
        match self {
            Family::V4 => Some(u128::from(u32::from_be_bytes(bytes.try_into().ok()?))),
            Family::V6 => Some(u128::from_be_bytes(bytes.try_into().ok()?)),
        }
    }
}

/// One of manul's four sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SetId {
    /// IPv4 pools with `natOutgoing`.
    MasqV4,
    /// Every IPv4 pool.
    AllV4,
    /// IPv6 pools with `natOutgoing`.
    MasqV6,
    /// Every IPv6 pool.
    AllV6,
}

impl SetId {
    /// Every set, in the order they are made.
    pub const ALL: [SetId; 4] = [SetId::MasqV4, SetId::AllV4, SetId::MasqV6, SetId::AllV6];

    /// Its name in the table.
    pub fn name(self) -> &'static str {
        match self {
            SetId::MasqV4 => "masq-ipam-pools-v4",
            SetId::AllV4 => "all-ipam-pools-v4",
            SetId::MasqV6 => "masq-ipam-pools-v6",
            SetId::AllV6 => "all-ipam-pools-v6",
        }
    }

    /// The set named `name`, if it is one of manul's.
    pub fn from_name(name: &str) -> Option<SetId> {
        SetId::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Its family.
    pub fn family(self) -> Family {
        match self {
            SetId::MasqV4 | SetId::AllV4 => Family::V4,
            SetId::MasqV6 | SetId::AllV6 => Family::V6,
        }
    }
}

/// The range a prefix covers.
pub fn range_of(net: &IpNet) -> (Family, Range) {
    match net.trunc() {
        IpNet::V4(n) => (
            Family::V4,
            Range {
                start: u128::from(u32::from(n.network())),
                end: u128::from(u32::from(n.broadcast())),
            },
        ),
        IpNet::V6(n) => (
            Family::V6,
            Range {
                start: u128::from(n.network()),
                end: u128::from(n.broadcast()),
            },
        ),
    }
}

/// Sort and merge overlapping or adjacent ranges.
pub fn merge(mut ranges: Vec<Range>) -> Vec<Range> {
    ranges.sort();
    let mut out: Vec<Range> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(1) => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

/// What manul's NAT table should hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatDesired {
    /// Each set's ranges (merged, sorted).
    pub sets: BTreeMap<SetId, Vec<Range>>,
    /// The pools with `natOutgoing`, for reports.
    pub nat_pools: Vec<IpNet>,
    /// Every pool, for reports.
    pub pools: Vec<IpNet>,
}

/// The table's contents from the pools: see the module docs.
pub fn desired(pools: &[Pool]) -> NatDesired {
    let mut raw: BTreeMap<SetId, Vec<Range>> = SetId::ALL.iter().map(|s| (*s, vec![])).collect();
    let mut out = NatDesired::default();
    for p in pools {
        let (family, range) = range_of(&p.cidr);
        let (masq, all) = match family {
            Family::V4 => (SetId::MasqV4, SetId::AllV4),
            Family::V6 => (SetId::MasqV6, SetId::AllV6),
        };
        raw.entry(all).or_default().push(range);
        out.pools.push(p.cidr.trunc());
        if p.nat_outgoing {
            raw.entry(masq).or_default().push(range);
            out.nat_pools.push(p.cidr.trunc());
        }
    }
    out.sets = raw.into_iter().map(|(s, r)| (s, merge(r))).collect();
    out.pools.sort();
    out.pools.dedup();
    out.nat_pools.sort();
    out.nat_pools.dedup();
    out
}

/// One element of an interval set: a range starts at its key, and an
/// element flagged as an interval end closes the range before its key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    /// The address, in network order.
    pub key: Vec<u8>,
    /// An interval end (`NFT_SET_ELEM_INTERVAL_END`).
    pub end: bool,
}

/// The elements that make `ranges`: a start per range, and an end one
/// past it unless the range runs to the family's last address (then the
/// interval is open, as nft makes it).
pub fn elements(family: Family, ranges: &[Range]) -> Vec<Element> {
    let mut out = Vec::with_capacity(ranges.len() * 2);
    for r in ranges {
        out.push(Element {
            key: family.bytes(r.start),
            end: false,
        });
        if r.end < family.max() {
            out.push(Element {
                key: family.bytes(r.end + 1),
                end: true,
            });
        }
    }
    out
}

/// The ranges a dump's elements make (the inverse of [`elements`]). An
/// end with no open range before it (nft's leading `0.0.0.0` end, say)
/// closes nothing and is ignored; elements of the wrong length are too.
pub fn ranges(family: Family, elements: &[Element]) -> Vec<Range> {
    let mut keyed: Vec<(u128, bool)> = elements
        .iter()
        .filter_map(|e| Some((family.addr(&e.key)?, e.end)))
        .collect();
    // At one address an end comes before a start: [a, k-1] then [k, ..].
    keyed.sort_by_key(|(k, end)| (*k, !*end));
    let mut out = Vec::new();
    let mut open: Option<u128> = None;
    for (k, end) in keyed {
        match (end, open) {
            (true, Some(start)) if k > start => {
                out.push(Range { start, end: k - 1 });
                open = None;
            }
            (true, _) => {}
            (false, Some(_)) => {} // a start inside an open range: already covered
            (false, None) => open = Some(k),
        }
    }
    if let Some(start) = open {
        out.push(Range {
            start,
            end: family.max(),
        });
    }
    out
}

/// What the kernel holds of manul's table, as far as the plan cares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actual {
    /// Whether the table exists.
    pub table: bool,
    /// Why its chain, rules or sets are not as manul makes them (`None`:
    /// they are; only set elements may differ).
    pub damage: Option<String>,
    /// Each set's ranges as the kernel holds them.
    pub sets: BTreeMap<SetId, Vec<Range>>,
}

/// The ranges to add to and delete from one set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetChange {
    pub add: Vec<Range>,
    pub delete: Vec<Range>,
}

/// How to bring the kernel to the desired table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// It is right.
    Nothing,
    /// There is no table: make it whole.
    Create,
    /// The table's structure is wrong (someone changed it): delete it and
    /// make it again, in one transaction.
    Rebuild(String),
    /// Only set elements differ: add and delete those ranges.
    Elements(BTreeMap<SetId, SetChange>),
}

/// The plan from `actual` to `desired` (pure).
pub fn plan(desired: &NatDesired, actual: &Actual) -> Plan {
    if !actual.table {
        return Plan::Create;
    }
    if let Some(why) = &actual.damage {
        return Plan::Rebuild(why.clone());
    }
    let mut changes = BTreeMap::new();
    for set in SetId::ALL {
        let want = desired.sets.get(&set).map(Vec::as_slice).unwrap_or(&[]);
        let have = actual.sets.get(&set).map(Vec::as_slice).unwrap_or(&[]);
        let change = SetChange {
            add: want.iter().filter(|r| !have.contains(r)).copied().collect(),
            delete: have.iter().filter(|r| !want.contains(r)).copied().collect(),
        };
        if !change.add.is_empty() || !change.delete.is_empty() {
            changes.insert(set, change);
        }
    }
    if changes.is_empty() {
        Plan::Nothing
    } else {
        Plan::Elements(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::Encap;

    fn pool(cidr: &str, nat: bool) -> Pool {
        Pool {
            name: cidr.into(),
            cidr: cidr.parse().unwrap(),
            ipip: Encap::Never,
            vxlan: Encap::Never,
            nat_outgoing: nat,
        }
    }

    fn r(net: &str) -> Range {
        range_of(&net.parse().unwrap()).1
    }

    #[test]
    fn nat_pools_and_all_pools_per_family_merged() {
        let d = desired(&[
            pool("10.65.0.0/16", true),
            pool("10.70.0.0/16", false),
            // adjacent to the first: one range
            pool("10.66.0.0/16", true),
            pool("fd00:65::/48", true),
            // inside the first: nothing new
            pool("10.65.1.0/24", false),
        ]);
        assert_eq!(
            d.sets[&SetId::MasqV4],
            vec![Range {
                start: r("10.65.0.0/16").start,
                end: r("10.66.0.0/16").end
            }]
        );
        assert_eq!(d.sets[&SetId::AllV4].len(), 2);
        assert_eq!(d.sets[&SetId::AllV4][1], r("10.70.0.0/16"));
        assert_eq!(d.sets[&SetId::MasqV6], vec![r("fd00:65::/48")]);
        assert_eq!(d.sets[&SetId::AllV6], vec![r("fd00:65::/48")]);
        assert_eq!(d.nat_pools.len(), 3);
        assert_eq!(d.pools.len(), 5);
        // No pools: four empty sets.
        assert!(desired(&[]).sets.values().all(Vec::is_empty));
        assert_eq!(desired(&[]).sets.len(), 4);
    }

    #[test]
    fn elements_round_trip_including_open_ends() {
        let ranges = vec![r("10.65.0.0/16"), r("255.255.255.0/24")];
        let e = elements(Family::V4, &ranges);
        assert_eq!(
            e,
            vec![
                Element {
                    key: vec![10, 65, 0, 0],
                    end: false
                },
                Element {
                    key: vec![10, 66, 0, 0],
                    end: true
                },
                // runs to the last address: no end element
                Element {
                    key: vec![255, 255, 255, 0],
                    end: false
                },
            ]
        );
        assert_eq!(super::ranges(Family::V4, &e), ranges);
        // nft's leading end at 0.0.0.0 closes nothing; dump order does
        // not matter.
        let mut nft = e.clone();
        nft.insert(
            0,
            Element {
                key: vec![0; 4],
                end: true,
            },
        );
        nft.reverse();
        assert_eq!(super::ranges(Family::V4, &nft), ranges);
        let v6 = vec![r("fd00:65::/48")];
        assert_eq!(super::ranges(Family::V6, &elements(Family::V6, &v6)), v6);
    }

    #[test]
    fn plans_creation_rebuild_and_only_the_changed_ranges() {
        let d = desired(&[pool("10.65.0.0/16", true), pool("10.70.0.0/16", false)]);
        assert_eq!(plan(&d, &Actual::default()), Plan::Create);
        let right = Actual {
            table: true,
            damage: None,
            sets: d.sets.clone(),
        };
        assert_eq!(plan(&d, &right), Plan::Nothing);
        let damaged = Actual {
            damage: Some("chain nat-outgoing missing".into()),
            ..right.clone()
        };
        assert_eq!(
            plan(&d, &damaged),
            Plan::Rebuild("chain nat-outgoing missing".into())
        );
        // natOutgoing turned off for 10.65.0.0/16: one range leaves one set.
        let off = desired(&[pool("10.65.0.0/16", false), pool("10.70.0.0/16", false)]);
        let Plan::Elements(changes) = plan(&off, &right) else {
            panic!("{:?}", plan(&off, &right))
        };
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[&SetId::MasqV4],
            SetChange {
                add: vec![],
                delete: vec![r("10.65.0.0/16")]
            }
        );
    }
}
