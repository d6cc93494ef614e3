//! The leak check ([`Ipam::check`]): IPAM state against itself and against
//! the WorkloadEndpoints, read at one etcd revision, as a serializable
//! [`Report`] that `manulctl` writes to a file and
//! [`Ipam::release_from_report`] applies later.
//!
//! Cluster identity: the Datastore wrapper does not expose etcd's
//! `header.cluster_id`, so a report names its cluster by Calico's own
//! identity, `ClusterInformation/default`'s `spec.clusterGUID` (written by
//! calico-node at start), plus the etcd endpoints it was taken through.
//! Two identities match when both have a GUID and the GUIDs are equal, or,
//! when either lacks one, when they share an endpoint. The report's
//! revision lets a later apply refuse a report that is ahead of the data
//! (etcd restored from an older backup, or another cluster); reports older
//! than the data are fine, because each fix is guarded: leaked addresses by
//! their allocation sequence number and holder, records by the revision the
//! report saw.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use ipnet::IpNet;
use manul_datastore::ipam::{AffinityState, AllocationBlock, BlockAffinity, IpamHandle};
use manul_datastore::keys::{RESOURCES_PREFIX, prefix};
use manul_datastore::resources::WorkloadEndpoint;
use manul_datastore::{Key, KeyValue, ResourceKind};
use serde::{Deserialize, Serialize};

use crate::block;
use crate::error::Result;
use crate::ipam::Ipam;
use crate::store::check_block;

/// The handle-ID prefix of pod addresses (the ones a missing
/// WorkloadEndpoint makes leaked).
pub const POD_HANDLE_PREFIX: &str = "k8s-pod-network.";

/// Which cluster a report was taken on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterIdentity {
    /// `ClusterInformation/default` `spec.clusterGUID`, when present.
    pub cluster_guid: Option<String>,
    /// The etcd endpoints used.
    pub endpoints: Vec<String>,
}

impl ClusterIdentity {
    /// Whether two identities name the same cluster (see the module docs).
    pub fn same_cluster(&self, other: &ClusterIdentity) -> bool {
        match (&self.cluster_guid, &other.cluster_guid) {
            (Some(a), Some(b)) => a == b,
            _ => self.endpoints.iter().any(|e| other.endpoints.contains(e)),
        }
    }
}

/// One thing the check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Problem {
    /// A pod address (or one with no handle) no WorkloadEndpoint uses.
    Leaked {
        /// The address.
        ip: IpAddr,
        /// Its block.
        block: IpNet,
        /// Its handle.
        handle: Option<String>,
        /// Its allocation sequence number (the release is guarded by it).
        sequence_number: Option<u64>,
        /// Its attributes.
        attributes: BTreeMap<String, String>,
    },
    /// A WorkloadEndpoint address that is not allocated.
    NotAllocated {
        /// The address.
        ip: IpAddr,
        /// The WorkloadEndpoint's key.
        endpoint: String,
        /// Its node.
        node: String,
    },
    /// An address used by more than one WorkloadEndpoint.
    UsedTwice {
        /// The address.
        ip: IpAddr,
        /// The WorkloadEndpoints' keys.
        endpoints: Vec<String>,
    },
    /// A handle record whose counts differ from what the blocks hold
    /// (including a handle holding nothing).
    HandleMismatch {
        /// The handle ID.
        handle: String,
        /// The record's revision when checked.
        revision: i64,
        /// Block CIDR -> count, as recorded.
        recorded: BTreeMap<String, u64>,
        /// Block CIDR -> count, as the blocks say.
        actual: BTreeMap<String, u64>,
    },
    /// Addresses held under a handle that has no record.
    MissingHandle {
        /// The handle ID.
        handle: String,
        /// Block CIDR -> count held.
        actual: BTreeMap<String, u64>,
    },
    /// A block whose bookkeeping does not add up.
    BadBlock {
        /// The block.
        block: IpNet,
        /// What is wrong.
        problems: Vec<String>,
    },
    /// An affinity whose block does not exist.
    AffinityWithoutBlock {
        /// The host.
        host: String,
        /// The block.
        block: IpNet,
        /// The affinity's state.
        state: String,
        /// The affinity's revision.
        revision: i64,
    },
    /// An affinity whose block is affine to another host or none.
    StaleAffinity {
        /// The host.
        host: String,
        /// The block.
        block: IpNet,
        /// The block's host.
        block_host: Option<String>,
        /// The affinity's revision.
        revision: i64,
    },
    /// An affinity left pending (or pending deletion) whose block is the host's.
    UnconfirmedAffinity {
        /// The host.
        host: String,
        /// The block.
        block: IpNet,
        /// The affinity's state.
        state: String,
        /// The affinity's revision.
        revision: i64,
    },
    /// A block affine to a host that has no affinity record for it.
    BlockWithoutAffinity {
        /// The block.
        block: IpNet,
        /// The host named by the block.
        host: String,
    },
    /// A value that does not decode (or a key outside the layout).
    Malformed {
        /// The key.
        key: String,
        /// What is wrong.
        error: String,
    },
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Blocks.
    pub blocks: usize,
    /// Affinities.
    pub affinities: usize,
    /// Handles.
    pub handles: usize,
    /// WorkloadEndpoints.
    pub workload_endpoints: usize,
    /// Allocated addresses.
    pub allocated: usize,
}

/// The leak check's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The cluster it was taken on.
    pub cluster: ClusterIdentity,
    /// The etcd revision everything was read at.
    pub revision: i64,
    /// What was read.
    pub summary: Summary,
    /// What was found.
    pub problems: Vec<Problem>,
    /// Every allocated address and what uses it, for a listing
    /// (`manulctl ipam check --show-all-ips`); not written to a report.
    #[serde(skip)]
    pub checked: Vec<CheckedIp>,
}

/// One allocated address or one address in use, as the check saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedIp {
    /// The address.
    pub ip: IpAddr,
    /// Whether IPAM has it allocated.
    pub allocated: bool,
    /// Its handle, when allocated.
    pub handle: Option<String>,
    /// Its attributes, when allocated.
    pub attributes: BTreeMap<String, String>,
    /// The WorkloadEndpoints using it (`namespace/name`).
    pub users: Vec<String>,
}

impl Report {
    /// No problems.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The leaked addresses with their sequence numbers.
    pub fn leaked(&self) -> Vec<(IpAddr, Option<u64>)> {
        self.problems
            .iter()
            .filter_map(|p| match p {
                Problem::Leaked {
                    ip,
                    sequence_number,
                    ..
                } => Some((*ip, *sequence_number)),
                _ => None,
            })
            .collect()
    }
}

/// The kinds of record the check reads, in the order it reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Records {
    /// Allocation blocks.
    Blocks,
    /// Block affinities.
    Affinities,
    /// Handles.
    Handles,
    /// WorkloadEndpoints.
    WorkloadEndpoints,
}

impl std::fmt::Display for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Records::Blocks => "blocks",
            Records::Affinities => "block affinities",
            Records::Handles => "handles",
            Records::WorkloadEndpoints => "workload endpoints",
        })
    }
}

/// How far [`Ipam::check_with_progress`] has got (for a progress display:
/// on a large cluster each list can take seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// About to list these records.
    Reading(Records),
    /// Listed this many of them.
    Read(Records, usize),
    /// Everything is read; comparing (this many allocated addresses).
    Checking {
        /// Allocated addresses found in the blocks.
        allocated: usize,
    },
}

/// An allocated address as the blocks say.
struct Held<'a> {
    block: IpNet,
    handle: Option<&'a str>,
    seq: Option<u64>,
    attrs: &'a BTreeMap<String, String>,
}

fn malformed(kv: &KeyValue, error: impl ToString) -> Problem {
    Problem::Malformed {
        key: kv.key.clone(),
        error: error.to_string(),
    }
}

impl Ipam {
    /// This cluster's identity (see the module docs).
    pub async fn cluster_identity(&self) -> Result<ClusterIdentity> {
        let key = format!("{RESOURCES_PREFIX}clusterinformations/default");
        let guid = match self.store.get(&key).await? {
            None => None,
            Some(kv) => match serde_json::from_slice::<serde_json::Value>(&kv.value) {
                Ok(v) => v["spec"]["clusterGUID"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
                Err(e) => {
                    tracing::warn!(key, error = %e, "malformed ClusterInformation; identifying the cluster by its endpoints");
                    None
                }
            },
        };
        Ok(ClusterIdentity {
            cluster_guid: guid,
            endpoints: self.datastore().endpoints().to_vec(),
        })
    }

    /// Check IPAM (see the module docs); everything read at one revision.
    pub async fn check(&self) -> Result<Report> {
        self.check_with_progress(|_| {}).await
    }

    /// [`Ipam::check`], telling `progress` what it is reading and how
    /// many records each list returned.
    pub async fn check_with_progress(&self, mut progress: impl FnMut(Progress)) -> Result<Report> {
        let st = &self.store;
        let mut read = async |records: Records, key: String, at: Option<i64>| {
            progress(Progress::Reading(records));
            let (kvs, rev) = st.list(&key, at).await?;
            progress(Progress::Read(records, kvs.len()));
            Ok::<_, crate::error::IpamError>((kvs, rev))
        };
        let (block_kvs, rev) = read(Records::Blocks, prefix::all_blocks(), None).await?;
        let (aff_kvs, _) = read(Records::Affinities, prefix::all_affinities(), Some(rev)).await?;
        let (handle_kvs, _) = read(Records::Handles, prefix::all_handles(), Some(rev)).await?;
        let (wep_kvs, _) = read(
            Records::WorkloadEndpoints,
            prefix::kind(ResourceKind::WorkloadEndpoint),
            Some(rev),
        )
        .await?;
        let mut problems = Vec::new();

        // Blocks.
        let mut blocks: BTreeMap<IpNet, AllocationBlock> = BTreeMap::new();
        for kv in &block_kvs {
            match kv.decode::<AllocationBlock>() {
                Err(e) => problems.push(malformed(kv, e)),
                Ok(v) => match check_block(&v) {
                    Err(e) => problems.push(malformed(kv, e)),
                    Ok(()) => {
                        let bad = block::check(&v.value);
                        if !bad.is_empty() {
                            problems.push(Problem::BadBlock {
                                block: v.value.cidr,
                                problems: bad.iter().map(|i| format!("{i:?}")).collect(),
                            });
                        }
                        blocks.insert(v.value.cidr, v.value);
                    }
                },
            }
        }
        let mut held: BTreeMap<IpAddr, Held<'_>> = BTreeMap::new();
        let mut truth: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for b in blocks.values() {
            for (o, a) in b.allocations.iter().enumerate() {
                let Some(a) = a.and_then(|i| b.attributes.get(i as usize)) else {
                    continue;
                };
                let ip = block::address(&b.cidr, o as u32);
                if let Some(h) = &a.handle_id {
                    *truth
                        .entry(h.clone())
                        .or_default()
                        .entry(b.cidr.to_string())
                        .or_default() += 1;
                }
                held.insert(
                    ip,
                    Held {
                        block: b.cidr,
                        handle: a.handle_id.as_deref(),
                        seq: b.sequence_number_for(o as u32),
                        attrs: &a.secondary,
                    },
                );
            }
        }

        progress(Progress::Checking {
            allocated: held.len(),
        });

        // Affinities.
        let mut affine: HashSet<(String, IpNet)> = HashSet::new();
        for kv in &aff_kvs {
            let Ok(Key::BlockAffinity { host, cidr }) = Key::parse(&kv.key) else {
                problems.push(malformed(kv, "not an affinity key"));
                continue;
            };
            let aff = match kv.json::<BlockAffinity>() {
                Ok(a) => a,
                Err(e) => {
                    problems.push(malformed(kv, e));
                    continue;
                }
            };
            affine.insert((host.clone(), cidr));
            let state = aff.state.to_string();
            match blocks.get(&cidr) {
                None => problems.push(Problem::AffinityWithoutBlock {
                    host,
                    block: cidr,
                    state,
                    revision: kv.mod_revision,
                }),
                Some(b) if b.host() != Some(host.as_str()) => {
                    problems.push(Problem::StaleAffinity {
                        block_host: b.host().map(str::to_string),
                        host,
                        block: cidr,
                        revision: kv.mod_revision,
                    })
                }
                Some(_) if aff.state != AffinityState::Confirmed => {
                    problems.push(Problem::UnconfirmedAffinity {
                        host,
                        block: cidr,
                        state,
                        revision: kv.mod_revision,
                    })
                }
                Some(_) => {}
            }
        }
        for b in blocks.values() {
            if let Some(h) = b.host() {
                if !affine.contains(&(h.to_string(), b.cidr)) {
                    problems.push(Problem::BlockWithoutAffinity {
                        block: b.cidr,
                        host: h.to_string(),
                    });
                }
            }
        }

        // Handles.
        let mut recorded_ids = HashSet::new();
        for kv in &handle_kvs {
            let Ok(Key::Handle { id }) = Key::parse(&kv.key) else {
                problems.push(malformed(kv, "not a handle key"));
                continue;
            };
            let h = match kv.json::<IpamHandle>() {
                Ok(h) => h,
                Err(e) => {
                    problems.push(malformed(kv, e));
                    continue;
                }
            };
            recorded_ids.insert(id.clone());
            let recorded: BTreeMap<String, u64> =
                h.block.into_iter().filter(|(_, n)| *n > 0).collect();
            let actual = truth.get(&id).cloned().unwrap_or_default();
            if recorded != actual {
                problems.push(Problem::HandleMismatch {
                    handle: id,
                    revision: kv.mod_revision,
                    recorded,
                    actual,
                });
            }
        }
        for (id, actual) in &truth {
            if !recorded_ids.contains(id) {
                problems.push(Problem::MissingHandle {
                    handle: id.clone(),
                    actual: actual.clone(),
                });
            }
        }

        // WorkloadEndpoints.
        let mut used: BTreeMap<IpAddr, Vec<(String, String)>> = BTreeMap::new();
        let mut users: BTreeMap<IpAddr, Vec<String>> = BTreeMap::new();
        for kv in &wep_kvs {
            let wep = match WorkloadEndpoint::from_json(&kv.value) {
                Ok(w) => w,
                Err(e) => {
                    problems.push(malformed(kv, e));
                    continue;
                }
            };
            for net in &wep.spec.ip_networks {
                users
                    .entry(net.addr())
                    .or_default()
                    .push(format!("{}/{}", wep.metadata.namespace, wep.metadata.name));
                used.entry(net.addr())
                    .or_default()
                    .push((kv.key.clone(), wep.spec.node.clone()));
            }
        }
        for (ip, eps) in &used {
            if eps.len() > 1 {
                problems.push(Problem::UsedTwice {
                    ip: *ip,
                    endpoints: eps.iter().map(|(k, _)| k.clone()).collect(),
                });
            }
            if !held.contains_key(ip) {
                let (endpoint, node) = eps[0].clone();
                problems.push(Problem::NotAllocated {
                    ip: *ip,
                    endpoint,
                    node,
                });
            }
        }
        let used_set: HashMap<IpAddr, ()> = used.keys().map(|ip| (*ip, ())).collect();
        for (ip, h) in &held {
            let pod = h.handle.is_none_or(|id| id.starts_with(POD_HANDLE_PREFIX));
            if pod && !used_set.contains_key(ip) {
                problems.push(Problem::Leaked {
                    ip: *ip,
                    block: h.block,
                    handle: h.handle.map(str::to_string),
                    sequence_number: h.seq,
                    attributes: h.attrs.clone(),
                });
            }
        }

        let mut checked: BTreeMap<IpAddr, CheckedIp> = held
            .iter()
            .map(|(ip, h)| {
                let c = CheckedIp {
                    ip: *ip,
                    allocated: true,
                    handle: h.handle.map(str::to_string),
                    attributes: h.attrs.clone(),
                    users: Vec::new(),
                };
                (*ip, c)
            })
            .collect();
        for (ip, u) in users {
            checked
                .entry(ip)
                .or_insert_with(|| CheckedIp {
                    ip,
                    allocated: false,
                    handle: None,
                    attributes: BTreeMap::new(),
                    users: Vec::new(),
                })
                .users = u;
        }
        Ok(Report {
            checked: checked.into_values().collect(),
            cluster: self.cluster_identity().await?,
            revision: rev,
            summary: Summary {
                blocks: block_kvs.len(),
                affinities: aff_kvs.len(),
                handles: handle_kvs.len(),
                workload_endpoints: wep_kvs.len(),
                allocated: held.len(),
            },
            problems,
        })
    }
}
