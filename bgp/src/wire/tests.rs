//! Cross-module tests: whole messages by hand, RFC 7606 outcomes, the
//! RFC 6793 merge through a full decode, packing, and property tests.

mod as4;
mod messages;
mod pack;
mod props;
mod rfc7606;

use crate::wire::Context;

/// A whole UPDATE from hand-written fields.
pub(super) fn update_bytes(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut v = vec![0xff; 16];
    let len = 19 + 2 + withdrawn.len() + 2 + attrs.len() + nlri.len();
    v.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    v.push(2);
    v.extend_from_slice(&u16::try_from(withdrawn.len()).unwrap().to_be_bytes());
    v.extend_from_slice(withdrawn);
    v.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    v.extend_from_slice(attrs);
    v.extend_from_slice(nlri);
    v
}

pub(super) fn four() -> Context {
    Context {
        four_octet_as: true,
        ..Context::default()
    }
}

/// ORIGIN IGP, AS_PATH [65001] (4-octet), NEXT_HOP 192.0.2.1.
pub(super) const BASE_ATTRS: [u8; 20] = [
    0x40, 1, 1, 0, //
    0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xe9, //
    0x40, 3, 4, 192, 0, 2, 1,
];
