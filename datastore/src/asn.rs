//! AS numbers as Calico reads and writes them (`numorstring.ASNumber`).
//!
//! Read from a JSON number or a string, either plain (`"64512"`) or in
//! "asdot" notation (`"1.10"` = 1 × 65536 + 10, each half 0-65535), exactly
//! as Calico's `ASNumberFromString`. Always written as a JSON number, as
//! Calico does, so an asdot string is normalised on rewrite.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// An AS number. 0 parses (Calico's type allows it) but is refused by
/// validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AsNumber(pub u32);

/// Calico's default AS number when neither the node nor the global
/// BGPConfiguration sets one.
pub const DEFAULT_AS_NUMBER: AsNumber = AsNumber(64512);

/// An AS number string that is neither a plain number nor asdot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid AS number {0:?}: expected 1-4294967295 or asdot \"a.b\" (each 0-65535)")]
pub struct AsNumberParseError(pub String);

fn digits<T: FromStr>(s: &str) -> Option<T> {
    // Go's ParseUint: decimal digits only, no sign.
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for AsNumber {
    type Err = AsNumberParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(n) = digits::<u32>(s) {
            return Ok(AsNumber(n));
        }
        let err = || AsNumberParseError(s.to_owned());
        let (hi, lo) = s.split_once('.').ok_or_else(err)?;
        let hi = digits::<u16>(hi).ok_or_else(err)?;
        let lo = digits::<u16>(lo).ok_or_else(err)?;
        Ok(AsNumber((u32::from(hi) << 16) | u32::from(lo)))
    }
}

impl fmt::Display for AsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for AsNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.0)
    }
}

struct AsVisitor;

impl de::Visitor<'_> for AsVisitor {
    type Value = AsNumber;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AS number (0-4294967295) or an asdot string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<AsNumber, E> {
        u32::try_from(v)
            .map(AsNumber)
            .map_err(|_| E::custom(format!("AS number {v} is above 4294967295")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<AsNumber, E> {
        u32::try_from(v)
            .map(AsNumber)
            .map_err(|_| E::custom(format!("AS number {v} is out of range")))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<AsNumber, E> {
        v.parse().map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for AsNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_asdot() {
        assert_eq!("64512".parse(), Ok(AsNumber(64512)));
        assert_eq!("4294967295".parse(), Ok(AsNumber(u32::MAX)));
        assert_eq!("1.10".parse(), Ok(AsNumber(65546)));
        assert_eq!("65535.65535".parse(), Ok(AsNumber(u32::MAX)));
        for bad in [
            "",
            "+5",
            "-1",
            "4294967296",
            "1.65536",
            "1.2.3",
            "a.b",
            ".1",
            "1.",
        ] {
            assert!(bad.parse::<AsNumber>().is_err(), "{bad}");
        }
    }

    #[test]
    fn json_forms() {
        let a: AsNumber = serde_json::from_str("65001").unwrap();
        assert_eq!(a, AsNumber(65001));
        let a: AsNumber = serde_json::from_str("\"1.10\"").unwrap();
        assert_eq!(serde_json::to_string(&a).unwrap(), "65546");
        assert!(serde_json::from_str::<AsNumber>("4294967296").is_err());
        assert!(serde_json::from_str::<AsNumber>("-1").is_err());
        assert!(serde_json::from_str::<AsNumber>("1.5").is_err());
    }
}
