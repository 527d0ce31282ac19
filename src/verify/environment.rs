//! The execution environment that holds the function's processes: a user, mount, pid and
//! network namespace whose first process is a small init of ours (the network, its loopback
//! only, is `network.rs`'s).
//!
//! `clone` makes the init (pid 1 inside) in all three namespaces at once; the parent writes the
//! id maps (the sandbox user, uid 993 / gid 990 as Lambda's `sbx_user1051`, to the host user, or
//! to the host's `nobody` when verify runs as root, so that no process of the function is ever
//! the host's root), then the init builds the root ([`NsPlan`]), pivots into it and from then
//! on only reaps orphans and forwards SIGTERM, SIGINT and SIGHUP to every process of the
//! namespace. When the init dies the kernel kills every process of the namespace, `setsid` or
//! not; it dies with verify (`PR_SET_PDEATHSIG`), when [`Environment::end`] kills it, or when
//! verify is interrupted (`interrupt.rs`).
//!
//! Each runtime or extension process joins the namespaces between `fork` and `exec`
//! ([`Environment::enter`]): the forked child `setns`es, forks once more (only children enter
//! a pid namespace) and stays as a thin parent that waits for that grandchild and exits the way
//! it did, so the caller keeps an ordinary child to wait for and signal. The grandchild drops to
//! the sandbox user with the process cap (`RLIMIT_NPROC`, counted per user namespace) before
//! `exec`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::namespace::NsPlan;
use super::network::Network;

/// Lambda's sandbox user and group (`sbx_user1051`).
pub(crate) const SANDBOX_UID: u32 = 993;
pub(crate) const SANDBOX_GID: u32 = 990;
/// Lambda's cap on processes and threads.
pub(crate) const PROCESS_CAP: u64 = 1024;
/// The host's `nobody`, which the sandbox user is when verify runs as root.
const HOST_NOBODY: u32 = 65_534;

/// A running environment; dropping it ends it.
pub(crate) struct Environment {
    init: Init,
    user: OwnedFd,
    mount: OwnedFd,
    pid: OwnedFd,
    net: Option<OwnedFd>,
    /// Makes sockets in the environment's network (the Runtime API's listener, connections to
    /// telemetry subscribers); `None` when the kernel refused a network namespace.
    pub network: Option<std::sync::Arc<Network>>,
    /// Why the environment shares the host's network, when it does.
    pub shares_host_network: Option<String>,
    /// The pid namespace's identity (`pid:[inode]`), to find its processes in `/proc`.
    pub pid_namespace: String,
    /// Who the sandbox user is on the host (`uid`, and how it was chosen).
    pub host_user: String,
}

/// The init, our child: killed (and with it the namespace) and reaped when dropped or ended.
struct Init {
    pid: libc::pid_t,
    /// Set once the namespace is known: its other processes are then killed one by one first.
    pid_namespace: Option<String>,
    ended: bool,
}

/// How long ending waits for the namespace's processes to be gone before it kills the init.
const END_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

impl Init {
    fn new(pid: libc::pid_t) -> Init {
        super::interrupt::track_init(pid);
        Init {
            pid,
            pid_namespace: None,
            ended: false,
        }
    }

    /// Kills every process of the namespace and waits until none runs; then kills the init,
    /// whose own exit (the namespaces torn down) can take a second or two on a busy kernel and
    /// is reaped aside.
    fn end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(namespace) = &self.pid_namespace {
            let deadline = std::time::Instant::now() + END_BUDGET;
            loop {
                let left = super::limits::processes_in(namespace, self.pid);
                if left.is_empty() || std::time::Instant::now() > deadline {
                    break;
                }
                for pid in left {
                    // SAFETY: kill has no memory preconditions; `pid` was just seen in the
                    // namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        let pid = self.pid;
        // SAFETY: `pid` is our own child, not yet reaped, so the pid is still ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        super::interrupt::untrack_init(pid);
        let reaped = std::thread::Builder::new()
            .name("verify-reap".into())
            .spawn(move || reap(pid));
        if reaped.is_err() {
            reap(pid);
        }
    }
}

fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}

impl Drop for Init {
    fn drop(&mut self) {
        self.end();
    }
}

/// Whom the sandbox user and group are on the host, and whether `setgroups` must be denied.
fn host_ids() -> (u32, u32, bool, String) {
    // SAFETY: getuid/getgid have no preconditions.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    if uid == 0 {
        (
            HOST_NOBODY,
            HOST_NOBODY,
            false,
            format!("host uid {HOST_NOBODY} (nobody), never root"),
        )
    } else {
        (
            uid,
            gid,
            true,
            format!("host uid {uid} (the user running verify)"),
        )
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out-array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn open_ns(init: libc::pid_t, name: &str) -> io::Result<OwnedFd> {
    let file = std::fs::File::open(format!("/proc/{init}/ns/{name}"))?;
    Ok(OwnedFd::from(file))
}

impl Environment {
    /// Starts the init and builds the root; the error names the step the kernel refused.
    /// Without `own_network` (`--network host`) the processes share the host's network.
    pub fn start(plan: &NsPlan, own_network: bool) -> Result<Environment, String> {
        let (uid, gid, deny_setgroups, host_user) = host_ids();
        let (ready_read, ready_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let (go_read, go_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
        let devnull = CString::new("/dev/null").unwrap_or_default();
        let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::SIGCHLD;
        // SAFETY: a raw clone without CLONE_VM is a fork: the child gets a copy of this
        // thread's memory and runs only `init_main`, which issues raw system calls.
        let clone = |flags: libc::c_int| unsafe {
            libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0, 0, 0, 0)
        };
        // A kernel (or a seccomp policy) may allow user namespaces but not network ones: the
        // environment then shares the host's network, and the report says so.
        let mut shares_host_network = None;
        let mut init = if own_network {
            clone(flags | libc::CLONE_NEWNET)
        } else {
            shares_host_network = Some(
                "own network: --network host was given, so the processes share the host's \
                 network"
                    .to_string(),
            );
            clone(flags)
        };
        if init < 0 && own_network {
            shares_host_network = Some(format!(
                "own network: the kernel refused a network namespace ({}), so the processes \
                 share the host's loopback",
                io::Error::last_os_error()
            ));
            init = clone(flags);
        }
        if init < 0 {
            return Err(format!(
                "clone(user|mount|pid): {}",
                io::Error::last_os_error()
            ));
        }
        if init == 0 {
            // SAFETY: in the child; never returns.
            unsafe { init_main(plan, go_read.as_raw_fd(), ready_write.as_raw_fd(), &devnull) }
        }
        let mut guard = Init::new(init as libc::pid_t);
        let init = guard.pid;
        drop((go_read, ready_write));
        let maps = (|| -> io::Result<()> {
            if deny_setgroups {
                std::fs::write(format!("/proc/{init}/setgroups"), "deny")?;
            }
            std::fs::write(
                format!("/proc/{init}/uid_map"),
                format!("{SANDBOX_UID} {uid} 1"),
            )?;
            std::fs::write(
                format!("/proc/{init}/gid_map"),
                format!("{SANDBOX_GID} {gid} 1"),
            )
        })();
        maps.map_err(|e| format!("write the id maps of the sandbox user: {e}"))?;
        let go = [1u8];
        // SAFETY: writing one byte from a valid buffer to our pipe.
        unsafe { libc::write(go_write.as_raw_fd(), go.as_ptr().cast(), 1) };
        let mut report = [0u8; 16];
        let mut got = 0;
        while got < report.len() {
            // SAFETY: reading into the unfilled tail of `report`.
            let n = unsafe {
                libc::read(
                    ready_read.as_raw_fd(),
                    report[got..].as_mut_ptr().cast(),
                    report.len() - got,
                )
            };
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            if n <= 0 {
                break;
            }
            got += n as usize;
            if got == 1 && report[0] == READY {
                break;
            }
        }
        match got {
            1 if report[0] == READY => {}
            16 => {
                let index = u64::from_le_bytes(report[..8].try_into().unwrap_or([0; 8])) as usize;
                let errno = i64::from_le_bytes(report[8..].try_into().unwrap_or([0; 8])) as i32;
                return Err(format!(
                    "{}: {}",
                    plan.step(index),
                    io::Error::from_raw_os_error(errno)
                ));
            }
            _ => return Err("the environment's init ended during setup".into()),
        }
        let open =
            |name| open_ns(init, name).map_err(|e| format!("open its {name} namespace: {e}"));
        let pid_namespace = std::fs::read_link(format!("/proc/{init}/ns/pid"))
            .map(|p| p.display().to_string())
            .map_err(|e| format!("read its pid namespace: {e}"))?;
        guard.pid_namespace = Some(pid_namespace.clone());
        let user = open("user")?;
        let (net, network) = match shares_host_network {
            Some(_) => (None, None),
            None => {
                let net = open("net")?;
                let network = Network::start(user.as_raw_fd(), net.as_raw_fd())
                    .map_err(|e| format!("bring up its network (loopback): {e}"))?;
                (Some(net), Some(std::sync::Arc::new(network)))
            }
        };
        Ok(Environment {
            user,
            mount: open("mnt")?,
            pid: open("pid")?,
            net,
            network,
            shares_host_network,
            pid_namespace,
            host_user,
            init: guard,
        })
    }

    /// The host pid of the init (pid 1 inside).
    pub fn init_pid(&self) -> libc::pid_t {
        self.init.pid
    }

    /// What a forked child runs before `exec` to become a process of the environment, at `cwd`
    /// (a path inside the root).
    pub fn entry(&self, cwd: &str) -> io::Result<Entry> {
        Ok(Entry {
            user: self.user.as_raw_fd(),
            mount: self.mount.as_raw_fd(),
            pid: self.pid.as_raw_fd(),
            net: self.net.as_ref().map_or(-1, AsRawFd::as_raw_fd),
            cwd: CString::new(cwd)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?,
        })
    }

    /// Kills every process of the environment (the init's death takes them all) and reaps the
    /// init.
    pub fn end(&mut self) {
        self.init.end();
    }
}

/// The init's "setup done" byte (a failure sends 16 bytes: step index and errno).
const READY: u8 = 0xA5;

/// Signals the init forwards to every process of the namespace.
const FORWARDED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

extern "C" fn forward(signal: libc::c_int) {
    // SAFETY: kill is async-signal-safe; -1 is every process of the namespace but the init.
    unsafe {
        libc::kill(-1, signal);
    }
}

extern "C" fn wake(_: libc::c_int) {}

/// The init: waits for the id maps, builds the root, then reaps and forwards until killed.
///
/// # Safety
/// Runs in the child of a raw `clone` of a multi-threaded program: raw system calls only.
unsafe fn init_main(plan: &NsPlan, go: i32, ready: i32, devnull: &CString) -> ! {
    // SAFETY: raw system calls on our own descriptors and prepared memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let null = libc::open(devnull.as_ptr(), libc::O_RDWR);
        for fd in 0..3 {
            libc::dup2(null, fd);
        }
        // Nothing of verify's stays open here, at once: a copy of another thread's descriptor
        // would keep a pipe from its end, or a file just written from being executed (ETXTBSY).
        let (low, high) = (go.min(ready) as u32, go.max(ready) as u32);
        close_range(3, low - 1);
        close_range(low + 1, high - 1);
        close_range(high + 1, u32::MAX);
        let mut byte = 0u8;
        if libc::read(go, (&mut byte as *mut u8).cast(), 1) != 1 {
            libc::_exit(1);
        }
        libc::close(go);
        if let Err((index, errno)) = plan.hold_folders() {
            let mut report = [0u8; 16];
            report[..8].copy_from_slice(&(index as u64).to_le_bytes());
            report[8..].copy_from_slice(&(errno as i64).to_le_bytes());
            libc::write(ready, report.as_ptr().cast(), report.len());
            libc::_exit(1);
        }
        // The sandbox ids are the only ones mapped: files the plan creates need an owner that
        // exists in the namespace (the capabilities stay, as the old ids were not its root).
        let switched = set_ids() == 0;
        if !switched {
            let mut report = [0u8; 16];
            report[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            report[8..].copy_from_slice(&(*libc::__errno_location() as i64).to_le_bytes());
            libc::write(ready, report.as_ptr().cast(), report.len());
            libc::_exit(1);
        }
        if let Err((index, errno)) = plan.run() {
            let mut report = [0u8; 16];
            report[..8].copy_from_slice(&(index as u64).to_le_bytes());
            report[8..].copy_from_slice(&(errno as i64).to_le_bytes());
            libc::write(ready, report.as_ptr().cast(), report.len());
            libc::_exit(1);
        }
        // The held folders were needed until now.
        close_range(3, ready as u32 - 1);
        close_range(ready as u32 + 1, u32::MAX);
        // Handlers inherited from verify (tokio's) must not run here.
        let mut action: libc::sigaction = std::mem::zeroed();
        for signal in 1..32 {
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        libc::sigaddset(&mut blocked, libc::SIGCHLD);
        action.sa_sigaction = wake as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigaction(libc::SIGCHLD, &action, std::ptr::null_mut());
        for signal in FORWARDED {
            libc::sigaddset(&mut blocked, signal);
            action.sa_sigaction = forward as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        libc::sigprocmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        let done = [READY];
        libc::write(ready, done.as_ptr().cast(), 1);
        libc::close(ready);
        let mut open: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut open);
        loop {
            let mut status = 0;
            while libc::waitpid(-1, &mut status, libc::WNOHANG) > 0 {}
            libc::sigsuspend(&open);
        }
    }
}

/// Becomes the sandbox user and group by raw system calls: the C library's `setresuid` would
/// try to change every thread it believes the process has, and after a raw `clone` of a
/// multi-threaded program it may wait forever on a lock another thread held.
///
/// # Safety
/// Raw system calls only.
unsafe fn set_ids() -> libc::c_long {
    let (uid, gid) = (SANDBOX_UID, SANDBOX_GID);
    // SAFETY: setresgid and setresuid take plain integers.
    unsafe {
        let group = libc::syscall(libc::SYS_setresgid, gid, gid, gid);
        if group != 0 {
            return group;
        }
        libc::syscall(libc::SYS_setresuid, uid, uid, uid)
    }
}

fn close_range(first: u32, last: u32) {
    if first <= last {
        // SAFETY: closing descriptors has no memory preconditions.
        unsafe {
            libc::syscall(libc::SYS_close_range, first, last, 0);
        }
    }
}

/// What a forked child needs to join the environment (raw descriptors of the [`Environment`],
/// which outlives the spawn).
pub(crate) struct Entry {
    user: i32,
    mount: i32,
    pid: i32,
    /// The network namespace to join, -1 when the environment shares the host's.
    net: i32,
    cwd: CString,
}

impl Entry {
    /// Joins the namespaces and forks the process that will `exec`; in the caller (which
    /// stays outside the pid namespace) waits for it and exits as it did. Returns only in the
    /// process that goes on to `exec`, as the sandbox user.
    ///
    /// # Safety
    /// Only between `fork` and `exec`: raw system calls, no allocation.
    pub unsafe fn enter(&self) -> io::Result<()> {
        // SAFETY: raw system calls on descriptors and strings prepared before the fork.
        unsafe {
            let check = |failed: bool| {
                if failed {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            check(libc::setns(self.user, libc::CLONE_NEWUSER) != 0)?;
            check(libc::setns(self.mount, libc::CLONE_NEWNS) != 0)?;
            check(libc::setns(self.pid, libc::CLONE_NEWPID) != 0)?;
            if self.net >= 0 {
                check(libc::setns(self.net, libc::CLONE_NEWNET) != 0)?;
            }
            check(libc::chdir(self.cwd.as_ptr()) != 0)?;
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut before: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::sigprocmask(libc::SIG_BLOCK, &all, &mut before);
            let child = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
            if child < 0 {
                let error = io::Error::last_os_error();
                libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                return Err(error);
            }
            if child == 0 {
                libc::sigprocmask(libc::SIG_SETMASK, &before, std::ptr::null_mut());
                // Supplementary groups may not be changeable (setgroups denied): the host
                // user's own then remain, unmapped.
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                check(set_ids() != 0)?;
                let cap = libc::rlimit {
                    rlim_cur: PROCESS_CAP,
                    rlim_max: PROCESS_CAP,
                };
                check(libc::setrlimit(libc::RLIMIT_NPROC, &cap) != 0)?;
                // Set after the user change, which clears it: the process dies with its waiter.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                return Ok(());
            }
            wait_and_mirror(child as libc::pid_t, &before)
        }
    }
}

/// The waiter: holds no descriptor, survives the signals sent to its process group (the
/// process itself gets them too) and exits as `child` did.
///
/// # Safety
/// Between `fork` and `exec`: raw system calls only.
unsafe fn wait_and_mirror(child: libc::pid_t, mask: &libc::sigset_t) -> ! {
    // SAFETY: raw system calls only.
    unsafe {
        close_range(0, u32::MAX);
        let mut action: libc::sigaction = std::mem::zeroed();
        for signal in 1..32 {
            if signal == libc::SIGKILL || signal == libc::SIGSTOP {
                continue;
            }
            action.sa_sigaction = if signal == libc::SIGCHLD {
                libc::SIG_DFL
            } else {
                libc::SIG_IGN
            };
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        libc::sigprocmask(libc::SIG_SETMASK, mask, std::ptr::null_mut());
        let mut status = 0;
        loop {
            let reaped = libc::waitpid(child, &mut status, 0);
            if reaped == child {
                break;
            }
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let signal = libc::WTERMSIG(status);
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
            let mut only: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut only);
            libc::sigaddset(&mut only, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
