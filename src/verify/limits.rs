//! What the environment holds its processes to, as the report states it, and the memory limit
//! enforced by watching the environment's resident memory.
//!
//! A cgroup v2 `memory.max` would be the kernel's own enforcement, as on Lambda; verify does not
//! create cgroups, so the limit is enforced from outside: every [`SAMPLE`] the resident memory
//! of every process of the environment's pid namespace is summed, and past the limit the
//! largest process is killed (SIGKILL), which Lambda reports as `Runtime.OutOfMemory`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::FunctionRun;
use super::environment::{Environment, PROCESS_CAP, SANDBOX_GID, SANDBOX_UID};

/// How often the environment's memory is measured.
pub(crate) const SAMPLE: Duration = Duration::from_millis(50);

/// What held the processes of a run (the report's `sandbox`).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Containment {
    /// False with `--no-sandbox`: none of the rest holds.
    pub sandboxed: bool,
    /// Only `/tmp` (and `/dev/shm`) writable; only Lambda's folders visible.
    pub read_only_root: bool,
    /// The processes' user and group inside the environment (Lambda's `sbx_user1051`).
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Who that user is on the host.
    pub host_user: Option<String>,
    /// `/tmp`'s size (tmpfs), MB: the function's ephemeral storage.
    pub tmp_mb: Option<u32>,
    /// The memory limit, MB (the function's `memory`).
    pub memory_mb: u32,
    /// How the memory limit is enforced: `watched` (resident memory sampled) or `none`.
    pub memory_enforcement: String,
    /// Every process in a pid namespace of its own: none outlives the environment.
    pub pid_namespace: bool,
    /// A network of its own, its loopback only (as each Lambda environment has its own).
    pub network_namespace: bool,
    /// Processes and threads the sandbox user may have (`RLIMIT_NPROC` in its user namespace).
    pub process_cap: Option<u64>,
    /// Each limit not applied, with why.
    pub not_applied: Vec<String>,
}

impl Containment {
    pub fn unsandboxed(run: &FunctionRun) -> Containment {
        Containment {
            memory_mb: run.memory_mb,
            memory_enforcement: "none".into(),
            not_applied: vec![
                "read-only root, sandbox user, /tmp size, memory, pid namespace, own network \
                 and process cap: --no-sandbox"
                    .into(),
            ],
            ..Containment::default()
        }
    }

    pub(crate) fn sandboxed(run: &FunctionRun, environment: &Environment) -> Containment {
        Containment {
            sandboxed: true,
            read_only_root: true,
            uid: Some(SANDBOX_UID),
            gid: Some(SANDBOX_GID),
            host_user: Some(environment.host_user.clone()),
            tmp_mb: Some(run.ephemeral_storage_mb),
            memory_mb: run.memory_mb,
            memory_enforcement: "watched".into(),
            pid_namespace: true,
            network_namespace: environment.network.is_some(),
            process_cap: Some(PROCESS_CAP),
            not_applied: std::iter::once(format!(
                "memory by the kernel (cgroup memory.max): verify creates no cgroup, so \
                 resident memory is sampled every {} ms and may overshoot between samples",
                SAMPLE.as_millis()
            ))
            .chain(environment.shares_host_network.clone())
            .collect(),
        }
    }

    /// The one-line summary after `sandbox: `.
    pub fn summary(&self) -> String {
        if !self.sandboxed {
            return "none (--no-sandbox)".into();
        }
        let mut parts = vec!["read-only root".to_string()];
        if let (Some(uid), Some(gid)) = (self.uid, self.gid) {
            parts.push(format!("uid {uid} gid {gid} (sbx_user1051)"));
        }
        if let Some(tmp) = self.tmp_mb {
            parts.push(format!("/tmp {tmp} MB"));
        }
        parts.push(format!(
            "memory {} MB ({})",
            self.memory_mb, self.memory_enforcement
        ));
        if self.pid_namespace {
            parts.push("pid namespace".into());
        }
        if self.network_namespace {
            parts.push("own network".into());
        }
        if let Some(cap) = self.process_cap {
            parts.push(format!("{cap} processes"));
        }
        parts.join(", ")
    }
}

/// What the memory watch found: the peak and whether the limit was crossed.
#[derive(Default)]
pub(crate) struct MemoryWatch {
    peak_bytes: AtomicU64,
    exceeded: AtomicBool,
}

impl MemoryWatch {
    pub fn peak_mb(&self) -> u64 {
        self.peak_bytes.load(Ordering::SeqCst).div_ceil(1024 * 1024)
    }

    pub fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::SeqCst)
    }

    /// Counts what the processes hold right now into the peak.
    pub fn sample_now(&self, pid_namespace: &str, init: libc::pid_t) {
        let (total, _) = sample(pid_namespace, init, page_size());
        self.peak_bytes.fetch_max(total, Ordering::SeqCst);
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Samples the resident memory of the processes in `pid_namespace` (but `init`, ours) until
/// aborted; past `limit_mb` kills the largest.
pub(crate) async fn watch_memory(
    pid_namespace: String,
    init: libc::pid_t,
    limit_mb: u32,
    watch: Arc<MemoryWatch>,
) {
    let limit = u64::from(limit_mb) * 1024 * 1024;
    let page = page_size();
    loop {
        let (total, largest) = sample(&pid_namespace, init, page);
        watch.peak_bytes.fetch_max(total, Ordering::SeqCst);
        if total > limit
            && let Some(pid) = largest
        {
            watch.exceeded.store(true, Ordering::SeqCst);
            // SAFETY: kill has no memory preconditions.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        tokio::time::sleep(SAMPLE).await;
    }
}

/// The host pids of the processes in `pid_namespace`, but `init` (zombies have no namespace
/// left and are not counted).
pub(crate) fn processes_in(pid_namespace: &str, init: libc::pid_t) -> Vec<libc::pid_t> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter(|pid| *pid != init)
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .is_ok_and(|link| link.as_os_str() == pid_namespace)
        })
        .collect()
}

/// The summed resident bytes of the namespace's processes and the largest one's pid.
fn sample(pid_namespace: &str, init: libc::pid_t, page: u64) -> (u64, Option<libc::pid_t>) {
    let mut total = 0;
    let mut largest: Option<(u64, libc::pid_t)> = None;
    for pid in processes_in(pid_namespace, init) {
        let Ok(statm) = std::fs::read_to_string(format!("/proc/{pid}/statm")) else {
            continue;
        };
        let pages: u64 = statm
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let bytes = pages * page;
        total += bytes;
        if largest.is_none_or(|(most, _)| bytes > most) {
            largest = Some((bytes, pid));
        }
    }
    (total, largest.map(|(_, pid)| pid))
}
