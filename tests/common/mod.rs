//! Shared helpers for the integration tests: fixture copies, running the real binary, and reading
//! archives back with independent readers (Info-ZIP's `zipinfo` and Python's `zipfile`).
#![allow(dead_code)]

pub mod deploy;
pub mod fault_proxy;
pub mod moto;
pub mod registry;
pub mod surfaces;
pub mod verify_bins;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `fixtures/` directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// A private copy of `fixtures/<name>` in a temporary directory, so a test may change it freely.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn copy(name: &str) -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix(&format!("lambda-pack-{name}-"))
            .tempdir()
            .expect("temp dir");
        copy_tree(&fixtures_dir().join(name), dir.path());
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn out_dir(&self) -> PathBuf {
        self.path().join("target/lambda-pack")
    }

    /// Runs `cargo lambda-pack <args>` in the fixture, the way cargo runs a subcommand.
    pub fn pack(&self, args: &[&str]) -> Run {
        self.pack_with_env(args, &[])
    }

    pub fn pack_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = lambda_pack();
        command.args(args).current_dir(self.path());
        for (key, value) in env {
            command.env(key, value);
        }
        Run::new(command.output().expect("run cargo-lambda-pack"))
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path().join(relative)).unwrap()
    }
}

/// The binary under test, invoked as cargo invokes subcommands (`cargo-lambda-pack lambda-pack ...`),
/// with `$CARGO` pointing at the cargo running the tests.
pub fn lambda_pack() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-lambda-pack"));
    command.arg("lambda-pack");
    command.env(
        "CARGO",
        std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
    );
    command.env_remove("CARGO_TARGET_DIR");
    command.env_remove("SOURCE_DATE_EPOCH");
    command
}

pub struct Run {
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn new_from(output: Output) -> Run {
        Run::new(output)
    }

    fn new(output: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }

    pub fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub fn assert_success(&self) -> &Run {
        assert!(
            self.output.status.success(),
            "cargo lambda-pack failed with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.output.status,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        if relative.components().any(|c| c.as_os_str() == "target") {
            continue;
        }
        let dest = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// `zipinfo` output for an archive (Info-ZIP, independent of the `zip` crate that wrote it).
pub fn zipinfo(archive: &Path) -> String {
    let output = Command::new("zipinfo")
        .arg(archive)
        .output()
        .expect("zipinfo is installed by scripts/test.sh (Debian package `unzip`)");
    assert!(
        output.status.success(),
        "zipinfo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// One archive entry as Python's `zipfile` reads it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PyEntry {
    pub name: String,
    pub create_system: u8,
    pub mode: u32,
    pub date_time: Vec<u32>,
    pub compress_type: u32,
    pub extra_len: usize,
    pub file_size: u64,
    /// ELF `e_machine` when the entry is an ELF file.
    pub elf_machine: Option<u16>,
}

const PY_LIST: &str = r#"
import json, struct, sys, zipfile
entries = []
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None
    for i in z.infolist():
        data = z.read(i)
        machine = struct.unpack('<H', data[18:20])[0] if data[:4] == b'\x7fELF' else None
        entries.append(dict(name=i.filename, create_system=i.create_system, mode=i.external_attr >> 16,
                            date_time=list(i.date_time), compress_type=i.compress_type,
                            extra_len=len(i.extra), file_size=i.file_size, elf_machine=machine))
print(json.dumps(entries))
"#;

/// Every entry of an archive, read by Python's `zipfile` (which also checks each CRC).
pub fn python_entries(archive: &Path) -> Vec<PyEntry> {
    let output = Command::new("python3")
        .args(["-c", PY_LIST])
        .arg(archive)
        .output()
        .expect("python3 is installed by scripts/test.sh");
    assert!(
        output.status.success(),
        "python zipfile failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

pub fn python_entry(archive: &Path, name: &str) -> PyEntry {
    python_entries(archive)
        .into_iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("{name} not in {}", archive.display()))
}

/// Reads `manifest.json` as plain JSON (not through the crate's own types).
pub fn manifest(out_dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out_dir.join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).unwrap()
}

/// The names of the artifacts in `out_dir`'s manifest, in its order.
pub fn artifact_names(out_dir: &Path) -> Vec<String> {
    manifest(out_dir)["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn artifact<'a>(manifest: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no artifact {name} in {manifest:#}"))
}

/// Every file under `dir` with its length and mtime, to prove a command rewrote nothing.
/// (Directories are left out: their mtime moves whenever a temporary file comes and goes.)
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| {
            let meta = e.metadata().unwrap();
            (e.path().to_path_buf(), meta.len(), meta.modified().unwrap())
        })
        .collect();
    files.sort();
    files
}

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;

/// Reads lines from `stderr` until one contains `needle` and returns everything read, that line
/// last. Panics, naming `what`, if the stream ends first.
pub fn read_until_line(stderr: &mut impl std::io::BufRead, needle: &str, what: &str) -> String {
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "{what}:\n{seen}");
        seen.push_str(&line);
        if line.contains(needle) {
            return seen;
        }
    }
}

/// A cargo in `bin` that records each invocation (`ARGS <args>` and the build-related environment
/// it was started with) as a file of its own in `log` (a directory), named by its start time, then
/// runs the real cargo; for `CARGO=` in a test. One file each, because invocations may overlap.
pub fn logging_cargo(bin: &Path, log: &Path) -> PathBuf {
    std::fs::create_dir_all(bin).unwrap();
    let script = bin.join("cargo");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nmkdir -p '{log}'\n{{ echo \"ARGS $*\"; env | grep -E '^(CC_|CXX_|CARGO_TARGET_|CARGO_ZIGBUILD_|BINDGEN_|RANLIB_|CMAKE_)' | sort; }} > '{log}'/$(date +%s%N)-$$\nexec '{cargo}' \"$@\"\n",
            log = log.display(),
            cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

/// The `cargo build` invocations [`logging_cargo`] recorded, in the order they started, each with
/// its environment. Removes the records, so the next call sees only later invocations.
pub fn cargo_builds(log: &Path) -> Vec<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(log)
        .map(|dir| dir.map(|entry| entry.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut builds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        if let Some(invocation) = text.strip_prefix("ARGS ")
            && invocation.starts_with("build")
        {
            builds.push(invocation.to_string());
        }
    }
    builds
}

/// An API Gateway HTTP API (payload v2) request for `GET /pets`, as Lambda delivers it.
pub fn api_gateway_v2_event() -> serde_json::Value {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/pets",
        "rawQueryString": "",
        "headers": {"host": "example.execute-api.us-east-1.amazonaws.com"},
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "example",
            "domainName": "example.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "example",
            "http": {
                "method": "GET",
                "path": "/pets",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "verify-test"
            },
            "requestId": "abc",
            "routeKey": "$default",
            "stage": "$default",
            "time": "24/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000u64
        },
        "isBase64Encoded": false
    })
}

/// The lock-wait harness: holds the output directory's lock in `out_dir` (as a running pack
/// would), starts `command` and reads its stderr until its `Blocking` line, checks that it is
/// still waiting, releases the lock, and waits for it to succeed. Returns the `Blocking` line and
/// the stderr that followed.
pub fn run_while_locked(out_dir: &Path, mut command: Command, what: &str) -> (String, String) {
    use std::io::BufReader;
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(out_dir.join(".lambda-pack.lock"))
        .unwrap();
    lock.lock().unwrap();
    let mut child = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let seen = read_until_line(&mut stderr, "Blocking", what);
    let line = seen.lines().last().unwrap_or_default().to_string();
    assert!(
        child.try_wait().unwrap().is_none(),
        "still waiting while the lock is held"
    );
    lock.unlock().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{seen}{rest}");
    (line, rest)
}

/// Runs `command` (a `lambda_pack()` command, usually) and captures what it printed.
pub fn run(mut command: Command) -> Run {
    Run::new(command.output().expect("run cargo-lambda-pack"))
}

/// Copies `from` over `to`, rewriting only files whose bytes differ, so that their mtimes (and
/// cargo's fingerprints) hold from one test run to the next.
pub fn sync_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let relative = entry.path().strip_prefix(from).unwrap();
        if relative.components().any(|c| c.as_os_str() == "target") {
            continue;
        }
        let dest = to.join(relative);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else if std::fs::read(&dest).ok() != Some(std::fs::read(entry.path()).unwrap()) {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// The copy of `fixtures/verify-functions` that `tests/verify_cli.rs` and `tests/verify_real.rs`
/// both pack, brought up to date with the fixture: one workspace and one target directory, so
/// whichever test binary runs second finds everything built.
pub fn verify_functions_workspace() -> PathBuf {
    let workspace = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("verify-cli")
        .join("workspace");
    sync_tree(&fixtures_dir().join("verify-functions"), &workspace);
    workspace
}

/// Where `fixtures/verify-functions` is built: shared with `tests/verify_run.rs`, which builds the
/// same crates with the same (dev) profile, so the dependencies are compiled once for all three.
pub fn verify_functions_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-functions")
}

/// `cargo lambda-pack verify --out-dir <out> <args>`, run in `workspace`.
pub fn verify_with(workspace: &Path, out: &Path, args: &[&str]) -> Run {
    let mut command = lambda_pack();
    command
        .arg("verify")
        .arg("--out-dir")
        .arg(out)
        .args(args)
        .current_dir(workspace);
    run(command)
}

/// Every entry under `dir` (and `dir` itself): regular files by mode and SHA-256, symlinks by
/// their target, directories by mode; the walk never follows a link. Equal before and after a
/// command, it proves the command left the tree byte-identical.
pub fn tree_state(dir: &Path) -> std::collections::BTreeMap<PathBuf, String> {
    use sha2::Digest;
    use std::os::unix::fs::PermissionsExt;
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|entry| {
            let meta = entry.path().symlink_metadata().unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let state = if meta.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(entry.path()).unwrap().display())
            } else if meta.is_dir() {
                format!("dir {mode:o}")
            } else {
                let digest = sha2::Sha256::digest(std::fs::read(entry.path()).unwrap());
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                format!("file {mode:o} {hex}")
            };
            (entry.path().to_path_buf(), state)
        })
        .collect()
}

/// Runs `command` and measures it: wall-clock time and the CPU time (user and system) of the
/// process and everything it waited for (cargo, rustc), read from `wait4`'s resource usage, so a
/// bound on it holds on a loaded machine too. Output goes through files, never a full pipe.
pub fn run_measured(mut command: Command) -> (Run, std::time::Duration, std::time::Duration) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    command
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap());
    let started = std::time::Instant::now();
    // Reaped by `wait4` below, which also reports the child's resource usage.
    #[allow(clippy::zombie_processes)]
    let child = command.spawn().expect("run cargo-lambda-pack");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for the child it reaps.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not yet waited for; both pointers outlive the call.
    let reaped = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(
        reaped,
        child.id() as i32,
        "{}",
        std::io::Error::last_os_error()
    );
    let wall = started.elapsed();
    let seconds = |t: libc::timeval| {
        std::time::Duration::from_secs(t.tv_sec as u64)
            + std::time::Duration::from_micros(t.tv_usec as u64)
    };
    let cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(status),
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    };
    (Run::new(output), wall, cpu)
}

/// Runs `command` to its end, failing the test (and killing the process) if it takes longer than
/// `limit`: for inputs that must be refused at once rather than waited on.
pub fn run_within(mut command: Command, limit: std::time::Duration) -> Run {
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run cargo-lambda-pack");
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}; stderr so far:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Run::new(child.wait_with_output().unwrap())
}

/// The newest `GLIBC_x.y` symbol version an ELF file needs, as binutils' `objdump -T` lists its
/// dynamic symbols (an independent reading of what `inspect` reports), as `(x, y)`.
pub fn newest_glibc_by_objdump(path: &Path) -> Option<(u32, u32)> {
    let output = Command::new("objdump")
        .arg("-T")
        .arg(path)
        .output()
        .expect("objdump (binutils, installed with gcc)");
    assert!(output.status.success(), "objdump -T {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(|version| {
            let (major, minor) = version.split_once('.')?;
            Some((major.parse().ok()?, minor.split('.').next()?.parse().ok()?))
        })
        .max()
}

/// One entry of a ZIP, extracted by Info-ZIP's `unzip -p` into `dest`.
pub fn unzip_entry(archive: &Path, name: &str, dest: &Path) {
    let output = Command::new("unzip")
        .arg("-p")
        .arg(archive)
        .arg(name)
        .output()
        .expect("unzip (Info-ZIP)");
    assert!(
        output.status.success(),
        "unzip -p {} {name}",
        archive.display()
    );
    std::fs::write(dest, output.stdout).unwrap();
}
