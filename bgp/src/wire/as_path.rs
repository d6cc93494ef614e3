//! AS_PATH and AS4_PATH values (RFC 4271 §4.3, RFC 6793 §4): 2- and
//! 4-octet forms, AS_TRANS substitution for old peers (§4.2.2) and the
//! AS4_PATH merge when receiving from them (§4.2.3).

use crate::types::{AS_TRANS, Asn};
use crate::wire::reader::Reader;
use crate::wire::{AsPath, AsSegment, SegmentKind};

/// Parses an AS_PATH (or AS4_PATH, with `four_octet`). Malformed per
/// RFC 7606 §7.2: unknown segment type, zero-length segment, or segment
/// lengths that overrun or underrun the attribute.
pub(crate) fn decode_as_path(value: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let kind = r.u8().ok_or("truncated AS_PATH segment")?;
        let kind = SegmentKind::from_u8(kind).ok_or("unknown AS_PATH segment type")?;
        let count = usize::from(r.u8().ok_or("truncated AS_PATH segment")?);
        if count == 0 {
            return Err("zero-length AS_PATH segment");
        }
        let mut asns = Vec::with_capacity(count);
        for _ in 0..count {
            let asn = if four_octet {
                r.u32()
            } else {
                r.u16().map(Asn::from)
            };
            asns.push(asn.ok_or("AS_PATH segment overruns the attribute")?);
        }
        segments.push(AsSegment { kind, asns });
    }
    Ok(AsPath { segments })
}

/// Writes a path's segments, splitting runs longer than 255 and skipping
/// empty segments. In 2-octet form, numbers above 65535 become AS_TRANS.
pub(crate) fn encode_as_path(path: &AsPath, four_octet: bool, out: &mut Vec<u8>) {
    for seg in &path.segments {
        for chunk in seg.asns.chunks(255) {
            out.push(seg.kind as u8);
            out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
            for &asn in chunk {
                if four_octet {
                    out.extend_from_slice(&asn.to_be_bytes());
                } else {
                    out.extend_from_slice(&to_two_octet(asn).to_be_bytes());
                }
            }
        }
    }
}

/// The 2-octet form of an AS number (RFC 6793 §4.2.2).
pub(crate) fn to_two_octet(asn: Asn) -> u16 {
    u16::try_from(asn).unwrap_or(AS_TRANS as u16)
}

/// Whether an old peer needs AS4_PATH to learn the real path (RFC 6793 §4.2.2).
pub(crate) fn needs_as4_path(path: &AsPath) -> bool {
    path.segments
        .iter()
        .filter(|s| !s.kind.is_confed())
        .flat_map(|s| s.asns.iter())
        .any(|&a| a > 0xffff)
}

/// The AS4_PATH to send: the path without confederation segments
/// (RFC 6793 §3).
pub(crate) fn as4_path_of(path: &AsPath) -> AsPath {
    AsPath {
        segments: path
            .segments
            .iter()
            .filter(|s| !s.kind.is_confed())
            .cloned()
            .collect(),
    }
}

/// Merges a received AS4_PATH into the AS_PATH of an old peer
/// (RFC 6793 §4.2.3): if AS4_PATH is longer, it is ignored; otherwise the
/// leading AS_PATH numbers it does not cover are kept and AS4_PATH follows.
/// Confederation segments in AS4_PATH are ignored (RFC 6793 §3).
pub(crate) fn merge_as4_path(as_path: &AsPath, as4_path: &AsPath) -> AsPath {
    let as4 = as4_path_of(as4_path);
    let (n, m) = (as_path.length(), as4.length());
    if n < m {
        return as_path.clone();
    }
    let mut need = n - m;
    let mut segments = Vec::with_capacity(as_path.segments.len() + as4.segments.len());
    for seg in &as_path.segments {
        match seg.kind {
            SegmentKind::ConfedSequence | SegmentKind::ConfedSet => segments.push(seg.clone()),
            _ if need == 0 => break,
            SegmentKind::Set => {
                segments.push(seg.clone());
                need -= 1;
            }
            SegmentKind::Sequence => {
                let k = need.min(seg.asns.len());
                segments.push(AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: seg.asns.get(..k).unwrap_or_default().to_vec(),
                });
                need -= k;
            }
        }
    }
    segments.extend(as4.segments);
    AsPath { segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[Asn]) -> AsSegment {
        AsSegment {
            kind: SegmentKind::Sequence,
            asns: asns.to_vec(),
        }
    }

    fn set(asns: &[Asn]) -> AsSegment {
        AsSegment {
            kind: SegmentKind::Set,
            asns: asns.to_vec(),
        }
    }

    fn path(segs: Vec<AsSegment>) -> AsPath {
        AsPath { segments: segs }
    }

    #[test]
    fn bytes_by_hand() {
        let p = path(vec![seq(&[65001, 4_200_000_000]), set(&[3])]);
        let mut four = Vec::new();
        encode_as_path(&p, true, &mut four);
        assert_eq!(
            four,
            [
                2, 2, 0, 0, 0xfd, 0xe9, 0xfa, 0x56, 0xea, 0x00, 1, 1, 0, 0, 0, 3
            ]
        );
        assert_eq!(decode_as_path(&four, true), Ok(p.clone()));
        let mut two = Vec::new();
        encode_as_path(&p, false, &mut two);
        assert_eq!(two, [2, 2, 0xfd, 0xe9, 0x5b, 0xa0, 1, 1, 0, 3]);
        assert!(needs_as4_path(&p));
    }

    #[test]
    fn long_segments_are_split() {
        let p = AsPath::sequence((1..=300).collect());
        let mut out = Vec::new();
        encode_as_path(&p, true, &mut out);
        assert_eq!(out.len(), 2 + 255 * 4 + 2 + 45 * 4);
        let back = decode_as_path(&out, true).unwrap();
        assert_eq!(back.length(), 300);
        assert_eq!(back.segments.len(), 2);
    }

    #[test]
    fn malformed_paths() {
        assert!(decode_as_path(&[5, 1, 0, 1], false).is_err()); // bad type
        assert!(decode_as_path(&[2, 0], false).is_err()); // zero length
        assert!(decode_as_path(&[2, 2, 0, 1], false).is_err()); // overrun
        assert!(decode_as_path(&[2, 1, 0, 1, 0], false).is_err()); // trailing octet
        assert_eq!(decode_as_path(&[], false), Ok(AsPath::default()));
    }

    #[test]
    fn merge_replaces_the_trailing_part() {
        // RFC 6793 §4.2.3: AS_PATH 65001 23456 23456, AS4_PATH 4200000000 4200000001.
        let old = path(vec![seq(&[65001, AS_TRANS, AS_TRANS])]);
        let as4 = path(vec![seq(&[4_200_000_000, 4_200_000_001])]);
        assert_eq!(
            merge_as4_path(&old, &as4),
            path(vec![seq(&[65001]), seq(&[4_200_000_000, 4_200_000_001])])
        );
    }

    #[test]
    fn merge_keeps_equal_length_as4_path_whole() {
        let old = path(vec![seq(&[AS_TRANS, 65002])]);
        let as4 = path(vec![seq(&[4_200_000_000, 65002])]);
        assert_eq!(merge_as4_path(&old, &as4), as4);
    }

    #[test]
    fn merge_ignores_longer_as4_path() {
        let old = path(vec![seq(&[AS_TRANS])]);
        let as4 = path(vec![seq(&[4_200_000_000, 65002])]);
        assert_eq!(merge_as4_path(&old, &as4), old);
    }

    #[test]
    fn merge_counts_a_set_as_one_and_keeps_confed_segments() {
        let old = path(vec![
            AsSegment {
                kind: SegmentKind::ConfedSequence,
                asns: vec![64512],
            },
            seq(&[65001]),
            set(&[1, 2, 3]),
            seq(&[AS_TRANS]),
        ]);
        let as4 = path(vec![
            AsSegment {
                kind: SegmentKind::ConfedSet,
                asns: vec![9],
            },
            seq(&[4_200_000_000]),
        ]);
        assert_eq!(
            merge_as4_path(&old, &as4),
            path(vec![
                AsSegment {
                    kind: SegmentKind::ConfedSequence,
                    asns: vec![64512]
                },
                seq(&[65001]),
                set(&[1, 2, 3]),
                seq(&[4_200_000_000]),
            ])
        );
    }
}
