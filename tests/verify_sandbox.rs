//! The environment verify holds a function in, probed from inside by a real function
//! (`fixtures/verify-functions/probe-fn`): Lambda's user, a read-only root with only Lambda's
//! folders, /tmp of the ephemeral storage, the memory limit ending the invocation with Lambda's
//! error, the process cap, and nothing left running after the run.
//!
//! Needs the musl target (`rustup target add x86_64-unknown-linux-musl`) and a kernel that allows
//! user namespaces (what verify itself needs).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use cargo_lambda_pack::{FunctionRun, NamespaceMode, RunReport, run_function};
use common::verify_bins::{Layout, x86};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The probe installed as `/var/task/bootstrap`, with `events` to run.
fn probe(events: &[Value]) -> (Layout, FunctionRun) {
    let layout = Layout::new();
    Layout::install(&layout.task, "bootstrap", &x86("probe"));
    let run = layout.run("probe", events);
    (layout, run)
}

fn answer(report: &RunReport, index: usize) -> Value {
    assert!(
        report.is_success(),
        "{:?}: {:?}",
        report.error_type,
        report.error_message
    );
    report.invocations[index]
        .response
        .clone()
        .expect("a JSON response")
}

/// SHA-256 of every file under `dir` (by path), to show that nothing there changed.
fn tree_hash(dir: &Path) -> String {
    let mut hasher = Sha256::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    for file in files {
        hasher.update(file.display().to_string());
        hasher.update(std::fs::read(&file).unwrap_or_default());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_function_runs_as_lambdas_user_on_a_read_only_root_with_only_lambdas_folders() {
    let checkout = env!("CARGO_MANIFEST_DIR");
    let event = json!({
        "write": ["/var/task/x", "/etc/x", "/usr/bin/x", "/opt/x", "/x", "/dev/x", "/tmp/x"],
        "exists": [checkout, "/root", "/home", "/srv", "/mnt", "/var/lib", "/sys",
                   "/var/task/bootstrap", "/dev/null", "/dev/urandom", "/dev/shm", "/proc/self"],
        "read": ["/etc/shadow", "/etc/passwd"],
    });
    let (layout, run) = probe(&[event]);
    // A folder the sandbox user cannot walk through on the host still becomes /var/task.
    std::fs::set_permissions(layout.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let task_before = tree_hash(&layout.task);
    let report = run_function(&run).unwrap();
    let found = answer(&report, 0);
    assert_eq!(found["uid"], 993, "{found}");
    assert_eq!(found["gid"], 990, "{found}");
    for path in [
        "/var/task/x",
        "/etc/x",
        "/usr/bin/x",
        "/opt/x",
        "/x",
        "/dev/x",
    ] {
        assert_eq!(found["write"][path], "EROFS", "{path}: {found}");
    }
    assert_eq!(found["write"]["/tmp/x"], "ok", "{found}");
    for path in [
        checkout, "/root", "/home", "/srv", "/mnt", "/var/lib", "/sys",
    ] {
        assert_eq!(found["exists"][path], false, "{path} is visible: {found}");
    }
    for path in [
        "/var/task/bootstrap",
        "/dev/null",
        "/dev/urandom",
        "/dev/shm",
        "/proc/self",
    ] {
        assert_eq!(found["exists"][path], true, "{path} is missing: {found}");
    }
    assert_eq!(found["read"]["/etc/shadow"], "EACCES", "{found}");
    assert_eq!(found["read"]["/etc/passwd"], "ok", "{found}");
    // Nothing reached the host.
    for path in ["/etc/x", "/usr/bin/x", "/x"] {
        assert!(!Path::new(path).exists(), "{path} was written on the host");
    }
    assert_eq!(tree_hash(&layout.task), task_before);
    let sandbox = &report.sandbox;
    assert!(sandbox.sandboxed && sandbox.read_only_root && sandbox.pid_namespace);
    assert_eq!((sandbox.uid, sandbox.gid), (Some(993), Some(990)));
    assert_eq!(sandbox.tmp_mb, Some(512));
    assert_eq!(sandbox.process_cap, Some(1024));
    assert_eq!(sandbox.memory_mb, 128);
}

#[test]
fn tmp_holds_the_ephemeral_storage_and_no_more() {
    let fill = json!({ "fill_tmp_mb": 600 });
    let (_layout, run) = probe(std::slice::from_ref(&fill));
    let report = run_function(&run).unwrap();
    assert_eq!(answer(&report, 0)["fill_tmp"], "ENOSPC");

    let (_layout, mut run) = probe(&[fill]);
    run.ephemeral_storage_mb = 1024;
    let report = run_function(&run).unwrap();
    assert_eq!(answer(&report, 0)["fill_tmp"], "ok");
    assert_eq!(report.sandbox.tmp_mb, Some(1024));
}

#[test]
fn allocating_past_the_memory_is_lambdas_out_of_memory() {
    let (_layout, mut run) = probe(&[json!({ "alloc_mb": 300 })]);
    run.memory_mb = 128;
    let report = run_function(&run).unwrap();
    assert_eq!(
        report.error_type.as_deref(),
        Some("Runtime.OutOfMemory"),
        "{report:?}"
    );
    let message = report.error_message.clone().unwrap_or_default();
    assert!(
        message.starts_with("RequestId: ")
            && message.ends_with("Error: Runtime exited with error: signal: killed"),
        "{message}"
    );
    assert_eq!(report.invocations[0].max_memory_used_mb, Some(128));
    let outcome = serde_json::to_value(&report.invocations[0].outcome).unwrap();
    assert_eq!(outcome["kind"], "runtime_exited");
    assert_eq!(outcome["out_of_memory"], true, "{outcome}");

    // The same allocation fits in 512 MB.
    let (_layout, mut run) = probe(&[json!({ "alloc_mb": 300 })]);
    run.memory_mb = 512;
    let report = run_function(&run).unwrap();
    assert_eq!(answer(&report, 0)["alloc"]["held_mb"], 300);
    let used = report.invocations[0].max_memory_used_mb.unwrap_or(0);
    assert!((300..512).contains(&used), "max memory used {used} MB");
}

#[test]
fn threads_stop_at_lambdas_process_cap() {
    let (_layout, run) = probe(&[json!({ "threads": 2000 })]);
    let report = run_function(&run).unwrap();
    let threads = &answer(&report, 0)["threads"];
    let started = threads["started"].as_u64().unwrap();
    assert!(
        (900..1024).contains(&started),
        "{started} threads started: {threads}"
    );
    assert_eq!(threads["error"], "EAGAIN", "{threads}");
}

/// Host pids whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

#[test]
fn a_setsid_grandchild_dies_with_the_environment() {
    // A length of sleep no other process has, to find this one by.
    let seconds = format!("{}.{}", 3600 + std::process::id() % 1000, 7);
    let event = json!({ "setsid": ["sleep", seconds], "sleep_ms": 1500 });
    let (_layout, run) = probe(&[event]);
    let running = std::thread::spawn(move || run_function(&run).unwrap());
    // Seen while the function runs: the check below can fail.
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes(&["sleep", &seconds]).is_empty() {
        assert!(Instant::now() < deadline, "the setsid child never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = running.join().unwrap();
    assert_eq!(answer(&report, 0)["setsid"], "ok");
    assert_eq!(processes(&["sleep", &seconds]), Vec::<u32>::new());
}

#[test]
fn the_environment_has_its_own_network_unless_host_network_is_asked_for() {
    // A server on the host's loopback: inside the environment's own network, the same address is
    // the environment's own loopback, where nothing listens.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = server.local_addr().unwrap().to_string();
    let event = json!({ "connect": [address] });
    let (_layout, run) = probe(std::slice::from_ref(&event));
    let report = run_function(&run).unwrap();
    assert_eq!(
        answer(&report, 0)["connect"][&address],
        "ECONNREFUSED",
        "{report:?}"
    );
    assert!(report.sandbox.network_namespace, "{:?}", report.sandbox);

    let (_layout, mut run) = probe(&[event]);
    run.namespace = NamespaceMode::HostNetwork;
    let report = run_function(&run).unwrap();
    assert_eq!(answer(&report, 0)["connect"][&address], "ok", "{report:?}");
    assert!(!report.sandbox.network_namespace, "{:?}", report.sandbox);
    assert!(
        report
            .sandbox
            .not_applied
            .iter()
            .any(|n| n.contains("--network host was given")),
        "{:?}",
        report.sandbox
    );
}
