//! Kernel routes as felix compares them ([`KernelRoute`]), and their
//! rtnetlink form (`RTM_NEWROUTE` / `RTM_DELROUTE` messages, rtnetlink(7)).
//!
//! A kernel route is identified by table, destination, TOS and priority
//! (metric); felix uses TOS 0 and one configured metric, so within its table
//! a destination has one slot. IPv6 stores metric 0 as 1024 (the kernel's
//! default, `IP6_RT_PRIO_USER`), so the slot's priority is normalised the
//! same way on both sides.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType,
};

/// One next hop as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hop {
    /// Gateway, if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index (0: unspecified).
    pub oif: u32,
    /// RTNH_F_ONLINK.
    pub onlink: bool,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Kind {
    /// RTN_BLACKHOLE.
    Blackhole,
    /// RTN_UNICAST with its hops (sorted).
    Unicast(Vec<Hop>),
    /// Any other type (local, broadcast, unreachable…): never felix's.
    Other(u8),
}

/// A route in a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    /// Destination.
    pub dst: IpNet,
    /// Table id.
    pub table: u32,
    /// Routing protocol number (RTPROT_*; felix's is 80).
    pub protocol: u8,
    /// Priority (metric), normalised (IPv6 0 → 1024).
    pub priority: u32,
    /// TOS.
    pub tos: u8,
    /// What it does.
    pub kind: Kind,
}

/// The priority the kernel reports for a route added with `metric`.
pub fn effective_priority(dst: &IpNet, metric: u32) -> u32 {
    match (dst, metric) {
        (IpNet::V6(_), 0) => 1024,
        _ => metric,
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_address(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(v4) => RouteAddress::Inet(v4),
        IpAddr::V6(v6) => RouteAddress::Inet6(v6),
    }
}

impl KernelRoute {
    /// From a dumped or notified message; `None` for families other than
    /// IPv4/IPv6 and for malformed destinations.
    pub fn from_message(msg: &RouteMessage) -> Option<KernelRoute> {
        let h = &msg.header;
        let v6 = match h.address_family {
            AddressFamily::Inet => false,
            AddressFamily::Inet6 => true,
            _ => return None,
        };
        let mut dst_addr = None;
        let mut table = u32::from(h.table);
        let mut priority = 0;
        let mut gateway = None;
        let mut oif = 0;
        let mut multipath = None;
        for a in &msg.attributes {
            match a {
                RouteAttribute::Destination(d) => dst_addr = addr(d),
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Priority(p) => priority = *p,
                RouteAttribute::Gateway(g) => gateway = addr(g),
                RouteAttribute::Oif(o) => oif = *o,
                RouteAttribute::MultiPath(hops) => multipath = Some(hops),
                _ => {}
            }
        }
        let dst_addr = dst_addr.unwrap_or(if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        });
        let dst = IpNet::new(dst_addr, h.destination_prefix_length).ok()?;
        let kind = match h.kind {
            RouteType::BlackHole => Kind::Blackhole,
            RouteType::Unicast => {
                let onlink = h.flags.contains(RouteFlags::Onlink);
                let mut hops = match multipath {
                    Some(hops) => hops
                        .iter()
                        .map(|nh| Hop {
                            gateway: nh.attributes.iter().find_map(|a| match a {
                                RouteAttribute::Gateway(g) => addr(g),
                                _ => None,
                            }),
                            oif: nh.interface_index,
                            onlink: nh.flags.contains(RouteNextHopFlags::Onlink),
                        })
                        .collect(),
                    None => vec![Hop {
                        gateway,
                        oif,
                        onlink,
                    }],
                };
                hops.sort();
                Kind::Unicast(hops)
            }
            other => Kind::Other(u8::from(other)),
        };
        Some(KernelRoute {
            dst: dst.trunc(),
            table,
            protocol: u8::from(h.protocol),
            priority: effective_priority(&dst, priority),
            tos: h.tos,
            kind,
        })
    }

    /// The message that creates (or replaces) this route.
    pub fn to_message(&self) -> RouteMessage {
        let mut msg = RouteMessage::default();
        let h: &mut RouteHeader = &mut msg.header;
        h.address_family = match self.dst {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        h.destination_prefix_length = self.dst.prefix_len();
        h.tos = self.tos;
        h.table = u8::try_from(self.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
        h.protocol = RouteProtocol::from(self.protocol);
        let attrs = &mut msg.attributes;
        attrs.push(RouteAttribute::Destination(route_address(self.dst.addr())));
        attrs.push(RouteAttribute::Table(self.table));
        if self.priority != 0 {
            attrs.push(RouteAttribute::Priority(self.priority));
        }
        match &self.kind {
            Kind::Blackhole => {
                msg.header.kind = RouteType::BlackHole;
                msg.header.scope = RouteScope::Universe;
            }
            Kind::Other(t) => msg.header.kind = RouteType::from(*t),
            Kind::Unicast(hops) => {
                msg.header.kind = RouteType::Unicast;
                let direct = hops.len() == 1 && hops[0].gateway.is_none();
                msg.header.scope = if direct {
                    RouteScope::Link
                } else {
                    RouteScope::Universe
                };
                match hops.as_slice() {
                    [hop] => {
                        if let Some(g) = hop.gateway {
                            msg.attributes
                                .push(RouteAttribute::Gateway(route_address(g)));
                        }
                        if hop.oif != 0 {
                            msg.attributes.push(RouteAttribute::Oif(hop.oif));
                        }
                        if hop.onlink {
                            msg.header.flags |= RouteFlags::Onlink;
                        }
                    }
                    hops => {
                        let nhs = hops
                            .iter()
                            .map(|hop| {
                                let mut nh = RouteNextHop::default();
                                nh.interface_index = hop.oif;
                                if hop.onlink {
                                    nh.flags |= RouteNextHopFlags::Onlink;
                                }
                                if let Some(g) = hop.gateway {
                                    nh.attributes
                                        .push(RouteAttribute::Gateway(route_address(g)));
                                }
                                nh
                            })
                            .collect();
                        msg.attributes.push(RouteAttribute::MultiPath(nhs));
                    }
                }
            }
        }
        msg
    }

    /// The message that deletes exactly this route (protocol included, so
    /// the kernel refuses to delete another owner's route in the slot).
    pub fn to_delete_message(&self) -> RouteMessage {
        let mut msg = self.to_message();
        // Matching on the destination, table, protocol and priority is
        // enough; hops need not be given.
        msg.attributes.retain(|a| {
            matches!(
                a,
                RouteAttribute::Destination(_)
                    | RouteAttribute::Table(_)
                    | RouteAttribute::Priority(_)
            )
        });
        msg.header.scope = RouteScope::NoWhere;
        msg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(r: KernelRoute) {
        let back = KernelRoute::from_message(&r.to_message()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn messages_round_trip() {
        round_trip(KernelRoute {
            dst: "10.65.0.0/26".parse().unwrap(),
            table: 254,
            protocol: 80,
            priority: 0,
            tos: 0,
            kind: Kind::Blackhole,
        });
        round_trip(KernelRoute {
            dst: "10.65.1.0/26".parse().unwrap(),
            table: 254,
            protocol: 80,
            priority: 0,
            tos: 0,
            kind: Kind::Unicast(vec![
                Hop {
                    gateway: Some("192.168.1.2".parse().unwrap()),
                    oif: 3,
                    onlink: false,
                },
                Hop {
                    gateway: Some("192.168.1.3".parse().unwrap()),
                    oif: 4,
                    onlink: true,
                },
            ]),
        });
        round_trip(KernelRoute {
            dst: "fd00::2/128".parse().unwrap(),
            table: 1000,
            protocol: 80,
            priority: 1024,
            tos: 0,
            kind: Kind::Unicast(vec![Hop {
                gateway: None,
                oif: 7,
                onlink: false,
            }]),
        });
    }
}
