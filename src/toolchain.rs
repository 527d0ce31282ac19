//! Which Rust target and linker serve each architecture, and making sure they are installed.
//!
//! The choice itself ([`choose`]) is pure; detecting zig and adding rustup targets are the only
//! side effects here and happen at the edges ([`detect_zig`], [`ensure_rust_target`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::cli::CompilerChoice;
use crate::error::{Error, Result};
use crate::target::{Arch, Libc, RustTarget};

/// What links the final binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linker {
    /// `zig cc` through cargo-zigbuild's wrappers; gnu targets get a pinned glibc.
    Zig,
    /// The toolchain's own `rust-lld`, for static musl binaries; needs only the rustup target.
    RustLld,
    /// Whatever cargo would use on its own: the host's `cc` for the host's gnu target.
    Host,
}

impl Linker {
    pub fn describe(self) -> &'static str {
        match self {
            Linker::Zig => "zig",
            Linker::RustLld => "rust-lld",
            Linker::Host => "host linker",
        }
    }
}

/// How to get zig: the first thing cargo-zigbuild finds (`python3 -m ziglang`, then `zig`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZigInstall {
    pub command: String,
}

/// Picks the Rust target and linker for one architecture.
///
/// `zig` says whether zig is installed; `host` is the build machine's architecture.
pub fn choose(
    arch: Arch,
    compiler: CompilerChoice,
    target_override: Option<RustTarget>,
    zig: bool,
    host: Option<Arch>,
) -> Result<(RustTarget, Linker)> {
    let missing_zig = || {
        Error::toolchain("--compiler zig was given but zig is not installed")
            .with_note("cargo-lambda-pack looks for the `ziglang` package (of its own virtual environment when pip installed it there, else of `python3`) and then `zig` on PATH")
            .with_help("install it with `pip install ziglang` (or put `zig` on PATH), or use --compiler auto to fall back to musl")
    };
    if let Some(target) = target_override {
        return match (compiler, target.libc) {
            (CompilerChoice::Zig, _) if !zig => Err(missing_zig()),
            (CompilerChoice::Zig, _) | (CompilerChoice::Auto, _) if zig => Ok((target, Linker::Zig)),
            (_, Libc::Musl) => Ok((target, Linker::RustLld)),
            (_, Libc::Gnu) if host == Some(target.arch) => Ok((target, Linker::Host)),
            (_, Libc::Gnu) => Err(Error::toolchain(format!(
                "cannot link `{target}` on this {} machine without zig",
                host.map_or("non-Lambda".to_string(), |h| h.to_string())
            ))
            .with_help(format!(
                "install zig with `pip install ziglang` and use --compiler auto or zig, or build `{}` instead",
                RustTarget::new(target.arch, Libc::Musl)
            ))),
        };
    }
    match compiler {
        CompilerChoice::Zig if !zig => Err(missing_zig()),
        CompilerChoice::Zig | CompilerChoice::Auto if zig => {
            Ok((RustTarget::new(arch, Libc::Gnu), Linker::Zig))
        }
        _ => Ok((RustTarget::new(arch, Libc::Musl), Linker::RustLld)),
    }
}

/// Finds zig the way cargo-zigbuild will when it writes its wrappers.
///
/// Must run before any other thread starts: when zig comes from PyPI (`ziglang`), it points
/// cargo-zigbuild at the zig binary inside the package through `CARGO_ZIGBUILD_ZIG_COMMAND`.
/// Otherwise every compiler call during setup, and every link, would start Python first
/// (`python3 -m ziglang`), which costs more than a no-op `cargo build` each time.
///
/// Where that binary is gets remembered in `cache` (a file in the target directory), so a later
/// run starts no Python at all while the binary is still there.
pub fn detect_zig(cache: &Path) -> Option<ZigInstall> {
    if std::env::var_os("CARGO_ZIGBUILD_ZIG_COMMAND").is_none()
        && let Some(zig) = remembered_zig(cache).or_else(|| {
            let found = ziglang_binary()?;
            remember_zig(cache, &found);
            Some(found)
        })
    {
        // SAFETY: called from the main thread before the build starts any other thread, so
        // nothing reads the environment concurrently.
        unsafe {
            std::env::set_var("CARGO_ZIGBUILD_ZIG_COMMAND", &zig);
            std::env::remove_var("CARGO_ZIGBUILD_ZIG_COMMAND_ARGS");
        }
    }
    let (program, args) = cargo_zigbuild::Zig::find_zig().ok()?;
    let mut command = program.display().to_string();
    for arg in args {
        command.push(' ');
        command.push_str(&arg);
    }
    Some(ZigInstall { command })
}

/// The zig binary an earlier run found, if it is still there.
fn remembered_zig(cache: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(cache).ok()?;
    let path = std::path::PathBuf::from(text.trim());
    path.is_file().then_some(path)
}

/// Best effort: a cache that cannot be written only costs the next run a Python start.
fn remember_zig(cache: &Path, zig: &Path) {
    crate::cache::remember(cache, zig.as_os_str().as_encoded_bytes());
}

/// The zig binary shipped inside the `ziglang` Python package, if that package is installed.
fn ziglang_binary() -> Option<std::path::PathBuf> {
    // The same interpreter cargo-zigbuild would use, unless this executable was installed by pip
    // into a virtual environment (`pip install cargo-lambda-pack`, pipx, uv tool): then the
    // `ziglang` it depends on is that environment's, whose python sits beside us.
    let python = std::env::var_os("CARGO_ZIGBUILD_PYTHON_PATH")
        .map(std::path::PathBuf::from)
        .or_else(sibling_python)
        .unwrap_or_else(|| "python3".into());
    let output = Command::new(python)
        .args([
            "-c",
            "import os, ziglang; print(os.path.join(os.path.dirname(ziglang.__file__), 'zig'))",
        ])
        .output()
        .ok()?;
    let path = std::path::PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    (output.status.success() && path.is_file()).then_some(path)
}

/// The python of the virtual environment this executable lives in (`<venv>/bin/python3`), if any.
fn sibling_python() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    // A virtual environment has `pyvenv.cfg` at its root; a python beside a binary elsewhere
    // (/usr/bin) is the system's, which `python3` on PATH already is.
    bin.parent()?.join("pyvenv.cfg").is_file().then_some(())?;
    ["python3", "python"]
        .into_iter()
        .map(|name| bin.join(name))
        .find(|python| python.is_file())
}

/// The Rust toolchain cargo builds with: where its sysroot is and which `rustc` it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustToolchain {
    pub sysroot: PathBuf,
    /// The compiler binary itself (not a rustup proxy): its identity keys
    /// the build's `ZigEnvCache`.
    pub rustc: PathBuf,
}

impl RustToolchain {
    /// Finds the toolchain once per run.
    ///
    /// When cargo runs us (`cargo lambda-pack`), `$CARGO` is the toolchain's own cargo, and its
    /// `rustc` sits next to it (rustup toolchains and distribution packages alike), so the sysroot
    /// is read off the file system. Otherwise, or when `$RUSTC` names another compiler, `rustc
    /// --print sysroot` is asked from the workspace, so `rust-toolchain.toml` applies.
    pub fn locate(cargo: &Path, workspace_root: &Path) -> Result<RustToolchain> {
        let rustc_override = std::env::var_os("RUSTC");
        if rustc_override.is_none()
            && let Some(toolchain) = RustToolchain::beside_cargo(cargo)
        {
            return Ok(toolchain);
        }
        let rustc = rustc_override.unwrap_or_else(|| "rustc".into());
        let output = Command::new(&rustc)
            .args(["--print", "sysroot"])
            .current_dir(workspace_root)
            .output()
            .map_err(|err| {
                Error::toolchain(format!("could not run `rustc --print sysroot`: {err}"))
                    .with_help("install Rust with rustup (https://rustup.rs)")
            })?;
        if !output.status.success() {
            return Err(Error::toolchain(format!(
                "`rustc --print sysroot` failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ))
            .with_help("check that `rustc --version` works in the workspace"));
        }
        let sysroot = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        let in_sysroot = sysroot.join("bin").join("rustc");
        let rustc = if Path::new(&rustc).is_absolute() || !in_sysroot.is_file() {
            PathBuf::from(rustc)
        } else {
            in_sysroot
        };
        Ok(RustToolchain { sysroot, rustc })
    }

    /// The toolchain that `cargo` belongs to, when it is a real toolchain directory
    /// (`<sysroot>/bin/cargo` beside `<sysroot>/bin/rustc` and `<sysroot>/lib/rustlib`).
    fn beside_cargo(cargo: &Path) -> Option<RustToolchain> {
        if !cargo.is_absolute() {
            return None;
        }
        let cargo = cargo.canonicalize().ok()?;
        let bin = cargo.parent()?;
        let rustc = bin.join("rustc");
        let sysroot = bin.parent()?;
        (rustc.is_file() && sysroot.join("lib/rustlib").is_dir()).then(|| RustToolchain {
            sysroot: sysroot.to_path_buf(),
            rustc,
        })
    }

    /// A target is installed when the sysroot holds its standard library.
    fn has_target(&self, triple: &str) -> bool {
        self.sysroot
            .join("lib/rustlib")
            .join(triple)
            .join("lib")
            .is_dir()
    }
}

/// Makes sure the standard library for `target` is installed, adding it with rustup unless the
/// network is off. Returns `true` when it had to install it (the caller prints a note).
pub fn ensure_rust_target(
    toolchain: &RustToolchain,
    workspace_root: &Path,
    target: RustTarget,
    network_forbidden: bool,
) -> Result<bool> {
    let triple = target.triple();
    if toolchain.has_target(&triple) {
        return Ok(false);
    }
    let add_command = format!("rustup target add {triple}");
    if network_forbidden {
        return Err(Error::toolchain(format!(
            "the Rust standard library for `{triple}` is not installed, and --offline/--frozen forbids downloading it"
        ))
        .with_help(format!("run `{add_command}` once with network access")));
    }
    let output = Command::new("rustup")
        .args(["target", "add", &triple])
        .current_dir(workspace_root)
        .output()
        .map_err(|err| {
            Error::toolchain(format!(
                "the Rust standard library for `{triple}` is not installed and rustup could not be run: {err}"
            ))
            .with_help(format!("install rustup, then run `{add_command}`"))
        })?;
    if !output.status.success() {
        return Err(Error::toolchain(format!(
            "`{add_command}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
        .with_help(format!(
            "run `{add_command}` yourself and look at its output"
        )));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Libc;

    const HOST: Option<Arch> = Some(Arch::X86_64);

    #[test]
    fn auto_prefers_zig_gnu_then_musl() {
        let (target, linker) = choose(Arch::Arm64, CompilerChoice::Auto, None, true, HOST).unwrap();
        assert_eq!(
            (target.triple().as_str(), linker),
            ("aarch64-unknown-linux-gnu", Linker::Zig)
        );
        let (target, linker) =
            choose(Arch::Arm64, CompilerChoice::Auto, None, false, HOST).unwrap();
        assert_eq!(
            (target.triple().as_str(), linker),
            ("aarch64-unknown-linux-musl", Linker::RustLld)
        );
    }

    #[test]
    fn zig_without_zig_says_how_to_install() {
        let err = choose(Arch::X86_64, CompilerChoice::Zig, None, false, HOST).unwrap_err();
        assert_eq!(err.exit_code(), 6);
        assert!(err.to_string().contains("pip install ziglang"), "{err}");
    }

    #[test]
    fn cargo_compiler_uses_musl_or_host_gnu() {
        let (target, linker) =
            choose(Arch::X86_64, CompilerChoice::Cargo, None, true, HOST).unwrap();
        assert_eq!((target.libc, linker), (Libc::Musl, Linker::RustLld));
        let gnu = RustTarget::new(Arch::X86_64, Libc::Gnu);
        assert_eq!(
            choose(Arch::X86_64, CompilerChoice::Cargo, Some(gnu), true, HOST).unwrap(),
            (gnu, Linker::Host)
        );
        let foreign = RustTarget::new(Arch::Arm64, Libc::Gnu);
        let err = choose(
            Arch::Arm64,
            CompilerChoice::Cargo,
            Some(foreign),
            true,
            HOST,
        )
        .unwrap_err();
        assert!(err.to_string().contains("without zig"), "{err}");
    }

    #[test]
    fn explicit_target_with_auto_uses_zig_when_present() {
        let musl = RustTarget::new(Arch::Arm64, Libc::Musl);
        assert_eq!(
            choose(Arch::Arm64, CompilerChoice::Auto, Some(musl), true, HOST).unwrap(),
            (musl, Linker::Zig)
        );
        assert_eq!(
            choose(Arch::Arm64, CompilerChoice::Auto, Some(musl), false, HOST).unwrap(),
            (musl, Linker::RustLld)
        );
    }
}
