//! The cluster-wide IPAM config (`/calico/ipam/v2/config`): read, validate,
//! write.
//!
//! `maxBlocksPerHost`: the stored value follows Calico's model, where 0 (or
//! absent) means "not set". The allocator then applies Calico's built-in
//! safeguard of [`DEFAULT_MAX_BLOCKS_PER_HOST`] (20) blocks per host and
//! family, exactly as libcalico-go's `autoAssign` does; so "0 means 20" in
//! effect and "0 means no explicit limit" in the stored value are the same
//! statement. [`effective_max_blocks`] is the one place that decides.
//!
//! Validation is Calico's (`SetIPAMConfig`):
//! - strict affinity and automatic block allocation may not both be off
//!   (no address could ever be assigned);
//! - a `maxBlocksPerHost` above 0 requires strict affinity (the limit always
//!   wins over borrowing, so Calico makes the user say so);
//! - the count itself cannot be negative (it is unsigned here).

use manul_datastore::ipam::IpamConfig;
use manul_datastore::keys::IPAM_CONFIG_KEY;

use crate::error::{IpamError, Result};
use crate::store::{MAX_RETRIES, Store};

/// Blocks one host may hold per address family when the config sets no
/// limit (Calico's safeguard against runaway block allocation).
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;

/// The per-host block limit `cfg` puts in force.
pub fn effective_max_blocks(cfg: &IpamConfig) -> u32 {
    cfg.max_blocks_per_host()
        .unwrap_or(DEFAULT_MAX_BLOCKS_PER_HOST)
}

/// Calico's checks on a config about to be written.
pub fn validate(cfg: &IpamConfig) -> Result<()> {
    if !cfg.strict_affinity() && !cfg.auto_allocate_blocks() {
        return Err(IpamError::InvalidConfig(
            "cannot disable strict_affinity and auto_allocate_blocks at the same time".into(),
        ));
    }
    if cfg.max_blocks_per_host().is_some() && !cfg.strict_affinity() {
        return Err(IpamError::InvalidConfig(
            "maxBlocksPerHost requires strict_affinity to be enabled".into(),
        ));
    }
    Ok(())
}

/// The stored config, or Calico's default (strict affinity off, automatic
/// block allocation on, no explicit block limit) when none is stored.
pub(crate) async fn get(store: &Store) -> Result<IpamConfig> {
    Ok(store
        .get_json::<IpamConfig>(IPAM_CONFIG_KEY)
        .await?
        .map(|v| v.value)
        .unwrap_or_default())
}

/// Validate and write `cfg`, with all three fields written (the form older
/// Calico versions write and every version reads).
pub(crate) async fn set(store: &Store, cfg: &IpamConfig) -> Result<()> {
    validate(cfg)?;
    let mut value = cfg.clone();
    value.strict_affinity = Some(cfg.strict_affinity());
    value.auto_allocate_blocks = Some(cfg.auto_allocate_blocks());
    value.max_blocks_per_host = Some(cfg.max_blocks_per_host.unwrap_or(0));
    for _ in 0..MAX_RETRIES {
        let r = match store.get_json::<IpamConfig>(IPAM_CONFIG_KEY).await? {
            None => store.create_json(IPAM_CONFIG_KEY, &value).await,
            Some(old) => {
                let mut merged = value.clone();
                // Keep fields this version does not model.
                for (k, v) in old.value.extra {
                    merged.extra.entry(k).or_insert(v);
                }
                store
                    .update_json(IPAM_CONFIG_KEY, &merged, old.mod_revision)
                    .await
            }
        };
        match r {
            Err(e) if e.is_conflict() || e.is_not_found() => continue,
            other => return other.map(drop),
        }
    }
    Err(IpamError::TooManyRetries {
        what: IPAM_CONFIG_KEY.into(),
        attempts: MAX_RETRIES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(strict: bool, auto: bool, max: u32) -> IpamConfig {
        IpamConfig {
            strict_affinity: Some(strict),
            auto_allocate_blocks: Some(auto),
            max_blocks_per_host: Some(max),
            extra: Default::default(),
        }
    }

    #[test]
    fn calicos_rules() {
        assert!(validate(&cfg(false, true, 0)).is_ok());
        assert!(validate(&cfg(true, false, 0)).is_ok());
        assert!(validate(&cfg(true, true, 3)).is_ok());
        assert!(validate(&cfg(false, false, 0)).is_err());
        let e = validate(&cfg(false, true, 3)).unwrap_err().to_string();
        assert!(e.contains("requires strict_affinity"), "{e}");
    }

    #[test]
    fn zero_or_absent_limit_means_twenty() {
        assert_eq!(effective_max_blocks(&cfg(true, true, 0)), 20);
        assert_eq!(effective_max_blocks(&IpamConfig::default()), 20);
        assert_eq!(effective_max_blocks(&cfg(true, true, 2)), 2);
    }
}
