//! The prefixes a benchmark announces: `count` consecutive, non-overlapping
//! prefixes of one length, from a start address upward.

use std::net::IpAddr;

use anyhow::{Result, bail};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// `count` prefixes of length `len` starting at `start`: 11.0.0.0/24,
/// 11.0.1.0/24, ... Fails if they would run past the end of the space.
pub fn generate(start: IpAddr, len: u8, count: usize) -> Result<Vec<IpNet>> {
    match start {
        IpAddr::V4(a) => {
            if len == 0 || len > 32 {
                bail!("IPv4 prefix length {len} is not 1..=32");
            }
            let step = 1u64 << (32 - len);
            let base = u64::from(u32::from(a)) & !(step - 1);
            let last = base + step * count as u64;
            if last > 1 << 32 {
                bail!("{count} /{len} prefixes from {a} run past 255.255.255.255");
            }
            (0..count as u64)
                .map(|i| {
                    let addr = u32::try_from(base + i * step).expect("checked above");
                    Ok(IpNet::V4(Ipv4Net::new(addr.into(), len)?))
                })
                .collect()
        }
        IpAddr::V6(a) => {
            if len == 0 || len > 128 {
                bail!("IPv6 prefix length {len} is not 1..=128");
            }
            let shift = 128 - u32::from(len);
            let base = (u128::from(a) >> shift).checked_shl(shift).unwrap_or(0);
            let step = 1u128.checked_shl(shift).unwrap_or(0);
            let Some(_) = (count as u128)
                .checked_mul(step)
                .and_then(|s| s.checked_add(base))
            else {
                bail!("{count} /{len} prefixes from {a} run past the end of IPv6");
            };
            (0..count as u128)
                .map(|i| Ok(IpNet::V6(Ipv6Net::new((base + i * step).into(), len)?)))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_prefixes() {
        let p = generate("11.0.0.0".parse().unwrap(), 24, 3).unwrap();
        let s: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        assert_eq!(s, ["11.0.0.0/24", "11.0.1.0/24", "11.0.2.0/24"]);
        let p = generate("2a00::".parse().unwrap(), 48, 2).unwrap();
        assert_eq!(p[1].to_string(), "2a00:0:1::/48");
        assert!(generate("255.255.255.0".parse().unwrap(), 24, 2).is_err());
    }
}
