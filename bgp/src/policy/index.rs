//! A policy whose rules all decide (each one accepts or rejects, none
//! modifies a route) precomputed by prefix, so that the rule deciding a
//! route is found without trying every rule in turn: a 100-rule filter
//! costs a few table lookups per prefix, not 100 comparisons.
//!
//! Per family, each rule is filed by what it asks of the prefix:
//!
//! - nothing (no prefix condition): `always`, in order;
//! - one positive prefix condition (`Prefix`): under its network, in a
//!   table per network length — a prefix finds the rules whose network
//!   holds it by one lookup per length in use, its own address masked to
//!   that length (a bitmap of the networks' first 16 bits answers most
//!   lookups that find nothing before the table is hashed);
//! - one negated prefix condition (`NotPrefix`): `negated`, in order
//!   (such a rule matches nearly every prefix, so the first one mostly
//!   decides);
//! - anything else (several prefix conditions): `general`, tried in full.
//!
//! A rule that cannot match a family (a `Family` of the other one, a
//! network of the other family, [`Condition::Never`]) is not filed under
//! it. The deciding rule is the one of lowest index over the four; each
//! list is walked only up to the best found so far. Conditions on the
//! route rather than the prefix (its source, the session's kind,
//! communities…) are checked only for a rule the prefix selects.

use std::fmt;

use ipnet::IpNet;
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use super::{Condition, PolicyContext, PrefixMatch, Rule};
use crate::types::Family;
use crate::wire::PathAttributes;

/// See the module documentation.
pub(super) struct Index {
    /// By [`family_slot`].
    families: [FamilyIndex; 2],
    /// Per rule: it has conditions beyond the prefix's.
    on_route: Vec<bool>,
}

#[derive(Default)]
struct FamilyIndex {
    always: Vec<u32>,
    negated: Vec<(u32, PrefixMatch)>,
    /// By network length, ascending.
    by_len: Vec<Bucket>,
    general: Vec<u32>,
}

struct Bucket {
    len: u8,
    /// The network (masked address) → its rules, in order.
    nets: FxHashMap<u128, SmallVec<[Positive; 1]>>,
    /// Which first 16 bits the networks have: most prefixes are in no
    /// rule's network, and one bit (the bitmap stays in cache) says so
    /// without hashing.
    top16: Box<[u64; 1024]>,
}

impl Bucket {
    fn new(len: u8) -> Self {
        Bucket {
            len,
            nets: FxHashMap::default(),
            top16: Box::new([0; 1024]),
        }
    }

    fn insert(&mut self, net: u128, width: u8, rule: Positive) {
        let t = top16(net, width);
        self.top16[t / 64] |= 1 << (t % 64);
        self.nets.entry(net).or_default().push(rule);
    }

    /// The rules of network `net` (masked to this length).
    fn get(&self, net: u128, width: u8) -> Option<&SmallVec<[Positive; 1]>> {
        let t = top16(net, width);
        if self.top16[t / 64] & (1 << (t % 64)) == 0 {
            return None;
        }
        self.nets.get(&net)
    }
}

/// The first 16 bits of an address `width` bits wide.
fn top16(addr: u128, width: u8) -> usize {
    (addr >> (width - 16)) as usize & 0xffff
}

#[derive(Clone, Copy)]
struct Positive {
    rule: u32,
    lo: u8,
    hi: u8,
}

fn family_slot(f: Family) -> usize {
    match f {
        Family::Ipv4Unicast => 0,
        Family::Ipv6Unicast => 1,
    }
}

/// A prefix's address as bits, and its family's width.
fn bits(net: &IpNet) -> (u128, u8) {
    match net {
        IpNet::V4(n) => (u128::from(u32::from(n.addr())), 32),
        IpNet::V6(n) => (u128::from(n.addr()), 128),
    }
}

/// `addr` (of a family `width` bits wide) with all but its first `len` bits cleared.
fn masked(addr: u128, width: u8, len: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let keep = !0u128 << (u32::from(width) - u32::from(len).min(u32::from(width)));
    let family_mask = if width == 128 {
        !0u128
    } else {
        (1u128 << width) - 1
    };
    addr & keep & family_mask
}

/// What a rule asks of the prefix, for one family.
enum Filing {
    /// Cannot match this family.
    Never,
    Always,
    Positive(PrefixMatch),
    Negated(PrefixMatch),
    General,
}

fn filing(rule: &Rule, family: Family) -> Filing {
    let mut prefix = Vec::new();
    for c in &rule.conditions {
        match c {
            Condition::Never => return Filing::Never,
            Condition::Family(f) if *f != family => return Filing::Never,
            Condition::Prefix(m) if Family::of(&m.net) != family => return Filing::Never,
            // Never holds of a prefix of another family: true here.
            Condition::NotPrefix(m) if Family::of(&m.net) != family => {}
            Condition::Prefix(_) | Condition::NotPrefix(_) => prefix.push(c),
            _ => {}
        }
    }
    match prefix.as_slice() {
        [] => Filing::Always,
        [Condition::Prefix(m)] => Filing::Positive(*m),
        [Condition::NotPrefix(m)] => Filing::Negated(*m),
        _ => Filing::General,
    }
}

impl Index {
    /// The index of `rules`, or `None` when a rule does not decide (it
    /// modifies the route, or has no verdict) and the rules must be run
    /// in turn.
    pub(super) fn build(rules: &[Rule]) -> Option<Index> {
        if rules.iter().any(|r| r.verdict().is_none()) {
            return None;
        }
        let mut families: [FamilyIndex; 2] = Default::default();
        for family in Family::ALL {
            let fi = &mut families[family_slot(family)];
            for (i, rule) in rules.iter().enumerate() {
                let i = u32::try_from(i).ok()?;
                match filing(rule, family) {
                    Filing::Never => {}
                    Filing::Always => fi.always.push(i),
                    Filing::Negated(m) => fi.negated.push((i, m)),
                    Filing::General => fi.general.push(i),
                    Filing::Positive(m) => {
                        let (lo, hi) = m.lengths();
                        if lo > hi {
                            continue; // matches nothing
                        }
                        let len = m.net.prefix_len();
                        let at = match fi.by_len.binary_search_by_key(&len, |b| b.len) {
                            Ok(at) => at,
                            Err(at) => {
                                fi.by_len.insert(at, Bucket::new(len));
                                at
                            }
                        };
                        let (addr, width) = bits(&m.net);
                        fi.by_len[at].insert(
                            masked(addr, width, len),
                            width,
                            Positive { rule: i, lo, hi },
                        );
                    }
                }
            }
        }
        let on_route = rules
            .iter()
            .map(|r| r.conditions.iter().any(|c| !c.on_prefix()))
            .collect();
        Some(Index { families, on_route })
    }

    /// The first of `rules` (those the index was built from) that
    /// matches the route.
    pub(super) fn first(
        &self,
        rules: &[Rule],
        prefix: &IpNet,
        attrs: &PathAttributes,
        ctx: &PolicyContext,
    ) -> Option<usize> {
        let fi = &self.families[family_slot(Family::of(prefix))];
        // The rule's conditions on the route (the prefix's are known to hold).
        let route_ok = |i: u32| {
            let i = i as usize;
            !self.on_route[i]
                || rules[i]
                    .conditions
                    .iter()
                    .all(|c| c.on_prefix() || c.matches(prefix, attrs, ctx))
        };
        let mut best = u32::MAX;
        for &i in &fi.always {
            if i >= best {
                break;
            }
            if route_ok(i) {
                best = i;
                break;
            }
        }
        for (i, m) in &fi.negated {
            if *i >= best {
                break;
            }
            if !m.matches(prefix) && route_ok(*i) {
                best = *i;
                break;
            }
        }
        let len = prefix.prefix_len();
        let (addr, width) = bits(prefix);
        for b in &fi.by_len {
            if b.len > len {
                break;
            }
            let Some(rules_here) = b.get(masked(addr, width, b.len), width) else {
                continue;
            };
            for p in rules_here {
                if p.rule >= best {
                    break;
                }
                if (p.lo..=p.hi).contains(&len) && route_ok(p.rule) {
                    best = p.rule;
                    break;
                }
            }
        }
        for &i in &fi.general {
            if i >= best {
                break;
            }
            if rules[i as usize]
                .conditions
                .iter()
                .all(|c| c.matches(prefix, attrs, ctx))
            {
                best = i;
                break;
            }
        }
        (best != u32::MAX).then_some(best as usize)
    }
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [v4, v6] = &self.families;
        let count = |fi: &FamilyIndex| {
            fi.always.len()
                + fi.negated.len()
                + fi.general.len()
                + fi.by_len
                    .iter()
                    .map(|b| b.nets.values().map(SmallVec::len).sum::<usize>())
                    .sum::<usize>()
        };
        write!(
            f,
            "Index {{ ipv4: {} rules, ipv6: {} rules }}",
            count(v4),
            count(v6)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(masked(0x0a01_0203, 32, 8), 0x0a00_0000);
        assert_eq!(masked(0x0a01_0203, 32, 32), 0x0a01_0203);
        assert_eq!(masked(0x0a01_0203, 32, 0), 0);
        assert_eq!(masked(u128::MAX, 128, 1), 1u128 << 127);
        assert_eq!(masked(u128::MAX, 128, 128), u128::MAX);
    }
}
