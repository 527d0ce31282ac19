//! SIGTERM, SIGINT and SIGHUP to verify (what CI timeouts and terminals send) tear down every
//! live environment and remove verify's temporary folders before verify dies of the signal; a
//! second signal during that clean-up ends verify at once, still killing the environments.
//!
//! The handler itself only kills the environments' inits (`kill` is async-signal-safe) and
//! wakes a thread through a pipe; that thread removes the folders, then re-raises the signal
//! with its default action so verify's own exit says what ended it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

const SLOTS: usize = 64;
static INITS: [AtomicI32; SLOTS] = [const { AtomicI32::new(0) }; SLOTS];
static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static WAKE: AtomicI32 = AtomicI32::new(-1);
static RECEIVED: AtomicUsize = AtomicUsize::new(0);
const HANDLED: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// Notes a live environment's init, killed if verify is interrupted.
pub(crate) fn track_init(pid: libc::pid_t) {
    for slot in &INITS {
        if slot
            .compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
    }
}

pub(crate) fn untrack_init(pid: libc::pid_t) {
    for slot in &INITS {
        let _ = slot.compare_exchange(pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }
}

/// A temporary folder of verify's, removed if verify is interrupted; untracked when dropped.
pub(crate) struct TrackedDir(PathBuf);

impl TrackedDir {
    pub fn new(path: &Path) -> TrackedDir {
        DIRS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.to_path_buf());
        TrackedDir(path.to_path_buf())
    }
}

impl Drop for TrackedDir {
    fn drop(&mut self) {
        DIRS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|p| p != &self.0);
    }
}

fn kill_inits() {
    for slot in &INITS {
        let pid = slot.load(Ordering::SeqCst);
        if pid > 0 {
            // SAFETY: kill has no memory preconditions; the pid is an unreaped child of ours.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
}

/// Ends verify by `signal` with its default action.
fn die_of(signal: libc::c_int) -> ! {
    // SAFETY: plain signal calls; the default action of these signals ends the process.
    unsafe {
        libc::signal(signal, libc::SIG_DFL);
        let mut only: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut only);
        libc::sigaddset(&mut only, signal);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &only, std::ptr::null_mut());
        libc::kill(libc::getpid(), signal);
        libc::_exit(128 + signal)
    }
}

extern "C" fn on_signal(signal: libc::c_int) {
    kill_inits();
    let wake = WAKE.load(Ordering::SeqCst);
    if RECEIVED.fetch_add(1, Ordering::SeqCst) == 0 && wake >= 0 {
        let byte = signal as u8;
        // SAFETY: write is async-signal-safe; the buffer is a local byte.
        unsafe {
            libc::write(wake, (&byte as *const u8).cast(), 1);
        }
        return;
    }
    die_of(signal);
}

/// After a signal, verify ends by it (the clean-up thread re-raises it once the folders are
/// gone): the caller, about to return normally, waits for that instead.
pub(crate) fn wait_if_interrupted() {
    if RECEIVED.load(Ordering::SeqCst) > 0 && WAKE.load(Ordering::SeqCst) >= 0 {
        loop {
            std::thread::park();
        }
    }
}

/// Installs the handlers (once per process).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid out-array of two ints.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        let [read, write] = fds;
        WAKE.store(write, Ordering::SeqCst);
        let spawned = std::thread::Builder::new()
            .name("verify-interrupt".into())
            .spawn(move || {
                let mut byte = 0u8;
                loop {
                    // SAFETY: reading one byte into a local from our own pipe.
                    let n = unsafe { libc::read(read, (&mut byte as *mut u8).cast(), 1) };
                    if n == 1 {
                        break;
                    }
                    if n == 0 {
                        return;
                    }
                }
                let dirs = DIRS.lock().unwrap_or_else(|p| p.into_inner()).clone();
                for dir in dirs.iter().rev() {
                    super::image::remove_root(dir);
                }
                die_of(libc::c_int::from(byte));
            });
        if spawned.is_err() {
            return;
        }
        for signal in HANDLED {
            // SAFETY: installing a handler that only does async-signal-safe work.
            unsafe {
                libc::signal(
                    signal,
                    on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t,
                );
            }
        }
    });
}
