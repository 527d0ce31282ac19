//! The environment's own network, as Lambda gives each execution environment one: a network
//! namespace with only its loopback, up. Extensions that listen on fixed ports (the logs
//! processor of `lambda-extension` on 9002, its telemetry one on 9003) then never meet those of
//! another environment running at the same time.
//!
//! The emulator stays in the host's network, yet the Runtime API must listen on the
//! environment's loopback and telemetry must be delivered to listeners there. A socket belongs
//! to the network namespace it was created in, wherever it is used afterwards, so a small helper
//! process that joined the environment's user and network namespaces makes sockets there on
//! request and hands them over (`SCM_RIGHTS`); the emulator binds, listens and connects with
//! them as with any other. A thread could not do it: joining a network namespace needs
//! `CAP_SYS_ADMIN` in the caller's own user namespace, which an unprivileged verify has only
//! after joining the environment's user namespace, and a multi-threaded process cannot join one.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

/// What a request asks the helper for.
const LISTENER: u8 = b'L';
const STREAM: u8 = b'S';

/// The helper in the environment's network, ended when dropped.
pub(crate) struct Network {
    /// Our end of the request channel (a `SOCK_SEQPACKET` pair): one request, one answer.
    requests: Mutex<OwnedFd>,
    helper: libc::pid_t,
}

impl Network {
    /// Starts the helper in the namespaces `user` and `net` (descriptors of the environment's).
    pub fn start(user: RawFd, net: RawFd) -> io::Result<Network> {
        let mut pair = [0i32; 2];
        // SAFETY: `pair` is a valid out-array of two ints.
        if unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
                0,
                pair.as_mut_ptr(),
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: socketpair returned two fresh descriptors that nothing else owns.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
        // SAFETY: a raw clone without CLONE_VM is a fork; the child runs only `helper_main`,
        // which issues raw system calls.
        let pid =
            unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0) };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: in the child; never returns.
            unsafe { helper_main(user, net, theirs.as_raw_fd()) }
        }
        drop(theirs);
        let network = Network {
            requests: Mutex::new(ours),
            helper: pid as libc::pid_t,
        };
        // The first answer says whether the helper got into the namespaces.
        network.ask(STREAM, 0).map(drop)?;
        Ok(network)
    }

    /// A TCP listener on the environment's `127.0.0.1:port`.
    pub fn listener(&self, port: u16) -> io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::from(self.ask(LISTENER, port)?);
        listener.set_nonblocking(true)?;
        Ok(listener)
    }

    /// A TCP socket of the environment's network, not yet connected.
    pub fn stream_socket(&self) -> io::Result<tokio::net::TcpSocket> {
        let fd = self.ask(STREAM, 0)?;
        // SAFETY: a fresh TCP socket we own.
        let socket =
            unsafe { tokio::net::TcpSocket::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) };
        Ok(socket)
    }

    fn ask(&self, kind: u8, port: u16) -> io::Result<OwnedFd> {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let [high, low] = port.to_be_bytes();
        let request = [kind, high, low];
        // SAFETY: sending from a valid buffer on our socket.
        if unsafe {
            libc::send(
                requests.as_raw_fd(),
                request.as_ptr().cast(),
                3,
                libc::MSG_NOSIGNAL,
            )
        } != 3
        {
            return Err(io::Error::last_os_error());
        }
        let mut errno = [0u8; 4];
        let mut space = [0u64; 4];
        let mut iov = libc::iovec {
            iov_base: errno.as_mut_ptr().cast(),
            iov_len: errno.len(),
        };
        // SAFETY: a zeroed msghdr is valid; its pointers are set to live buffers below.
        let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = space.as_mut_ptr().cast();
        message.msg_controllen = std::mem::size_of_val(&space) as _;
        // SAFETY: receiving into the buffers `message` points at.
        let got =
            unsafe { libc::recvmsg(requests.as_raw_fd(), &mut message, libc::MSG_CMSG_CLOEXEC) };
        if got <= 0 {
            return Err(io::Error::other(
                "the network helper of the environment ended",
            ));
        }
        // SAFETY: the control buffer was filled by recvmsg; CMSG_* only walk it.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&message);
            if !header.is_null()
                && (*header).cmsg_level == libc::SOL_SOCKET
                && (*header).cmsg_type == libc::SCM_RIGHTS
            {
                let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<i32>());
                return Ok(OwnedFd::from_raw_fd(fd));
            }
        }
        Err(io::Error::from_raw_os_error(i32::from_le_bytes(errno)))
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // SAFETY: signalling and reaping our own child.
        unsafe {
            libc::kill(self.helper, libc::SIGKILL);
            libc::waitpid(self.helper, std::ptr::null_mut(), 0);
        }
    }
}

/// Sends `fd` (or, when negative, the errno as the answer's data) over `channel`.
///
/// # Safety
/// Raw system calls only.
unsafe fn answer(channel: i32, fd: i32, errno: i32) {
    let data = errno.to_le_bytes();
    let mut space = [0u64; 4];
    // SAFETY: buffers on this stack frame; CMSG_* only compute within `space`.
    unsafe {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr() as *mut libc::c_void,
            iov_len: data.len(),
        };
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        if fd >= 0 {
            message.msg_control = space.as_mut_ptr().cast();
            message.msg_controllen = libc::CMSG_SPACE(4) as _;
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<i32>(), fd);
        }
        libc::sendmsg(channel, &message, libc::MSG_NOSIGNAL);
    }
}

/// The helper: joins the namespaces, then makes one socket per request until the channel
/// closes (verify ended or dropped the [`Network`]) or verify dies.
///
/// # Safety
/// Runs in the child of a raw `clone` of a multi-threaded program: raw system calls only.
unsafe fn helper_main(user: RawFd, net: RawFd, channel: RawFd) -> ! {
    // SAFETY: raw system calls on our own descriptors and stack memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let mut action: libc::sigaction = std::mem::zeroed();
        for signal in 1..32 {
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        let joined = libc::setns(user, libc::CLONE_NEWUSER) == 0
            && libc::setns(net, libc::CLONE_NEWNET) == 0
            && loopback_up();
        let failure = if joined { 0 } else { *libc::__errno_location() };
        // Nothing of verify's stays open here but the channel.
        libc::syscall(libc::SYS_close_range, 0, channel as u32 - 1, 0);
        libc::syscall(libc::SYS_close_range, channel as u32 + 1, u32::MAX, 0);
        let mut request = [0u8; 3];
        loop {
            let n = libc::recv(channel, request.as_mut_ptr().cast(), 3, 0);
            if n <= 0 {
                libc::_exit(0);
            }
            if failure != 0 {
                answer(channel, -1, failure);
                continue;
            }
            let socket = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if socket < 0 {
                answer(channel, -1, *libc::__errno_location());
                continue;
            }
            if request[0] == LISTENER {
                let mut address: libc::sockaddr_in = std::mem::zeroed();
                address.sin_family = libc::AF_INET as libc::sa_family_t;
                address.sin_port = u16::from_ne_bytes([request[1], request[2]]);
                address.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
                let one: libc::c_int = 1;
                libc::setsockopt(
                    socket,
                    libc::SOL_SOCKET,
                    libc::SO_REUSEADDR,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
                let bound = libc::bind(
                    socket,
                    (&address as *const libc::sockaddr_in).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                ) == 0
                    && libc::listen(socket, 1024) == 0;
                if !bound {
                    answer(channel, -1, *libc::__errno_location());
                    libc::close(socket);
                    continue;
                }
            }
            answer(channel, socket, 0);
            libc::close(socket);
        }
    }
}

/// Brings the namespace's `lo` up (a new network namespace has it down): the helper has
/// `CAP_NET_ADMIN` there, having joined the user namespace that owns it.
///
/// # Safety
/// Raw system calls only.
unsafe fn loopback_up() -> bool {
    // SAFETY: an ioctl on a socket of ours with an ifreq on this stack frame.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if socket < 0 {
            return false;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        request.ifr_name[0] = b'l' as libc::c_char;
        request.ifr_name[1] = b'o' as libc::c_char;
        request.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let up = libc::ioctl(socket, libc::SIOCSIFFLAGS as _, &request) == 0;
        libc::close(socket);
        up
    }
}
