//! Session sockets between two network namespaces: TCP-MD5 (RFC 2385) lets
//! only the right key through, per address and per listen range; GTSM
//! (RFC 5082) drops segments that crossed too many hops.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use manul_bgp::session::socket::{SocketOptions, connect, listen};
use manul_tests::{Need, Netns, require};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

const A: &str = "10.77.0.1";
const B: &str = "10.77.0.2";

fn pair() -> anyhow::Result<(Netns, Netns)> {
    let a = Netns::new("a")?;
    let b = Netns::new("b")?;
    a.veth("eth0", &b, "eth0")?;
    a.add_addr("eth0", &format!("{A}/24"))?;
    b.add_addr("eth0", &format!("{B}/24"))?;
    Ok((a, b))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Listen in `b` with `server`, connect from `a` with `client`; true if the
/// connection carried a byte both ways within two seconds.
fn connects(a: &Netns, b: &Netns, server: SocketOptions, client: SocketOptions) -> bool {
    let rt = Runtime::new().unwrap();
    let addr = SocketAddr::new(ip(B), 1179);
    let listener = b.run(|| {
        let _guard = rt.enter();
        listen(addr, &server).unwrap()
    });
    let accept = rt.spawn(async move {
        let (mut s, _) = listener.accept().await?;
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await?;
        s.write_all(&byte).await?;
        std::io::Result::Ok(())
    });
    let client_side = a.run(|| {
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(2), async {
                let mut s = connect(addr, Some(ip(A)), &client).await?;
                s.write_all(b"x").await?;
                let mut byte = [0u8; 1];
                s.read_exact(&mut byte).await?;
                std::io::Result::Ok(byte == *b"x")
            })
            .await
        })
    });
    accept.abort();
    matches!(client_side, Ok(Ok(true)))
}

fn md5(peer: &str, prefix_len: Option<u8>, key: &str) -> SocketOptions {
    SocketOptions {
        md5: vec![(ip(peer), prefix_len, key.as_bytes().to_vec())],
        ..Default::default()
    }
}

#[test]
fn md5_right_key_connects_wrong_or_missing_key_never_does() -> anyhow::Result<()> {
    require!(Need::Root);
    let (a, b) = pair()?;
    assert!(connects(
        &a,
        &b,
        md5(A, None, "s3cret"),
        md5(B, None, "s3cret")
    ));
    assert!(!connects(
        &a,
        &b,
        md5(A, None, "s3cret"),
        md5(B, None, "wrong")
    ));
    assert!(!connects(
        &a,
        &b,
        md5(A, None, "s3cret"),
        SocketOptions::default()
    ));
    assert!(!connects(
        &a,
        &b,
        SocketOptions::default(),
        md5(B, None, "s3cret")
    ));
    // The failures above are the keys', not the fixture's.
    assert!(connects(
        &a,
        &b,
        md5(A, None, "again"),
        md5(B, None, "again")
    ));
    Ok(())
}

#[test]
fn md5_key_for_a_listen_range() -> anyhow::Result<()> {
    require!(Need::Root);
    let (a, b) = pair()?;
    assert!(connects(
        &a,
        &b,
        md5("10.77.0.0", Some(24), "range"),
        md5(B, None, "range")
    ));
    assert!(!connects(
        &a,
        &b,
        md5("10.77.0.0", Some(24), "range"),
        md5(B, None, "other")
    ));
    // A range that does not cover the client: unsigned SYNs are accepted,
    // signed ones are not (the listener has no key for them).
    assert!(connects(
        &a,
        &b,
        md5("10.99.0.0", Some(24), "range"),
        SocketOptions::default()
    ));
    Ok(())
}

#[test]
fn md5_key_longer_than_linux_allows_is_refused_clearly() {
    let sock = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = manul_bgp::session::socket::set_md5_key(&sock, ip("127.0.0.1"), None, &[b'k'; 81])
        .unwrap_err();
    assert!(err.to_string().contains("81 octets"), "{err}");
}

#[test]
fn gtsm_accepts_ttl_255_and_drops_lower() -> anyhow::Result<()> {
    require!(Need::Root);
    let (a, b) = pair()?;
    let gtsm = SocketOptions {
        gtsm_hops: Some(1),
        ..Default::default()
    };
    assert!(connects(&a, &b, gtsm.clone(), gtsm.clone()));
    let ttl64 = SocketOptions {
        ttl: Some(64),
        ..Default::default()
    };
    assert!(!connects(&a, &b, gtsm.clone(), ttl64.clone()));
    // Without GTSM on the listener, TTL 64 is fine.
    assert!(connects(&a, &b, SocketOptions::default(), ttl64));
    Ok(())
}

/// A peer's TCP-MD5 key goes only on listeners of its family: Linux
/// refuses an IPv4 key on an IPv6-only listener (EINVAL), which every
/// start logged as a warning before `serves` picked the listeners.
#[test]
fn md5_key_only_on_listeners_of_the_peers_family() -> anyhow::Result<()> {
    require!(Need::Root);
    let ns = Netns::new("l")?;
    ns.add_addr("lo", "fd00:78::1/128")?;
    let rt = Runtime::new()?;
    let (v4, v6) = ns.run(|| {
        let _guard = rt.enter();
        anyhow::Ok((
            listen("127.0.0.1:1179".parse()?, &SocketOptions::default())?,
            listen("[fd00:78::1]:1179".parse()?, &SocketOptions::default())?,
        ))
    })?;
    let peer4 = ip("10.77.0.9");
    let peer6 = ip("fd00:77::9");
    assert!(manul_bgp::session::socket::serves(&v4, peer4));
    assert!(!manul_bgp::session::socket::serves(&v6, peer4));
    assert!(manul_bgp::session::socket::serves(&v6, peer6));
    assert!(!manul_bgp::session::socket::serves(&v4, peer6));
    use manul_bgp::session::socket::set_md5_key;
    set_md5_key(&v4, peer4, None, b"secret")?;
    set_md5_key(&v6, peer6, None, b"secret")?;
    // What the driver did before: the other family's listener refuses.
    let e = set_md5_key(&v6, peer4, None, b"secret").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e}");
    Ok(())
}
