//! BGP community values: standard `aa:nn` (each 0-65535) and large
//! `aa:nn:mm` (each 0-4294967295), as Calico's pattern allows.

/// A parsed community value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommunityValue {
    /// RFC 1997 `aa:nn`.
    Standard(u16, u16),
    /// RFC 8092 `aa:nn:mm`.
    Large(u32, u32, u32),
}

fn part<T: std::str::FromStr>(s: &str, value: &str, bits: u8) -> Result<T, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{value:?} is not a community: {s:?} is not a number"
        ));
    }
    s.parse().map_err(|_| {
        let max = if bits == 16 { "65535" } else { "4294967295" };
        format!("{value:?} is not a community: {s} is above {max}")
    })
}

/// Parses `aa:nn` or `aa:nn:mm`.
pub fn parse_community(value: &str) -> Result<CommunityValue, String> {
    let parts: Vec<&str> = value.split(':').collect();
    match parts.as_slice() {
        [a, n] => Ok(CommunityValue::Standard(
            part(a, value, 16)?,
            part(n, value, 16)?,
        )),
        [a, n, m] => Ok(CommunityValue::Large(
            part(a, value, 32)?,
            part(n, value, 32)?,
            part(m, value, 32)?,
        )),
        _ => Err(format!(
            "{value:?} is not a community: expected aa:nn or aa:nn:mm"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse_community("65000:100"),
            Ok(CommunityValue::Standard(65000, 100))
        );
        assert_eq!(parse_community("0:0"), Ok(CommunityValue::Standard(0, 0)));
        assert_eq!(
            parse_community("4294967295:1:2"),
            Ok(CommunityValue::Large(u32::MAX, 1, 2))
        );
        for bad in [
            "",
            "1",
            "65536:1",
            "1:65536",
            "a:b",
            "1:2:3:4",
            "1::2",
            "-1:2",
            "+1:2",
            "4294967296:1:1",
        ] {
            assert!(parse_community(bad).is_err(), "{bad}");
        }
    }
}
