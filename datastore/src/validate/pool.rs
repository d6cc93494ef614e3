//! IPPool rules: masked CIDR, block size, encapsulation, overlaps.

use ipnet::IpNet;

use super::{Problem, Report, ValidationError, ValidationErrors};
use crate::resources::{AllowedUse, AssignmentMode, IpPool, IpipMode, VxlanMode};

/// Checks one pool on its own.
pub fn validate_ip_pool(pool: &IpPool) -> Result<(), ValidationErrors> {
    let mut r = Report::new("IPPool", pool.name());
    let spec = &pool.spec;
    let cidr = spec.cidr;
    if cidr.trunc() != cidr {
        r.push(
            "spec.cidr",
            Problem::NotMasked {
                cidr: cidr.to_string(),
                masked: cidr.trunc().to_string(),
            },
        );
    }
    let (family, min, max) = match cidr {
        IpNet::V4(_) => (4, 20, 32),
        IpNet::V6(_) => (6, 116, 128),
    };
    let size = spec.block_size();
    if !(min..=max).contains(&size) {
        r.push(
            "spec.blockSize",
            Problem::BlockSizeRange {
                size,
                family,
                min,
                max,
            },
        );
    } else if u32::from(cidr.prefix_len()) > size {
        r.push(
            "spec.cidr",
            Problem::PoolSmallerThanBlock {
                pool_len: cidr.prefix_len(),
                block_size: size,
            },
        );
    }
    let ipip = spec.ipip_mode();
    let vxlan = spec.vxlan_mode();
    r.known(
        "spec.ipipMode",
        ipip.as_str(),
        ipip.is_known(),
        IpipMode::KNOWN,
    );
    r.known(
        "spec.vxlanMode",
        vxlan.as_str(),
        vxlan.is_known(),
        VxlanMode::KNOWN,
    );
    if family == 6 && ipip != IpipMode::Never {
        r.push("spec.ipipMode", Problem::IpipOnIpv6);
    }
    if ipip != IpipMode::Never && vxlan != VxlanMode::Never {
        r.push(
            "spec.vxlanMode",
            Problem::BothEncapsulations {
                ipip: ipip.to_string(),
                vxlan: vxlan.to_string(),
            },
        );
    }
    for (i, u) in spec.allowed_uses.iter().enumerate() {
        r.known(
            &format!("spec.allowedUses[{i}]"),
            u.as_str(),
            u.is_known(),
            AllowedUse::KNOWN,
        );
    }
    if let Some(m) = &spec.assignment_mode {
        r.known(
            "spec.assignmentMode",
            m.as_str(),
            m.is_known(),
            AssignmentMode::KNOWN,
        );
    }
    r.selector("spec.nodeSelector", spec.node_selector());
    if !spec.namespace_selector.is_empty() {
        r.selector("spec.namespaceSelector", &spec.namespace_selector);
    }
    r.finish()
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    let (a, b) = (a.trunc(), b.trunc());
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Every pair of pools in `pools` whose ranges share addresses; each pair
/// is reported once, on the later pool.
pub fn overlapping_pools(pools: &[IpPool]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    for (i, p) in pools.iter().enumerate() {
        for q in &pools[..i] {
            if overlap(&p.spec.cidr, &q.spec.cidr) {
                errors.0.push(ValidationError {
                    object: format!("IPPool {:?}", p.name()),
                    field: "spec.cidr".into(),
                    problem: Problem::Overlap {
                        cidr: p.spec.cidr.to_string(),
                        other: q.name().to_owned(),
                        other_cidr: q.spec.cidr.to_string(),
                    },
                });
            }
        }
    }
    errors.into_result()
}
