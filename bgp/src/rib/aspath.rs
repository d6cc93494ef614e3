//! AS_PATH questions the decision process and policies ask.

use crate::types::Asn;
use crate::wire::{AsPath, AsSegment, SegmentKind};

/// Path length for route selection (RFC 4271 §9.1.2.2 a): an AS_SET counts
/// as 1, confederation segments count 0 (RFC 5065 §5.3).
pub fn path_len(path: Option<&AsPath>) -> u32 {
    path.map_or(0, |p| {
        p.segments
            .iter()
            .map(|s| match s.kind {
                SegmentKind::Sequence => u32::try_from(s.asns.len()).unwrap_or(u32::MAX),
                SegmentKind::Set => 1,
                SegmentKind::ConfedSequence | SegmentKind::ConfedSet => 0,
            })
            .fold(0u32, u32::saturating_add)
    })
}

/// How many times `asn` appears anywhere in the path (loop detection,
/// RFC 4271 §9.1.2).
pub fn count(path: Option<&AsPath>, asn: Asn) -> usize {
    path.map_or(0, |p| {
        p.segments
            .iter()
            .flat_map(|s| s.asns.iter())
            .filter(|&&a| a == asn)
            .count()
    })
}

/// The neighbouring AS: the first AS of the first non-confederation segment
/// when that is an AS_SEQUENCE (RFC 4271 §9.1.2.2 c, RFC 5065 §5.3).
/// `None` for an empty path (a route from within our AS).
pub fn neighbor_as(path: Option<&AsPath>) -> Option<Asn> {
    let seg = path?
        .segments
        .iter()
        .find(|s| matches!(s.kind, SegmentKind::Sequence | SegmentKind::Set))?;
    match seg.kind {
        SegmentKind::Sequence => seg.asns.first().copied(),
        _ => None,
    }
}

/// The originating AS: the last AS of the path when the last segment is an
/// AS_SEQUENCE (as RFC 6811 §2 defines it).
pub fn origin_as(path: Option<&AsPath>) -> Option<Asn> {
    let seg = path?.segments.last()?;
    match seg.kind {
        SegmentKind::Sequence => seg.asns.last().copied(),
        _ => None,
    }
}

/// Prepend `asn` `times` times (RFC 4271 §5.1.2): into the leading
/// AS_SEQUENCE when it has room (255 per segment), else a new one.
pub fn prepend(path: &mut AsPath, asn: Asn, times: usize) {
    for _ in 0..times {
        match path.segments.first_mut() {
            Some(seg) if seg.kind == SegmentKind::Sequence && seg.asns.len() < 255 => {
                seg.asns.insert(0, asn);
            }
            _ => path.segments.insert(
                0,
                AsSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![asn],
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(kind: SegmentKind, asns: &[Asn]) -> AsSegment {
        AsSegment {
            kind,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn length_counts_sets_once_and_confeds_zero() {
        let p = AsPath {
            segments: vec![
                seg(SegmentKind::ConfedSequence, &[1, 2]),
                seg(SegmentKind::Sequence, &[3, 4]),
                seg(SegmentKind::Set, &[5, 6, 7]),
            ],
        };
        assert_eq!(path_len(Some(&p)), 3);
        assert_eq!(neighbor_as(Some(&p)), Some(3));
        assert_eq!(origin_as(Some(&p)), None);
        assert_eq!(path_len(None), 0);
    }

    #[test]
    fn prepend_fills_then_opens_a_segment() {
        let mut p = AsPath::default();
        prepend(&mut p, 65000, 2);
        assert_eq!(
            p.segments,
            vec![seg(SegmentKind::Sequence, &[65000, 65000])]
        );
        let mut full = AsPath {
            segments: vec![seg(SegmentKind::Sequence, &[1; 255])],
        };
        prepend(&mut full, 9, 1);
        assert_eq!(full.segments.len(), 2);
        assert_eq!(origin_as(Some(&full)), Some(1));
        assert_eq!(count(Some(&full), 1), 255);
    }
}
