//! BGP passwords from secrets: a BGPPeer's `password.secretKeyRef` is read
//! from the secrets directory (`<dir>/<name>/<key>`). While the file is
//! missing the peer is held back and /status names the BGPPeer and the
//! secret; once written, the TCP-MD5 session with BIRD comes up; a changed
//! file is read again and applied (a wrong password takes the session
//! down, the right one brings it back).

mod common;

use std::time::Duration;

use anyhow::Result;
use common::{agent, peer};
use manul_status::State;
use manul_tests::node::RES;
use manul_tests::{Bird, Etcd, Lab, Need, require, scratch, wait_until};

#[test]
fn a_bgppeer_password_comes_from_the_secrets_directory() -> Result<()> {
    require!(
        Need::Root,
        Need::Bin("etcd"),
        Need::Bin("bird"),
        Need::Bin("birdc")
    );
    let lab = Lab::builder().hosts(1).tor(true).build()?;
    let (h1, tor) = (lab.host(1), lab.tor());
    let etcd = Etcd::start_in(&tor.ns, tor.ipv4_ip())?;
    let endpoint = format!("http://{}:2379", tor.ipv4);
    etcd.put(
        &format!("{RES}/bgppeers/tor"),
        &format!(
            r#"{{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{{"name":"tor","creationTimestamp":null}},"spec":{{"peerIP":"{}","asNumber":65000,"password":{{"secretKeyRef":{{"name":"bgp-passwords","key":"tor"}}}}}}}}"#,
            tor.ipv4
        ),
    )?;
    let bird = Bird::builder(&tor.ns).router_id(tor.ipv4).start(&format!(
        "protocol bgp host1 {{ local {} as 65000; neighbor {} as 64512; password \"s3cret\"; \
         connect retry time 1; error wait time 1, 2; ipv4 {{ import all; export none; }}; }}\n",
        tor.ipv4, h1.ipv4
    ))?;
    let secrets = scratch::run().tempdir("secrets")?;
    let logs = scratch::run().tempdir("password-agents")?;
    let dir = secrets.path().to_str().expect("utf-8 path");
    let _agent = agent(h1, &endpoint, logs.path(), &[("MANUL_SECRETS_DIR", dir)])?;
    let tor_ip = tor.ipv4_ip();

    // No secret yet: held back, with a reason naming the BGPPeer and the secret.
    wait_until(
        Duration::from_secs(30),
        "the peer held back with its reason",
        || {
            let p = peer(&h1.ns, tor_ip)?;
            let info = p.info.clone().unwrap_or_default();
            if p.state == State::Idle
                && info.contains("BGPPeer tor")
                && info.contains(r#"secret "bgp-passwords" key "tor""#)
            {
                Ok(())
            } else {
                Err(format!("{p:?}"))
            }
        },
    );
    let file = secrets.path().join("bgp-passwords").join("tor");
    std::fs::create_dir_all(file.parent().expect("parent"))?;
    std::fs::write(&file, "s3cret")?;
    bird.wait_established("host1", Duration::from_secs(30))?;

    // A wrong password: the session restarts with it and stays down.
    std::fs::write(&file, "wrong")?;
    wait_until(
        Duration::from_secs(30),
        "the session down with the wrong password",
        || {
            let p = peer(&h1.ns, tor_ip)?;
            if p.state != State::Established {
                Ok(())
            } else {
                Err(format!("{p:?}"))
            }
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    let p = peer(&h1.ns, tor_ip).map_err(anyhow::Error::msg)?;
    assert_ne!(
        p.state,
        State::Established,
        "up with a wrong password: {p:?}"
    );
    // The right one again: back up.
    std::fs::write(&file, "s3cret")?;
    wait_until(Duration::from_secs(30), "the session back up", || {
        let p = peer(&h1.ns, tor_ip)?;
        if p.state == State::Established {
            Ok(())
        } else {
            Err(format!("{p:?}"))
        }
    });
    Ok(())
}
