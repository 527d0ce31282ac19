//! cargo-lambda-pack: cross-compile a Cargo workspace for AWS Lambda and package every crate
//! as the artifact its role needs.
//!
//! The pipeline, one stage per module, each handing a value to the next:
//! [`cli`] → [`settings`] → [`workspace`] → [`toolchain`] → [`build`] → facts ([`include`]) →
//! [`plan`] (pure) → [`emit`] → [`report`]. Only [`output`] writes to the terminal.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod build;
pub mod cli;
pub mod emit;
pub mod error;
pub mod include;
pub mod inspect;
pub mod libs;
pub mod metadata;
pub mod output;
pub mod plan;
pub mod report;
pub mod settings;
pub mod target;
pub mod toolchain;
pub mod verify;
pub mod workspace;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use cli::{CargoCli, Command, MessageFormat, PackArgs};
use error::{Error, ErrorKind, Result};
use output::Shell;
use plan::{PlanInputs, UnitFacts};

use report::Manifest;
use settings::Options;
use target::Arch;
use toolchain::Linker;
use workspace::Workspace;

/// Whether a run writes artifacts or only shows what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pack,
    Plan,
}

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
        let facts = inspect::inspect_file(file).map_err(|err| {
            Error::new(ErrorKind::BinaryCheck, err.to_string()).with_help(
                "inspect reads ELF executables and shared libraries, such as a Lambda bootstrap",
            )
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

fn pack(options: &Options, shell: &Shell, mode: Mode) -> Result<()> {
    let started = Instant::now();
    let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
    let selected = workspace.select(&options.selection)?;
    let resolved = settings::resolve_units(&workspace, &selected, options)?;
    for warning in &resolved.warnings {
        shell.warn(warning);
    }
    let units = resolved.units;
    if units.is_empty() {
        return Err(Error::new(
            ErrorKind::NothingToPack,
            format!(
                "nothing to pack: no binary or cdylib target in {}",
                if selected.is_empty() {
                    "the selected packages".to_string()
                } else {
                    selected.iter().map(|p| format!("`{}`", p.name)).collect::<Vec<_>>().join(", ")
                }
            ),
        )
        .with_note(format!("workspace: `{}`", workspace.root_manifest.display()))
        .with_help("a Lambda function is a binary crate (src/main.rs or [[bin]]); select one with -p, or add one"));
    }

    // Pick a Rust target and linker per architecture, then make sure they are installed.
    let zig = match options.compiler {
        cli::CompilerChoice::Cargo => None,
        _ => toolchain::detect_zig(),
    };
    let architectures: BTreeSet<Arch> =
        units.iter().flat_map(|u| u.archs.iter().copied()).collect();
    let mut choices = BTreeMap::new();
    for arch in architectures {
        let choice = toolchain::choose(
            arch,
            options.compiler,
            options.target,
            zig.is_some(),
            Arch::host(),
        )?;
        choices.insert(arch, choice);
    }
    if let Some(zig) = &zig
        && choices.values().any(|(_, linker)| *linker == Linker::Zig)
    {
        shell.verbose(|| format!("zig found: `{}`", zig.command));
    }
    let targets: BTreeSet<_> = choices.values().map(|(target, _)| *target).collect();
    for target in &targets {
        if toolchain::ensure_rust_target(&workspace.root, *target, options.network_forbidden())? {
            shell.note(format!(
                "installed the Rust standard library for `{target}` (rustup target add {target})"
            ));
        }
    }
    for (target, linker) in choices.values() {
        if *linker == Linker::Host {
            shell.warn(format!(
                "`{target}` is linked by the host's linker: the binaries need this machine's glibc, which may be newer than the Lambda runtime's"
            ));
        }
    }

    // Static musl has no shared libraries, so a cdylib needs a gnu target (zig).
    for unit in units.iter().filter(|u| !u.cdylibs.is_empty()) {
        for arch in &unit.archs {
            let (target, _) = choices[arch];
            if target.libc == target::Libc::Musl {
                return Err(Error::toolchain(format!(
                    "layer `{}` has a cdylib (`{}`), which cannot be built for `{target}`: static musl binaries have no shared libraries",
                    unit.name,
                    unit.cdylibs.join("`, `")
                ))
                .with_help("install zig (`pip install ziglang`) and use --compiler auto or zig to build glibc targets"));
            }
        }
    }

    // One run at a time per output directory: a second one waits here, before building.
    let out_dir = options.out_dir(&workspace);
    let _lock = match mode {
        Mode::Pack => {
            let lock = emit::lock_out_dir(&out_dir, || {
                shell.status(
                    "Blocking",
                    format!("waiting for file lock on {}", out_dir.display()),
                )
            })?;
            let removed = emit::remove_leftovers(&out_dir)?;
            if removed > 0 {
                shell.verbose(|| {
                    format!("removed {removed} temporary file(s) left by an interrupted run")
                });
            }
            Some(lock)
        }
        Mode::Plan => None,
    };

    // Build: one cargo invocation per Rust target.
    let requests = build::requests(&units, |arch| choices[&arch]);
    let mut built = BTreeMap::new();
    for request in &requests {
        let mut what: Vec<String> = request.bins.clone();
        what.extend(request.cdylibs.iter().map(|c| format!("lib{c}")));
        shell.status(
            "Building",
            format!(
                "{} with {}{} ({})",
                request.target,
                request.linker.describe(),
                request
                    .glibc
                    .map(|g| format!(", glibc {g}"))
                    .unwrap_or_default(),
                what.join(", ")
            ),
        );
        for binary in build::run(request, &workspace, options, shell)? {
            built.insert(
                (
                    binary.package.clone(),
                    binary.name.clone(),
                    binary.kind,
                    binary.target,
                ),
                binary,
            );
        }
    }

    // Gather facts: each built file read as ELF, each include resolved.
    let mut include_cache: BTreeMap<(String, String), Vec<include::IncludedFile>> = BTreeMap::new();
    let mut facts = Vec::new();
    for unit in &units {
        let package = workspace
            .package(&unit.package)
            .expect("units come from workspace members");
        let key = (unit.package.clone(), format!("{:?}", unit.includes));
        let includes = match include_cache.get(&key) {
            Some(files) => files.clone(),
            None => {
                let files = include::resolve(&package.dir, &package.manifest_path, &unit.includes)?;
                include_cache.insert(key, files.clone());
                files
            }
        };
        for arch in &unit.archs {
            let (target, linker) = choices[arch];
            let read = |name: &String, kind: build::TargetKind| -> Result<plan::BinaryInput> {
                let binary = built
                    .get(&(unit.package.clone(), name.clone(), kind, target))
                    .ok_or_else(|| {
                        Error::internal(format!(
                            "cargo did not report building `{name}` for `{target}`"
                        ))
                    })?;
                let facts = inspect::inspect_file(&binary.path).map_err(|err| {
                    Error::new(ErrorKind::BinaryCheck, format!("cargo built `{}`, but it cannot be read as an ELF binary: {err}", binary.path.display()))
                        .with_help("check the linker configured for this target; `file` on the path shows what it is")
                })?;
                Ok(plan::BinaryInput {
                    name: name.clone(),
                    path: binary.path.clone(),
                    facts,
                })
            };
            let binaries = unit
                .bins
                .iter()
                .map(|b| read(b, build::TargetKind::Bin))
                .collect::<Result<Vec<_>>>()?;
            let cdylibs = unit
                .cdylibs
                .iter()
                .map(|c| read(c, build::TargetKind::Cdylib))
                .collect::<Result<Vec<_>>>()?;
            let glibc = requests
                .iter()
                .find(|r| r.target == target)
                .and_then(|r| r.glibc);
            facts.push(UnitFacts {
                unit: unit.clone(),
                arch: *arch,
                target,
                linker,
                glibc,
                binaries,
                cdylibs,
                libraries: Vec::new(),
                includes: includes.clone(),
            });
        }
    }
    let generated = bundle_libraries(&mut facts, shell)?;
    facts.extend(generated);

    let previous = match Manifest::read_previous(&out_dir) {
        Ok(previous) => previous,
        Err(note) => {
            shell.note(note);
            None
        }
    };
    let previous_inputs = previous
        .as_ref()
        .map(Manifest::previous_inputs)
        .unwrap_or_default();
    let inputs = PlanInputs {
        units: facts,
        builds: requests,
        source_date_epoch: options.source_date_epoch,
        previous: previous
            .map(|m| {
                m.artifacts
                    .into_iter()
                    .map(|a| (a.path, a.package))
                    .collect()
            })
            .unwrap_or_default(),
        selected_packages: resolved.packages,
        workspace_packages: workspace.members.iter().map(|p| p.name.clone()).collect(),
    };
    let plan = plan::plan(&inputs)?;
    for warning in &plan.warnings {
        shell.warn(warning);
    }
    for artifact in &plan.artifacts {
        for finding in artifact.findings.iter().filter(|f| !f.is_blocking()) {
            shell.warn(report::finding_line(artifact, finding));
        }
    }

    if mode == Mode::Plan {
        if options.message_format == MessageFormat::Json {
            let json = serde_json::to_string_pretty(&plan).expect("the plan always serializes");
            shell.print_data(&json).map_err(stdout_error)?;
        } else {
            shell.print_block(&report::plan_listing(&plan, &out_dir));
        }
        check_findings(&plan)?;
        shell.status(
            "Planned",
            format!("{} artifact(s); nothing was written", plan.artifacts.len()),
        );
        return Ok(());
    }
    check_findings(&plan)?;

    let emitted = emit::emit(&plan, &out_dir, &previous_inputs, |artifact, emitted| {
        shell.status(
            if emitted.unchanged { "Fresh" } else { "Packed" },
            match artifact.format {
                plan::Format::Zip => format!(
                    "{} {} ({}, {})",
                    settings::role_name(artifact.kind),
                    artifact.name,
                    artifact.arch,
                    plan::human_bytes(emitted.size_zipped)
                ),
                plan::Format::Image => format!(
                    "{} {} ({}, image context of {})",
                    settings::role_name(artifact.kind),
                    artifact.name,
                    artifact.arch,
                    plan::human_bytes(artifact.size_unzipped)
                ),
            },
        );
    })?;
    // Everything is written; now swap it all in, then the manifest that describes it.
    emit::commit(emitted.pending)?;
    let emitted = emitted.emitted;
    let manifest = report::manifest(&plan, &emitted);
    emit::write_atomic(
        &out_dir.join(report::MANIFEST_FILE),
        manifest.to_json().as_bytes(),
    )?;
    emit::remove_stale(&out_dir, &plan.stale)?;
    for stale in &plan.stale {
        shell.status(
            "Removed",
            format!("{} (no longer produced)", out_dir.join(stale).display()),
        );
    }
    for artifact in manifest
        .artifacts
        .iter()
        .filter(|a| a.upload.as_deref() == Some("s3"))
    {
        shell.warn(format!(
            "{} ({}) is {} zipped, over the {} Lambda accepts in a direct upload: upload it to S3 and pass its location",
            artifact.name,
            artifact.arch,
            plan::human_bytes(artifact.size_zipped),
            plan::human_bytes(report::MAX_DIRECT_UPLOAD_BYTES)
        ));
    }
    shell.status(
        "Finished",
        format!(
            "{} artifact(s) in {:.1}s; manifest: {}",
            manifest.artifacts.len(),
            started.elapsed().as_secs_f64(),
            out_dir.join(report::MANIFEST_FILE).display()
        ),
    );
    shell.print_block(&report::summary_table(&manifest, &out_dir));
    if options.message_format == MessageFormat::Json {
        shell
            .print_data(&manifest.to_json())
            .map_err(stdout_error)?;
    }
    Ok(())
}

/// For each function whose binary needs shared libraries its runtime lacks, finds them on the
/// build host and returns a generated `<function>-libs` layer holding them, attached last.
fn bundle_libraries(facts: &mut [UnitFacts], shell: &Shell) -> Result<Vec<UnitFacts>> {
    let extra = std::env::var("LIBRARY_PATH")
        .map(|v| libs::SearchPath::split_list(&v))
        .unwrap_or_default();
    let taken: BTreeSet<String> = facts.iter().map(|f| f.unit.name.clone()).collect();
    let mut generated = Vec::new();
    for function in facts.iter_mut() {
        if function.unit.role != metadata::Role::Function || !function.unit.bundle_libs {
            continue;
        }
        let roots: Vec<(String, &inspect::BinaryFacts)> = function
            .binaries
            .iter()
            .map(|b| (b.name.clone(), &b.facts))
            .collect();
        let search = libs::SearchPath::host(function.arch, &extra);
        let bundled = libs::bundle(&roots, function.arch, function.unit.runtimes[0], &search)?;
        if bundled.is_empty() {
            continue;
        }
        let name = format!("{}-libs", function.unit.name);
        if taken.contains(&name) {
            return Err(Error::config(format!(
                "function `{}` needs a generated layer `{name}`, but an artifact of that name already exists",
                function.unit.name
            ))
            .with_help("rename the other artifact, or set bundle_libs = false and ship the libraries yourself"));
        }
        let sonames: Vec<&str> = bundled.iter().map(|b| b.soname.as_str()).collect();
        shell.verbose(|| {
            format!(
                "bundling {} for `{}` ({})",
                sonames.join(", "),
                function.unit.name,
                function.arch
            )
        });
        let mut unit = function.unit.clone();
        unit.name = name.clone();
        unit.role = metadata::Role::Layer;
        unit.bins = Vec::new();
        unit.cdylibs = Vec::new();
        unit.includes = Vec::new();
        unit.layers = Vec::new();
        unit.archs = vec![function.arch];
        unit.reasons = vec![format!(
            "layer: shared libraries `{}` needs and {} lacks: {}",
            function.unit.name,
            function.unit.runtimes[0],
            sonames.join(", ")
        )];
        function.unit.layers.push(name);
        generated.push(UnitFacts {
            unit,
            arch: function.arch,
            target: function.target,
            linker: function.linker,
            glibc: function.glibc,
            binaries: Vec::new(),
            cdylibs: Vec::new(),
            libraries: bundled
                .into_iter()
                .map(|library| plan::BinaryInput {
                    name: library.soname,
                    path: library.path,
                    facts: library.facts,
                })
                .collect(),
            includes: Vec::new(),
        });
    }
    Ok(generated)
}

/// Errors among the binary checks stop the run before anything is written.
fn check_findings(plan: &plan::Plan) -> Result<()> {
    let blocking: Vec<String> = plan
        .blocking_findings()
        .map(|(artifact, finding)| report::finding_line(artifact, finding))
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    let mut error = Error::new(
        ErrorKind::BinaryCheck,
        format!(
            "{} binary check(s) failed; these artifacts would not start on Lambda",
            blocking.len()
        ),
    );
    for line in blocking {
        error = error.with_note(line);
    }
    Err(error.with_help(
        "fix the build as each finding says, or, if you know better, downgrade a finding with --allow <code> or allow = [\"<code>\"] in [package.metadata.lambda-pack]",
    ))
}

fn stdout_error(err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::WriteFailed,
        format!("could not write to stdout: {err}"),
    )
    .with_help("check the pipe or file stdout is redirected to")
}
