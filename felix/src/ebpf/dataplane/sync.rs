//! Writing the maps: felix's desired state turned into map entries
//! ([`crate::ebpf::entries`]) and written by difference from what the maps
//! hold (a cache, read back from the kernel after a failed write).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use aya::maps::lpm_trie::Key;
use ipnet::IpNet;
use manul_ebpf_common::{COUNTERS, ENDPOINTS, ROUTES_V4, ROUTES_V6};

use super::{Dataplane, map_err};
use crate::desired::Pool;
use crate::ebpf::entries::{
    Endpoint, EndpointEntries, Hosts, RouteEntries, diff, endpoint_entries, route_entries,
};
use crate::ebpf::error::EbpfError;
use crate::ebpf::link::links_in;
use crate::ebpf::map_batch;
use crate::route::DesiredRoutes;

/// What one [`Dataplane::sync`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Route entries put (new or changed).
    pub routes_put: usize,
    /// Route entries deleted.
    pub routes_deleted: usize,
    /// Endpoint entries put.
    pub endpoints_put: usize,
    /// Endpoint entries deleted.
    pub endpoints_deleted: usize,
}

fn key_v4(net: &IpNet) -> Option<Key<[u8; 4]>> {
    match net {
        IpNet::V4(n) => Some(Key::new(u32::from(n.prefix_len()), n.addr().octets())),
        IpNet::V6(_) => None,
    }
}

fn key_v6(net: &IpNet) -> Option<Key<[u8; 16]>> {
    match net {
        IpNet::V6(n) => Some(Key::new(u32::from(n.prefix_len()), n.addr().octets())),
        IpNet::V4(_) => None,
    }
}

fn net_of(addr: IpAddr, len: u32) -> Option<IpNet> {
    IpNet::new(addr, u8::try_from(len).ok()?).ok()
}

impl Dataplane {
    /// Make the maps hold felix's desired state: routes from `routes` (the
    /// same desired routes as the kernel's) and the host addresses `hosts`,
    /// endpoints from `endpoints`,
    /// interfaces resolved in the configured namespace. Writes only the
    /// difference.
    pub fn sync_desired(
        &mut self,
        routes: &DesiredRoutes,
        hosts: &Hosts,
        pools: &[Pool],
        local_subnets: &[IpNet],
        endpoints: &[Endpoint],
    ) -> Result<SyncStats, EbpfError> {
        let mut names: Vec<String> = routes
            .values()
            .filter_map(|t| match t {
                crate::route::Target::Device(d) => Some(d.clone()),
                _ => None,
            })
            .chain(endpoints.iter().map(|e| e.interface.clone()))
            .collect();
        names.sort();
        names.dedup();
        let links: BTreeMap<String, _> = names
            .iter()
            .cloned()
            .zip(links_in(self.config.netns.as_deref(), &names)?)
            .collect();
        let link = |n: &str| links.get(n).copied().flatten();
        let r = route_entries(routes, hosts, pools, local_subnets, link);
        let e = endpoint_entries(endpoints, link);
        self.names = endpoints
            .iter()
            .filter_map(|ep| Some((link(&ep.interface)?.ifindex, ep.interface.clone())))
            .collect();
        self.sync(&r, &e)
    }

    /// The endpoints' interface names by index (as of the last
    /// [`Dataplane::sync_desired`]).
    pub fn endpoint_names(&self) -> &BTreeMap<u32, String> {
        &self.names
    }

    /// How many route entries (both families) and endpoint entries the
    /// maps hold.
    pub fn entries(&self) -> (usize, usize) {
        (self.routes.len(), self.eps.len())
    }

    /// Make the maps hold exactly `routes` and `endpoints`, writing only the
    /// difference from what they hold.
    pub fn sync(
        &mut self,
        routes: &RouteEntries,
        endpoints: &EndpointEntries,
    ) -> Result<SyncStats, EbpfError> {
        let mut stats = SyncStats::default();
        // The cache is replaced whole once every write went through (cheaper
        // than an update per entry); after a failure it is read back from
        // the kernel, so the next sync writes exactly what is still missing.
        if let Err(e) = self.write_routes(routes, &mut stats) {
            if let Ok((kernel, _)) = self.dump() {
                self.routes = kernel;
            }
            return Err(e);
        }
        self.routes = routes.clone();
        let d = diff(&self.eps, endpoints);
        for k in &d.delete {
            tolerate_missing(self.endpoints.remove(k)).map_err(map_err(ENDPOINTS))?;
            tolerate_missing(self.counters.remove(k)).map_err(map_err(COUNTERS))?;
            self.eps.remove(k);
            stats.endpoints_deleted += 1;
        }
        for (k, v) in &d.put {
            self.endpoints.insert(k, v, 0).map_err(map_err(ENDPOINTS))?;
            self.eps.insert(*k, *v);
            stats.endpoints_put += 1;
        }
        Ok(stats)
    }

    /// The route map writes from the cache to `routes`, batched
    /// ([`map_batch`]).
    fn write_routes(
        &mut self,
        routes: &RouteEntries,
        stats: &mut SyncStats,
    ) -> Result<(), EbpfError> {
        let d = diff(&self.routes, routes);
        let (mut del4, mut del6) = (Vec::new(), Vec::new());
        for k in &d.delete {
            match (key_v4(k), key_v6(k)) {
                (Some(key), _) => del4.push(key),
                (_, Some(key)) => del6.push(key),
                _ => {}
            }
        }
        let (mut put4, mut val4, mut put6, mut val6) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, v) in &d.put {
            match (key_v4(k), key_v6(k)) {
                (Some(key), _) => {
                    put4.push(key);
                    val4.push(*v);
                }
                (_, Some(key)) => {
                    put6.push(key);
                    val6.push(*v);
                }
                _ => {}
            }
        }
        let b = &mut self.batching;
        map_batch::delete_all(&mut self.routes_v4, &del4, b).map_err(map_err(ROUTES_V4))?;
        map_batch::delete_all(&mut self.routes_v6, &del6, b).map_err(map_err(ROUTES_V6))?;
        stats.routes_deleted += d.delete.len();
        map_batch::put_all(&mut self.routes_v4, &put4, &val4, b).map_err(map_err(ROUTES_V4))?;
        map_batch::put_all(&mut self.routes_v6, &put6, &val6, b).map_err(map_err(ROUTES_V6))?;
        stats.routes_put += d.put.len();
        Ok(())
    }

    /// What the maps hold, read from the kernel.
    pub fn dump(&self) -> Result<(RouteEntries, EndpointEntries), EbpfError> {
        let mut routes = RouteEntries::new();
        for item in self.routes_v4.iter() {
            let (k, v) = item.map_err(map_err(ROUTES_V4))?;
            let addr = IpAddr::V4(Ipv4Addr::from(k.data()));
            if let Some(n) = net_of(addr, k.prefix_len()) {
                routes.insert(n, v);
            }
        }
        for item in self.routes_v6.iter() {
            let (k, v) = item.map_err(map_err(ROUTES_V6))?;
            let addr = IpAddr::V6(Ipv6Addr::from(k.data()));
            if let Some(n) = net_of(addr, k.prefix_len()) {
                routes.insert(n, v);
            }
        }
        let mut eps = EndpointEntries::new();
        for item in self.endpoints.iter() {
            let (k, v) = item.map_err(map_err(ENDPOINTS))?;
            eps.insert(k, v);
        }
        Ok((routes, eps))
    }
}

/// A delete of a key that is not there is no error.
fn tolerate_missing(r: Result<(), aya::maps::MapError>) -> Result<(), aya::maps::MapError> {
    match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        other => other,
    }
}
