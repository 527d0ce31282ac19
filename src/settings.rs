//! Flags ⊕ `[workspace.metadata.lambda-pack]` ⊕ `[package.metadata.lambda-pack]` (⊕ per-bin tables),
//! validated once. This module is the only home of defaults: later stages never guess.
//!
//! Precedence, strongest first: command-line flags (`--arch`, `--target`, `--runtime`), the bin's
//! table, the package's table, the workspace's table, then the built-in defaults (x86_64,
//! provided.al2023, role function, package auto).

use std::path::PathBuf;

use crate::cli::{self, ArchArg, CompilerChoice, MessageFormat, PackArgs, RuntimeArg};
use crate::error::{Error, Result};
use crate::metadata::{IncludeSpec, MetadataTable, PackageFormat, Role};
use crate::target::{Arch, Runtime, RustTarget};
use crate::workspace::{Package, Selection, Workspace};

pub const DEFAULT_ARCH: Arch = Arch::X86_64;
pub const DEFAULT_RUNTIME: Runtime = Runtime::ProvidedAl2023;
pub const DEFAULT_PROFILE: &str = "release";
/// The directory under the target directory that holds artifacts when `--out-dir` is not given.
pub const OUT_SUBDIR: &str = "lambda-pack";

/// How chatty the terminal is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
    VeryVerbose,
}

/// Global settings from the command line and environment, validated.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cargo to run: `$CARGO` when cargo started us, else `cargo` on PATH.
    pub cargo: PathBuf,
    pub manifest_path: Option<PathBuf>,
    pub selection: Selection,
    pub profile: String,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub jobs: Option<u32>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub target_dir: Option<PathBuf>,
    pub out_dir: Option<PathBuf>,
    pub arch: Option<Arch>,
    pub runtime: Option<Runtime>,
    pub target: Option<RustTarget>,
    pub compiler: CompilerChoice,
    pub message_format: MessageFormat,
    pub verbosity: Verbosity,
    pub color: cli::ColorChoice,
    /// Seconds since the epoch for every ZIP entry's timestamp (`SOURCE_DATE_EPOCH`).
    pub source_date_epoch: Option<u64>,
}

impl Options {
    /// Validates the flags; `env` looks up environment variables (injected for tests).
    pub fn from_args(args: PackArgs, env: impl Fn(&str) -> Option<String>) -> Result<Options> {
        let target = match &args.target {
            Some(triple) => Some(RustTarget::parse(triple).ok_or_else(|| {
                Error::config(format!("--target `{triple}` is not a target AWS Lambda can run"))
                    .with_note("Lambda runs Linux on x86_64 and arm64: x86_64-unknown-linux-gnu, x86_64-unknown-linux-musl, aarch64-unknown-linux-gnu, aarch64-unknown-linux-musl")
                    .with_help("pass one of those triples, or use --arch x86_64|arm64 and let the compiler choice pick the triple")
            })?),
            None => None,
        };
        let source_date_epoch = match env("SOURCE_DATE_EPOCH") {
            Some(value) if !value.trim().is_empty() => {
                Some(value.trim().parse::<u64>().map_err(|_| {
                    Error::config(format!(
                        "environment variable SOURCE_DATE_EPOCH=`{value}` is not a number of seconds"
                    ))
                    .with_help("set it to a Unix timestamp such as `$(git log -1 --format=%ct)`, or unset it")
                })?)
            }
            _ => None,
        };
        let verbosity = match (args.quiet, args.verbose) {
            (true, 0) => Verbosity::Quiet,
            (true, _) => {
                return Err(Error::config("cannot set both --verbose and --quiet")
                    .with_help("pass only one of them"));
            }
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        };
        let profile = args.profile.unwrap_or_else(|| DEFAULT_PROFILE.to_string());
        if profile == "dev" || profile == "test" {
            // Allowed, but these are debug builds: large and slow on Lambda. No error: people
            // sometimes want a quick debug deploy.
        }
        Ok(Options {
            cargo: env("CARGO")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("cargo")),
            manifest_path: args.manifest_path,
            selection: Selection {
                packages: args.packages,
                workspace: args.workspace,
                exclude: args.exclude,
                bins: args.bins,
            },
            profile,
            features: args.features,
            all_features: args.all_features,
            no_default_features: args.no_default_features,
            jobs: args.jobs,
            locked: args.locked,
            offline: args.offline,
            frozen: args.frozen,
            target_dir: args.target_dir,
            out_dir: args.out_dir,
            arch: args.arch.map(|a| match a {
                ArchArg::X86_64 => Arch::X86_64,
                ArchArg::Arm64 => Arch::Arm64,
            }),
            runtime: args.runtime.map(|r| match r {
                RuntimeArg::ProvidedAl2023 => Runtime::ProvidedAl2023,
                RuntimeArg::ProvidedAl2 => Runtime::ProvidedAl2,
            }),
            target,
            compiler: args.compiler,
            message_format: args.message_format.unwrap_or(MessageFormat::Human),
            verbosity,
            color: args.color.unwrap_or(cli::ColorChoice::Auto),
            source_date_epoch,
        })
    }

    /// No network: rustup may not download a target, cargo may not fetch.
    pub fn network_forbidden(&self) -> bool {
        self.offline || self.frozen
    }

    pub fn target_dir(&self, workspace: &Workspace) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| workspace.target_dir.clone())
    }

    pub fn out_dir(&self, workspace: &Workspace) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| self.target_dir(workspace).join(OUT_SUBDIR))
    }
}

/// One binary of one package, with its settings merged: what becomes one artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub package: String,
    pub bin: String,
    /// The artifact's name: the bin's name.
    pub name: String,
    pub role: Role,
    pub arch: Arch,
    pub runtime: Runtime,
    pub includes: Vec<IncludeSpec>,
    pub layers: Vec<String>,
    pub format: PackageFormat,
    /// Which table set the architecture, for `plan` to explain.
    pub arch_source: &'static str,
}

/// Merges settings for every selected bin. Packages without bins are skipped; `--bin` narrows
/// the bins and must match at least one.
pub fn resolve_units(
    workspace: &Workspace,
    packages: &[&Package],
    options: &Options,
) -> Result<Vec<Unit>> {
    for name in &options.selection.bins {
        if !packages.iter().any(|p| p.bins.contains(name)) {
            let known: Vec<&str> = packages
                .iter()
                .flat_map(|p| p.bins.iter().map(String::as_str))
                .collect();
            return Err(Error::config(format!(
                "no binary target named `{name}` in the selected packages"
            ))
            .with_note(format!(
                "available binaries: {}",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .with_help("pass one of the available binaries to --bin"));
        }
    }
    let mut units = Vec::new();
    for package in packages {
        for bin_name in package.metadata.bins.keys() {
            if !package.bins.contains(bin_name) {
                return Err(Error::config(format!(
                    "[package.metadata.lambda-pack.bin.{bin_name}] in `{}` names no binary of package `{}`",
                    package.manifest_path.display(),
                    package.name
                ))
                .with_note(format!("binaries of `{}`: {}", package.name, package.bins.join(", ")))
                .with_help("rename the table after one of the binaries, or remove it"));
            }
        }
        for bin in &package.bins {
            if !options.selection.bins.is_empty() && !options.selection.bins.contains(bin) {
                continue;
            }
            units.push(resolve_unit(workspace, package, bin, options));
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for unit in &units {
        if let Some(first) = seen.insert((unit.name.clone(), unit.arch), &unit.package) {
            return Err(Error::config(format!(
                "two artifacts would be named `{}` for {}: the bins of packages `{first}` and `{}`",
                unit.name, unit.arch, unit.package
            ))
            .with_help("rename one of the bins ([[bin]] name = \"...\" in its Cargo.toml) so each artifact has its own name"));
        }
    }
    Ok(units)
}

fn resolve_unit(workspace: &Workspace, package: &Package, bin: &str, options: &Options) -> Unit {
    let empty = MetadataTable::default();
    let bin_table = package.metadata.bins.get(bin).unwrap_or(&empty);
    let tables: [(&MetadataTable, &'static str); 3] = [
        (bin_table, "bin table"),
        (&package.metadata.table, "package metadata"),
        (&workspace.defaults, "workspace metadata"),
    ];
    // The first table (strongest) that sets a key wins.
    fn pick<'a, T: Clone>(
        tables: &[(&'a MetadataTable, &'static str)],
        get: impl Fn(&'a MetadataTable) -> Option<T>,
    ) -> Option<(T, &'static str)> {
        tables
            .iter()
            .find_map(|(table, source)| get(table).map(|v| (v, *source)))
    }

    let (arch, arch_source) = if let Some(target) = options.target {
        (target.arch, "--target")
    } else if let Some(arch) = options.arch {
        (arch, "--arch")
    } else {
        pick(&tables, |t| t.arch).unwrap_or((DEFAULT_ARCH, "default"))
    };
    let runtime = options
        .runtime
        .or_else(|| pick(&tables, |t| t.runtime).map(|(v, _)| v))
        .unwrap_or(DEFAULT_RUNTIME);
    let includes = pick(&tables, |t| t.include.clone())
        .map(|(v, _)| v)
        .unwrap_or_default();
    let layers = pick(&tables, |t| t.layers.clone())
        .map(|(v, _)| v)
        .unwrap_or_default();
    let role = pick(&tables, |t| t.role)
        .map(|(v, _)| v)
        .unwrap_or(Role::Function);
    let format = pick(&tables, |t| t.package)
        .map(|(v, _)| v)
        .unwrap_or_default();
    Unit {
        package: package.name.clone(),
        bin: bin.to_string(),
        name: bin.to_string(),
        role,
        arch,
        runtime,
        includes,
        layers,
        format,
        arch_source,
    }
}
