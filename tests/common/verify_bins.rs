//! The `fixtures/verify-functions` binaries built for musl (x86_64, and arm64 for `tiny-fn`),
//! and a temporary `/var/task` + `/opt` pair to run them from with `run_function`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cargo_lambda_pack::{Arch, FunctionRun};
use serde_json::Value;
use tempfile::TempDir;

/// The fixture binaries, built once per test binary.
pub struct Bins {
    pub x86_64: PathBuf,
    pub aarch64: PathBuf,
}

pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/verify-functions");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-functions");
        let build = |target: &str, packages: &[&str]| {
            let cargo = option_env!("CARGO").unwrap_or("cargo");
            let mut command = Command::new(cargo);
            command
                .current_dir(&workspace)
                .args(["build", "--locked", "--target", target, "--target-dir"])
                .arg(&target_dir)
                .env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
                .env("CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER", "rust-lld")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET");
            for package in packages {
                command.args(["-p", package]);
            }
            let output = command.output().expect("run cargo");
            assert!(
                output.status.success(),
                "building the fixtures for {target} failed (is the target installed? `rustup \
                 target add {target}`):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            target_dir.join(target).join("debug")
        };
        Bins {
            x86_64: build("x86_64-unknown-linux-musl", &[]),
            aarch64: build("aarch64-unknown-linux-musl", &["tiny-fn"]),
        }
    })
}

/// A temporary `/var/task` + `/opt` pair.
pub struct Layout {
    pub dir: TempDir,
    pub task: PathBuf,
    pub opt: PathBuf,
}

impl Layout {
    pub fn new() -> Layout {
        let dir = tempfile::tempdir().unwrap();
        let (task, opt) = (dir.path().join("task"), dir.path().join("opt"));
        fs::create_dir_all(&task).unwrap();
        fs::create_dir_all(&opt).unwrap();
        Layout { dir, task, opt }
    }

    /// Copies `bin` to `dest` (relative to `root`) with mode 0755.
    pub fn install(root: &Path, dest: &str, bin: &Path) {
        let target = root.join(dest);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        fs::copy(bin, &target).unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn run(&self, name: &str, events: &[Value]) -> FunctionRun {
        let mut run = FunctionRun::new(name, Arch::X86_64, &self.task, &self.opt);
        run.events = events.iter().map(|e| e.to_string().into_bytes()).collect();
        run.invoke_timeout = Duration::from_secs(20);
        run
    }
}

pub fn x86(bin: &str) -> PathBuf {
    bins().x86_64.join(bin)
}
