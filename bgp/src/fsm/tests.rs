//! Transition tests: each drives the machine with events and a fake clock
//! and checks the actions and the state, as RFC 4271 §8.2.2 lays them out.

use std::time::{Duration, Instant};

use super::collision::{Initiator, Keep, resolve, survivor};
use super::*;
use crate::wire::{Notification, Open};

const LOCAL_ID: [u8; 4] = [10, 0, 0, 1];
const PEER_ID: [u8; 4] = [10, 0, 0, 2];

fn config() -> FsmConfig {
    FsmConfig {
        local_asn: 64512,
        peer_asn: Some(64513),
        router_id: LOCAL_ID.into(),
        passive: false,
        capabilities: Vec::new(),
        timers: Timers::default(),
    }
}

fn peer_open(hold_time: u16) -> Open {
    Open {
        version: 4,
        asn: 64513,
        hold_time,
        router_id: PEER_ID.into(),
        capabilities: Vec::new(),
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Drive to Established; returns the machine and the time it got there.
fn established(cfg: FsmConfig, t0: Instant) -> Fsm {
    let mut fsm = Fsm::new(cfg);
    fsm.handle(Event::ManualStart, t0);
    fsm.handle(Event::TcpCrAcked, t0);
    fsm.handle(Event::BgpOpen(peer_open(90)), t0);
    let out = fsm.handle(Event::KeepAliveMsg, t0);
    assert!(matches!(out[..], [Action::Established { .. }]), "{out:?}");
    fsm
}

fn sent_notification(out: &[Action]) -> Option<(u8, u8)> {
    out.iter().find_map(|a| match a {
        Action::SendNotification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

#[test]
fn active_start_connects_then_opens_then_establishes() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    assert_eq!(fsm.handle(Event::ManualStart, t), [Action::Connect]);
    assert_eq!(fsm.state(), State::Connect);
    let out = fsm.handle(Event::TcpCrAcked, t);
    assert!(matches!(&out[..], [Action::SendOpen(o)] if o.asn == 64512 && o.hold_time == 90));
    assert_eq!(fsm.state(), State::OpenSent);
    assert_eq!(
        fsm.handle(Event::BgpOpen(peer_open(30)), t),
        [Action::SendKeepalive]
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
    assert_eq!(fsm.hold_time(), 30, "the smaller hold time wins (§4.2)");
    let out = fsm.handle(Event::KeepAliveMsg, t);
    assert_eq!(
        out,
        [Action::Established {
            peer_open: peer_open(30),
            hold_time: 30,
            keepalive: secs(10)
        }]
    );
    assert_eq!(fsm.state(), State::Established);
}

#[test]
fn passive_peer_waits_in_active_and_never_connects() {
    let t = Instant::now();
    let mut fsm = Fsm::new(FsmConfig {
        passive: true,
        ..config()
    });
    assert!(fsm.handle(Event::ManualStart, t).is_empty());
    assert_eq!(fsm.state(), State::Active);
    assert_eq!(
        fsm.next_deadline(),
        None,
        "no ConnectRetry for a passive peer"
    );
    assert!(fsm.tick(t + secs(600)).is_empty());
    let out = fsm.handle(Event::TcpConnectionConfirmed, t);
    assert!(matches!(&out[..], [Action::SendOpen(_)]));
    // A failed connection leaves it listening, still without connecting.
    assert!(fsm.handle(Event::TcpConnectionFails, t).is_empty());
    assert_eq!(fsm.state(), State::Active);
    assert_eq!(fsm.next_deadline(), None);
}

#[test]
fn connect_retry_backs_off_between_failed_attempts() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    // Attempt fails: wait 5 s, then 10 s, then 20 s...
    let mut now = t;
    let mut waits = Vec::new();
    for _ in 0..4 {
        fsm.handle(Event::TcpConnectionFails, now);
        assert_eq!(fsm.state(), State::Active);
        let at = fsm.next_deadline().expect("retry scheduled");
        waits.push(at - now);
        now = at;
        assert_eq!(fsm.tick(now), [Action::Connect]);
        assert_eq!(fsm.state(), State::Connect);
    }
    assert_eq!(waits, [secs(5), secs(10), secs(20), secs(40)]);
    // A connection that comes up resets the backoff.
    fsm.handle(Event::TcpCrAcked, now);
    fsm.handle(Event::TcpConnectionFails, now);
    assert_eq!(fsm.next_deadline(), Some(now + secs(5)));
}

#[test]
fn connect_retry_expiry_in_connect_tries_again() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    assert_eq!(fsm.tick(t + secs(5)), [Action::Connect]);
    assert_eq!(fsm.state(), State::Connect);
}

#[test]
fn incoming_connection_refused_in_idle() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    assert_eq!(
        fsm.handle(Event::TcpConnectionConfirmed, t),
        [Action::DropConnection]
    );
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn hold_timer_expiry_sends_4_0_and_reports_down() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    // Keepalives from the peer keep it up.
    fsm.handle(Event::KeepAliveMsg, t + secs(80));
    assert!(
        fsm.tick(t + secs(100))
            .iter()
            .all(|a| *a == Action::SendKeepalive)
    );
    assert_eq!(fsm.state(), State::Established);
    // Silence for the hold time: down.
    let out = fsm.tick(t + secs(80 + 90));
    assert_eq!(sent_notification(&out), Some((4, 0)));
    assert!(out.contains(&Action::DropConnection));
    assert!(out.contains(&Action::Down(DownReason::HoldTimerExpired)));
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn updates_also_restart_the_hold_timer() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    fsm.handle(Event::UpdateMsg, t + secs(60));
    let out = fsm.tick(t + secs(120));
    assert!(!out.iter().any(|a| matches!(a, Action::Down(_))), "{out:?}");
}

#[test]
fn keepalives_every_third_of_hold_time() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    assert_eq!(fsm.next_deadline(), Some(t + secs(30)));
    assert_eq!(fsm.tick(t + secs(30)), [Action::SendKeepalive]);
    assert_eq!(fsm.next_deadline(), Some(t + secs(60)));
}

#[test]
fn configured_keepalive_below_a_third_is_used() {
    let t = Instant::now();
    let mut cfg = config();
    cfg.timers.keepalive = Some(secs(3));
    let fsm = established(cfg, t);
    assert_eq!(fsm.next_deadline(), Some(t + secs(3)));
}

#[test]
fn zero_hold_time_means_no_keepalives_and_no_hold_timer() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    fsm.handle(Event::BgpOpen(peer_open(0)), t);
    fsm.handle(Event::KeepAliveMsg, t);
    assert_eq!(fsm.state(), State::Established);
    assert_eq!(fsm.next_deadline(), None);
}

#[test]
fn open_checks_peer_as_identifier_and_hold_time() {
    let t = Instant::now();
    let cases = [
        (
            Open {
                asn: 65000,
                ..peer_open(90)
            },
            (2, 2),
        ),
        (
            Open {
                router_id: [0, 0, 0, 0].into(),
                ..peer_open(90)
            },
            (2, 3),
        ),
        (peer_open(2), (2, 6)),
        (peer_open(1), (2, 6)),
    ];
    for (open, expected) in cases {
        let mut fsm = Fsm::new(config());
        fsm.handle(Event::ManualStart, t);
        fsm.handle(Event::TcpCrAcked, t);
        let out = fsm.handle(Event::BgpOpen(open.clone()), t);
        assert_eq!(sent_notification(&out), Some(expected), "{open:?}");
        assert!(out.contains(&Action::DropConnection));
        assert_eq!(fsm.state(), State::Idle);
    }
}

#[test]
fn same_identifier_is_an_error_only_inside_one_as() {
    let t = Instant::now();
    // iBGP peer with our identifier: 2/3 (RFC 6286 §2.2).
    let mut ibgp = Fsm::new(FsmConfig {
        peer_asn: Some(64512),
        ..config()
    });
    ibgp.handle(Event::ManualStart, t);
    ibgp.handle(Event::TcpCrAcked, t);
    let open = Open {
        asn: 64512,
        router_id: LOCAL_ID.into(),
        ..peer_open(90)
    };
    assert_eq!(
        sent_notification(&ibgp.handle(Event::BgpOpen(open), t)),
        Some((2, 3))
    );
    // eBGP peer with our identifier: allowed.
    let mut ebgp = Fsm::new(config());
    ebgp.handle(Event::ManualStart, t);
    ebgp.handle(Event::TcpCrAcked, t);
    let open = Open {
        router_id: LOCAL_ID.into(),
        ..peer_open(90)
    };
    assert_eq!(
        ebgp.handle(Event::BgpOpen(open), t),
        [Action::SendKeepalive]
    );
}

#[test]
fn any_peer_as_accepted_when_none_configured() {
    let t = Instant::now();
    let mut fsm = Fsm::new(FsmConfig {
        peer_asn: None,
        ..config()
    });
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    let out = fsm.handle(
        Event::BgpOpen(Open {
            asn: 4200000001,
            ..peer_open(90)
        }),
        t,
    );
    assert_eq!(out, [Action::SendKeepalive]);
}

#[test]
fn unexpected_messages_are_fsm_errors_with_the_state_subcode() {
    let t = Instant::now();
    // RFC 6608: 5/1 in OpenSent, 5/2 in OpenConfirm, 5/3 in Established.
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert_eq!(
        sent_notification(&fsm.handle(Event::KeepAliveMsg, t)),
        Some((5, 1))
    );

    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    fsm.handle(Event::BgpOpen(peer_open(90)), t);
    assert_eq!(
        sent_notification(&fsm.handle(Event::UpdateMsg, t)),
        Some((5, 2))
    );

    let mut fsm = established(config(), t);
    let out = fsm.handle(Event::BgpOpen(peer_open(90)), t);
    assert_eq!(sent_notification(&out), Some((5, 3)));
    assert!(matches!(
        out.last(),
        Some(Action::Down(DownReason::LocalNotification(_)))
    ));
}

#[test]
fn manual_stop_sends_shutdown_communication_or_nothing() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let out = fsm.handle(
        Event::ManualStop {
            notify: Some("maintenance".into()),
        },
        t,
    );
    let Action::SendNotification(n) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!((n.code, n.subcode), (6, 2));
    assert_eq!(n.data, b"\x0bmaintenance", "RFC 9003: length octet + UTF-8");
    assert_eq!(
        out[1..],
        [Action::DropConnection, Action::Down(DownReason::Stopped)]
    );
    assert_eq!(fsm.state(), State::Idle);
    assert_eq!(
        fsm.next_deadline(),
        None,
        "a stopped session does not restart"
    );

    // A planned restart (graceful restart): no Cease at all.
    let mut fsm = established(config(), t);
    let out = fsm.handle(Event::ManualStop { notify: None }, t);
    assert_eq!(
        out,
        [Action::DropConnection, Action::Down(DownReason::Stopped)]
    );
}

#[test]
fn shutdown_communication_is_cut_to_255_octets_on_a_char_boundary() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let long = "é".repeat(200); // 400 octets
    let out = fsm.handle(Event::ManualStop { notify: Some(long) }, t);
    let Action::SendNotification(n) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(n.data[0], 254);
    assert_eq!(n.data.len(), 255);
    assert!(std::str::from_utf8(&n.data[1..]).is_ok());
}

#[test]
fn peer_notification_takes_the_session_down_and_it_restarts_after_idle_hold() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let cease = Notification {
        code: 6,
        subcode: 4,
        data: Vec::new(),
    };
    let out = fsm.handle(Event::NotifMsg(cease.clone()), t);
    assert_eq!(
        out,
        [
            Action::DropConnection,
            Action::Down(DownReason::PeerNotification(cease))
        ]
    );
    assert_eq!(fsm.state(), State::Idle);
    // Idle hold 1 s, then it connects again by itself.
    assert_eq!(fsm.next_deadline(), Some(t + secs(1)));
    assert_eq!(fsm.tick(t + secs(1)), [Action::Connect]);
    assert_eq!(fsm.state(), State::Connect);
}

#[test]
fn a_refused_connection_is_retried_sooner_then_backs_off_to_the_usual() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    // The peer refuses (not listening yet): 100 ms, 200 ms, ... until the
    // wait reaches the ConnectRetry time, then the usual 5 s, 10 s...
    let mut now = t;
    let mut waits = Vec::new();
    for _ in 0..8 {
        assert!(fsm.handle(Event::TcpConnectionRefused, now).is_empty());
        assert_eq!(fsm.state(), State::Active);
        let at = fsm.next_deadline().expect("retry scheduled");
        waits.push(at - now);
        now = at;
        assert_eq!(fsm.tick(now), [Action::Connect]);
    }
    let ms = Duration::from_millis;
    assert_eq!(
        waits,
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            secs(5),
            secs(10)
        ]
    );
    // A connection the peer closes before its OPEN (its speaker does not
    // know us yet) counts as a refusal too; the peer's OPEN resets both.
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert_eq!(fsm.state(), State::OpenSent);
    fsm.handle(Event::TcpConnectionRefused, t);
    assert_eq!(fsm.next_deadline(), Some(t + ms(100)));
    fsm.tick(t + ms(100));
    fsm.handle(Event::TcpConnectionRefused, t + ms(100));
    assert_eq!(fsm.next_deadline(), Some(t + ms(300)));
    fsm.tick(t + ms(300));
    fsm.handle(Event::TcpCrAcked, t + ms(300));
    fsm.handle(Event::BgpOpen(peer_open(90)), t + ms(300));
    fsm.handle(Event::TcpConnectionFails, t + ms(400));
    fsm.tick(t + ms(400) + secs(5));
    fsm.handle(Event::TcpConnectionRefused, t + secs(6));
    assert_eq!(fsm.next_deadline(), Some(t + secs(6) + ms(100)));
}

#[test]
fn a_passive_peer_never_retries_after_a_refusal() {
    let t = Instant::now();
    let mut fsm = Fsm::new(FsmConfig {
        passive: true,
        ..config()
    });
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpConnectionConfirmed, t);
    assert!(fsm.handle(Event::TcpConnectionRefused, t).is_empty());
    assert_eq!(fsm.state(), State::Active);
    assert_eq!(fsm.next_deadline(), None);
}

#[test]
fn flapping_sessions_back_off_and_stable_ones_reset() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let mut now = t;
    let mut holds = Vec::new();
    for _ in 0..3 {
        fsm.handle(Event::TcpConnectionFails, now);
        let at = fsm.next_deadline().unwrap();
        holds.push(at - now);
        now = at;
        fsm.tick(now);
        fsm.handle(Event::TcpCrAcked, now);
        fsm.handle(Event::BgpOpen(peer_open(0)), now);
        fsm.handle(Event::KeepAliveMsg, now);
    }
    assert_eq!(holds, [secs(1), secs(2), secs(4)]);
    // Up for longer than idle_hold_max: the next failure waits 1 s again.
    now += secs(61);
    fsm.handle(Event::TcpConnectionFails, now);
    assert_eq!(fsm.next_deadline(), Some(now + secs(1)));
}

#[test]
fn update_error_sends_its_notification() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let n = Notification {
        code: 3,
        subcode: 1,
        data: Vec::new(),
    };
    let out = fsm.handle(Event::UpdateMsgErr(n.clone()), t);
    assert_eq!(out[0], Action::SendNotification(n.clone()));
    assert_eq!(
        out.last(),
        Some(&Action::Down(DownReason::LocalNotification(n)))
    );
}

#[test]
fn delay_open_waits_for_the_peer_and_answers_its_open() {
    let t = Instant::now();
    let mut cfg = config();
    cfg.timers.delay_open = Some(secs(2));
    // Peer opens first: we answer with OPEN + KEEPALIVE (event 20).
    let mut fsm = Fsm::new(cfg.clone());
    fsm.handle(Event::ManualStart, t);
    assert!(fsm.handle(Event::TcpCrAcked, t).is_empty());
    assert_eq!(fsm.state(), State::Connect);
    let out = fsm.handle(Event::BgpOpen(peer_open(90)), t + secs(1));
    assert!(
        matches!(&out[..], [Action::SendOpen(_), Action::SendKeepalive]),
        "{out:?}"
    );
    assert_eq!(fsm.state(), State::OpenConfirm);
    // Peer silent: our OPEN goes when DelayOpen expires.
    let mut fsm = Fsm::new(cfg);
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert!(matches!(&fsm.tick(t + secs(2))[..], [Action::SendOpen(_)]));
    assert_eq!(fsm.state(), State::OpenSent);
}

#[test]
fn open_sent_waits_four_minutes_for_the_peer() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert!(fsm.tick(t + secs(239)).is_empty());
    assert_eq!(sent_notification(&fsm.tick(t + secs(240))), Some((4, 0)));
}

#[test]
fn connection_lost_in_open_sent_returns_to_active() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert!(fsm.handle(Event::TcpConnectionFails, t).is_empty());
    assert_eq!(fsm.state(), State::Active);
}

#[test]
fn collision_keeps_the_connection_opened_by_the_higher_identifier() {
    let low = [10, 0, 0, 1].into();
    let high = [10, 0, 0, 2].into();
    assert_eq!(survivor(high, low), Initiator::Local);
    assert_eq!(survivor(low, high), Initiator::Remote);
    // We are lower: our outgoing connection yields to the peer's.
    assert_eq!(
        resolve(low, high, State::OpenSent, Initiator::Local),
        Some(Keep::New)
    );
    assert_eq!(
        resolve(low, high, State::OpenConfirm, Initiator::Remote),
        Some(Keep::Existing)
    );
    // We are higher: our outgoing connection stays.
    assert_eq!(
        resolve(high, low, State::OpenConfirm, Initiator::Local),
        Some(Keep::Existing)
    );
    // Established always wins; no session yet means no collision.
    assert_eq!(
        resolve(low, high, State::Established, Initiator::Local),
        Some(Keep::Existing)
    );
    assert_eq!(resolve(low, high, State::Connect, Initiator::Local), None);
}

#[test]
fn collision_dump_sends_cease_7() {
    let t = Instant::now();
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    let out = fsm.handle(Event::OpenCollisionDump, t);
    assert_eq!(sent_notification(&out), Some((6, 7)));
    assert_eq!(fsm.state(), State::Idle);
}

#[test]
fn adopting_a_new_connection_starts_over_and_reports_the_old_session_down() {
    let t = Instant::now();
    let mut fsm = established(config(), t);
    let out = fsm.adopt_connection(t);
    assert!(
        matches!(
            &out[..],
            [Action::Down(DownReason::Collision), Action::SendOpen(_)]
        ),
        "{out:?}"
    );
    assert_eq!(fsm.state(), State::OpenSent);
    assert_eq!(
        fsm.handle(Event::BgpOpen(peer_open(90)), t),
        [Action::SendKeepalive]
    );
    // From OpenSent: no Down, just a new OPEN on the new connection.
    let mut fsm = Fsm::new(config());
    fsm.handle(Event::ManualStart, t);
    fsm.handle(Event::TcpCrAcked, t);
    assert!(matches!(
        &fsm.adopt_connection(t)[..],
        [Action::SendOpen(_)]
    ));
}
