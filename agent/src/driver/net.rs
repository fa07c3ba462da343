//! Sockets for the driver: non-blocking TCP connects with the kernel's own limits set before
//! the SYN goes out, and the per-connection buffers.

use mio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// Starts a non-blocking connect to `addr`. TCP_USER_TIMEOUT is set to `timeout` first, so
/// the kernel itself gives up on unacknowledged data (and, on Linux, on the SYN) instead of
/// retransmitting for minutes (FACTS: a silently dropped SYN takes ~133 s by default). On
/// illumos and Solaris the same bounds are TCP_CONN_ABORT_THRESHOLD (the connect) and
/// TCP_ABORT_THRESHOLD (unacknowledged data), in milliseconds. Elsewhere only the engine's
/// own timers bound the wait, which they do in any case.
pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        socket.set_tcp_user_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        // One SYN retransmission at most; our own timer and the next candidate do the rest.
        set_int_option(&socket, libc::IPPROTO_TCP, libc::TCP_SYNCNT, 1);
    }
    #[cfg(any(target_os = "illumos", target_os = "solaris"))]
    {
        let ms = libc::c_int::try_from(timeout.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        set_int_option(
            &socket,
            libc::IPPROTO_TCP,
            libc::TCP_CONN_ABORT_THRESHOLD,
            ms,
        );
        set_int_option(&socket, libc::IPPROTO_TCP, libc::TCP_ABORT_THRESHOLD, ms);
    }
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "illumos",
        target_os = "solaris"
    )))]
    let _ = timeout;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Best effort: a kernel without the option still has the engine's timers.
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_os = "illumos",
    target_os = "solaris"
))]
fn set_int_option(socket: &Socket, level: libc::c_int, name: libc::c_int, value: libc::c_int) {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int of the right size.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// What a read produced.
pub enum ReadResult {
    /// Bytes were read into the scratch buffer.
    Data(usize),
    /// Nothing more for now.
    WouldBlock,
    /// The peer closed or the connection failed.
    Closed,
}

/// One read into `scratch`.
pub fn read_some(stream: &mut TcpStream, scratch: &mut [u8]) -> ReadResult {
    loop {
        match stream.read(scratch) {
            Ok(0) => return ReadResult::Closed,
            Ok(n) => return ReadResult::Data(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadResult::WouldBlock,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ReadResult::Closed,
        }
    }
}

/// Writes as much of `buf` as the socket takes; removes what was written.
pub fn flush(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut written = 0;
    let result = loop {
        if written == buf.len() {
            break Ok(());
        }
        match stream.write(&buf[written..]) {
            Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    buf.drain(..written);
    result
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn tcp_option(stream: &TcpStream, option: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: getsockopt on a live socket into a c_int of the size given.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::IPPROTO_TCP,
                option,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    /// The kernel's own limits are on the socket before the SYN: a silent server costs the
    /// connect timeout, not the ~133 s of the kernel's defaults.
    #[test]
    fn a_connect_carries_the_kernel_limits() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = connect(listener.local_addr().unwrap(), Duration::from_millis(750)).unwrap();
        assert_eq!(tcp_option(&stream, libc::TCP_USER_TIMEOUT), 750);
        assert_eq!(tcp_option(&stream, libc::TCP_SYNCNT), 1);
        assert_eq!(tcp_option(&stream, libc::TCP_NODELAY), 1);
    }
}
