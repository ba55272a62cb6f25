//! Binding listening sockets, with errors that name the setting responsible.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};

use crate::Error;

const BACKLOG: i32 = 1024;

/// Binds `addr`; "[::]" falls back to 0.0.0.0 on hosts without IPv6.
/// `setting` names the flag/env the address came from, for the error message.
pub fn bind(addr: SocketAddr, setting: &'static str) -> Result<std::net::TcpListener, Error> {
    let result = match bind_once(addr) {
        Err(e) if addr.ip().is_unspecified() && addr.is_ipv6() && no_ipv6(&e) => bind_once(
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port()),
        ),
        other => other,
    };
    result.map_err(|e| Error::Listen {
        addr,
        setting,
        reason: e.to_string(),
    })
}

fn bind_once(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        // Dual stack: one socket for IPv4 and IPv6 whatever the host's bindv6only default.
        socket.set_only_v6(false)?;
    }
    // Lets a restarted server bind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// EAFNOSUPPORT (97) or EADDRNOTAVAIL (99) on Linux: IPv6 is disabled or absent.
fn no_ipv6(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(97 | 99))
}
