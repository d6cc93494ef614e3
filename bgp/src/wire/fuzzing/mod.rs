//! The body of the `decode` fuzz target (`bgp/fuzz/`), kept in the library
//! so the corpus replay test (`bgp/tests/fuzz_corpus.rs`) runs the very same
//! checks in the normal test suite, without cargo-fuzz.
//!
//! An input is one selector octet (see [`context_from_selector`]) then a
//! byte stream. Each framed message is decoded; none may panic. A message
//! that decodes with [`UpdateOutcome::Ok`] must survive encode + decode
//! under the same context (ADD-PATH tx mirroring rx) unchanged, except for
//! what the encoder is documented to change ([`expected_after_round_trip`]).
//!
//! [`seeds`] builds one valid input per message shape, for the corpus.

mod seeds;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

pub use seeds::seeds;

use crate::types::{AS_TRANS, Family};
use crate::wire::as_path::needs_as4_path;
use crate::wire::attributes::attr_flags as fl;
use crate::wire::header::BASE_MAX_LEN;
use crate::wire::{
    Capability, Context, DecodedUpdate, EncodeError, Message, Open, RawAttribute, Update,
    UpdateOutcome, frame, negotiate,
};

/// Selector bits, in order: 4-octet AS, ADD-PATH IPv4, ADD-PATH IPv6,
/// extended next hop for IPv4, extended messages. Higher bits are ignored.
pub const SELECTOR_BITS: u8 = 5;

/// The context a selector octet stands for. ADD-PATH is set in both
/// directions so what is decoded can be re-encoded as it came.
pub fn context_from_selector(sel: u8) -> Context {
    let bit = |i: u8| sel & (1 << i) != 0;
    let mut add_path = BTreeSet::new();
    if bit(1) {
        add_path.insert(Family::Ipv4Unicast);
    }
    if bit(2) {
        add_path.insert(Family::Ipv6Unicast);
    }
    Context {
        four_octet_as: bit(0),
        add_path_rx: add_path.clone(),
        add_path_tx: add_path,
        extended_next_hop_v4: bit(3),
        extended_message: bit(4),
    }
}

/// The selector octet of a context (inverse of [`context_from_selector`]
/// for contexts whose ADD-PATH tx equals rx).
pub fn selector_of(ctx: &Context) -> u8 {
    let add = |f| ctx.add_path_rx.contains(&f);
    u8::from(ctx.four_octet_as)
        | u8::from(add(Family::Ipv4Unicast)) << 1
        | u8::from(add(Family::Ipv6Unicast)) << 2
        | u8::from(ctx.extended_next_hop_v4) << 3
        | u8::from(ctx.extended_message) << 4
}

/// Runs the fuzz target on one input. Panics when a decoder or encoder
/// panics or a round-trip invariant is broken.
pub fn decode_roundtrip(data: &[u8]) {
    let Some((&sel, mut stream)) = data.split_first() else {
        return;
    };
    let ctx = context_from_selector(sel);
    loop {
        match frame(stream, &ctx) {
            Ok(Some(len)) => {
                let Some((msg, rest)) = stream.split_at_checked(len) else {
                    // Incomplete: a whole-buffer decode must refuse it.
                    assert!(Message::decode_detailed(stream, &ctx).is_err());
                    return;
                };
                check_message(msg, &ctx);
                stream = rest;
            }
            Ok(None) => {
                assert!(Message::decode_detailed(stream, &ctx).is_err());
                return;
            }
            Err(e) => {
                // The error a session would send; decode must agree.
                let _ = e.to_string();
                assert_eq!(Message::decode_detailed(stream, &ctx).err(), Some(e));
                return;
            }
        }
    }
}

/// Decodes one framed message and checks what must hold of it.
fn check_message(bytes: &[u8], ctx: &Context) {
    let detailed = Message::decode_detailed(bytes, ctx);
    let effective = Message::decode(bytes, ctx);
    let (msg, outcome) = match detailed {
        Ok(d) => d,
        Err(e) => {
            let _ = (e.to_string(), e.notification().describe());
            assert_eq!(effective, Err(e), "decode and decode_detailed disagree");
            return;
        }
    };
    exercise(&msg);
    if outcome != UpdateOutcome::Ok {
        let Message::Update(update) = msg else {
            panic!("an outcome other than Ok for a message that is not an UPDATE");
        };
        let eff = Message::Update(DecodedUpdate { update, outcome }.into_effective());
        assert_eq!(effective.as_ref(), Ok(&eff));
        // What a session acts on can be passed on without a session reset.
        match eff.to_bytes(ctx) {
            Ok(wire) => {
                if let Err(e) = Message::decode_detailed(&wire, ctx) {
                    panic!("effective UPDATE re-decodes as {e}\n{eff:?}\n{wire:02x?}");
                }
            }
            Err(EncodeError::MessageTooLong { .. }) if may_outgrow(&eff, bytes.len(), ctx) => {}
            Err(e) => panic!("effective UPDATE does not encode: {e}\n{eff:?}"),
        }
        return;
    }
    assert_eq!(effective.as_ref(), Ok(&msg), "Ok outcome changed by decode");
    let wire = match msg.to_bytes(ctx) {
        Ok(w) => w,
        Err(e)
            if may_outgrow(&msg, bytes.len(), ctx)
                && matches!(e, EncodeError::MessageTooLong { .. }) =>
        {
            return;
        }
        Err(e) => panic!("re-encoding a decoded message failed: {e}\n{msg:?}"),
    };
    assert_eq!(frame(&wire, ctx), Ok(Some(wire.len())));
    let (again, outcome) = Message::decode_detailed(&wire, ctx)
        .unwrap_or_else(|e| panic!("re-decoding failed: {e}\n{msg:?}\n{wire:02x?}"));
    assert_eq!(outcome, UpdateOutcome::Ok, "re-decoded outcome\n{msg:?}");
    let want = expected_after_round_trip(&msg, ctx);
    match (&want, &again) {
        (Message::Update(w), Message::Update(a)) if !as_path_survives(w, ctx) => {
            // RFC 6793 merging cannot restore every path (see below); all
            // else must still come back.
            let strip = |u: &Update| Update {
                attributes: crate::wire::PathAttributes {
                    as_path: None,
                    ..u.attributes.clone()
                },
                ..u.clone()
            };
            assert_eq!(strip(a), strip(w), "round trip changed the UPDATE");
        }
        _ => assert_eq!(again, want, "round trip changed the message"),
    }
}

/// Encoding may legitimately exceed the message limit where the input did
/// not: an OPEN gets one optional parameter per capability (2 octets each),
/// and an UPDATE to a 2-octet peer carries the whole 4-octet path again in
/// AS4_PATH, where the received AS4_PATH may have covered only its tail.
/// An OPEN is never over 4096 octets, extended messages or not (RFC 8654
/// §4), so a decoded one over that is a bug.
fn may_outgrow(msg: &Message, received_len: usize, ctx: &Context) -> bool {
    match msg {
        Message::Open(_) => received_len <= BASE_MAX_LEN,
        Message::Update(u) => {
            !ctx.four_octet_as && u.attributes.as_path.as_ref().is_some_and(needs_as4_path)
        }
        _ => false,
    }
}

/// What decoding the encoding of `msg` gives: the same message, except that
/// unknown attributes are re-sent only when optional transitive, and then
/// with the Partial bit (RFC 4271 §5).
pub fn expected_after_round_trip(msg: &Message, _ctx: &Context) -> Message {
    let Message::Update(u) = msg else {
        return msg.clone();
    };
    let mut u = u.clone();
    u.attributes.unknown = u
        .attributes
        .unknown
        .iter()
        .filter(|r| r.flags & fl::OPTIONAL_TRANSITIVE == fl::OPTIONAL_TRANSITIVE)
        .map(|r| RawAttribute {
            flags: r.flags | fl::PARTIAL,
            ..r.clone()
        })
        .collect();
    Message::Update(u)
}

/// Whether the AS_PATH of `u` comes back unchanged. Always with 4-octet AS.
/// To a 2-octet peer, a path with 4-octet numbers travels as AS_TRANS in
/// AS_PATH plus AS4_PATH without confederation segments, and the receiver
/// ignores AS4_PATH when AGGREGATOR names an AS other than AS_TRANS (RFC
/// 6793 §4.2.3): the path survives only when its confederation segments
/// all lead and hold 2-octet numbers, and the aggregator (if any) is
/// AS_TRANS or itself a 4-octet number.
fn as_path_survives(u: &Update, ctx: &Context) -> bool {
    let Some(path) = &u.attributes.as_path else {
        return true;
    };
    if ctx.four_octet_as || !needs_as4_path(path) {
        return path
            .segments
            .iter()
            .all(|s| ctx.four_octet_as || s.asns.iter().all(|&a| a <= 0xffff));
    }
    let leading = path
        .segments
        .iter()
        .skip_while(|s| s.kind.is_confed())
        .all(|s| !s.kind.is_confed());
    let confed_small = path
        .segments
        .iter()
        .filter(|s| s.kind.is_confed())
        .all(|s| s.asns.iter().all(|&a| a <= 0xffff));
    let agg_ok = u
        .attributes
        .aggregator
        .is_none_or(|a| a.asn == AS_TRANS || a.asn > 0xffff);
    leading && confed_small && agg_ok
}

/// Calls the accessors a session uses on a decoded message.
fn exercise(msg: &Message) {
    match msg {
        Message::Open(open) => {
            let ours = Open::new(
                65001,
                90,
                Ipv4Addr::new(192, 0, 2, 1),
                vec![
                    Capability::FourOctetAs(65001),
                    Capability::AddPath(vec![(
                        Family::Ipv4Unicast,
                        crate::wire::AddPathMode::Both,
                    )]),
                ],
            );
            let _ = negotiate(&ours, open);
            let _ = negotiate(open, open);
        }
        Message::Update(u) => {
            let _ = u.end_of_rib();
        }
        Message::Notification(n) => {
            let _ = n.describe();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AsPath;

    #[test]
    fn selector_round_trips() {
        for sel in 0..(1u8 << SELECTOR_BITS) {
            assert_eq!(selector_of(&context_from_selector(sel)), sel);
        }
    }

    /// A 2-octet-context UPDATE (selector 0) with ORIGIN, NEXT_HOP and NLRI
    /// 10/8 around the given AS_PATH-related attributes.
    fn two_octet_update(extra: &[u8]) -> (Vec<u8>, Update) {
        let mut attrs = vec![0x40, 1, 1, 0, 0x40, 3, 4, 192, 0, 2, 1];
        attrs.extend_from_slice(extra);
        let mut input = vec![0];
        input.extend(crate::wire::tests::update_bytes(&[], &attrs, &[8, 10]));
        let (msg, outcome) = Message::decode_detailed(&input[1..], &Context::default()).unwrap();
        assert_eq!(outcome, UpdateOutcome::Ok);
        let Message::Update(u) = msg else { panic!() };
        (input, u)
    }

    #[test]
    fn rfc6793_paths_a_2_octet_peer_cannot_get_back_are_tolerated() {
        // AGGREGATOR AS_TRANS with AS4_AGGREGATOR AS 5: re-encoded, the
        // AGGREGATOR says 5 and the receiver must ignore AS4_PATH.
        let (input, u) = two_octet_update(&[
            0x40, 2, 4, 2, 1, 0x5b, 0xa0, // AS_PATH 23456
            0xc0, 7, 6, 0x5b, 0xa0, 1, 1, 1, 1, // AGGREGATOR 23456
            0xc0, 17, 6, 2, 1, 0, 1, 0x11, 0x70, // AS4_PATH 70000
            0xc0, 18, 8, 0, 0, 0, 5, 1, 1, 1, 1, // AS4_AGGREGATOR 5
        ]);
        assert_eq!(u.attributes.as_path, Some(AsPath::sequence(vec![70000])));
        assert!(!as_path_survives(&u, &Context::default()));
        decode_roundtrip(&input);
        // A confederation segment after the merged part.
        let (input, u) = two_octet_update(&[
            0x40, 2, 10, 2, 2, 0, 1, 0x5b, 0xa0, 3, 1, 0, 2, // AS_PATH 1 23456 (2)
            0xc0, 17, 6, 2, 1, 0, 1, 0x11, 0x70, // AS4_PATH 70000
        ]);
        assert_eq!(
            u.attributes.as_path.as_ref().map(|p| p.segments.len()),
            Some(3)
        );
        assert!(!as_path_survives(&u, &Context::default()));
        decode_roundtrip(&input);
    }

    /// Regression: an OPEN over 4096 octets used to be framed and decoded
    /// with extended messages (against RFC 8654 §4), then could not be
    /// re-encoded, breaking the round trip.
    #[test]
    fn an_open_over_4096_octets_is_refused() {
        let mut caps = Vec::new();
        for _ in 0..19 {
            caps.extend_from_slice(&[200, 255]);
            caps.extend_from_slice(&[7; 255]);
        }
        caps.extend_from_slice(&[200, 80]);
        caps.extend_from_slice(&[7; 80]);
        let mut params = vec![2];
        params.extend_from_slice(&u16::try_from(caps.len()).unwrap().to_be_bytes());
        params.extend(caps);
        let mut body = vec![4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 255, 255];
        body.extend_from_slice(&u16::try_from(params.len()).unwrap().to_be_bytes());
        body.extend(params);
        let ext = context_from_selector(1 << 4);
        let mut input = vec![selector_of(&ext)];
        input.extend_from_slice(&crate::wire::header::MARKER);
        input.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
        input.push(1);
        input.extend_from_slice(&body);
        assert_eq!(input.len(), 1 + 5000);
        assert!(Open::decode_body(&body).is_ok());
        let e = Message::decode(&input[1..], &ext).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 2));
        decode_roundtrip(&input);
    }

    #[test]
    fn every_seed_round_trips() {
        for (name, input) in seeds() {
            decode_roundtrip(&input);
            // Seeds are valid: each one's first message decodes Ok.
            let (&sel, stream) = input.split_first().unwrap();
            let ctx = context_from_selector(sel);
            let len = frame(stream, &ctx).unwrap().unwrap();
            let (_, outcome) = Message::decode_detailed(&stream[..len], &ctx).unwrap();
            assert_eq!(outcome, UpdateOutcome::Ok, "{name}");
        }
    }
}
