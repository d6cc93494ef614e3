//! Malformed input from a real session: after an ordinary handshake, a raw
//! socket sends crafted messages to manul-bgpd and the session behaves as
//! RFC 7606 (UPDATE errors) and RFC 4271 §6 (header errors) say, while a
//! second, well-behaved peer is not affected.

mod common;

use std::time::Duration;

use common::Bgpd;
use common::raw::{Raw, update};
use manul_tests::{Lab, Need, Netns, require, wait_until};

const T: Duration = Duration::from_secs(20);

const MANUL_CONF: &str = r#"
router_id = "10.88.0.1"
asn = 65001
listen = ["10.88.0.1:179"]
[[peer]]
address = "10.88.0.2"
asn = 65002
passive = true
[[peer]]
address = "10.88.0.3"
asn = 65003
passive = true
"#;

/// manul's address on the lab link.
const MANUL: &str = "10.88.0.1:179";

/// A raw peer with AS `asn` and identifier `id`: IPv4 unicast, 4-octet AS.
fn raw(ns: &Netns, asn: u32, id: [u8; 4]) -> anyhow::Result<Raw> {
    Raw::establish(ns, MANUL, asn, id, vec![])
}

/// [`raw`], retried while manul holds the peer idle after the previous
/// error (DampPeerOscillations: 1 s, 2 s, 4 s...).
fn reraw(ns: &Netns, asn: u32, id: [u8; 4]) -> anyhow::Result<Raw> {
    Ok(manul_tests::try_wait_until(
        T,
        "manul to accept the peer again",
        || raw(ns, asn, id).map_err(|e| e.to_string()),
    )?)
}

const ORIGIN_IGP: [u8; 4] = [0x40, 1, 1, 0];
/// AS_SEQUENCE [65002], 4-octet.
const AS_PATH: [u8; 9] = [0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xea];
const NEXT_HOP: [u8; 7] = [0x40, 3, 4, 10, 88, 0, 2];

fn attrs(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn nlri(third_octet: u8) -> [u8; 4] {
    [24, 10, 250, third_octet]
}

fn prefix(third_octet: u8) -> String {
    format!("10.250.{third_octet}.0/24")
}

/// `text` without ANSI colour sequences (ESC [ ... m).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn has(manul: &Bgpd, p: &str) -> bool {
    manul.route(p).ok().flatten().is_some()
}

#[test]
fn rfc7606_outcomes_over_a_live_session_and_header_errors_close_it() -> anyhow::Result<()> {
    require!(Need::Root);
    let lab = Lab::builder().hosts(3).build()?;
    let manul = Bgpd::start(&lab.host(1).ns, MANUL_CONF)?;
    let mut bad = raw(&lab.host(2).ns, 65002, [10, 88, 0, 2])?;
    let mut good = raw(&lab.host(3).ns, 65003, [10, 88, 0, 3])?;
    manul.wait_established("10.88.0.2", T)?;

    // A valid announcement installs the route.
    bad.send(&update(
        &attrs(&[&ORIGIN_IGP, &AS_PATH, &NEXT_HOP]),
        &nlri(0),
    ))?;
    wait_until(T, "valid route installed", || {
        if has(&manul, &prefix(0)) {
            Ok(())
        } else {
            Err("absent")
        }
    });

    // Treat-as-withdraw (RFC 7606 §7.1 ORIGIN value, §3 c flags, §3 d
    // missing AS_PATH): the prefix is withdrawn, not installed, and the
    // session stays up.
    bad.send(&update(
        &attrs(&[&[0x40, 1, 1, 7], &AS_PATH, &NEXT_HOP]),
        &nlri(0),
    ))?;
    wait_until(T, "bad ORIGIN withdraws the route", || {
        if has(&manul, &prefix(0)) {
            Err("present")
        } else {
            Ok(())
        }
    });
    bad.send(&update(
        &attrs(&[&[0xc0, 1, 1, 0], &AS_PATH, &NEXT_HOP]),
        &nlri(1),
    ))?;
    bad.send(&update(&attrs(&[&ORIGIN_IGP, &NEXT_HOP]), &nlri(2)))?;
    // Attribute discard (§7.7 AGGREGATOR of the wrong length): route kept.
    bad.send(&update(
        &attrs(&[&ORIGIN_IGP, &AS_PATH, &NEXT_HOP, &[0xc0, 7, 3, 0, 0, 1]]),
        &nlri(3),
    ))?;
    wait_until(T, "route with a discarded attribute installed", || {
        if has(&manul, &prefix(3)) {
            Ok(())
        } else {
            Err("absent")
        }
    });
    assert!(!has(&manul, &prefix(1)), "bad flags must treat-as-withdraw");
    assert!(
        !has(&manul, &prefix(2)),
        "missing AS_PATH must treat-as-withdraw"
    );
    assert_eq!(manul.peer("10.88.0.2")?["state"], "Established");
    // Each is counted per action in the peer's status (what /metrics
    // shows as manul_bgp_malformed_total) and logged at debug with the
    // peer and the attribute.
    assert_eq!(
        manul.peer("10.88.0.2")?["malformed"],
        serde_json::json!({"treat_as_withdraw": 3, "attribute_discard": 1, "session_reset": 0})
    );
    let log = plain(&std::fs::read_to_string(manul.dir.path().join("bgpd.log"))?);
    for (attribute, action) in [
        (1, "treat-as-withdraw"),
        (2, "treat-as-withdraw"),
        (7, "attribute-discard"),
    ] {
        assert!(
            log.lines().any(|l| l.contains("malformed UPDATE")
                && l.contains("peer=10.88.0.2")
                && l.contains(&format!("attribute={attribute}"))
                && l.contains(action)),
            "no debug line for attribute {attribute} ({action}):\n{log}"
        );
    }

    // An unparseable NLRI field resets the session: 3/10 Invalid Network Field.
    bad.send(&update(
        &attrs(&[&ORIGIN_IGP, &AS_PATH, &NEXT_HOP]),
        &[33, 10, 250, 9, 0, 0],
    ))?;
    assert_eq!(bad.notification()?, (3, 10));
    wait_until(T, "the reset counted", || {
        let m = &manul.peer("10.88.0.2").map_err(|e| e.to_string())?["malformed"];
        if m["session_reset"] == 1 && m["treat_as_withdraw"] == 3 {
            Ok(())
        } else {
            Err(m.to_string())
        }
    });

    // Header errors: a bad marker (1/1), a bad length (1/2), garbage.
    let mut bad = reraw(&lab.host(2).ns, 65002, [10, 88, 0, 2])?;
    let mut msg = update(&attrs(&[&ORIGIN_IGP, &AS_PATH, &NEXT_HOP]), &nlri(4));
    msg[3] = 0;
    bad.send(&msg)?;
    assert_eq!(bad.notification()?, (1, 1));
    let mut bad = reraw(&lab.host(2).ns, 65002, [10, 88, 0, 2])?;
    let mut keepalive = vec![0xff; 16];
    keepalive.extend_from_slice(&[0, 20, 4, 0]);
    bad.send(&keepalive)?;
    assert_eq!(bad.notification()?, (1, 2));
    let mut bad = reraw(&lab.host(2).ns, 65002, [10, 88, 0, 2])?;
    bad.send(b"GET / HTTP/1.1\r\nHost: manul\r\n\r\n")?;
    assert_eq!(bad.notification()?.0, 1);

    // The other peer never noticed.
    assert_eq!(manul.peer("10.88.0.3")?["state"], "Established");
    good.send(&update(
        &attrs(&[
            &ORIGIN_IGP,
            &[0x40, 2, 6, 2, 1, 0, 0, 0xfd, 0xeb],
            &[0x40, 3, 4, 10, 88, 0, 3],
        ]),
        &nlri(8),
    ))?;
    wait_until(T, "the good peer's route", || {
        if has(&manul, &prefix(8)) {
            Ok(())
        } else {
            Err("absent")
        }
    });
    assert_eq!(
        manul.peer("10.88.0.3")?["malformed"]["treat_as_withdraw"],
        0
    );
    Ok(())
}
