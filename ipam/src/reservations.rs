//! IPReservations: the addresses automatic assignment skips (Calico's
//! `IPReservation`, see `manul_datastore::resources::IpReservation`).
//!
//! They are read fresh on every [`Ipam::auto_assign`] (one list of a small
//! prefix, as Calico consults them on every assignment request), so a
//! reservation takes effect at once, also in blocks claimed before it
//! existed: [`crate::block::assign`] passes over reserved free addresses
//! and leaves them free, where they stay until the reservation goes. An
//! address already assigned when it becomes reserved keeps its holder;
//! [`Ipam::assign_ip`] (an address asked for by name) ignores reservations,
//! as Calico's `AssignIP` does.

use ipnet::IpNet;
use manul_datastore::resources::{IP_RESERVATION_PREFIX, IpReservation, parse_reserved};

use crate::error::Result;
use crate::ipam::Ipam;

impl Ipam {
    /// Every reserved network. An object that does not decode, or an
    /// entry that is neither an address nor a CIDR, is skipped with a
    /// warning naming its key (validation refuses them on apply).
    pub async fn reservations(&self) -> Result<Vec<IpNet>> {
        let (kvs, _) = self.store.list(IP_RESERVATION_PREFIX, None).await?;
        let mut out = Vec::new();
        for kv in kvs {
            let r: IpReservation = match kv.json() {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(key = %kv.key, error = %e, "ignoring an IPReservation that does not decode");
                    continue;
                }
            };
            for s in &r.spec.reserved_cidrs {
                match parse_reserved(s) {
                    Some(n) => out.push(n),
                    None => {
                        tracing::warn!(key = %kv.key, entry = %s, "ignoring a reservedCIDRs entry that is neither an address nor a CIDR")
                    }
                }
            }
        }
        Ok(out)
    }
}
