//! Route refresh out (RFC 2918): when a peer's import policy changes, the
//! speaker asks the peer to send its routes again instead of resetting
//! the session, and re-imports them under the new policy. In-process
//! speaker against a real GoBGP.

mod common;

use std::time::Duration;

use manul_bgp::fsm::State;
use manul_bgp::speaker::{ImportMode, PeerConfig, PeerOptions, Speaker};
use manul_tests::{Gobgp, Lab, Need, require};

const T: Duration = Duration::from_secs(30);

#[test]
fn import_policy_change_requests_a_refresh_without_a_reset() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("gobgpd"), Need::Bin("gobgp"));
    let lab = Lab::builder().hosts(2).build()?;
    let gobgp = Gobgp::start(
        &lab.host(2).ns,
        r#"
[global.config]
  as = 65002
  router-id = "10.88.0.2"
  local-address-list = ["10.88.0.2"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "10.88.0.1"
    peer-as = 65001
  [neighbors.timers.config]
    connect-retry = 1
"#,
    )?;
    gobgp.add_route("10.240.0.0/24", "ipv4")?;
    // The speaker runs in host1's namespace.
    common::run_in(&lab.host(1).ns, async {
        let speaker = Speaker::start(common::speaker_config(
            "10.88.0.1",
            65001,
            "10.88.0.1:179",
            false,
        ))?;
        let mut peer = PeerConfig {
            address: "10.88.0.2".parse()?,
            port: 179,
            asn: 65002,
            options: PeerOptions {
                connect_retry: Duration::from_secs(1),
                import: ImportMode::None,
                ..PeerOptions::default()
            },
        };
        speaker.add_peer(peer.clone()).await?;
        let up = tokio::time::timeout(T, async {
            loop {
                let s = speaker.status().await?;
                if s.first().is_some_and(|p| p.state == State::Established) {
                    return anyhow::Ok(s[0].established_at);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await??;
        // Import none: the route is received but not accepted.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(speaker.routes().await?.is_empty());
        let sent_before = updates_sent_by(&gobgp)?;

        peer.options.import = ImportMode::All;
        speaker.update_peer(peer).await?;
        let routes = tokio::time::timeout(T, async {
            loop {
                let r = speaker.routes().await?;
                if !r.is_empty() {
                    return anyhow::Ok(r);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await??;
        assert_eq!(routes[0].prefix.to_string(), "10.240.0.0/24");
        // GoBGP sent its routes again (an answer to ROUTE-REFRESH)...
        assert!(updates_sent_by(&gobgp)? > sent_before);
        // ...on the same session.
        let s = speaker.status().await?;
        assert_eq!(s[0].state, State::Established);
        assert_eq!(s[0].established_at, up, "the session was reset");
        speaker.shutdown(false).await?;
        anyhow::Ok(())
    })
}

fn updates_sent_by(gobgp: &Gobgp) -> anyhow::Result<u64> {
    let json: serde_json::Value =
        serde_json::from_str(&gobgp.cli(&["neighbor", "10.88.0.1", "-j"])?)?;
    Ok(json["state"]["messages"]["sent"]["update"]
        .as_u64()
        .unwrap_or(0))
}
