//! cargo-lambda-pack: cross-compile a Cargo workspace for AWS Lambda and package every crate
//! as the artifact its role needs.
//!
//! The pipeline, one stage per module, each handing a value to the next:
//! [`cli`] → [`settings`] → [`workspace`] → [`toolchain`] → [`build`] → facts ([`include`]) →
//! [`plan`] (pure) → [`emit`] → [`report`]. Only [`output`] writes to the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
pub mod cargo_lambda;
pub mod cli;
pub mod emit;
pub mod error;
pub mod facts;
pub mod image;
pub mod include;
pub mod inspect;
pub mod lambda_env;
pub mod lambda_names;
pub mod libs;
pub mod manifest_paths;
pub mod metadata;
pub mod output;
pub mod pack;
pub mod plan;
pub mod report;
pub mod settings;
pub mod target;
pub mod toolchain;
pub mod units;
pub mod verify;
pub mod workspace;

use cli::{CargoCli, Command, MessageFormat, PackArgs};
use error::{Error, ErrorKind, Result};
use output::Shell;
use pack::{Mode, pack};

use settings::Options;
use target::Arch;

/// Runs a parsed command line and returns the process exit code.
pub fn run(cli: CargoCli) -> i32 {
    match cli {
        CargoCli::Zig(zig) => match zig.execute() {
            Ok(()) => 0,
            Err(err) => {
                Shell::fallback().error(&Error::toolchain(format!("zig failed: {err:#}")));
                ErrorKind::ToolchainMissing.exit_code()
            }
        },
        CargoCli::LambdaPack(cli) => {
            let cli = *cli;
            match cli.command {
                Some(Command::Plan(args)) => run_pack(args, Mode::Plan),
                Some(Command::Verify(args)) => run_verify(args),
                Some(Command::Inspect(args)) => run_inspect(args),
                None => run_pack(cli.pack, Mode::Pack),
            }
        }
    }
}

fn run_pack(args: PackArgs, mode: Mode) -> i32 {
    let options = match Options::from_args(args, |key| std::env::var(key).ok()) {
        Ok(options) => options,
        Err(err) => {
            Shell::fallback().error(&err);
            return err.exit_code();
        }
    };
    let shell = Shell::new(options.verbosity, options.color, options.message_format);
    match pack(&options, &shell, mode) {
        Ok(()) => 0,
        Err(err) => {
            shell.error(&err);
            err.exit_code()
        }
    }
}

/// `cargo lambda-pack verify`: optionally pack, then run the manifest's functions.
fn run_verify(args: cli::VerifyArgs) -> i32 {
    let options = match Options::from_args(args.pack.clone(), |key| std::env::var(key).ok()) {
        Ok(options) => options,
        Err(err) => {
            Shell::fallback().error(&err);
            return err.exit_code();
        }
    };
    let shell = Shell::new(options.verbosity, options.color, options.message_format);
    let result = (|| {
        if args.build {
            // The pack's manifest stays in its file: with --message-format json, stdout carries
            // verify's one document and nothing else.
            let pack_options = Options {
                message_format: MessageFormat::Human,
                ..options.clone()
            };
            pack(&pack_options, &shell, Mode::Pack)?;
        }
        verify::command::run(&args, &options, &shell)
    })();
    match result {
        Ok(()) => 0,
        Err(err) => {
            shell.error(&err);
            err.exit_code()
        }
    }
}

/// `cargo lambda-pack inspect`: facts (and findings) for any binary.
fn run_inspect(args: cli::InspectArgs) -> i32 {
    let format = args.message_format.unwrap_or(MessageFormat::Human);
    let shell = Shell::new(
        settings::Verbosity::Normal,
        args.color.unwrap_or(cli::ColorChoice::Auto),
        format,
    );
    match inspect_files(&args, &shell, format) {
        Ok(()) => 0,
        Err(err) => {
            shell.error(&err);
            err.exit_code()
        }
    }
}

fn inspect_files(args: &cli::InspectArgs, shell: &Shell, format: MessageFormat) -> Result<()> {
    let runtime = args.runtime.map(settings::runtime_from_arg);
    let mut reports = Vec::new();
    for file in &args.files {
        let facts = inspect::inspect_file(file).map_err(|err| match err {
            // A file that cannot be read is a wrong argument, not a failed check.
            inspect::InspectError::Read { path, source } => Error::config(format!(
                "could not read `{}`: {source} ({:?})",
                path.display(),
                source.kind()
            ))
            .with_help("check the path: inspect reads ELF executables and shared libraries, such as target/<triple>/release/<bin>"),
            err => Error::new(ErrorKind::BinaryCheck, err.to_string()).with_help(
                "inspect reads ELF executables and shared libraries, such as a Lambda bootstrap",
            ),
        })?;
        let findings = match runtime {
            Some(runtime) => {
                let arch = args
                    .arch
                    .map(settings::arch_from_arg)
                    .or(facts.arch)
                    .unwrap_or(Arch::X86_64);
                let libc = facts.libc.unwrap_or(target::Libc::Gnu);
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let role_path = if name.contains(".so") {
                    format!("/opt/lib/{name}")
                } else {
                    "/var/task/bootstrap".to_string()
                };
                Some(inspect::check_binary(
                    &facts,
                    inspect::CheckTarget {
                        arch,
                        runtime,
                        libc,
                        role_path,
                        host_linker: false,
                    },
                ))
            }
            None => None,
        };
        reports.push(report::InspectReport {
            path: file.display().to_string(),
            facts,
            runtime,
            findings,
        });
    }
    if format == MessageFormat::Json {
        let json = serde_json::to_string_pretty(&reports).expect("facts always serialize");
        shell.print_data(&json).map_err(stdout_error)?;
    } else {
        for entry in &reports {
            shell
                .print_data(&report::inspect_listing(entry))
                .map_err(stdout_error)?;
        }
    }
    let errors = reports
        .iter()
        .flat_map(|r| r.findings.iter().flatten())
        .filter(|f| f.severity == inspect::Severity::Error)
        .count();
    if errors > 0 {
        return Err(Error::new(
            ErrorKind::BinaryCheck,
            format!("{errors} finding(s) would stop these binaries on Lambda"),
        )
        .with_help("each finding above says how to fix it"));
    }
    Ok(())
}

pub(crate) fn stdout_error(err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::WriteFailed,
        format!("could not write to stdout: {err}"),
    )
    .with_help("check the pipe or file stdout is redirected to")
}
