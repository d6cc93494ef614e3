//! The node's status, built in one place: [`Sources::collect`] reads the
//! latest state each part publishes (confd's sync, the speaker driver and
//! its peer table, confd's BGP view, felix's progress, the felix loop's
//! feed, the eBPF observer, the tunnel address task, felix's MTUs and
//! its NAT table) and makes one [`NodeStatus`]. `/status`,
//! `/metrics` and `/readiness` each call it when asked, so none of them
//! trails what the parts know: the moment felix has written a route or a
//! session changed state, the next answer shows it.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use ipnet::IpNet;
use manul_bgp::fsm::State;
use manul_confd::bgp::PeerSource;
use manul_confd::bgp::view::NodeBgpView;
use manul_felix::Progress;
use manul_felix::ebpf::EbpfObserver;
use manul_felix::nat::NatProgress;
use manul_status::{
    DatastoreStatus, KernelRoutes, NatStatus, NetworkStatus, NodeStatus, PeerStatus, PeerType,
    RefusedPool, RoutingStatus, Vtep, unix_seconds,
};
use tokio::sync::watch;

use crate::routing::felix_loop::FelixFeed;
use crate::speaker::DriverState;
use crate::tunnel::TunnelState;

/// Where the status comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    pub node: String,
    pub ipv4: Option<IpNet>,
    pub ipv6: Option<IpNet>,
    pub started: SystemTime,
    /// confd's sync.
    pub datastore: watch::Receiver<Arc<manul_confd::Status>>,
    /// felix's route reconciler.
    pub felix: watch::Receiver<Arc<Progress>>,
    /// Route writes so far.
    pub writes: Arc<manul_felix::Stats>,
    /// Pools felix does not program, and why.
    pub refused: watch::Receiver<Vec<manul_felix::PoolError>>,
    /// The felix loop's inputs (remote prefixes, hold).
    pub feed: watch::Receiver<FelixFeed>,
    pub ebpf: EbpfObserver,
    /// felix's NAT table.
    pub nat: watch::Receiver<Arc<NatProgress>>,
    /// BGP, once routing has started (after confd's first sync).
    pub bgp: Arc<OnceLock<BgpSources>>,
    /// `CALICO_NETWORKING_BACKEND`.
    pub backend: manul_status::Backend,
    /// The tunnel address task's last outcome.
    pub tunnels: watch::Receiver<TunnelState>,
    /// felix's MTUs.
    pub mtu: watch::Receiver<Option<manul_felix::mtu::Mtus>>,
    /// What the agent does with the FelixConfiguration fields.
    pub felix_config: watch::Receiver<manul_status::FelixConfigurationStatus>,
}

/// The BGP side's sources.
#[derive(Debug, Clone)]
pub struct BgpSources {
    pub driver: watch::Receiver<DriverState>,
    pub view: watch::Receiver<Arc<NodeBgpView>>,
}

impl Sources {
    /// The status now.
    pub fn collect(&self) -> NodeStatus {
        let started_at = unix_seconds(self.started);
        let mut routing = match self.bgp.get() {
            Some(bgp) => bgp_status(&bgp.driver.borrow(), &bgp.view.borrow()),
            None => RoutingStatus::default(),
        };
        routing.routes = self.kernel_routes();
        NodeStatus {
            node: self.node.clone(),
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            started_at,
            uptime_seconds: manul_status::unix_now().saturating_sub(started_at),
            datastore: datastore_status(&self.datastore.borrow()),
            routing,
            ebpf: self.ebpf.summary(),
            nat: nat_status(&self.nat.borrow()),
            network: self.network(),
            felix_configuration: self.felix_config.borrow().clone(),
        }
    }

    fn network(&self) -> NetworkStatus {
        let t = self.tunnels.borrow().clone();
        let vtep = |device: &str, t: Option<manul_ipam::tunnel::Tunnel>| {
            t.map(|t| Vtep {
                device: device.to_owned(),
                address: t.address,
                mac: manul_datastore::resources::format_mac(&t.mac),
            })
        };
        NetworkStatus {
            backend: self.backend,
            vxlan_v4: vtep(manul_felix::desired::VXLAN_DEVICE, t.tunnels.v4),
            vxlan_v6: vtep(manul_felix::desired::VXLAN_DEVICE_V6, t.tunnels.v6),
            tunnel_error: t.error,
            mtu: self.mtu.borrow().map(|m| manul_status::network::Mtus {
                host: m.host,
                host_detected: m.detected,
                vxlan: m.vxlan,
                vxlan_v6: m.vxlan_v6,
                pod: m.pod,
            }),
        }
    }

    fn kernel_routes(&self) -> KernelRoutes {
        let progress = self.felix.borrow().clone();
        let feed = self.feed.borrow().clone();
        KernelRoutes {
            kernel: progress.kernel,
            desired: progress.desired,
            remote_prefixes: feed.remote_prefixes,
            failed: progress.failed.len(),
            blocked: progress.blocked.len(),
            writes: self.writes.writes(),
            holding: feed.holding,
            refused_pools: self
                .refused
                .borrow()
                .iter()
                .map(|e| RefusedPool {
                    pool: e.pool.clone(),
                    reason: e.reason.clone(),
                })
                .collect(),
        }
    }
}

fn nat_status(p: &NatProgress) -> NatStatus {
    NatStatus {
        desired: p.desired.is_some(),
        nat_pools: p
            .desired
            .as_ref()
            .map(|d| d.nat_pools.clone())
            .unwrap_or_default(),
        pools: p
            .desired
            .as_ref()
            .map(|d| d.pools.clone())
            .unwrap_or_default(),
        in_sync: p.in_sync,
        last_error: p.last_error.clone(),
        failures: p.failures,
        repairs: p.repairs,
    }
}

fn datastore_status(s: &manul_confd::Status) -> DatastoreStatus {
    DatastoreStatus {
        in_sync: s.in_sync,
        revision: s.revision,
        lists: s.lists,
        resumes: s.resumes,
        last_error: s.last_error.clone(),
        errors: s
            .errors
            .iter()
            .map(|(op, n)| (op.to_string(), *n))
            .collect(),
    }
}

/// How calicoctl names a peering's source.
fn peer_type(s: &PeerSource) -> PeerType {
    match s {
        PeerSource::Mesh { .. } => PeerType::Mesh,
        PeerSource::Global { .. } => PeerType::Global,
        // Calico shows reverse peerings as node-specific ones.
        PeerSource::Reverse { .. } | PeerSource::NodeSelector { .. } | PeerSource::Node { .. } => {
            PeerType::NodeSpecific
        }
    }
}

/// The speaker's peers, those held back, and what this node originates.
fn bgp_status(driver: &DriverState, view: &NodeBgpView) -> RoutingStatus {
    let kind = |a: &IpAddr| {
        view.peers
            .get(a)
            .map_or(PeerType::Dynamic, |p| peer_type(&p.source))
    };
    let notes = |a: &IpAddr| {
        view.peers
            .get(a)
            .map(crate::peers::notes)
            .unwrap_or_default()
    };
    let mut peers: Vec<PeerStatus> = driver
        .peers
        .values()
        .map(|p| PeerStatus {
            address: p.address,
            asn: Some(p.asn),
            kind: kind(&p.address),
            state: p.state,
            since: p.established_at,
            prefixes_received: p.accepted,
            prefixes_advertised: p.advertised,
            info: p.last_error.clone(),
            established_count: p.established_count,
            notes: notes(&p.address),
            prefixes_unsendable: p.unsendable,
            unsendable_reason: p.last_unsendable.clone(),
            malformed: p.malformed,
        })
        .collect();
    // Peers held back (their password cannot be read), with the reason:
    // one with a session keeps the password it has.
    for (addr, why) in &driver.held {
        if let Some(p) = peers.iter_mut().find(|p| p.address == *addr) {
            p.info = Some(why.clone());
            continue;
        }
        peers.push(PeerStatus {
            address: *addr,
            asn: view.peers.get(addr).map(|p| p.asn),
            kind: kind(addr),
            state: State::Idle,
            since: None,
            prefixes_received: 0,
            prefixes_advertised: 0,
            info: Some(why.clone()),
            established_count: 0,
            notes: notes(addr),
            prefixes_unsendable: 0,
            unsendable_reason: None,
            malformed: Default::default(),
        });
    }
    peers.sort_by_key(|p| p.address);
    RoutingStatus {
        bgp: driver.speaker.is_some(),
        router_id: driver.router_id,
        bgp_restarts: driver.restarts,
        peers,
        originated: view.prefixes.keys().copied().collect(),
        routes: KernelRoutes::default(),
    }
}
