//! `Speaker::subscribe_peers`: a snapshot first, then each peer's status
//! as it changes — added, through the RFC 4271 states to Established over
//! a real session on loopback, down when the other side stops, removed.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use manul_bgp::fsm::State;
use manul_bgp::speaker::{PeerChange, PeerConfig, PeerOptions, PeerStatus, Speaker};
use tokio::sync::mpsc::UnboundedReceiver;

const T: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn peer(addr: &str, port: u16, asn: u32, passive: bool) -> PeerConfig {
    PeerConfig {
        address: addr.parse().unwrap(),
        port,
        asn,
        options: PeerOptions {
            connect_retry: Duration::from_secs(1),
            passive,
            ..PeerOptions::default()
        },
    }
}

/// Follows a subscription: the last status of each peer, and checks that
/// no message repeats a status unchanged.
struct Follower {
    rx: UnboundedReceiver<Vec<PeerChange>>,
    peers: HashMap<IpAddr, PeerStatus>,
    states: Vec<State>,
    removed: Vec<IpAddr>,
}

impl Follower {
    fn new(rx: UnboundedReceiver<Vec<PeerChange>>) -> Self {
        Self {
            rx,
            peers: HashMap::new(),
            states: Vec::new(),
            removed: Vec::new(),
        }
    }

    async fn next(&mut self) -> Vec<PeerChange> {
        let batch = tokio::time::timeout(T, self.rx.recv())
            .await
            .expect("a peer change within 30 s")
            .expect("subscription open");
        for c in &batch {
            match c {
                PeerChange::Changed(s) => {
                    assert_ne!(self.peers.get(&s.address), Some(s), "sent unchanged");
                    if self.states.last() != Some(&s.state) {
                        self.states.push(s.state);
                    }
                    self.peers.insert(s.address, s.clone());
                }
                PeerChange::Removed(a) => {
                    assert!(self.peers.remove(a).is_some(), "{a} removed, never seen");
                    self.removed.push(*a);
                }
            }
        }
        batch
    }

    /// Read until `addr` is removed.
    async fn until_removed(&mut self, addr: IpAddr) {
        while !self.removed.contains(&addr) {
            self.next().await;
        }
    }

    /// Read until `done` holds for the status of `addr`.
    async fn until(&mut self, addr: IpAddr, done: impl Fn(&PeerStatus) -> bool) -> PeerStatus {
        loop {
            if let Some(s) = self.peers.get(&addr).filter(|s| done(s)) {
                return s.clone();
            }
            self.next().await;
        }
    }
}

#[tokio::test]
async fn peer_changes_follow_a_session_from_added_to_removed() -> anyhow::Result<()> {
    let (port_a, port_b) = (free_port(), free_port());
    let a = Speaker::start(common::speaker_config(
        "10.0.0.1",
        65001,
        &format!("127.0.0.1:{port_a}"),
        false,
    ))?;
    let b = Speaker::start(common::speaker_config(
        "10.0.0.2",
        65002,
        &format!("127.0.0.2:{port_b}"),
        false,
    ))?;
    b.add_peer(peer("127.0.0.1", port_a, 65001, true)).await?;

    let mut f = Follower::new(a.subscribe_peers().await?);
    assert_eq!(f.next().await, vec![], "the first message: no peers yet");

    let addr: IpAddr = "127.0.0.2".parse()?;
    a.add_peer(peer("127.0.0.2", port_b, 65002, false)).await?;
    let up = f
        .until(addr, |s| {
            s.state == State::Established && s.capabilities.is_some()
        })
        .await;
    // A change is sent per pass, so the states a session passes through
    // within one pass (Connect, OpenSent, OpenConfirm: all of them on a
    // fast loopback) may not be seen; it is sent Idle when added and
    // Established once up.
    assert_eq!(f.states.first(), Some(&State::Idle), "{:?}", f.states);
    assert_eq!(f.states.last(), Some(&State::Established), "{:?}", f.states);
    assert_eq!(up.established_count, 1);
    assert_eq!(up.asn, 65002);
    let at = up.established_at.expect("established_at set");
    let now = manul_bgp::speaker::status::unix_now();
    assert!(at <= now && now - at < 60, "established_at {at}, now {now}");

    // A second subscriber starts from a snapshot of the peer as it is.
    let mut g = Follower::new(a.subscribe_peers().await?);
    let first = g.next().await;
    assert!(
        matches!(&first[..], [PeerChange::Changed(s)] if s.address == addr && s.state == State::Established),
        "{first:?}"
    );

    // The other side goes away: the session leaves Established.
    b.shutdown(false).await?;
    let down = f.until(addr, |s| s.state != State::Established).await;
    assert_eq!(down.established_at, None);
    assert!(down.last_error.is_some(), "{down:?}");

    // Removed: one `Removed`, to every subscriber.
    a.remove_peer(addr).await?;
    f.until_removed(addr).await;
    g.until_removed(addr).await;
    assert_eq!((f.removed.len(), g.removed.len()), (1, 1));
    a.shutdown(false).await?;
    Ok(())
}
