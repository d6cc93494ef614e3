//! Spec types of the Calico v3 resources manul reads and writes
//! (`projectcalico.org/v3`), with Calico's JSON names and `omitempty` rules.
//!
//! Defaults are never filled into the object on read; accessor methods give
//! the effective value (`IpPoolSpec::block_size`,
//! `BgpConfigurationSpec::node_to_node_mesh_enabled`...). A list or string
//! that Go would write as `null` is read as empty.

mod bgpconfig;
mod bgpfilter;
mod bgppeer;
mod ippool;
mod ipreservation;
mod node;
mod raw;
mod workload;

pub use bgpconfig::{
    BgpConfiguration, BgpConfigurationSpec, BindMode, Community, GLOBAL_NAME, PrefixAdvertisement,
    ServiceIpBlock, node_config_name,
};
pub use bgpfilter::{
    BgpFilter, BgpFilterRule, BgpFilterSpec, FilterAction, FilterMatchSource, FilterPeerType,
    MatchOperator, PrefixLength,
};
pub use bgppeer::{
    BgpPassword, BgpPeer, BgpPeerSpec, NextHopMode, SecretKeySelector, SourceAddress,
};
pub use ippool::{
    AllowedUse, AssignmentMode, DEFAULT_NODE_SELECTOR, IpPool, IpPoolSpec, IpipMode, VxlanMode,
};
pub use ipreservation::{
    IpReservation, IpReservationSpec, PREFIX as IP_RESERVATION_PREFIX, ip_reservation_key,
    parse_reserved, validate_ip_reservation,
};
pub use node::{
    Mac, Node, NodeAddress, NodeBgpSpec, NodeSpec, OrchRef, calico_vtep_mac, format_mac, parse_mac,
};
pub use raw::{RawResource, decode_raw, encode_raw};
pub use workload::{WorkloadEndpoint, WorkloadEndpointSpec};
