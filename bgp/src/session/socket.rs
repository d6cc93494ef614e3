//! BGP sockets: listen and connect with the options sessions need.
//!
//! - TCP-MD5 signatures (RFC 2385) per peer address, or per address range
//!   for a listener that accepts dynamic peers (Linux `TCP_MD5SIG_EXT` with
//!   a prefix length).
//! - GTSM (RFC 5082): send with TTL 255 and accept only segments that
//!   arrive with TTL >= 256 - hops (`IP_MINTTL` / `IPV6_MINHOPCOUNT`).
//! - eBGP multihop: an outgoing TTL other than the default 1-hop.
//! - A source address for outgoing connections.

use std::io;
use std::mem::size_of;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// The longest TCP-MD5 key Linux takes (`TCP_MD5SIG_MAXKEYLEN`).
pub const MD5_MAX_KEY_LEN: usize = 80;

/// `struct tcp_md5sig` from linux/tcp.h (the libc crate does not carry it).
#[repr(C)]
struct TcpMd5Sig {
    addr: [u8; 128], // struct __kernel_sockaddr_storage
    flags: u8,
    prefix_len: u8,
    key_len: u16,
    ifindex: i32,
    key: [u8; MD5_MAX_KEY_LEN],
}

const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;

/// Install (or, with an empty key, remove) the TCP-MD5 key for `peer`, or
/// for every address in `peer/prefix_len` when a prefix length is given.
/// On a listener the key applies to connections it accepts from there.
pub fn set_md5_key(
    socket: &impl AsRawFd,
    peer: IpAddr,
    prefix_len: Option<u8>,
    key: &[u8],
) -> io::Result<()> {
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP-MD5 key is {} octets; at most {MD5_MAX_KEY_LEN}",
                key.len()
            ),
        ));
    }
    let mut sig = TcpMd5Sig {
        addr: [0; 128],
        flags: 0,
        prefix_len: 0,
        key_len: key.len() as u16,
        ifindex: 0,
        key: [0; MD5_MAX_KEY_LEN],
    };
    sig.key[..key.len()].copy_from_slice(key);
    let sa = SockAddr::from(SocketAddr::new(peer, 0));
    // SAFETY: `sa` points at a valid sockaddr of `sa.len()` octets, at most
    // the size of a sockaddr_storage (128), which `sig.addr` has room for.
    let raw = unsafe { std::slice::from_raw_parts(sa.as_ptr().cast::<u8>(), sa.len() as usize) };
    sig.addr[..raw.len()].copy_from_slice(raw);
    let option = match prefix_len {
        Some(len) => {
            sig.flags = TCP_MD5SIG_FLAG_PREFIX;
            sig.prefix_len = len;
            libc::TCP_MD5SIG_EXT
        }
        None => libc::TCP_MD5SIG,
    };
    setsockopt(socket, libc::IPPROTO_TCP, option, &sig)
}

/// Whether `listener` accepts connections from `peer`: listeners of the
/// same family only (IPv6 listeners are IPv6-only, see [`listen`]), so a
/// TCP-MD5 key goes only where it can apply.
pub fn serves(listener: &TcpListener, peer: IpAddr) -> bool {
    listener
        .local_addr()
        .is_ok_and(|a| a.is_ipv4() == peer.is_ipv4())
}

/// GTSM (RFC 5082 §3): send with TTL/hop limit 255 and drop what arrives
/// having crossed more than `hops` hops (TTL below 256 - hops).
pub fn set_gtsm(socket: &Socket, family: IpAddr, hops: u8) -> io::Result<()> {
    let min: i32 = 256 - i32::from(hops.max(1));
    match family {
        IpAddr::V4(_) => {
            socket.set_ttl_v4(255)?;
            setsockopt(socket, libc::IPPROTO_IP, libc::IP_MINTTL, &min)
        }
        IpAddr::V6(_) => {
            socket.set_unicast_hops_v6(255)?;
            setsockopt(socket, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &min)
        }
    }
}

/// Outgoing TTL / hop limit (eBGP multihop; 1 for a directly connected eBGP peer).
pub fn set_ttl(socket: &Socket, family: IpAddr, ttl: u8) -> io::Result<()> {
    match family {
        IpAddr::V4(_) => socket.set_ttl_v4(u32::from(ttl)),
        IpAddr::V6(_) => socket.set_unicast_hops_v6(u32::from(ttl)),
    }
}

fn setsockopt<T>(socket: &impl AsRawFd, level: i32, name: i32, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a live, properly sized `T` for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Socket options for one outgoing connection or listener.
#[derive(Debug, Clone, Default)]
pub struct SocketOptions {
    /// TCP-MD5 keys: (peer address, optional prefix length, key).
    pub md5: Vec<(IpAddr, Option<u8>, Vec<u8>)>,
    /// GTSM with this many hops allowed (RFC 5082).
    pub gtsm_hops: Option<u8>,
    /// Outgoing TTL when GTSM is off (eBGP multihop); `None` = system default.
    pub ttl: Option<u8>,
}

fn new_socket(addr: IpAddr) -> io::Result<Socket> {
    let domain = if addr.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(
        domain,
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    Ok(socket)
}

fn apply(socket: &Socket, family: IpAddr, opts: &SocketOptions) -> io::Result<()> {
    for (peer, prefix_len, key) in &opts.md5 {
        set_md5_key(socket, *peer, *prefix_len, key)?;
    }
    match (opts.gtsm_hops, opts.ttl) {
        (Some(hops), _) => set_gtsm(socket, family, hops),
        (None, Some(ttl)) => set_ttl(socket, family, ttl),
        (None, None) => Ok(()),
    }
}

/// Listen on `addr` (port 179 by default in callers) with the given options.
/// IPv6 listeners are IPv6-only, so a v4 and a v6 listener can share a port.
pub fn listen(addr: SocketAddr, opts: &SocketOptions) -> io::Result<TcpListener> {
    let socket = new_socket(addr.ip())?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    apply(&socket, addr.ip(), opts)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Connect to `peer`, from `source` if given, with the given options.
pub async fn connect(
    peer: SocketAddr,
    source: Option<IpAddr>,
    opts: &SocketOptions,
) -> io::Result<TcpStream> {
    let socket = new_socket(peer.ip())?;
    apply(&socket, peer.ip(), opts)?;
    if let Some(src) = source {
        socket.bind(&SocketAddr::new(src, 0).into())?;
    }
    match socket.connect(&peer.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let stream = TcpStream::from_std(socket.into())?;
    stream.writable().await?;
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    Ok(stream)
}
