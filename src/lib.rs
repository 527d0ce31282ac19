//! cargo-lambda-pack: cross-compile a Cargo workspace for AWS Lambda and package every crate
//! as the artifact its role needs.
//!
//! The pipeline, one stage per module, each handing a value to the next:
//! `cli` → `settings` → `workspace` → `toolchain` → `build` → `facts` → `plan` (pure) → `emit` →
//! `report`; `commands` runs them, one file per subcommand. Only `output` writes to the terminal.
//! ARCHITECTURE.md has the module map.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod auditable;
mod build;
mod cache;
mod cargo_lambda;
mod cli;
mod commands;
#[cfg(feature = "deploy")]
mod deploy;
mod emit;
mod error;
mod facts;
mod files;
#[doc(hidden)]
pub mod fuzzing;
mod image;
mod include;
mod inspect;
mod lambda_env;
mod lambda_names;
mod lambda_rules;
mod libs;
mod manifest;
mod manifest_paths;
mod metadata;
mod out_dir;
mod output;
mod plan;
mod regular_file;
mod report;
mod rustflags;
mod sbom;
mod settings;
mod shard;
mod suggest;
mod target;
mod toolchain;
mod units;
// verify runs the packaged Linux binaries in Linux namespaces: there is nothing of it to build
// elsewhere (commands::verify says so on other systems).
#[cfg(target_os = "linux")]
mod verify;
mod workspace;

// The few items the benches, fuzz targets and integration tests drive directly; everything else
// is crate-private, so the compiler reports what nothing uses.
pub use build::{BuildRequest, parse_messages};
pub use cli::parse_from;
pub use emit::zip::{ZipTimestamp, write_zip};
pub use facts::{BinaryInput, UnitFacts};
pub use include::IncludedFile;
pub use inspect::{
    BinaryFacts, ByteOrder, CheckTarget, ElfKind, Finding, InspectError, Linkage, Severity,
    check_binary, inspect_bytes, inspect_file,
};
pub use libs::{BundledLibrary, SearchPath, bundle};
pub use metadata::{IncludeSpec, PackageFormat, Role, parse_package, parse_workspace};
pub use plan::{BOOTSTRAP, Entry, MODE_EXECUTABLE, PlanInputs, plan};
pub use target::{Arch, GlibcVersion, Libc, Runtime, RustTarget};
pub use toolchain::Linker;
pub use units::Unit;
#[cfg(target_os = "linux")]
pub use verify::{
    Containment, FunctionRun, InvokeOutcome, NamespaceMode, RunReport, ShutdownStatus, VerifyError,
    extract_zip, run_function,
};
// verify's image reader (manifest, config, layer tars), for the `image_layers` fuzz target.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub use verify::{ImageRoot, unpack_image};

use cli::{CargoCli, Command, PackArgs};
use error::{Error, Result};
use output::Shell;
use settings::Options;

/// When cargo runs this executable as its rustc workspace wrapper (to link dependency data into
/// a binary), the exit code of that run; `None` for a normal run.
pub fn run_as_rustc_wrapper() -> Option<i32> {
    auditable::run_as_rustc_wrapper()
}

/// Runs a parsed command line and returns the process exit code: the one place an error becomes
/// one (docs/src/exit-codes.md has the table).
pub fn run(cli: CargoCli) -> i32 {
    let (shell, result) = match cli {
        CargoCli::Zig(zig) => (
            Shell::fallback(),
            zig.execute()
                .map_err(|err| Error::toolchain(format!("zig failed: {err:#}"))),
        ),
        CargoCli::LambdaPack(cli) => match cli.command {
            Some(Command::Plan(args)) => with_options(args, commands::plan::run),
            Some(Command::Verify(args)) => with_options(args.pack.clone(), |options, shell| {
                commands::verify::run(&args, options, shell)
            }),
            Some(Command::Deploy(args)) => with_options(args.pack.clone(), |options, shell| {
                commands::deploy::run(&args, options, shell)
            }),
            Some(Command::Merge(args)) => {
                let shell = Shell::new(
                    output::Verbosity::Normal,
                    args.color.unwrap_or(cli::ColorChoice::Auto),
                    commands::merge::shell_format(&args),
                );
                let result = commands::merge::run(&args, &shell);
                (shell, result)
            }
            Some(Command::Inspect(args)) => {
                let shell = commands::inspect::shell(&args);
                let result = commands::inspect::run(&args, &shell);
                (shell, result)
            }
            None => with_options(cli.pack, commands::pack::run),
        },
    };
    match result {
        Ok(()) => 0,
        Err(err) => {
            shell.error(&err);
            err.exit_code()
        }
    }
}

/// Settings from the flags and the environment, and the shell they ask for; a command that
/// cannot get that far reports through a plain shell.
fn with_options(
    args: PackArgs,
    command: impl FnOnce(&Options, &Shell) -> Result<()>,
) -> (Shell, Result<()>) {
    match Options::from_args(args, |key| std::env::var(key).ok()) {
        Ok(options) => {
            let shell = Shell::new(options.verbosity, options.color, options.message_format);
            let result = command(&options, &shell);
            (shell, result)
        }
        Err(err) => (Shell::fallback(), Err(err)),
    }
}
