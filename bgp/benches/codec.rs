//! Codec micro-benchmarks: UPDATE decode and encode (`pack_announce`)
//! throughput in prefixes per second, for one 4096-octet UPDATE full of
//! /24 NLRI and for a 100k-prefix table (about 100 such UPDATEs).
//!
//! `cargo bench -p manul-bgp --bench codec` (under a minute).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};
use manul_bgp::types::Family;
use manul_bgp::wire::{
    AsPath, Context, Message, NextHop, Nlri, Origin, PathAttributes, frame, pack_announce,
};

fn ctx() -> Context {
    Context {
        four_octet_as: true,
        ..Context::default()
    }
}

/// `count` consecutive /24s from 11.0.0.0.
fn nlri(count: usize) -> Vec<Nlri> {
    (0..count as u32)
        .map(|i| {
            let addr = Ipv4Addr::from(u32::from(Ipv4Addr::new(11, 0, 0, 0)) + (i << 8));
            Nlri::new(IpNet::V4(Ipv4Net::new(addr, 24).expect("valid")))
        })
        .collect()
}

fn attrs() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::sequence(vec![65001])),
        ..PathAttributes::default()
    }
}

fn encode(nlri: &[Nlri], out: &mut Vec<u8>) -> usize {
    let nh = NextHop::new("10.0.1.1".parse().expect("literal"));
    pack_announce(&ctx(), Family::Ipv4Unicast, &attrs(), nh, nlri, out).expect("encodes")
}

/// Decode every message of `bytes`; returns the prefixes seen.
fn decode_all(bytes: &[u8], ctx: &Context) -> usize {
    let mut at = 0;
    let mut prefixes = 0;
    while at < bytes.len() {
        let len = frame(&bytes[at..], ctx)
            .expect("well framed")
            .expect("whole");
        match Message::decode(&bytes[at..at + len], ctx).expect("decodes") {
            Message::Update(u) => prefixes += u.nlri.len(),
            other => panic!("{other:?}"),
        }
        at += len;
    }
    prefixes
}

fn benches(c: &mut Criterion) {
    let ctx = ctx();
    // How many /24s one 4096-octet UPDATE holds.
    let mut probe = Vec::new();
    let all = nlri(100_000);
    encode(&all[..2000], &mut probe);
    let per_message = decode_all(
        &probe[..frame(&probe, &ctx).expect("ok").expect("whole")],
        &ctx,
    );

    for (name, count) in [
        ("one_full_message", per_message),
        ("100k_prefixes", 100_000),
    ] {
        let list = &all[..count];
        let mut wire = Vec::new();
        encode(list, &mut wire);

        let mut g = c.benchmark_group(format!("update_encode/{name}"));
        g.throughput(Throughput::Elements(count as u64));
        let mut out = Vec::with_capacity(wire.len());
        g.bench_function("pack_announce", |b| {
            b.iter(|| {
                out.clear();
                black_box(encode(black_box(list), &mut out))
            })
        });
        g.finish();

        let mut g = c.benchmark_group(format!("update_decode/{name}"));
        g.throughput(Throughput::Elements(count as u64));
        g.bench_function("frame_and_decode", |b| {
            b.iter(|| black_box(decode_all(black_box(&wire), &ctx)))
        });
        g.finish();
    }
}

criterion_group! {
    name = codec;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = benches
}
criterion_main!(codec);
