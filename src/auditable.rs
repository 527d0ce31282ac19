//! Dependency data in every packed binary, as cargo-auditable embeds it: the zlib-compressed
//! `auditable_serde::VersionInfo` JSON in a `.dep-v0` section, behind an `AUDITABLE_VERSION_INFO`
//! symbol, which rust-audit-info, Trivy, Grype and Syft read.
//!
//! cargo-auditable is a binary, not a library, so the mechanism is ours: before a build the
//! pack writes each unit's JSON under `lambda-pack-cache/auditable/<triple>/` (from the graph
//! the SBOM uses), and cargo runs this executable as its `RUSTC_WRAPPER` (recognised by
//! [`DIR_VAR`]; see `build::embed_dependency_lists` for why not the workspace wrapper). For a bin or cdylib with a JSON file, the wrapper writes an ELF object with
//! the section next to rustc's outputs and has rustc link it; everything else goes to rustc
//! unchanged.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use object::write::{Object, StandardSegment, Symbol, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, SectionFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope,
};

use crate::error::Error;
use crate::output::Shell;

/// Set on cargo's command: the directory of this target's JSON files. Its presence (with an
/// argv that is not one of our subcommands) makes this executable act as the rustc wrapper.
pub const DIR_VAR: &str = "LAMBDA_PACK_AUDITABLE_DIR";
/// The wrapper the user set, which ours runs rustc through: their `RUSTC_WRAPPER` (sccache) when
/// one is set (ours then takes its place), else their `RUSTC_WORKSPACE_WRAPPER`.
pub const USER_WRAPPER_VAR: &str = "LAMBDA_PACK_USER_WORKSPACE_WRAPPER";
/// The symbol readers do not need but the linker does: `-u` keeps the section from being
/// garbage-collected.
const SYMBOL: &str = "AUDITABLE_VERSION_INFO";
/// cargo-auditable's level: the output depends only on the JSON, the level and the deflate
/// implementation (miniz_oxide, pinned by Cargo.lock).
const LEVEL: u32 = 7;

/// The JSON file of a bin (`<package>/<bin>.json`) or of a package's cdylib
/// (`<package>/lib.cdylib.json`: no bin name has a dot). The package's directory is what cargo
/// is told the binary depends on (see [`track`]).
pub fn data_file(dir: &Path, package: &str, bin: Option<&str>) -> PathBuf {
    match bin {
        Some(bin) => dir.join(package).join(format!("{bin}.json")),
        None => dir.join(package).join("lib.cdylib.json"),
    }
}

/// When cargo runs this executable as its rustc wrapper: runs rustc (with the data
/// linked in where there is some) and returns its exit code. `None`: a normal run.
pub fn run_as_rustc_wrapper() -> Option<i32> {
    let dir = std::env::var_os(DIR_VAR)?;
    let mut argv = std::env::args_os().skip(1);
    let rustc = argv.next()?;
    // The zig linker wrappers call back as `cargo-lambda-pack zig cc`, and cargo runs us as
    // `cargo-lambda-pack lambda-pack`; both inherit cargo's environment.
    if rustc == "zig" || rustc == "lambda-pack" {
        return None;
    }
    let mut args: Vec<OsString> = argv.collect();
    // Run without the rustc path (a RUSTC_WRAPPER probing us as if we were rustc, `-vV`).
    let rustc = if rustc.to_string_lossy().starts_with('-') {
        args.insert(0, rustc);
        std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into())
    } else {
        rustc
    };
    let mut command = match std::env::var_os(USER_WRAPPER_VAR).filter(|w| !w.is_empty()) {
        Some(user) => {
            let mut command = Command::new(user);
            command.arg(&rustc);
            command
        }
        None => Command::new(&rustc),
    };
    command
        .args(&args)
        .env_remove(DIR_VAR)
        .env_remove(USER_WRAPPER_VAR);
    match link_args(Path::new(&dir), &args) {
        Ok(extra) => {
            command.args(extra);
        }
        Err(error) => {
            Shell::fallback().error(&error);
            return Some(101);
        }
    }
    Some(match command.status() {
        Ok(status) if status.success() => match track(Path::new(&dir), &args) {
            Ok(()) => 0,
            Err(error) => {
                Shell::fallback().error(&error);
                101
            }
        },
        Ok(status) => status.code().unwrap_or(101),
        Err(err) => {
            Shell::fallback().error(&Error::toolchain(format!(
                "could not run `{}`: {err}",
                Path::new(&rustc).display()
            )));
            101
        }
    })
}

/// The extra rustc arguments that link the data into this compilation: none unless it builds a
/// bin or cdylib that has a JSON file.
fn link_args(dir: &Path, args: &[OsString]) -> Result<Vec<OsString>, Error> {
    let value = |flag: &str| rustc_arg(args, flag);
    let crate_types = crate_types(args);
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let file = if crate_types.iter().any(|t| t == "bin") {
        let Ok(bin) = std::env::var("CARGO_BIN_NAME") else {
            return Ok(Vec::new());
        };
        data_file(dir, &package, Some(&bin))
    } else if crate_types.iter().any(|t| t == "cdylib") {
        data_file(dir, &package, None)
    } else {
        return Ok(Vec::new());
    };
    let Ok(json) = std::fs::read(&file) else {
        return Ok(Vec::new());
    };
    let (Some(triple), Some(out_dir), Some(crate_name)) =
        (value("--target"), value("--out-dir"), value("--crate-name"))
    else {
        return Ok(Vec::new());
    };
    let Some(architecture) = architecture(&triple) else {
        return Ok(Vec::new());
    };
    let extra = codegen(args, "extra-filename").unwrap_or_default();
    let kind = if crate_types.iter().any(|t| t == "bin") {
        "bin"
    } else {
        "cdylib"
    };
    let object_path = Path::new(&out_dir).join(format!("{crate_name}{extra}-{kind}.dep-v0.o"));
    let bytes = object_file(&compress(&json), architecture)?;
    crate::files::write_atomic(&object_path, &bytes)?;
    let mut link = OsString::from("-Clink-arg=");
    link.push(&object_path);
    let mut extra_args = vec![link];
    // A linker that is lld itself (musl without zig) takes `-u SYMBOL`; a C compiler driver
    // (cc, zig's wrapper) takes it through `-Wl,`. zig refuses the GNU `--undefined=` spelling.
    if codegen(args, "linker").is_some_and(|linker| bare_linker(&linker)) {
        extra_args.push("-Clink-arg=-u".into());
        extra_args.push(format!("-Clink-arg={SYMBOL}").into());
    } else {
        extra_args.push(format!("-Clink-arg=-Wl,-u,{SYMBOL}").into());
    }
    Ok(extra_args)
}

/// Adds the package's data directory to the dependencies in rustc's dep-info file, which cargo
/// reads to decide when to compile again. Writing or removing a JSON file there (always a new
/// directory entry: files are replaced by rename) changes the directory's mtime, so turning
/// `auditable` on or off, or a changed list, rebuilds the package's binaries and nothing else.
fn track(dir: &Path, args: &[OsString]) -> Result<(), Error> {
    let crate_types = crate_types(args);
    if !crate_types.iter().any(|t| t == "bin" || t == "cdylib") {
        return Ok(());
    }
    let package_dir = dir.join(std::env::var("CARGO_PKG_NAME").unwrap_or_default());
    let (Some(out_dir), Some(crate_name)) = (
        rustc_arg(args, "--out-dir"),
        rustc_arg(args, "--crate-name"),
    ) else {
        return Ok(());
    };
    if !package_dir.is_dir() {
        return Ok(());
    }
    let extra = codegen(args, "extra-filename").unwrap_or_default();
    let dep_info = Path::new(&out_dir).join(format!("{crate_name}{extra}.d"));
    let Ok(text) = std::fs::read_to_string(&dep_info) else {
        return Ok(());
    };
    let tracked = package_dir.to_string_lossy().replace(' ', "\\ ");
    // cargo reads the dependencies of the first `target: deps` line only.
    let mut done = false;
    let mut out = String::with_capacity(text.len() + tracked.len() * 2);
    for line in text.lines() {
        out.push_str(line);
        if !done && !line.starts_with('#') && line.contains(": ") {
            out.push(' ');
            out.push_str(&tracked);
            done = true;
        }
        out.push('\n');
    }
    crate::files::write_atomic(&dep_info, out.as_bytes())
}

fn crate_types(args: &[OsString]) -> Vec<String> {
    values(args, "--crate-type")
        .iter()
        .flat_map(|v| v.split(',').map(String::from).collect::<Vec<_>>())
        .collect()
}

/// zlib at cargo-auditable's level.
pub fn compress(json: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(LEVEL));
    encoder
        .write_all(json)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// A relocatable ELF object holding `data` in a `.dep-v0` section (not loaded at run time:
/// no flags), with [`SYMBOL`] at its start.
pub fn object_file(data: &[u8], architecture: Architecture) -> Result<Vec<u8>, Error> {
    let mut file = Object::new(BinaryFormat::Elf, architecture, Endianness::Little);
    let section = file.add_section(
        file.segment_name(StandardSegment::Data).to_vec(),
        b".dep-v0".to_vec(),
        SectionKind::ReadOnlyData,
    );
    file.section_mut(section).flags = SectionFlags::Elf {
        sh_type: object::elf::SHT_PROGBITS,
        sh_flags: object::elf::SectionFlags(0),
    };
    let offset = file.append_section_data(section, data, 1);
    file.add_symbol(Symbol {
        name: SYMBOL.as_bytes().to_vec(),
        value: offset,
        size: data.len() as u64,
        kind: SymbolKind::Data,
        scope: SymbolScope::Dynamic,
        weak: false,
        section: SymbolSection::Section(section),
        flags: SymbolFlags::None,
    });
    file.write()
        .map_err(|e| Error::internal(format!("cannot write the .dep-v0 object: {e}")))
}

/// Lambda's architectures; other targets get no data.
fn architecture(triple: &str) -> Option<Architecture> {
    match triple.split('-').next()? {
        "x86_64" => Some(Architecture::X86_64),
        "aarch64" => Some(Architecture::Aarch64),
        _ => None,
    }
}

fn bare_linker(linker: &str) -> bool {
    let name = Path::new(linker)
        .file_name()
        .and_then(OsStr::to_str)
        .unwrap_or(linker);
    matches!(
        name,
        "rust-lld" | "ld.lld" | "lld" | "ld" | "ld.bfd" | "ld.gold"
    )
}

/// The values of `flag` in rustc's argv, as `flag value` or `flag=value`.
fn values(args: &[OsString], flag: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut iter = args.iter().map(|a| a.to_string_lossy());
    while let Some(arg) = iter.next() {
        if arg == flag {
            found.extend(iter.next().map(|v| v.to_string()));
        } else if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found.push(value.to_string());
        }
    }
    found
}

fn rustc_arg(args: &[OsString], flag: &str) -> Option<String> {
    values(args, flag).pop()
}

/// The last `-C name=value` (or `-Cname=value`, `--codegen name=value`) in rustc's argv.
fn codegen(args: &[OsString], name: &str) -> Option<String> {
    let mut options: Vec<String> = values(args, "-C");
    options.extend(values(args, "--codegen"));
    options.extend(
        args.iter()
            .filter_map(|a| a.to_str()?.strip_prefix("-C").map(String::from))
            .filter(|a| !a.is_empty()),
    );
    options
        .iter()
        .rev()
        .find_map(|o| o.strip_prefix(name)?.strip_prefix('=').map(String::from))
}

#[cfg(test)]
mod tests;
