//! IPAM records under `/calico/ipam/v2/`: allocation blocks, block
//! affinities, handles and the IPAM config, in Calico's JSON (the
//! `libcalico-go` backend model, not the v3 API).
//!
//! These are plain data; the allocation rules live in `manul-ipam`.

mod affinity;
mod block;
mod config;
mod handle;

pub use affinity::{AffinityState, BlockAffinity};
pub use block::{AllocationAttribute, AllocationBlock, attr};
pub use config::IpamConfig;
pub use handle::{
    IpamHandle, ipip_tunnel_handle_id, pod_handle_id, vxlan_tunnel_handle_id,
    vxlan_v6_tunnel_handle_id,
};
