//! Flags ⊕ `[workspace.metadata.lambda-pack]` ⊕ `[package.metadata.lambda-pack]` (⊕ per-bin tables),
//! validated once. This module is the only home of defaults: later stages never guess.
//!
//! Precedence, strongest first: command-line flags (`--arch`, `--target`, `--runtime`), the bin's
//! table, the package's table, the workspace's table, then the built-in defaults (x86_64,
//! provided.al2023, role function, package auto).

use std::path::{Path, PathBuf};

use crate::cli::{self, ArchArg, CompilerChoice, MessageFormat, PackArgs, RuntimeArg};
use crate::error::{Error, Result};
use crate::output::Verbosity;
use crate::target::{Arch, Runtime, RustTarget};

pub const DEFAULT_ARCH: Arch = Arch::X86_64;
pub const DEFAULT_RUNTIME: Runtime = Runtime::ProvidedAl2023;
pub const DEFAULT_PROFILE: &str = "release";
/// The directory under the target directory that holds artifacts when `--out-dir` is not given.
pub const OUT_SUBDIR: &str = "lambda-pack";

/// Which packages and bins the user asked for, in cargo's terms.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub packages: Vec<String>,
    pub workspace: bool,
    pub exclude: Vec<String>,
    pub bins: Vec<String>,
    /// `--example NAME`: examples to pack as functions.
    pub examples: Vec<String>,
    /// `--examples`: every example of the selected packages.
    pub all_examples: bool,
}

impl Selection {
    /// Whether a target selection flag narrows the packages' bins, as in cargo: with `--bin`,
    /// `--example` or `--examples`, only the named targets are built.
    pub fn names_targets(&self) -> bool {
        !self.bins.is_empty() || !self.examples.is_empty() || self.all_examples
    }

    /// Whether an example of a selected package is to be packed.
    pub fn wants_example(&self, name: &str) -> bool {
        self.all_examples || self.examples.iter().any(|e| e == name)
    }
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
    /// Finding codes downgraded to warnings for every crate (`--allow`).
    pub allow: Vec<String>,
    /// `--push`: publish images to their `image_repository`.
    pub push: bool,
    /// `--shard K/N`: pack only this shard of the selected functions.
    pub shard: Option<crate::shard::Shard>,
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
        // `dev` and `test` are allowed although they are debug builds, large and slow on
        // Lambda: people sometimes want a quick debug deploy.
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
                examples: args.examples,
                all_examples: args.all_examples,
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
            arch: args.arch.map(arch_from_arg),
            runtime: args.runtime.map(runtime_from_arg),
            target,
            compiler: args.compiler,
            message_format: args.message_format.unwrap_or(MessageFormat::Human),
            verbosity,
            color: args.color.unwrap_or(cli::ColorChoice::Auto),
            source_date_epoch,
            allow: args.allow,
            push: args.push,
            shard: args
                .shard
                .as_deref()
                .map(crate::shard::Shard::parse)
                .transpose()?,
        })
    }

    /// No network: rustup may not download a target, cargo may not fetch.
    pub fn network_forbidden(&self) -> bool {
        self.offline || self.frozen
    }

    /// `--target-dir`, else cargo's (the workspace's `target_dir`, from `cargo metadata`).
    pub fn target_dir(&self, cargo_target_dir: &Path) -> PathBuf {
        self.target_dir
            .clone()
            .unwrap_or_else(|| cargo_target_dir.to_path_buf())
    }

    /// `--out-dir`, else `lambda-pack/` in the target directory.
    pub fn out_dir(&self, cargo_target_dir: &Path) -> PathBuf {
        self.out_dir
            .clone()
            .unwrap_or_else(|| self.target_dir(cargo_target_dir).join(OUT_SUBDIR))
    }
}

pub fn arch_from_arg(arg: ArchArg) -> Arch {
    match arg {
        ArchArg::X86_64 => Arch::X86_64,
        ArchArg::Arm64 => Arch::Arm64,
    }
}

pub fn runtime_from_arg(arg: RuntimeArg) -> Runtime {
    match arg {
        RuntimeArg::ProvidedAl2023 => Runtime::ProvidedAl2023,
        RuntimeArg::ProvidedAl2 => Runtime::ProvidedAl2,
    }
}
