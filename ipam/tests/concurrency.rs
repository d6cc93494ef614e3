//! 16 allocators (each its own etcd client) on 8 hosts assign and release
//! 4,000 addresses on a /22 of /26 blocks with random interleaving; no
//! address is ever held twice, the leak check finds exactly what it should,
//! and the pool accounting matches what is held.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use common::*;
use manul_ipam::{AutoAssignArgs, Problem};
use manul_tests::{Etcd, Need, require};

const ALLOCATORS: usize = 16;
const HOSTS: usize = 8;
const TOTAL: usize = 4000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_allocators_never_hand_out_an_address_twice() {
    require!(Need::Bin("etcd"));
    let etcd = Etcd::start().unwrap();
    let admin = ipam(&etcd).await;
    add_pool(admin.datastore(), "p", "10.80.0.0/22", 26, |_| {}).await;
    // ip -> handle of every address currently held, as the allocators saw it.
    let held: Arc<Mutex<HashMap<IpAddr, String>>> = Arc::default();
    let mut tasks = Vec::new();
    for a in 0..ALLOCATORS {
        let ipam = ipam(&etcd).await;
        let held = held.clone();
        tasks.push(tokio::spawn(async move {
            let host = format!("host-{}", a % HOSTS);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((a as u64 + 1) * 0x1000_0001));
            let mut mine: Vec<(IpAddr, String)> = Vec::new();
            for n in 0..TOTAL / ALLOCATORS {
                let handle = format!("k8s-pod-network.c{a}-{n}");
                let ips = ipam
                    .auto_assign(&AutoAssignArgs {
                        handle_id: handle.clone(),
                        num_v4: 1,
                        host: host.clone(),
                        ..AutoAssignArgs::default()
                    })
                    .await
                    .unwrap_or_else(|e| panic!("allocator {a} assignment {n}: {e}"));
                for ip in ips {
                    if let Some(other) = held.lock().unwrap().insert(ip, handle.clone()) {
                        panic!("{ip} handed to {handle} while {other} holds it");
                    }
                    mine.push((ip, handle.clone()));
                }
                if mine.len() > 30 || rng.next() % 2 == 0 {
                    let i = (rng.next() % mine.len() as u64) as usize;
                    let (ip, handle) = mine.swap_remove(i);
                    // Forget it before it is free, so a reuse is never a false alarm.
                    held.lock().unwrap().remove(&ip);
                    if rng.next() % 2 == 0 {
                        let freed = ipam.release_by_handle(&handle).await.unwrap();
                        assert_eq!(freed, [ip]);
                    } else {
                        let r = ipam.release_ips(&[(ip, None)]).await.unwrap();
                        assert!(
                            matches!(r[0].1, manul_ipam::Released::Freed { .. }),
                            "{r:?}"
                        );
                    }
                }
            }
            ipam.stats()
        }));
    }
    let mut conflicts = 0;
    for t in tasks {
        conflicts += t.await.expect("allocator task").conflicts;
    }
    let held = held.lock().unwrap().clone();
    eprintln!(
        "{} addresses held at the end; {conflicts} lost compare-and-swaps",
        held.len()
    );

    // Accounting: in use == held, per pool and in total.
    let u = admin.utilization().await.unwrap();
    assert_eq!(u.pools[0].in_use, held.len() as u128);
    assert!(u.orphan_blocks.is_empty());
    assert!(u.pools[0].blocks.len() <= 16);
    for (ip, handle) in &held {
        let info = admin.ip_info(*ip).await.unwrap();
        assert_eq!(info.handle.as_ref(), Some(handle), "{ip}");
    }

    // Leak check: WorkloadEndpoints for half of what is held, plus one for
    // an address nobody holds.
    let ds = admin.datastore().clone();
    let mut with_wep = BTreeSet::new();
    for (i, ip) in held.keys().enumerate() {
        if i % 2 == 0 {
            add_wep(&ds, &format!("pod-{i}"), "host-0", &[*ip]).await;
            with_wep.insert(*ip);
        }
    }
    let stray: IpAddr = (0..1024u32)
        .map(|i| IpAddr::from(std::net::Ipv4Addr::from(0x0a50_0000 + i)))
        .find(|ip| !held.contains_key(ip))
        .unwrap();
    add_wep(&ds, "stray", "host-1", &[stray]).await;
    let report = admin.check().await.unwrap();
    let mut leaked = BTreeSet::new();
    for p in &report.problems {
        match p {
            Problem::Leaked { ip, .. } => {
                leaked.insert(*ip);
            }
            Problem::NotAllocated { ip, .. } => assert_eq!(*ip, stray),
            other => panic!("unexpected problem: {other:?}"),
        }
    }
    let expected: BTreeSet<IpAddr> = held
        .keys()
        .filter(|ip| !with_wep.contains(ip))
        .copied()
        .collect();
    assert_eq!(leaked, expected);
    assert_eq!(report.summary.allocated, held.len());
    assert_eq!(
        report.summary.handles,
        held.len(),
        "one handle per held address"
    );
}
