//! `cargo lambda-pack inspect`: facts (and, with `--runtime`, findings) for any ELF binary.

use crate::cli::{ColorChoice, InspectArgs, MessageFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::inspect;
use crate::output::Verbosity;
use crate::output::{Shell, stdout_error};
use crate::target::Arch;

/// The shell inspect writes to: it reads no workspace, so only its own flags shape the output.
pub fn shell(args: &InspectArgs) -> Shell {
    Shell::new(
        Verbosity::Normal,
        args.color.unwrap_or(ColorChoice::Auto),
        args.message_format.unwrap_or(MessageFormat::Human),
    )
}

pub fn run(args: &InspectArgs, shell: &Shell) -> Result<()> {
    inspect_files(
        args,
        shell,
        args.message_format.unwrap_or(MessageFormat::Human),
    )
}

fn inspect_files(args: &InspectArgs, shell: &Shell, format: MessageFormat) -> Result<()> {
    let runtime = args.runtime.map(crate::settings::runtime_from_arg);
    let mut reports = Vec::new();
    for file in &args.files {
        let (facts, bytes) = inspect::inspect_mapped(file).map_err(|err| match err {
            // A file that cannot be read is a wrong argument, not a failed check.
            inspect::InspectError::Read { path, source } => Error::config(format!(
                "could not read `{}`: {source} ({:?})",
                path.display(),
                source.kind()
            ))
            .with_help("check the path: inspect reads ELF executables and shared libraries, such as target/<triple>/release/<bin>"),
            err @ (inspect::InspectError::NotRegular { .. } | inspect::InspectError::TooLarge { .. }) => {
                Error::config(err.to_string()).with_help(
                    "inspect reads regular files only (a pipe could block it forever): pass the binary's path, such as target/<triple>/release/<bin>",
                )
            }
            err => Error::new(ErrorKind::BinaryCheck, err.to_string()).with_help(
                "inspect reads ELF executables and shared libraries, such as a Lambda bootstrap",
            ),
        })?;
        let findings = match runtime {
            Some(runtime) => {
                let arch = args
                    .arch
                    .map(crate::settings::arch_from_arg)
                    .or(facts.arch)
                    .unwrap_or(Arch::X86_64);
                let libc = facts.libc.unwrap_or(crate::target::Libc::Gnu);
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
        let dependencies = inspect::embedded_dependencies(&bytes).unwrap_or_else(|reason| {
            shell.warn(format!(
                "`{}` has a dependency list (.dep-v0) that cannot be read: {reason}",
                file.display()
            ));
            None
        });
        reports.push(crate::report::InspectReport {
            path: file.display().to_string(),
            facts,
            runtime,
            findings,
            dependencies,
        });
    }
    if format == MessageFormat::Json {
        let json = serde_json::to_string_pretty(&reports).expect("facts always serialize");
        shell.print_data(&json).map_err(stdout_error)?;
    } else {
        for entry in &reports {
            shell
                .print_data(&crate::report::inspect_listing(entry))
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
