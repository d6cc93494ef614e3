//! One allocation block's arithmetic, as Calico does it (libcalico-go
//! `ipam/ipam_block.go`), with no I/O.
//!
//! A block of 2^k addresses keeps, per ordinal, either nothing (free) or an
//! index into `attributes` (who holds it). Free ordinals are handed out
//! first-in-first-out: a new block lists them in address order, and a
//! released ordinal goes to the back, so an address is reused as late as
//! possible. Every write of the block bumps `sequenceNumber`; an allocation
//! records the number it was made under, so a release that carries a stale
//! number (the address was freed and reused since) is refused.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use manul_datastore::ipam::{AllocationAttribute, AllocationBlock};

/// Why a block operation could not be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("{ip} is not in block {block}")]
    NotInBlock { ip: IpAddr, block: IpNet },
    #[error("{ip} is already assigned (handle {handle:?})")]
    AlreadyAssigned { ip: IpAddr, handle: Option<String> },
    #[error("block {block} has {size} addresses; at most 2^20 are supported")]
    TooLarge { block: IpNet, size: u128 },
}

/// Number of addresses in a block.
pub fn size(cidr: &IpNet) -> u128 {
    1u128 << (cidr.max_prefix_len() - cidr.prefix_len())
}

/// The ordinal of `ip` in `cidr`, `None` outside it.
pub fn ordinal(cidr: &IpNet, ip: IpAddr) -> Option<u32> {
    if !cidr.contains(&ip) {
        return None;
    }
    let offset = match (cidr.network(), ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => u128::from(u32::from(a) - u32::from(n)),
        (IpAddr::V6(n), IpAddr::V6(a)) => u128::from(a) - u128::from(n),
        _ => return None,
    };
    u32::try_from(offset).ok()
}

/// The address at `ordinal` in `cidr` (wrapping is the caller's bug; the
/// ordinal must be below [`size`]).
pub fn address(cidr: &IpNet, ordinal: u32) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n).wrapping_add(ordinal))),
        IpAddr::V6(n) => IpAddr::V6(Ipv6Addr::from(
            u128::from(n).wrapping_add(u128::from(ordinal)),
        )),
    }
}

/// A new, empty block, affine to `node` if given.
pub fn new_block(cidr: IpNet, node: Option<&str>) -> Result<AllocationBlock, BlockError> {
    let n = size(&cidr);
    if n > 1 << 20 {
        return Err(BlockError::TooLarge {
            block: cidr,
            size: n,
        });
    }
    let n = n as u32;
    Ok(AllocationBlock {
        cidr,
        affinity: node.map(AllocationBlock::affinity_for),
        allocations: vec![None; n as usize],
        unallocated: (0..n).collect(),
        attributes: Vec::new(),
        sequence_number: 0,
        sequence_number_for_allocation: BTreeMap::new(),
        deleted: false,
        host_affinity: None,
        extra: Default::default(),
    })
}

/// Free addresses left.
pub fn free(block: &AllocationBlock) -> usize {
    block.unallocated.len()
}

/// Addresses in use.
pub fn in_use(block: &AllocationBlock) -> usize {
    block.allocations.iter().filter(|a| a.is_some()).count()
}

/// Nothing allocated: the block can be released.
pub fn is_empty(block: &AllocationBlock) -> bool {
    block.allocations.iter().all(Option::is_none)
}

/// The attribute record for (handle, attributes), reusing an identical one.
fn attribute_index(
    block: &mut AllocationBlock,
    handle: &str,
    secondary: &BTreeMap<String, String>,
) -> u32 {
    if let Some(i) = block
        .attributes
        .iter()
        .position(|a| a.handle_id.as_deref() == Some(handle) && a.secondary == *secondary)
    {
        return i as u32;
    }
    block.attributes.push(AllocationAttribute {
        handle_id: Some(handle.to_string()),
        secondary: secondary.clone(),
        extra: Default::default(),
    });
    (block.attributes.len() - 1) as u32
}

/// Assign up to `n` free addresses, oldest-freed first, to `handle`,
/// passing over addresses in `reserved` (they stay free, in their place,
/// as in Calico's `autoAssign` with reservations). Returns the addresses
/// (fewer than `n` when the block runs out). The caller bumps the
/// sequence number when it writes the block.
pub fn assign(
    block: &mut AllocationBlock,
    n: usize,
    handle: &str,
    secondary: &BTreeMap<String, String>,
    reserved: &[IpNet],
) -> Vec<IpAddr> {
    let cidr = block.cidr;
    let is_reserved = |o: u32| {
        let ip = address(&cidr, o);
        reserved.iter().any(|r| r.contains(&ip))
    };
    let mut ordinals: Vec<u32> = Vec::with_capacity(n.min(block.unallocated.len()));
    let mut keep: Vec<u32> = Vec::new();
    let mut taken = 0;
    for &o in &block.unallocated {
        if taken < n && !is_reserved(o) {
            ordinals.push(o);
            taken += 1;
        } else {
            keep.push(o);
        }
    }
    if ordinals.is_empty() {
        return Vec::new();
    }
    block.unallocated = keep;
    let index = attribute_index(block, handle, secondary);
    let seq = block.sequence_number;
    ordinals
        .into_iter()
        .map(|o| {
            if let Some(slot) = block.allocations.get_mut(o as usize) {
                *slot = Some(index);
            }
            block
                .sequence_number_for_allocation
                .insert(o.to_string(), seq);
            address(&block.cidr, o)
        })
        .collect()
}

/// Assign one specific address to `handle`.
pub fn assign_ip(
    block: &mut AllocationBlock,
    ip: IpAddr,
    handle: &str,
    secondary: &BTreeMap<String, String>,
) -> Result<(), BlockError> {
    let o = ordinal(&block.cidr, ip).ok_or(BlockError::NotInBlock {
        ip,
        block: block.cidr,
    })?;
    let Some(pos) = block.unallocated.iter().position(|&u| u == o) else {
        return Err(BlockError::AlreadyAssigned {
            ip,
            handle: holder(block, ip),
        });
    };
    block.unallocated.remove(pos);
    let index = attribute_index(block, handle, secondary);
    if let Some(slot) = block.allocations.get_mut(o as usize) {
        *slot = Some(index);
    }
    block
        .sequence_number_for_allocation
        .insert(o.to_string(), block.sequence_number);
    Ok(())
}

/// The handle holding `ip`, if it is assigned.
pub fn holder(block: &AllocationBlock, ip: IpAddr) -> Option<String> {
    attribute_of(block, ip).and_then(|a| a.handle_id.clone())
}

/// The attribute record of an assigned `ip`.
pub fn attribute_of(block: &AllocationBlock, ip: IpAddr) -> Option<&AllocationAttribute> {
    let o = ordinal(&block.cidr, ip)?;
    let index = (*block.allocations.get(o as usize)?)?;
    block.attributes.get(index as usize)
}

/// What happened to one address of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Released {
    /// Freed; it was held by this handle.
    Freed { handle: Option<String> },
    /// It was not assigned: nothing to do.
    NotAssigned,
    /// Reassigned since the caller looked (sequence number differs): kept.
    Reused,
}

/// Release addresses. With `expected_seq`, an address whose allocation
/// sequence number differs is left alone ([`Released::Reused`]). Freed
/// ordinals go to the back of the free list; attribute records nobody
/// references any more are removed.
pub fn release(
    block: &mut AllocationBlock,
    ips: &[(IpAddr, Option<u64>)],
) -> Vec<(IpAddr, Released)> {
    let mut out = Vec::with_capacity(ips.len());
    for &(ip, expected_seq) in ips {
        let result = match ordinal(&block.cidr, ip) {
            None => Released::NotAssigned,
            Some(o) => match block.allocations.get(o as usize).copied().flatten() {
                None => Released::NotAssigned,
                Some(index) => {
                    let recorded = block.sequence_number_for(o);
                    if expected_seq.is_some() && recorded.is_some() && expected_seq != recorded {
                        Released::Reused
                    } else {
                        let handle = block
                            .attributes
                            .get(index as usize)
                            .and_then(|a| a.handle_id.clone());
                        block.allocations[o as usize] = None;
                        block.unallocated.push(o);
                        block.sequence_number_for_allocation.remove(&o.to_string());
                        Released::Freed { handle }
                    }
                }
            },
        };
        out.push((ip, result));
    }
    compact_attributes(block);
    out
}

/// Every address `handle` holds in this block.
pub fn ips_of_handle(block: &AllocationBlock, handle: &str) -> Vec<IpAddr> {
    block
        .allocations
        .iter()
        .enumerate()
        .filter_map(|(o, a)| {
            let attr = block.attributes.get((*a)? as usize)?;
            (attr.handle_id.as_deref() == Some(handle)).then(|| address(&block.cidr, o as u32))
        })
        .collect()
}

/// Drop attribute records no allocation points at, renumbering the rest.
fn compact_attributes(block: &mut AllocationBlock) {
    let mut used = vec![false; block.attributes.len()];
    for i in block.allocations.iter().flatten() {
        if let Some(u) = used.get_mut(*i as usize) {
            *u = true;
        }
    }
    if used.iter().all(|&u| u) {
        return;
    }
    let mut new_index = vec![None; used.len()];
    let mut kept = Vec::new();
    for (i, attr) in std::mem::take(&mut block.attributes)
        .into_iter()
        .enumerate()
    {
        if used[i] {
            new_index[i] = Some(kept.len() as u32);
            kept.push(attr);
        }
    }
    block.attributes = kept;
    for a in block.allocations.iter_mut() {
        *a = a.and_then(|i| new_index.get(i as usize).copied().flatten());
    }
}

/// A block whose bookkeeping does not add up (for the leak check).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inconsistency {
    /// `allocations` has the wrong length for the CIDR.
    WrongSize { expected: u128, actual: usize },
    /// An ordinal is both allocated and listed free, or listed free twice.
    DoubleListed { ordinal: u32 },
    /// An ordinal is neither allocated nor listed free (a lost address).
    Lost { ordinal: u32 },
    /// An ordinal in `unallocated` beyond the block's size.
    OutOfRange { ordinal: u32 },
    /// An allocation points at a missing attribute record.
    DanglingAttribute { ordinal: u32, index: u32 },
}

/// Check a block's bookkeeping.
pub fn check(block: &AllocationBlock) -> Vec<Inconsistency> {
    let n = size(&block.cidr);
    let mut out = Vec::new();
    if block.allocations.len() as u128 != n {
        out.push(Inconsistency::WrongSize {
            expected: n,
            actual: block.allocations.len(),
        });
        return out;
    }
    let mut seen = vec![false; block.allocations.len()];
    for (o, a) in block.allocations.iter().enumerate() {
        if let Some(index) = a {
            seen[o] = true;
            if *index as usize >= block.attributes.len() {
                out.push(Inconsistency::DanglingAttribute {
                    ordinal: o as u32,
                    index: *index,
                });
            }
        }
    }
    for &o in &block.unallocated {
        match seen.get_mut(o as usize) {
            None => out.push(Inconsistency::OutOfRange { ordinal: o }),
            Some(s) if *s => out.push(Inconsistency::DoubleListed { ordinal: o }),
            Some(s) => *s = true,
        }
    }
    out.extend(
        seen.iter()
            .enumerate()
            .filter(|(_, s)| !**s)
            .map(|(o, _)| Inconsistency::Lost { ordinal: o as u32 }),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn attrs(pod: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("pod".to_string(), pod.to_string())])
    }

    #[test]
    fn ordinals_and_addresses_both_families() {
        let v4 = net("10.0.0.64/26");
        assert_eq!(size(&v4), 64);
        assert_eq!(ordinal(&v4, ip("10.0.0.64")), Some(0));
        assert_eq!(ordinal(&v4, ip("10.0.0.127")), Some(63));
        assert_eq!(ordinal(&v4, ip("10.0.0.128")), None);
        assert_eq!(address(&v4, 5), ip("10.0.0.69"));
        let v6 = net("fd00::100/122");
        assert_eq!(size(&v6), 64);
        assert_eq!(ordinal(&v6, ip("fd00::13f")), Some(63));
        assert_eq!(address(&v6, 1), ip("fd00::101"));
        assert_eq!(ordinal(&v6, ip("10.0.0.64")), None);
    }

    #[test]
    fn new_block_is_all_free_in_address_order() {
        let b = new_block(net("10.0.0.0/30"), Some("node1")).unwrap();
        assert_eq!(b.unallocated, [0, 1, 2, 3]);
        assert_eq!(b.allocations, [None; 4]);
        assert_eq!(b.host(), Some("node1"));
        assert!(check(&b).is_empty());
        assert!(new_block(net("10.0.0.0/8"), None).is_err());
    }

    #[test]
    fn assign_is_fifo_and_release_goes_to_the_back() {
        let mut b = new_block(net("10.0.0.0/30"), None).unwrap();
        let got = assign(&mut b, 2, "h1", &attrs("a"), &[]);
        assert_eq!(got, [ip("10.0.0.0"), ip("10.0.0.1")]);
        assert_eq!(b.attributes.len(), 1, "one record for one assignment");
        let freed = release(&mut b, &[(ip("10.0.0.0"), None)]);
        assert_eq!(
            freed[0].1,
            Released::Freed {
                handle: Some("h1".into())
            }
        );
        // .2 and .3 are older free addresses than .0: they go first.
        let got = assign(&mut b, 3, "h2", &attrs("b"), &[]);
        assert_eq!(got, [ip("10.0.0.2"), ip("10.0.0.3"), ip("10.0.0.0")]);
        assert!(
            assign(&mut b, 1, "h3", &attrs("c"), &[]).is_empty(),
            "block full"
        );
        assert!(check(&b).is_empty());
        assert_eq!(in_use(&b), 4);
        assert_eq!(holder(&b, ip("10.0.0.1")).as_deref(), Some("h1"));
    }

    #[test]
    fn specific_address_and_double_assignment() {
        let mut b = new_block(net("10.0.0.0/30"), None).unwrap();
        assign_ip(&mut b, ip("10.0.0.2"), "h", &attrs("a")).unwrap();
        assert_eq!(
            assign_ip(&mut b, ip("10.0.0.2"), "x", &attrs("b")),
            Err(BlockError::AlreadyAssigned {
                ip: ip("10.0.0.2"),
                handle: Some("h".into())
            })
        );
        assert!(matches!(
            assign_ip(&mut b, ip("10.0.1.2"), "x", &attrs("b")),
            Err(BlockError::NotInBlock { .. })
        ));
        assert_eq!(assign(&mut b, 4, "y", &attrs("c"), &[]).len(), 3);
    }

    #[test]
    fn release_with_a_stale_sequence_number_is_refused() {
        let mut b = new_block(net("10.0.0.0/30"), None).unwrap();
        b.sequence_number = 7;
        let a = assign(&mut b, 1, "h", &attrs("a"), &[])[0];
        assert_eq!(b.sequence_number_for(0), Some(7));
        assert_eq!(release(&mut b, &[(a, Some(6))])[0].1, Released::Reused);
        assert_eq!(in_use(&b), 1);
        assert_eq!(
            release(&mut b, &[(a, Some(7))])[0].1,
            Released::Freed {
                handle: Some("h".into())
            }
        );
        assert_eq!(release(&mut b, &[(a, None)])[0].1, Released::NotAssigned);
        assert!(is_empty(&b));
    }

    #[test]
    fn unused_attribute_records_are_dropped_and_indices_renumbered() {
        let mut b = new_block(net("10.0.0.0/29"), None).unwrap();
        let a = assign(&mut b, 2, "h1", &attrs("a"), &[]);
        let c = assign(&mut b, 2, "h2", &attrs("b"), &[]);
        release(&mut b, &[(a[0], None), (a[1], None)]);
        assert_eq!(b.attributes.len(), 1);
        assert_eq!(holder(&b, c[0]).as_deref(), Some("h2"));
        assert_eq!(ips_of_handle(&b, "h2"), c);
        assert!(check(&b).is_empty());
    }

    #[test]
    fn check_finds_lost_double_and_dangling() {
        let mut b = new_block(net("10.0.0.0/30"), None).unwrap();
        b.unallocated = vec![0, 0, 9];
        b.allocations[1] = Some(3);
        let problems = check(&b);
        assert!(problems.contains(&Inconsistency::DoubleListed { ordinal: 0 }));
        assert!(problems.contains(&Inconsistency::OutOfRange { ordinal: 9 }));
        assert!(problems.contains(&Inconsistency::DanglingAttribute {
            ordinal: 1,
            index: 3
        }));
        assert!(problems.contains(&Inconsistency::Lost { ordinal: 2 }));
    }

    proptest::proptest! {
        /// Any sequence of assigns and releases keeps the block consistent
        /// and never hands out an address twice.
        #[test]
        fn random_operations_keep_the_bookkeeping(ops in proptest::collection::vec((0u8..3, 0usize..5), 1..60)) {
            let mut b = new_block(net("10.0.0.0/28"), None).unwrap();
            let mut held: Vec<IpAddr> = Vec::new();
            for (i, (op, n)) in ops.into_iter().enumerate() {
                b.sequence_number += 1;
                if op < 2 {
                    for a in assign(&mut b, n, &format!("h{i}"), &attrs("p"), &[]) {
                        proptest::prop_assert!(!held.contains(&a), "{a} handed out twice");
                        held.push(a);
                    }
                } else if !held.is_empty() {
                    let a = held.remove(n % held.len());
                    let freed = matches!(release(&mut b, &[(a, None)])[0].1, Released::Freed { .. });
                    proptest::prop_assert!(freed, "releasing a held address must free it");
                }
                proptest::prop_assert!(check(&b).is_empty());
                proptest::prop_assert_eq!(in_use(&b), held.len());
            }
        }
    }

    #[test]
    fn reserved_free_addresses_are_passed_over_and_stay_free_in_place() {
        let mut b = new_block("10.0.0.0/29".parse().unwrap(), Some("h")).unwrap();
        let reserved: Vec<IpNet> = vec![
            "10.0.0.0/31".parse().unwrap(),
            "10.0.0.3/32".parse().unwrap(),
        ];
        let got = assign(&mut b, 3, "h1", &attrs("a"), &reserved);
        assert_eq!(
            got,
            ["10.0.0.2", "10.0.0.4", "10.0.0.5"].map(|s| s.parse::<IpAddr>().unwrap())
        );
        assert_eq!(b.unallocated, [0, 1, 3, 6, 7]);
        let got = assign(&mut b, 5, "h2", &attrs("b"), &reserved);
        assert_eq!(got.len(), 2, "only .6 and .7 are left unreserved");
        assert!(assign(&mut b, 1, "h3", &attrs("c"), &reserved).is_empty());
        assert_eq!(b.unallocated, [0, 1, 3]);
        assert!(check(&b).is_empty(), "{:?}", check(&b));
    }
}
