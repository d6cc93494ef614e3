//! The speaker's async API, in-process, against two BIRD peers on a lab
//! segment: best-path subscriptions with ECMP next hops, originate and
//! withdraw, live peer changes that reset only what they must, removal.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use manul_bgp::fsm::State;
use manul_bgp::rib::BestChange;
use manul_bgp::speaker::{ExportMode, PeerConfig, PeerError, PeerOptions, Speaker, SpeakerError};
use manul_tests::{Bird, Lab, Need, require, wait_until};
use tokio::sync::mpsc::UnboundedReceiver;

const T: Duration = Duration::from_secs(30);

fn bird_conf(id: &str, asn: u32) -> String {
    format!(
        r#"
protocol static s4 {{ ipv4; route 10.230.0.0/24 blackhole; }}
protocol bgp speaker {{
    local {id} as {asn};
    neighbor 10.88.0.1 as 65001;
    connect retry time 1;
    error wait time 1, 5;
    ipv4 {{ import all; export all; }};
}}
"#
    )
}

fn peer(addr: &str, asn: u32) -> PeerConfig {
    PeerConfig {
        address: addr.parse().unwrap(),
        port: 179,
        asn,
        options: PeerOptions {
            connect_retry: Duration::from_secs(1),
            ..PeerOptions::default()
        },
    }
}

/// How many times the speaker's session to `addr` has come up.
async fn sessions(speaker: &Speaker, addr: &str) -> u64 {
    let status = speaker.status().await.expect("status");
    status
        .iter()
        .find(|s| s.address.to_string() == addr)
        .map_or(0, |s| s.established_count)
}

/// Read changes until `prefix` has exactly `want` next hops.
async fn next_hops_become(
    rx: &mut UnboundedReceiver<Vec<BestChange>>,
    prefix: &str,
    want: &[&str],
) {
    let prefix: ipnet::IpNet = prefix.parse().unwrap();
    let mut want: Vec<IpAddr> = want.iter().map(|a| a.parse().unwrap()).collect();
    want.sort();
    let mut seen = Vec::new();
    let result = tokio::time::timeout(T, async {
        while let Some(batch) = rx.recv().await {
            for c in batch.into_iter().filter(|c| c.prefix == prefix) {
                let mut nh = c.next_hops.to_vec();
                nh.sort();
                seen = nh.clone();
                if nh == want {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        result.is_ok(),
        "{prefix}: wanted next hops {want:?}, last seen {seen:?}"
    );
}

#[test]
fn speaker_api_end_to_end() -> anyhow::Result<()> {
    require!(Need::Root, Need::Bin("bird"), Need::Bin("birdc"));
    let lab = Lab::builder().hosts(3).build()?;
    let b2 = Bird::builder(&lab.host(2).ns)
        .router_id("10.88.0.2".parse()?)
        .start(&bird_conf("10.88.0.2", 65002))?;
    let b3 = Bird::builder(&lab.host(3).ns)
        .router_id("10.88.0.3".parse()?)
        .start(&bird_conf("10.88.0.3", 65003))?;
    // The speaker runs in host1's namespace.
    common::run_in(&lab.host(1).ns, async {
        let speaker = Speaker::start(common::speaker_config(
            "10.88.0.1",
            65001,
            "10.88.0.1:179",
            true,
        ))?;
        let mut rx = speaker.subscribe().await?;
        speaker.add_peer(peer("10.88.0.2", 65002)).await?;
        speaker.add_peer(peer("10.88.0.3", 65003)).await?;

        // Both announce 10.230.0.0/24 equally: ECMP over both.
        next_hops_become(&mut rx, "10.230.0.0/24", &["10.88.0.2", "10.88.0.3"]).await;

        // Originate: both peers learn it; withdraw: both lose it.
        speaker.originate("10.231.0.0/24".parse()?, vec![], vec![])?;
        for b in [&b2, &b3] {
            wait_until(T, "peer learns 10.231.0.0/24", || {
                if b.has_route("10.231.0.0/24").unwrap_or(false) {
                    Ok(())
                } else {
                    Err("absent")
                }
            });
        }
        speaker.withdraw("10.231.0.0/24".parse()?)?;
        for b in [&b2, &b3] {
            wait_until(T, "peer drops 10.231.0.0/24", || {
                if b.has_route("10.231.0.0/24").unwrap_or(true) {
                    Err("present")
                } else {
                    Ok(())
                }
            });
        }
        speaker.originate("10.231.0.0/24".parse()?, vec![], vec![])?;
        wait_until(T, "b2 learns it again", || {
            if b2.has_route("10.231.0.0/24").unwrap_or(false) {
                Ok(())
            } else {
                Err("absent")
            }
        });

        // A policy change applies live: b2 stops getting our routes,
        // and neither session restarts.
        assert_eq!(sessions(&speaker, "10.88.0.2").await, 1);
        assert_eq!(sessions(&speaker, "10.88.0.3").await, 1);
        let mut quiet = peer("10.88.0.2", 65002);
        quiet.options.export = ExportMode::None;
        speaker.update_peer(quiet).await?;
        wait_until(T, "b2 to lose 10.231.0.0/24 by policy", || {
            if b2.has_route("10.231.0.0/24").unwrap_or(true) {
                Err("present")
            } else {
                Ok(())
            }
        });
        assert!(b3.has_route("10.231.0.0/24")?);
        assert_eq!(
            sessions(&speaker, "10.88.0.2").await,
            1,
            "policy change restarted b2"
        );
        assert_eq!(
            sessions(&speaker, "10.88.0.3").await,
            1,
            "policy change restarted b3"
        );
        assert!(
            !b2.birdc("show protocols all speaker")?
                .contains("Last error")
        );

        // A session setting (hold time) restarts that session only: it
        // comes back with the new hold time, and b2's session is untouched.
        let mut slow = peer("10.88.0.3", 65003);
        slow.options.hold_time = 30;
        speaker.update_peer(slow).await?;
        let hold_of_b3 = async || {
            let status = speaker.status().await.ok()?;
            let s3 = status
                .into_iter()
                .find(|s| s.address.to_string() == "10.88.0.3")?;
            (s3.state == State::Established).then_some(s3.capabilities?.hold_time)
        };
        let restarted = tokio::time::timeout(T, async {
            loop {
                if hold_of_b3().await == Some(30) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        assert!(
            restarted.is_ok(),
            "b3's session did not come back with hold time 30"
        );
        // BIRD agrees: its session now runs with hold time 30.
        let b3_all = b3.birdc("show protocols all speaker")?;
        assert!(b3_all.contains("/30"), "{b3_all}");
        assert_eq!(
            sessions(&speaker, "10.88.0.2").await,
            1,
            "b3's change restarted b2"
        );

        // Removing b2: Cease to it, its paths leave the Loc-RIB.
        speaker.remove_peer("10.88.0.2".parse()?).await?;
        next_hops_become(&mut rx, "10.230.0.0/24", &["10.88.0.3"]).await;
        wait_until(T, "b2 to see the administrative shutdown", || {
            let all = b2.birdc("show protocols all speaker").unwrap_or_default();
            if all.contains("Administrative shutdown") {
                Ok(())
            } else {
                Err(all)
            }
        });
        assert_eq!(speaker.status().await?.len(), 1);
        speaker.shutdown(false).await?;
        anyhow::Ok(())
    })
}

/// A stopped speaker releases its listening port at once, so the node
/// agent can start a new one on the same port (a change of its AS or
/// router ID): before, the port stayed bound until a connection arrived.
#[tokio::test]
async fn a_stopped_speaker_frees_its_port() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let first = Speaker::start(common::speaker_config("10.0.0.1", 65001, &listen, true))?;
    first.shutdown(true).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let second = loop {
        match Speaker::start(common::speaker_config("10.0.0.1", 65002, &listen, true)) {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() > deadline => {
                anyhow::bail!("port {port} still bound 2 s after shutdown: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    };
    second.shutdown(false).await?;
    Ok(())
}

/// A graceful stop with many established sessions ends promptly: each
/// session reports its last state changes to the core while the core waits
/// for it to end, more than the core's event queue holds.
#[tokio::test]
async fn a_speaker_with_many_sessions_stops_promptly() -> anyhow::Result<()> {
    const PEERS: u8 = 8;
    let free_port = || -> anyhow::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    };
    let hub = Speaker::start(common::speaker_config(
        "10.0.0.1",
        65001,
        &format!("127.0.0.1:{}", free_port()?),
        false,
    ))?;
    let mut spokes = Vec::new();
    for i in 0..PEERS {
        let address = format!("127.0.0.{}", i + 2);
        let port = free_port()?;
        let spoke = Speaker::start(common::speaker_config(
            &format!("10.0.1.{}", i + 2),
            65100 + u32::from(i),
            &format!("{address}:{port}"),
            false,
        ))?;
        let mut back = peer("127.0.0.1", 65001);
        back.options.passive = true;
        spoke.add_peer(back).await?;
        let mut out = peer(&address, 65100 + u32::from(i));
        out.port = port;
        hub.add_peer(out).await?;
        spokes.push(spoke);
    }
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let status = hub.status().await?;
        if status.iter().filter(|s| s.established_count > 0).count() == usize::from(PEERS) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "sessions not up: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(Duration::from_secs(3), hub.shutdown(true))
        .await
        .map_err(|_| anyhow::anyhow!("the hub took over 3 s to stop"))??;
    for spoke in spokes {
        spoke.shutdown(false).await?;
    }
    Ok(())
}

/// Refused peer changes say what was wrong, typed.
#[tokio::test]
async fn peer_changes_are_refused_with_typed_errors() -> anyhow::Result<()> {
    let mut cfg = common::speaker_config("10.0.0.1", 65001, "127.0.0.1:0", false);
    cfg.listen.clear();
    let speaker = Speaker::start(cfg)?;
    let mut p = peer("127.0.0.9", 65009);
    p.options.passive = true;
    let addr = p.address;
    speaker.add_peer(p.clone()).await?;
    let again = speaker.add_peer(p).await;
    assert!(
        matches!(again, Err(SpeakerError::Peer(PeerError::Exists(a))) if a == addr),
        "{again:?}"
    );
    let other: IpAddr = "127.0.0.10".parse()?;
    let update = speaker.update_peer(peer("127.0.0.10", 65010)).await;
    assert!(
        matches!(update, Err(SpeakerError::Peer(PeerError::Unknown(a))) if a == other),
        "{update:?}"
    );
    speaker.remove_peer(addr).await?;
    let removed = speaker.remove_peer(addr).await;
    assert!(
        matches!(removed, Err(SpeakerError::Peer(PeerError::Unknown(a))) if a == addr),
        "{removed:?}"
    );
    assert_eq!(
        removed.unwrap_err().to_string(),
        "no peer 127.0.0.9",
        "the message names the address"
    );
    speaker.shutdown(false).await?;
    Ok(())
}
