//! RFC 4724 §4.1, manul as the restarting speaker: started with
//! `--restarting`, manul-bgpd defers its advertisements until it has the
//! End-of-RIB of every peer that will send one — "excluding the ones with
//! the Restart State bit set in the received capability and excluding the
//! ones that do not advertise the graceful restart capability" — or until
//! the deferral timer, here far beyond the test.

mod common;

use std::time::{Duration, Instant};

use common::Bgpd;
use common::raw::{Raw, update};
use manul_bgp::types::Family;
use manul_bgp::wire::{Capability, GracefulRestart, Message};
use manul_tests::{Lab, Need, require};

const T: Duration = Duration::from_secs(20);
const MANUL: &str = "10.88.0.1:179";

const MANUL_CONF: &str = r#"
router_id = "10.88.0.1"
asn = 65001
listen = ["10.88.0.1:179"]
[graceful_restart]
deferral_seconds = 600
[[peer]]
address = "10.88.0.2"
asn = 65002
passive = true
[[peer]]
address = "10.88.0.3"
asn = 65003
passive = true
[[peer]]
address = "10.88.0.4"
asn = 65004
passive = true
[[prefix]]
prefix = "10.201.0.0/24"
"#;

fn graceful_restart(restarting: bool) -> Capability {
    Capability::GracefulRestart(GracefulRestart {
        restart_state: restarting,
        notification: false,
        restart_time: 120,
        families: vec![(Family::Ipv4Unicast, true)],
    })
}

/// The prefixes of the UPDATEs `peer` receives within `wait` (KEEPALIVEs
/// and End-of-RIB skipped).
fn announced_within(peer: &mut Raw, wait: Duration) -> anyhow::Result<Vec<String>> {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(got);
        }
        match peer.recv_within(left) {
            Ok(Some(Message::Update(u))) => {
                got.extend(u.nlri.iter().map(|n| n.prefix.to_string()));
                if !got.is_empty() {
                    return Ok(got);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => anyhow::bail!("manul closed the session"),
            // The read timed out: nothing more within `wait`.
            Err(e) if e.downcast_ref::<std::io::Error>().is_some() => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

#[test]
fn a_restarting_speaker_waits_only_for_peers_that_will_send_end_of_rib() -> anyhow::Result<()> {
    require!(Need::Root);
    let lab = Lab::builder().hosts(4).build()?;
    let manul = Bgpd::start_with(&lab.host(1).ns, MANUL_CONF, &["--restarting"])?;
    // No graceful restart capability: will not send End-of-RIB.
    let mut plain = Raw::establish(&lab.host(2).ns, MANUL, 65002, [10, 88, 0, 2], vec![])?;
    // Restarting itself (R bit): waits for ours first.
    let mut restarting = Raw::establish(
        &lab.host(3).ns,
        MANUL,
        65003,
        [10, 88, 0, 3],
        vec![graceful_restart(true)],
    )?;
    // Graceful restart, not restarting: manul waits for its End-of-RIB.
    let mut helper = Raw::establish(
        &lab.host(4).ns,
        MANUL,
        65004,
        [10, 88, 0, 4],
        vec![graceful_restart(false)],
    )?;
    for address in ["10.88.0.2", "10.88.0.3", "10.88.0.4"] {
        manul.wait_established(address, T)?;
    }
    // Deferring: nothing is advertised before the helper's End-of-RIB.
    let early = announced_within(&mut helper, Duration::from_secs(2))?;
    anyhow::ensure!(early.is_empty(), "advertised while deferring: {early:?}");
    // The End-of-RIB for IPv4 unicast: an UPDATE with nothing in it
    // (RFC 4724 §2).
    helper.send(&update(&[], &[]))?;
    for (name, peer) in [
        ("helper", &mut helper),
        ("plain", &mut plain),
        ("restarting", &mut restarting),
    ] {
        let got = announced_within(peer, T)?;
        anyhow::ensure!(
            got == ["10.201.0.0/24"],
            "{name} got {got:?} after the only awaited End-of-RIB"
        );
    }
    drop(manul);
    Ok(())
}
