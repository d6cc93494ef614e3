//! What one running speaker hands on, from its start to its end:
//!
//! - its peer table: [`follow_peers`] takes the speaker's peer-state
//!   subscription and keeps [`DriverState::peers`] equal to it, change by
//!   change (no polling);
//! - its best paths, for felix: [`forward`] first tells felix it holds
//!   ([`Best::Hold`]), waits until the speaker has converged (every peer
//!   the view configures Established, then [`SETTLE`] for their UPDATEs,
//!   at most [`CONVERGE_MAX`]), then sends the whole Loc-RIB
//!   ([`Best::Replace`]) and every change after ([`Best::Changes`]).
//!   On a cold start ([`StartKind::Cold`]: the kernel holds none of
//!   felix's routes) there is nothing to protect: no hold, the Loc-RIB at
//!   once (empty, or nearly) and every change as it comes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use manul_bgp::fsm::State;
use manul_bgp::rib::BestChange;
use manul_bgp::speaker::{PeerChange, Speaker};
use manul_confd::bgp::view::NodeBgpView;
use manul_status::{Hold, HoldReason, unix_seconds};
use tokio::sync::{mpsc, watch};

use super::DriverState;

/// The longest felix waits for BGP before programming the kernel.
pub const CONVERGE_MAX: Duration = Duration::from_secs(30);

/// How long after the last peer came up felix still waits, for the
/// peers' first UPDATEs.
pub const SETTLE: Duration = Duration::from_secs(1);

/// What felix is told about BGP.
#[derive(Debug)]
pub enum Best {
    /// A speaker (re)started: felix holds what it has until the next
    /// `Replace`.
    Hold(Hold),
    /// The whole Loc-RIB of a speaker that has converged: replaces
    /// everything known before.
    Replace(Vec<BestChange>),
    /// Changes since.
    Changes(Vec<BestChange>),
}

/// What the kernel held when this speaker started, which decides whether
/// felix waits for BGP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartKind {
    /// The agent started and the kernel holds no route of felix's
    /// (protocol 80, felix's table): nothing is there to withdraw by
    /// mistake, so felix writes what it knows at once and each best path
    /// as it is learned; holding would only delay the first routes.
    Cold,
    /// The agent started over routes a previous run left
    /// ([`HoldReason::Start`]), or the speaker restarted in place
    /// ([`HoldReason::SpeakerRestart`]): felix holds until BGP has
    /// converged, so the routes in the kernel stay while the sessions
    /// come back (restart without loss).
    Warm(HoldReason),
}

impl StartKind {
    /// The kind of the agent's start from felix's view of the kernel
    /// before its first write: cold only when felix has read the kernel
    /// (a dump succeeded) and it holds none of felix's routes. Pods whose
    /// routes the CNI plugin wrote while the agent was down count: their
    /// start is warm.
    pub fn of_agent_start(progress: &manul_felix::Progress) -> StartKind {
        if progress.kernel_known && progress.kernel.total() == 0 {
            StartKind::Cold
        } else {
            StartKind::Warm(HoldReason::Start)
        }
    }
}

/// The hold felix keeps from a speaker start now until it has converged.
pub fn hold(reason: HoldReason) -> Hold {
    let now = SystemTime::now();
    Hold {
        reason,
        since: unix_seconds(now),
        until: Some(unix_seconds(now + CONVERGE_MAX + SETTLE)),
    }
}

/// Keep `state`'s peer table equal to `sp`'s, until the speaker stops.
pub async fn follow_peers(sp: Speaker, state: watch::Sender<DriverState>) {
    let Ok(mut rx) = sp.subscribe_peers().await else {
        return;
    };
    while let Some(changes) = rx.recv().await {
        state.send_modify(|s| {
            for c in changes {
                match c {
                    PeerChange::Changed(p) => {
                        s.peers.insert(p.address, p);
                    }
                    PeerChange::Removed(a) => {
                        s.peers.remove(&a);
                    }
                }
            }
        });
    }
}

/// Whether every `configured` peer, but those held back (their password
/// cannot be read: they cannot come up), is Established.
fn all_established<'a>(configured: impl Iterator<Item = &'a IpAddr>, state: &DriverState) -> bool {
    configured.filter(|a| !state.held.contains_key(a)).all(|a| {
        state
            .peers
            .get(a)
            .is_some_and(|p| p.state == State::Established)
    })
}

/// Wait until `all_established`, then [`SETTLE`]; or [`CONVERGE_MAX`].
/// Woken by every change of the peer table and of the view.
async fn converged(
    mut view: watch::Receiver<Arc<NodeBgpView>>,
    mut state: watch::Receiver<DriverState>,
) {
    let deadline = tokio::time::Instant::now() + CONVERGE_MAX;
    loop {
        let up = all_established(
            view.borrow_and_update().peers.keys(),
            &state.borrow_and_update(),
        );
        if up {
            tokio::time::sleep(SETTLE).await;
            return;
        }
        tokio::select! {
            r = state.changed() => if r.is_err() { return },
            r = view.changed() => if r.is_err() { return },
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!("BGP not converged after {CONVERGE_MAX:?}: programming routes anyway");
                return;
            }
        }
    }
}

/// Once `sp` has converged (at once on a [`StartKind::Cold`] start):
/// its whole Loc-RIB, then its changes. On a warm start the caller has
/// sent felix the [`Best::Hold`] this ends.
pub async fn forward(
    sp: Speaker,
    view: watch::Receiver<Arc<NodeBgpView>>,
    state: watch::Receiver<DriverState>,
    tx: mpsc::UnboundedSender<Best>,
    kind: StartKind,
) {
    if kind != StartKind::Cold {
        converged(view, state).await;
    }
    // Subscribe first, then read the Loc-RIB: changes in between are in
    // both, and each carries the prefix's new best, so applying them after
    // the whole table ends in the same state.
    let Ok(mut rx) = sp.subscribe().await else {
        return;
    };
    let Ok(all) = sp.routes().await else { return };
    if tx.send(Best::Replace(all)).is_err() {
        return;
    }
    while let Some(batch) = rx.recv().await {
        if tx.send(Best::Changes(batch)).is_err() {
            return;
        }
    }
}

/// The peer table of a speaker, by address (what [`follow_peers`] keeps).
pub type PeerTable = BTreeMap<IpAddr, manul_bgp::speaker::PeerStatus>;

#[cfg(test)]
mod tests {
    use super::*;
    use manul_bgp::speaker::PeerStatus;

    fn peer(addr: &str, state: State) -> PeerStatus {
        PeerStatus {
            address: addr.parse().unwrap(),
            asn: 64512,
            state,
            established_at: None,
            established_count: 0,
            capabilities: None,
            accepted: 0,
            advertised: 0,
            stale: false,
            end_of_rib: Default::default(),
            last_error: None,
            dynamic: false,
            unsendable: 0,
            last_unsendable: None,
            malformed: Default::default(),
        }
    }

    #[test]
    fn converged_needs_every_configured_peer_but_held_ones() {
        let v: Vec<IpAddr> = ["10.0.0.2", "10.0.0.3"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let mut s = DriverState::default();
        assert!(!all_established(v.iter(), &s));
        s.peers.insert(
            "10.0.0.2".parse().unwrap(),
            peer("10.0.0.2", State::Established),
        );
        s.peers
            .insert("10.0.0.3".parse().unwrap(), peer("10.0.0.3", State::Active));
        assert!(!all_established(v.iter(), &s));
        s.held
            .insert("10.0.0.3".parse().unwrap(), "no password".into());
        assert!(all_established(v.iter(), &s));
        s.held.clear();
        s.peers.insert(
            "10.0.0.3".parse().unwrap(),
            peer("10.0.0.3", State::Established),
        );
        assert!(all_established(v.iter(), &s));
    }

    #[test]
    fn a_start_is_cold_only_when_felix_read_a_kernel_without_its_routes() {
        let progress = |known: bool, ipv4: usize, ipv6: usize| manul_felix::Progress {
            kernel_known: known,
            kernel: manul_status::FamilyCount { ipv4, ipv6 },
            ..Default::default()
        };
        let warm = StartKind::Warm(HoldReason::Start);
        assert_eq!(
            StartKind::of_agent_start(&progress(true, 0, 0)),
            StartKind::Cold
        );
        // Routes a previous run (or the CNI plugin) left: hold.
        assert_eq!(StartKind::of_agent_start(&progress(true, 3, 0)), warm);
        assert_eq!(StartKind::of_agent_start(&progress(true, 0, 1)), warm);
        // The kernel could not be read: what it holds is unknown, hold.
        assert_eq!(StartKind::of_agent_start(&progress(false, 0, 0)), warm);
    }
}
