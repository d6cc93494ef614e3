//! The words of a replay line: positional words and `key=value` options,
//! and the values they hold.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::Duration;

use manul_bgp::types::Family;
use manul_bgp::wire::{Community, LargeCommunity};

pub type Result<T> = std::result::Result<T, String>;

/// One line's words after the command: bare words in order, options by key.
#[derive(Debug, Default)]
pub struct Words {
    pub bare: Vec<String>,
    opts: BTreeMap<String, String>,
    used: std::cell::RefCell<Vec<String>>,
}

impl Words {
    pub fn parse(rest: &[&str]) -> Self {
        let mut w = Words::default();
        for word in rest {
            match word.split_once('=') {
                Some((k, v)) => {
                    w.opts.insert(k.to_string(), v.to_string());
                }
                None => w.bare.push((*word).to_string()),
            }
        }
        w
    }

    /// The `i`th bare word.
    pub fn arg<T: FromStr>(&self, i: usize, what: &str) -> Result<T> {
        let s = self.bare.get(i).ok_or_else(|| format!("missing {what}"))?;
        s.parse().map_err(|_| format!("bad {what} {s:?}"))
    }

    /// Whether the bare word `flag` is there.
    pub fn flag(&self, flag: &str) -> bool {
        self.bare.iter().any(|b| b == flag)
    }

    /// Option `key`, parsed.
    pub fn opt<T: FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.used.borrow_mut().push(key.to_string());
        match self.opts.get(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| format!("bad {key}={v:?}")),
        }
    }

    /// Option `key` as a comma-separated list.
    pub fn list<T>(&self, key: &str, item: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
        self.used.borrow_mut().push(key.to_string());
        match self.opts.get(key) {
            None => Ok(Vec::new()),
            Some(v) if v.is_empty() => Ok(Vec::new()),
            Some(v) => v.split(',').map(item).collect(),
        }
    }

    /// Fail on options nobody asked for (a typo would otherwise be ignored).
    pub fn done(&self) -> Result<()> {
        let used = self.used.borrow();
        match self.opts.keys().find(|k| !used.contains(k)) {
            Some(k) => Err(format!("unknown option {k}=")),
            None => Ok(()),
        }
    }
}

pub fn family(s: &str) -> Result<Family> {
    match s {
        "ipv4" | "ipv4-unicast" => Ok(Family::Ipv4Unicast),
        "ipv6" | "ipv6-unicast" => Ok(Family::Ipv6Unicast),
        _ => Err(format!("bad family {s:?} (ipv4 or ipv6)")),
    }
}

pub fn parsed<T: FromStr>(s: &str) -> Result<T> {
    s.parse().map_err(|_| format!("bad value {s:?}"))
}

pub fn community(s: &str) -> Result<Community> {
    let (a, v) = s
        .split_once(':')
        .ok_or_else(|| format!("bad community {s:?}"))?;
    let (a, v): (u16, u16) = (parsed(a)?, parsed(v)?);
    Ok(Community(u32::from(a) << 16 | u32::from(v)))
}

pub fn large_community(s: &str) -> Result<LargeCommunity> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts[..] {
        [g, a, b] => Ok(LargeCommunity {
            global: parsed(g)?,
            local1: parsed(a)?,
            local2: parsed(b)?,
        }),
        _ => Err(format!("bad large community {s:?}")),
    }
}

pub fn ipv4(s: &str) -> Result<Ipv4Addr> {
    parsed(s)
}

pub fn addr(s: &str) -> Result<IpAddr> {
    parsed(s)
}

/// `90s`, `2m`, `1500ms` or plain seconds.
pub fn duration(s: &str) -> Result<Duration> {
    let bad = || format!("bad duration {s:?}");
    if let Some(ms) = s.strip_suffix("ms") {
        return Ok(Duration::from_millis(ms.parse().map_err(|_| bad())?));
    }
    if let Some(m) = s.strip_suffix('m') {
        return Ok(Duration::from_secs(
            60 * m.parse::<u64>().map_err(|_| bad())?,
        ));
    }
    let secs = s.strip_suffix('s').unwrap_or(s);
    Ok(Duration::from_secs(secs.parse().map_err(|_| bad())?))
}

/// A duration as the transcript writes it.
pub fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
