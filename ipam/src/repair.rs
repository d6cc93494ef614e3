//! Applying a leak report ([`Ipam::release_from_report`], what
//! `manulctl ipam release --from-report` runs).
//!
//! Refused outright: a report from another cluster, or one whose revision
//! is ahead of the datastore's (see [`crate::check`]); the second refusal
//! can be overridden ([`RepairOptions::allow_ahead`], `--force` in
//! `manulctl`), the first cannot. Then, each fix is
//! guarded so that a report older than the data never undoes newer work:
//!
//! | problem | fix | guard |
//! |---|---|---|
//! | `HandleMismatch` | set the handle to what the blocks held (delete it if nothing) | the handle's revision is the report's, and none of the blocks involved was written since the report |
//! | `Leaked` | release the address (block, then handle) | same allocation sequence number and same holder as in the report |
//! | `AffinityWithoutBlock`, `StaleAffinity` | delete the affinity | its revision is the report's and the block is still absent / not the host's |
//! | `UnconfirmedAffinity` | confirm it | its revision is the report's and the block is still the host's |
//! | `BlockWithoutAffinity` | create the host's confirmed affinity | create-if-absent, block still the host's |
//!
//! Handles are fixed before addresses are released, so the release's
//! decrement lands on the corrected count. `NotAllocated`, `UsedTwice`,
//! `MissingHandle`, `BadBlock` and `Malformed` need a person: they are
//! listed as skipped.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::Key;
use manul_datastore::ipam::{AffinityState, IpamHandle};
use manul_datastore::keys::IPAM_CONFIG_KEY;
use serde::Serialize;

use crate::block::{self, Released};
use crate::check::{Problem, Report};
use crate::error::{IpamError, Result};
use crate::ipam::Ipam;
use crate::release::seq_of;
use crate::store::path;

/// A leaked address: where, its sequence number, its holder.
type LeakedItem = (IpAddr, Option<u64>, Option<String>);

/// What applying a report did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RepairOutcome {
    /// Leaked addresses released.
    pub released: Vec<IpAddr>,
    /// Leaked addresses left alone: reassigned since the report.
    pub reused: Vec<IpAddr>,
    /// Leaked addresses already free.
    pub already_free: Vec<IpAddr>,
    /// Handles whose counts were corrected (or that were deleted).
    pub handles_fixed: Vec<String>,
    /// Affinities deleted, confirmed or created (`host/block`).
    pub affinities_fixed: Vec<String>,
    /// Problems not fixed, with why.
    pub skipped: Vec<String>,
}

/// How [`Ipam::release_from_report_with`] applies a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairOptions {
    /// Apply a report whose revision is ahead of the datastore's (etcd was
    /// restored from a backup taken before the report). The cluster check
    /// still applies, and so does every per-fix guard; what is lost is the
    /// assurance that the WorkloadEndpoints the report saw are the ones in
    /// the data, so a person must have checked that.
    pub allow_ahead: bool,
}

impl Ipam {
    /// Apply `report` (see the module docs).
    pub async fn release_from_report(&self, report: &Report) -> Result<RepairOutcome> {
        self.release_from_report_with(report, RepairOptions::default())
            .await
    }

    /// Apply `report` as `options` say (see the module docs).
    pub async fn release_from_report_with(
        &self,
        report: &Report,
        options: RepairOptions,
    ) -> Result<RepairOutcome> {
        self.release_from_reports_with(std::slice::from_ref(report), options)
            .await
    }

    /// Apply what every one of `reports` found (Calico's rule for several
    /// `ipam release --from-report`: an address is released only when
    /// every report found it leaked, so one allocated between two checks,
    /// which only the earlier report saw unused, is kept). Each report is
    /// refused as it would be alone; then only the problems present,
    /// identical (same address, holder, sequence number, revision), in
    /// every report are fixed, each guarded as for one report taken at the
    /// oldest of their revisions.
    pub async fn release_from_reports_with(
        &self,
        reports: &[Report],
        options: RepairOptions,
    ) -> Result<RepairOutcome> {
        let Some(first) = reports.first() else {
            return Ok(RepairOutcome::default());
        };
        for r in reports {
            self.admit(r, options).await?;
        }
        let agreed = Report {
            cluster: first.cluster.clone(),
            revision: reports
                .iter()
                .map(|r| r.revision)
                .min()
                .unwrap_or(first.revision),
            summary: first.summary.clone(),
            problems: first
                .problems
                .iter()
                .filter(|p| reports[1..].iter().all(|r| r.problems.contains(p)))
                .cloned()
                .collect(),
            checked: Vec::new(),
        };
        self.apply_report(&agreed).await
    }

    /// Refuse a report from another cluster, or one ahead of the data
    /// (unless allowed).
    async fn admit(&self, report: &Report, options: RepairOptions) -> Result<()> {
        let me = self.cluster_identity().await?;
        if !me.same_cluster(&report.cluster) {
            return Err(IpamError::ReportRefused(format!(
                "it was taken on another cluster ({:?} via {:?}; this is {:?} via {:?})",
                report.cluster.cluster_guid,
                report.cluster.endpoints,
                me.cluster_guid,
                me.endpoints
            )));
        }
        let (_, now) = self.store.list(IPAM_CONFIG_KEY, None).await?;
        if report.revision > now && !options.allow_ahead {
            return Err(IpamError::ReportAhead {
                report: report.revision,
                datastore: now,
            });
        }
        Ok(())
    }

    /// Fix what an admitted report found.
    async fn apply_report(&self, report: &Report) -> Result<RepairOutcome> {
        let mut out = RepairOutcome::default();
        for p in &report.problems {
            if let Problem::HandleMismatch {
                handle,
                revision,
                recorded,
                actual,
            } = p
            {
                match self
                    .fix_handle(handle, *revision, recorded, actual, report.revision)
                    .await?
                {
                    None => out.handles_fixed.push(handle.clone()),
                    Some(why) => out.skipped.push(format!("handle {handle}: {why}")),
                }
            }
        }
        self.release_leaked(report, &mut out).await?;
        for p in &report.problems {
            let r = match p {
                Problem::AffinityWithoutBlock {
                    host,
                    block,
                    revision,
                    ..
                }
                | Problem::StaleAffinity {
                    host,
                    block,
                    revision,
                    ..
                } => Some((
                    host,
                    block,
                    self.drop_affinity(host, block, *revision).await?,
                )),
                Problem::UnconfirmedAffinity {
                    host,
                    block,
                    revision,
                    ..
                } => Some((
                    host,
                    block,
                    self.confirm_affinity(host, block, *revision).await?,
                )),
                Problem::BlockWithoutAffinity { block, host } => {
                    Some((host, block, self.recreate_affinity(host, block).await?))
                }
                Problem::Leaked { .. } | Problem::HandleMismatch { .. } => None,
                other => {
                    out.skipped.push(format!("needs a person: {other:?}"));
                    None
                }
            };
            if let Some((host, block, r)) = r {
                match r {
                    None => out.affinities_fixed.push(format!("{host}/{block}")),
                    Some(why) => out.skipped.push(format!("affinity {host}/{block}: {why}")),
                }
            }
        }
        Ok(out)
    }

    /// `None` when fixed, else why not.
    async fn fix_handle(
        &self,
        handle: &str,
        revision: i64,
        recorded: &BTreeMap<String, u64>,
        actual: &BTreeMap<String, u64>,
        report_rev: i64,
    ) -> Result<Option<String>> {
        let st = &self.store;
        for cidr_s in recorded.keys().chain(actual.keys()) {
            let Ok(cidr) = cidr_s.parse::<IpNet>() else {
                continue;
            };
            if let Some(b) = st.get_block(&cidr).await? {
                if b.mod_revision > report_rev {
                    return Ok(Some(format!("block {cidr} changed since the report")));
                }
            } else if actual.contains_key(cidr_s) {
                return Ok(Some(format!("block {cidr} is gone since the report")));
            }
        }
        let key = path(&Key::Handle {
            id: handle.to_string(),
        })?;
        let Some(h) = st.get_handle(handle).await? else {
            return Ok(Some("the handle is gone".into()));
        };
        if h.mod_revision != revision {
            return Ok(Some("the handle changed since the report".into()));
        }
        let r = if actual.is_empty() {
            st.delete(&key, revision).await.map(drop)
        } else {
            let value = IpamHandle {
                block: actual.clone(),
                ..h.value
            };
            st.update_json(&key, &value, revision).await.map(drop)
        };
        match r {
            Ok(()) => Ok(None),
            Err(e) if e.is_conflict() || e.is_not_found() => {
                Ok(Some("the handle changed since the report".into()))
            }
            Err(e) => Err(e),
        }
    }

    /// Release the report's leaked addresses whose allocation is still the
    /// one reported.
    async fn release_leaked(&self, report: &Report, out: &mut RepairOutcome) -> Result<()> {
        let mut by_block: BTreeMap<IpNet, Vec<LeakedItem>> = BTreeMap::new();
        for p in &report.problems {
            if let Problem::Leaked {
                ip,
                block,
                handle,
                sequence_number,
                ..
            } = p
            {
                by_block
                    .entry(*block)
                    .or_default()
                    .push((*ip, *sequence_number, handle.clone()));
            }
        }
        let st = &self.store;
        for (cidr, items) in by_block {
            let Some(b) = st.get_block(&cidr).await? else {
                out.already_free.extend(items.iter().map(|i| i.0));
                continue;
            };
            // Only what is still held as reported; the sequence number
            // check is repeated under compare-and-swap in the release.
            let mut go = Vec::new();
            for (ip, seq, handle) in &items {
                match block::attribute_of(&b.value, *ip) {
                    None => out.already_free.push(*ip),
                    Some(a)
                        if a.handle_id != *handle
                            || (seq.is_some() && seq_of(&b.value, *ip) != *seq) =>
                    {
                        out.reused.push(*ip)
                    }
                    Some(_) => go.push((*ip, seq.or(seq_of(&b.value, *ip)))),
                }
            }
            if go.is_empty() {
                continue;
            }
            for (ip, r) in self.release_in_block(cidr, &go).await? {
                match r {
                    Released::Freed { .. } => out.released.push(ip),
                    Released::Reused => out.reused.push(ip),
                    Released::NotAssigned => out.already_free.push(ip),
                }
            }
        }
        Ok(())
    }

    async fn drop_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
        revision: i64,
    ) -> Result<Option<String>> {
        let st = &self.store;
        let Some(aff) = st.get_affinity(host, cidr).await? else {
            return Ok(None);
        };
        if aff.mod_revision != revision {
            return Ok(Some("changed since the report".into()));
        }
        if let Some(b) = st.get_block(cidr).await? {
            if b.value.host() == Some(host) {
                return Ok(Some("its block is the host's now".into()));
            }
        }
        match st.delete_affinity(&aff).await {
            Ok(()) => {
                self.cache_forget(host, cidr);
                Ok(None)
            }
            Err(e) if e.is_conflict() || e.is_not_found() => {
                Ok(Some("changed since the report".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn confirm_affinity(
        &self,
        host: &str,
        cidr: &IpNet,
        revision: i64,
    ) -> Result<Option<String>> {
        let st = &self.store;
        let Some(mut aff) = st.get_affinity(host, cidr).await? else {
            return Ok(Some("gone since the report".into()));
        };
        if aff.mod_revision != revision {
            return Ok(Some("changed since the report".into()));
        }
        match st.get_block(cidr).await? {
            Some(b) if b.value.host() == Some(host) => {}
            _ => return Ok(Some("its block is no longer the host's".into())),
        }
        match st
            .set_affinity_state(&mut aff, AffinityState::Confirmed)
            .await
        {
            Ok(()) => Ok(None),
            Err(e) if e.is_conflict() || e.is_not_found() => {
                Ok(Some("changed since the report".into()))
            }
            Err(e) => Err(e),
        }
    }

    async fn recreate_affinity(&self, host: &str, cidr: &IpNet) -> Result<Option<String>> {
        let st = &self.store;
        match st.get_block(cidr).await? {
            Some(b) if b.value.host() == Some(host) => {}
            _ => return Ok(Some("the block is no longer the host's".into())),
        }
        match st
            .create_affinity(host, cidr, AffinityState::Confirmed)
            .await
        {
            Ok(_) => Ok(None),
            Err(e) if e.is_conflict() => Ok(Some("an affinity exists now".into())),
            Err(e) => Err(e),
        }
    }
}
