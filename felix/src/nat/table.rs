//! manul's nftables table: its layout, the netlink messages that make and
//! change it, and what a dump of it says (pure; no sockets here).
//!
//! ```text
//! table inet manul {
//!     set masq-ipam-pools-v4 { type ipv4_addr; flags interval; }   # natOutgoing pools
//!     set all-ipam-pools-v4  { type ipv4_addr; flags interval; }   # every pool
//!     set masq-ipam-pools-v6 { type ipv6_addr; flags interval; }
//!     set all-ipam-pools-v6  { type ipv6_addr; flags interval; }
//!     chain nat-outgoing {
//!         type nat hook postrouting priority srcnat; policy accept;
//!         ip saddr @masq-ipam-pools-v4 ip daddr != @all-ipam-pools-v4 counter masquerade fully-random
//!         ip6 saddr @masq-ipam-pools-v6 ip6 daddr != @all-ipam-pools-v6 counter masquerade fully-random
//!     }
//! }
//! ```
//!
//! Calico's `cali-nat-outgoing` chain with its two ipsets per family, as
//! one `inet` table of manul's own: the table is manul's whole, so anything
//! else found in it (a rule, a chain, a set someone added) is damage and
//! goes at the next repair. `fully-random` as Calico's felix masquerades
//! when the kernel can (every kernel manul runs on). The counters are
//! for people (`nft list table inet manul`); they are not compared.
//!
//! A dump is read into [`Actual`]: the table's presence, whether its
//! structure is manul's ([`Actual::damage`] says what is not), and each
//! set's ranges. Rules are compared by a fingerprint of their expressions
//! (name and attributes, without what the kernel adds or drops on its own:
//! counter values, a lookup's set id, zero flags).

use std::collections::BTreeMap;

use netlink_packet_core::{
    DefaultNla, Emitable, NLM_F_APPEND, NLM_F_CREATE, NlaBuffer, NlasIterator,
};
use netlink_packet_netfilter::nftables::{
    ChainAttribute, ChainMessage, Cmp, DataAttribute, ExpressionAttribute, Expressions, Hook,
    InetHookNumber, ListAttribute, Lookup, Meta, MetaKey, NfTablesMessage, Operator, Payload,
    Register, RuleAttribute, RuleMessage, SetAttribute, SetElementAttribute, SetElementFlags,
    SetElementList, SetElementMessage, SetFlags, SetMessage, TableAttribute, TableFlags,
    TableMessage,
};

use super::rules::{Actual, Element, Family, NatDesired, Range, SetChange, SetId, elements};

/// The table's name (family `inet`).
pub const TABLE: &str = "manul";
/// The chain (Calico's `cali-nat-outgoing`).
pub const CHAIN: &str = "nat-outgoing";
/// `srcnat`: the priority of NAT at postrouting.
pub const PRIORITY_SRCNAT: i32 = 100;

const NF_ACCEPT: u32 = 1;
const NF_INET_POST_ROUTING: u32 = 4;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
/// nftables data types of set keys (nft's `ipv4_addr`, `ipv6_addr`).
const TYPE_IPV4_ADDR: u32 = 7;
const TYPE_IPV6_ADDR: u32 = 8;
const NFT_LOOKUP_F_INV: u32 = 1;
const NFTA_LOOKUP_SET_ID: u16 = 4;
const NFTA_LOOKUP_FLAGS: u16 = 5;
const NFTA_MASQ_FLAGS: u16 = 1;
const NF_NAT_RANGE_PROTO_RANDOM_FULLY: u32 = 1 << 4;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// `NFT_PAYLOAD_NETWORK_HEADER`.
const NETWORK_HEADER: u32 = 1;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One message of a write, with its netlink flags (besides
/// `NLM_F_REQUEST | NLM_F_ACK`, which every one gets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub msg: NfTablesMessage,
    pub flags: u16,
}

fn req(msg: NfTablesMessage, flags: u16) -> Request {
    Request { msg, flags }
}

fn key_type(f: Family) -> u32 {
    match f {
        Family::V4 => TYPE_IPV4_ADDR,
        Family::V6 => TYPE_IPV6_ADDR,
    }
}

/// The table itself.
pub fn table_msg() -> NfTablesMessage {
    NfTablesMessage::NewTable(TableMessage {
        attributes: vec![
            TableAttribute::Name(TABLE.into()),
            TableAttribute::Flags(TableFlags::default()),
        ],
    })
}

/// Delete the table and everything in it.
pub fn delete_table() -> NfTablesMessage {
    NfTablesMessage::DeleteTable(TableMessage {
        attributes: vec![TableAttribute::Name(TABLE.into())],
    })
}

/// Set `s` (empty).
pub fn set_msg(s: SetId) -> NfTablesMessage {
    let f = s.family();
    NfTablesMessage::NewSet(SetMessage {
        attributes: vec![
            SetAttribute::Table(TABLE.into()),
            SetAttribute::Name(s.name().into()),
            SetAttribute::Flags(SetFlags::Interval),
            SetAttribute::KeyType(key_type(f)),
            SetAttribute::KeyLen(f.addr_len() as u32),
            SetAttribute::Id(set_tx_id(s)),
        ],
    })
}

/// An id for the set within a transaction (nft gives one too).
fn set_tx_id(s: SetId) -> u32 {
    SetId::ALL.iter().position(|x| *x == s).unwrap_or(0) as u32 + 1
}

fn element_list(s: SetId, elems: &[Element]) -> Vec<SetElementList> {
    vec![
        SetElementList::Table(TABLE.into()),
        SetElementList::Set(s.name().into()),
        SetElementList::Elements(
            elems
                .iter()
                .map(|e| {
                    let mut attrs = vec![SetElementAttribute::Key(DataAttribute::Value(
                        e.key.clone(),
                    ))];
                    if e.end {
                        attrs.push(SetElementAttribute::Flags(SetElementFlags::IntervalEnd));
                    }
                    ListAttribute::Element(attrs)
                })
                .collect(),
        ),
    ]
}

/// Add `ranges` to set `s` (none: no message).
pub fn add_ranges(s: SetId, ranges: &[Range]) -> Option<Request> {
    let elems = elements(s.family(), ranges);
    (!elems.is_empty()).then(|| {
        req(
            NfTablesMessage::NewSetElement(SetElementMessage {
                attributes: element_list(s, &elems),
            }),
            NLM_F_CREATE,
        )
    })
}

/// Delete `ranges` from set `s` (none: no message).
pub fn delete_ranges(s: SetId, ranges: &[Range]) -> Option<Request> {
    let elems = elements(s.family(), ranges);
    (!elems.is_empty()).then(|| {
        req(
            NfTablesMessage::DeleteSetElement(SetElementMessage {
                attributes: element_list(s, &elems),
            }),
            0,
        )
    })
}

/// The chain: a base chain at postrouting, type nat, priority srcnat.
pub fn chain_msg() -> NfTablesMessage {
    NfTablesMessage::NewChain(ChainMessage {
        attributes: vec![
            ChainAttribute::Table(TABLE.into()),
            ChainAttribute::Name(CHAIN.into()),
            ChainAttribute::Hook(vec![
                Hook::Number(InetHookNumber::PostRouting.into()),
                Hook::Priority(PRIORITY_SRCNAT as u32),
            ]),
            ChainAttribute::Policy(NF_ACCEPT),
            ChainAttribute::Type("nat".into()),
        ],
    })
}

fn expr(e: Expressions) -> ListAttribute<ExpressionAttribute> {
    e.into()
}

fn named(name: &str, attributes: Vec<DefaultNla>) -> ListAttribute<ExpressionAttribute> {
    let mut attrs = vec![ExpressionAttribute::Name(name.into())];
    if !attributes.is_empty() {
        attrs.push(ExpressionAttribute::Data(Expressions::Other {
            expression_type: name.into(),
            attributes,
        }));
    }
    ListAttribute::Element(attrs)
}

/// `ip saddr @masq ip daddr != @all counter masquerade fully-random` (or
/// its `ip6` twin), as the expressions nft makes of it.
pub fn rule_expressions(f: Family) -> Vec<ListAttribute<ExpressionAttribute>> {
    let (proto, saddr, daddr, len, masq, all) = match f {
        Family::V4 => (NFPROTO_IPV4, 12, 16, 4, SetId::MasqV4, SetId::AllV4),
        Family::V6 => (NFPROTO_IPV6, 8, 24, 16, SetId::MasqV6, SetId::AllV6),
    };
    let load = |offset: u32| {
        expr(Expressions::Payload(vec![
            Payload::DestinationRegister(Register::Reg1),
            Payload::Base(NETWORK_HEADER),
            Payload::Offset(offset),
            Payload::Len(len),
        ]))
    };
    vec![
        expr(Expressions::Meta(vec![
            Meta::Key(MetaKey::Nfproto),
            Meta::DestinationRegister(Register::Reg1),
        ])),
        expr(Expressions::Cmp(vec![
            Cmp::SourceRegister(Register::Reg1),
            Cmp::Op(Operator::Equal),
            Cmp::Data(DataAttribute::Value(vec![proto])),
        ])),
        load(saddr),
        expr(Expressions::Lookup(vec![
            Lookup::Set(masq.name().into()),
            Lookup::SourceRegister(Register::Reg1),
        ])),
        load(daddr),
        expr(Expressions::Lookup(vec![
            Lookup::Set(all.name().into()),
            Lookup::SourceRegister(Register::Reg1),
            Lookup::Flags(NFT_LOOKUP_F_INV),
        ])),
        named("counter", vec![]),
        named(
            "masq",
            vec![DefaultNla::new(
                NFTA_MASQ_FLAGS,
                NF_NAT_RANGE_PROTO_RANDOM_FULLY.to_be_bytes().to_vec(),
            )],
        ),
    ]
}

/// The rule for family `f`.
pub fn rule_msg(f: Family) -> NfTablesMessage {
    NfTablesMessage::NewRule(RuleMessage {
        attributes: vec![
            RuleAttribute::Table(TABLE.into()),
            RuleAttribute::Chain(CHAIN.into()),
            RuleAttribute::Expressions(rule_expressions(f)),
        ],
    })
}

/// The whole table from nothing: table, sets with their elements, chain,
/// rules.
pub fn create(desired: &NatDesired) -> Vec<Request> {
    let mut out = vec![req(table_msg(), NLM_F_CREATE)];
    for s in SetId::ALL {
        out.push(req(set_msg(s), NLM_F_CREATE));
        let ranges = desired.sets.get(&s).map(Vec::as_slice).unwrap_or(&[]);
        out.extend(add_ranges(s, ranges));
    }
    out.push(req(chain_msg(), NLM_F_CREATE));
    for f in [Family::V4, Family::V6] {
        out.push(req(rule_msg(f), NLM_F_CREATE | NLM_F_APPEND));
    }
    out
}

/// Delete the table and make it again, in one transaction.
pub fn rebuild(desired: &NatDesired) -> Vec<Request> {
    let mut out = vec![req(delete_table(), 0)];
    out.extend(create(desired));
    out
}

/// Element changes: every delete before any add (a range that grows is
/// deleted and added whole).
pub fn element_changes(changes: &BTreeMap<SetId, SetChange>) -> Vec<Request> {
    let dels = changes
        .iter()
        .filter_map(|(s, c)| delete_ranges(*s, &c.delete));
    let adds = changes.iter().filter_map(|(s, c)| add_ranges(*s, &c.add));
    dels.chain(adds).collect()
}

/// What a dump of the table returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    /// The table, `None` when the kernel has none (`ENOENT`).
    pub table: Option<TableMessage>,
    /// Chains of family `inet` (others' tables included; filtered here).
    pub chains: Vec<ChainMessage>,
    /// Sets.
    pub sets: Vec<SetMessage>,
    /// Rules.
    pub rules: Vec<RuleMessage>,
    /// Elements of each of manul's sets that exists.
    pub elements: BTreeMap<SetId, Vec<SetElementMessage>>,
}

fn chain_table(c: &ChainMessage) -> Option<&str> {
    c.attributes.iter().find_map(|a| match a {
        ChainAttribute::Table(t) => Some(t.as_str()),
        _ => None,
    })
}

fn chain_name(c: &ChainMessage) -> Option<&str> {
    c.attributes.iter().find_map(|a| match a {
        ChainAttribute::Name(n) => Some(n.as_str()),
        _ => None,
    })
}

fn set_table(s: &SetMessage) -> Option<&str> {
    s.attributes.iter().find_map(|a| match a {
        SetAttribute::Table(t) => Some(t.as_str()),
        _ => None,
    })
}

fn set_name(s: &SetMessage) -> Option<&str> {
    s.attributes.iter().find_map(|a| match a {
        SetAttribute::Name(n) => Some(n.as_str()),
        _ => None,
    })
}

fn rule_table(r: &RuleMessage) -> Option<&str> {
    r.attributes.iter().find_map(|a| match a {
        RuleAttribute::Table(t) => Some(t.as_str()),
        _ => None,
    })
}

/// `(kind, value)` of each attribute in `bytes` (a nested attribute's
/// payload), the kind without its flag bits.
fn raw_attrs(bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    NlasIterator::new(bytes)
        .filter_map(Result::ok)
        .map(|n: NlaBuffer<&[u8]>| (n.kind() & NLA_TYPE_MASK, n.value().to_vec()))
        .collect()
}

/// A rule expression as the comparison sees it: its name and attributes,
/// without what the kernel adds or drops on its own (module docs).
pub fn fingerprint(e: &ListAttribute<ExpressionAttribute>) -> String {
    let ListAttribute::Element(attrs) = e else {
        return format!("{e:?}");
    };
    let mut name = String::new();
    let mut data = Vec::new();
    for a in attrs {
        match a {
            ExpressionAttribute::Name(n) => name = n.clone(),
            ExpressionAttribute::Data(d) => {
                let mut b = vec![0; d.buffer_len()];
                d.emit(&mut b);
                data = raw_attrs(&b);
            }
            _ => {}
        }
    }
    let zero = |v: &[u8]| v.iter().all(|b| *b == 0);
    data.retain(|(k, v)| match name.as_str() {
        "counter" => false,
        "lookup" => *k != NFTA_LOOKUP_SET_ID && !(*k == NFTA_LOOKUP_FLAGS && zero(v)),
        "masq" => !(*k == NFTA_MASQ_FLAGS && zero(v)),
        _ => true,
    });
    data.sort();
    let body: Vec<String> = data
        .iter()
        .map(|(k, v)| {
            let hex: String = v.iter().map(|b| format!("{b:02x}")).collect();
            format!("{k}={hex}")
        })
        .collect();
    format!("{name}({})", body.join(","))
}

fn rule_fingerprint(exprs: &[ListAttribute<ExpressionAttribute>]) -> String {
    exprs.iter().map(fingerprint).collect::<Vec<_>>().join(" ")
}

/// What is wrong with the chain, if anything.
fn chain_damage(c: &ChainMessage) -> Option<String> {
    let mut kind = None;
    let mut policy = None;
    let mut hook = Vec::new();
    for a in &c.attributes {
        match a {
            ChainAttribute::Type(t) => kind = Some(t.as_str()),
            ChainAttribute::Policy(p) => policy = Some(*p),
            ChainAttribute::Hook(h) => {
                let mut b = vec![0; h.as_slice().buffer_len()];
                h.as_slice().emit(&mut b);
                hook = raw_attrs(&b);
            }
            _ => {}
        }
    }
    let u32_of = |k: u16| {
        hook.iter()
            .find(|(kind, _)| *kind == k)
            .and_then(|(_, v)| Some(u32::from_be_bytes(v.as_slice().try_into().ok()?)))
    };
    let ok = kind == Some("nat")
        && policy == Some(NF_ACCEPT)
        && u32_of(NFTA_HOOK_HOOKNUM) == Some(NF_INET_POST_ROUTING)
        && u32_of(NFTA_HOOK_PRIORITY) == Some(PRIORITY_SRCNAT as u32);
    (!ok).then(|| {
        format!(
            "chain {CHAIN} is not `type nat hook postrouting priority srcnat; policy accept` \
             (type {kind:?}, policy {policy:?}, hook {:?}, priority {:?})",
            u32_of(NFTA_HOOK_HOOKNUM),
            u32_of(NFTA_HOOK_PRIORITY).map(|p| p as i32)
        )
    })
}

/// What is wrong with set `s` as dumped, if anything.
fn set_damage(s: SetId, m: &SetMessage) -> Option<String> {
    let f = s.family();
    let mut flags = None;
    let mut key = (None, None);
    for a in &m.attributes {
        match a {
            SetAttribute::Flags(x) => flags = Some(*x),
            SetAttribute::KeyType(t) => key.0 = Some(*t),
            SetAttribute::KeyLen(l) => key.1 = Some(*l),
            _ => {}
        }
    }
    let unwanted = SetFlags::Map
        | SetFlags::Anonymous
        | SetFlags::Constant
        | SetFlags::Timeout
        | SetFlags::Object
        | SetFlags::Concat;
    let ok = flags.is_some_and(|x| x.contains(SetFlags::Interval) && !x.intersects(unwanted))
        && key == (Some(key_type(f)), Some(f.addr_len() as u32));
    (!ok).then(|| {
        format!(
            "set {} is not an interval set of {} addresses (flags {flags:?}, key type {:?}, length {:?})",
            s.name(),
            match f {
                Family::V4 => "IPv4",
                Family::V6 => "IPv6",
            },
            key.0,
            key.1
        )
    })
}

/// The elements of a set's dump.
pub fn dumped_elements(msgs: &[SetElementMessage]) -> Vec<Element> {
    let mut out = Vec::new();
    for m in msgs {
        for a in &m.attributes {
            let SetElementList::Elements(list) = a else {
                continue;
            };
            for e in list {
                let ListAttribute::Element(attrs) = e else {
                    continue;
                };
                let mut key = None;
                let mut end = false;
                for x in attrs {
                    match x {
                        SetElementAttribute::Key(DataAttribute::Value(k)) => key = Some(k.clone()),
                        SetElementAttribute::Flags(f) => {
                            end = f.contains(SetElementFlags::IntervalEnd)
                        }
                        _ => {}
                    }
                }
                if let Some(key) = key {
                    out.push(Element { key, end });
                }
            }
        }
    }
    out
}

/// Read a dump into the plan's model: see the module docs.
pub fn actual(d: &Dump) -> Actual {
    if d.table.is_none() {
        return Actual::default();
    }
    let mut damage: Vec<String> = Vec::new();
    // Chains.
    let chains: Vec<&ChainMessage> = d
        .chains
        .iter()
        .filter(|c| chain_table(c) == Some(TABLE))
        .collect();
    match chains.iter().find(|c| chain_name(c) == Some(CHAIN)) {
        None => damage.push(format!("chain {CHAIN} is missing")),
        Some(c) => damage.extend(chain_damage(c)),
    }
    for c in &chains {
        let name = chain_name(c).unwrap_or("?");
        if name != CHAIN {
            damage.push(format!("chain {name} is not manul's"));
        }
    }
    // Sets.
    let sets: Vec<&SetMessage> = d
        .sets
        .iter()
        .filter(|s| set_table(s) == Some(TABLE))
        .collect();
    let mut ranges = BTreeMap::new();
    for s in SetId::ALL {
        match sets.iter().find(|m| set_name(m) == Some(s.name())) {
            None => damage.push(format!("set {} is missing", s.name())),
            Some(m) => match set_damage(s, m) {
                Some(why) => damage.push(why),
                None => {
                    let elems =
                        dumped_elements(d.elements.get(&s).map(Vec::as_slice).unwrap_or(&[]));
                    ranges.insert(s, super::rules::ranges(s.family(), &elems));
                }
            },
        }
    }
    for m in &sets {
        let name = set_name(m).unwrap_or("?");
        if SetId::from_name(name).is_none() {
            damage.push(format!("set {name} is not manul's"));
        }
    }
    // Rules: exactly manul's two, in order.
    let want: Vec<String> = [Family::V4, Family::V6]
        .iter()
        .map(|f| rule_fingerprint(&rule_expressions(*f)))
        .collect();
    let have: Vec<String> = d
        .rules
        .iter()
        .filter(|r| rule_table(r) == Some(TABLE))
        .map(|r| {
            r.attributes
                .iter()
                .find_map(|a| match a {
                    RuleAttribute::Expressions(e) => Some(rule_fingerprint(e)),
                    _ => None,
                })
                .unwrap_or_default()
        })
        .collect();
    if have != want {
        damage.push(format!(
            "chain {CHAIN} holds {} rule(s), not manul's two masquerade rules",
            have.len()
        ));
    }
    Actual {
        table: true,
        damage: (!damage.is_empty()).then(|| damage.join("; ")),
        sets: ranges,
    }
}

#[cfg(test)]
mod tests {
    use super::super::rules::{Plan, desired, plan, range_of};
    use super::*;
    use crate::desired::{Encap, Pool};
    use netlink_packet_core::{NetlinkBuffer, NetlinkMessage, Parseable};
    use netlink_packet_netfilter::{NetfilterHeader, NetfilterMessage, NetfilterProtoFamily};
    use netlink_packet_netfilter::{NetfilterMessageInner, nftables::SetElementMessage};

    fn pools(nat: bool) -> NatDesired {
        desired(&[
            Pool {
                name: "p".into(),
                cidr: "10.65.0.0/16".parse().unwrap(),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: nat,
            },
            Pool {
                name: "q".into(),
                cidr: "fd00:65::/48".parse().unwrap(),
                ipip: Encap::Never,
                vxlan: Encap::Never,
                nat_outgoing: true,
            },
        ])
    }

    /// `msg` through the wire and back, as the kernel's dump would carry it.
    fn wire(msg: NfTablesMessage) -> NfTablesMessage {
        let mut m = NetlinkMessage::from(NetfilterMessage::new(
            NetfilterHeader::new(NetfilterProtoFamily::Inet, 0, 0),
            msg,
        ));
        m.finalize();
        let mut b = vec![0; m.buffer_len()];
        m.serialize(&mut b);
        let back = NetlinkMessage::<NetfilterMessage>::parse(&NetlinkBuffer::new(&b)).unwrap();
        match back.payload {
            netlink_packet_core::NetlinkPayload::InnerMessage(NetfilterMessage {
                inner: NetfilterMessageInner::NfTables(m),
                ..
            }) => m,
            other => panic!("{other:?}"),
        }
    }

    /// The dump of a table made by `create(d)`, as the kernel returns it.
    fn dump_of(d: &NatDesired) -> Dump {
        let mut dump = Dump::default();
        for r in create(d) {
            match wire(r.msg) {
                NfTablesMessage::NewTable(t) => dump.table = Some(t),
                NfTablesMessage::NewChain(c) => dump.chains.push(c),
                NfTablesMessage::NewSet(s) => dump.sets.push(s),
                NfTablesMessage::NewRule(r) => dump.rules.push(r),
                NfTablesMessage::NewSetElement(e) => {
                    let set = e.attributes.iter().find_map(|a| match a {
                        SetElementList::Set(s) => SetId::from_name(s),
                        _ => None,
                    });
                    dump.elements.entry(set.unwrap()).or_default().push(e);
                }
                other => panic!("{other:?}"),
            }
        }
        dump
    }

    #[test]
    fn a_table_made_by_create_reads_back_as_right() {
        let d = pools(true);
        let dump = dump_of(&d);
        let a = actual(&dump);
        assert_eq!(a.damage, None);
        assert_eq!(a.sets, d.sets);
        assert_eq!(plan(&d, &a), Plan::Nothing);
        assert_eq!(actual(&Dump::default()), Actual::default());
    }

    #[test]
    fn kernel_additions_are_not_damage_but_changed_rules_chains_and_sets_are() {
        let d = pools(true);
        // What the kernel adds in its dump: counter values, lookup flags 0
        // would be dropped the same way; a lookup set id.
        let mut dump = dump_of(&d);
        for r in &mut dump.rules {
            for a in &mut r.attributes {
                if let RuleAttribute::Expressions(e) = a {
                    for x in e.iter_mut() {
                        if fingerprint(x).starts_with("counter") {
                            *x = named(
                                "counter",
                                vec![
                                    DefaultNla::new(1, 99u64.to_be_bytes().to_vec()),
                                    DefaultNla::new(2, 3u64.to_be_bytes().to_vec()),
                                ],
                            );
                        }
                    }
                }
            }
        }
        assert_eq!(actual(&dump).damage, None);

        // A rule dropped.
        let mut gone = dump_of(&d);
        gone.rules.pop();
        assert!(actual(&gone).damage.unwrap().contains("1 rule(s)"));
        // The masquerade without fully-random.
        let mut plain = dump_of(&d);
        if let RuleAttribute::Expressions(e) = &mut plain.rules[0].attributes[2] {
            *e.last_mut().unwrap() = named("masq", vec![]);
        }
        assert!(actual(&plain).damage.is_some());
        // The chain at another priority.
        let mut prio = dump_of(&d);
        prio.chains[0].attributes[2] = ChainAttribute::Hook(vec![
            Hook::Number(InetHookNumber::PostRouting.into()),
            Hook::Priority(0),
        ]);
        assert!(actual(&prio).damage.unwrap().contains("priority Some(0)"));
        // A set missing, a set of someone else's.
        let mut sets = dump_of(&d);
        sets.sets.remove(0);
        let mut extra = set_msg(SetId::AllV4);
        if let NfTablesMessage::NewSet(m) = &mut extra {
            m.attributes[1] = SetAttribute::Name("mine".into());
            sets.sets.push(m.clone());
        }
        let why = actual(&sets).damage.unwrap();
        assert!(why.contains("set masq-ipam-pools-v4 is missing"), "{why}");
        assert!(why.contains("set mine is not manul's"), "{why}");
        // Another table's chain is not ours to judge.
        let mut other = dump_of(&d);
        let mut c = chain_msg();
        if let NfTablesMessage::NewChain(m) = &mut c {
            m.attributes[0] = ChainAttribute::Table("filter".into());
            m.attributes[1] = ChainAttribute::Name("input".into());
            other.chains.push(m.clone());
        }
        assert_eq!(actual(&other).damage, None);
    }

    #[test]
    fn a_pool_change_is_one_element_message() {
        let on = pools(true);
        let a = actual(&dump_of(&on));
        let Plan::Elements(changes) = plan(&pools(false), &a) else {
            panic!()
        };
        let reqs = element_changes(&changes);
        assert_eq!(reqs.len(), 1);
        let NfTablesMessage::DeleteSetElement(SetElementMessage { attributes }) = &reqs[0].msg
        else {
            panic!("{:?}", reqs[0])
        };
        assert!(attributes.contains(&SetElementList::Set("masq-ipam-pools-v4".into())));
        let r = range_of(&"10.65.0.0/16".parse().unwrap()).1;
        assert_eq!(
            dumped_elements(&[SetElementMessage {
                attributes: attributes.clone()
            }]),
            elements(Family::V4, &[r])
        );
    }
}
