//! `cargo lambda-pack` (and, up to the plan, `cargo lambda-pack plan`): a short sequence of named
//! stages, each a call into the module that owns it: settings → workspace → toolchain → build →
//! facts → plan, then emit's one transaction and the report.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::build::{BuildRequest, Built, EarlyBuild, Environment};
use crate::cli::{self, MessageFormat};
use crate::emit::CarriedOut;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{MANIFEST_FILE, Manifest, ManifestArtifact, Upload};
use crate::output::{Shell, stdout_error};
use crate::plan::{Plan, PlanInputs};
use crate::settings::Options;
use crate::target::{self, Arch};
use crate::toolchain::{self, Linker, RustToolchain};
use crate::units::{Resolved, Unit};
use crate::workspace::Workspace;
use crate::{build, emit, facts, manifest_paths, plan, report};

mod auditable_data;
mod choices;
mod cpu_check;
mod nothing_to_pack;
mod sbom_inputs;
mod sharding;
use choices::Choices;
use cpu_check::{cpu_error, read_compile_flags, refuse_cpu_too_new};
use nothing_to_pack::nothing_to_pack;

/// Whether a run writes artifacts or only shows what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pack,
    Plan,
}

/// Everything up to the plan, shared by `pack` and `plan` so that the plan shown is the plan
/// carried out.
pub struct Planned {
    pub plan: Plan,
    pub out_dir: PathBuf,
    /// Cargo's target directory (the base image cache lives under it).
    target_dir: PathBuf,
    workspace_root: PathBuf,
    /// The previous manifest's entries whose paths are safe to use.
    trusted: Vec<ManifestArtifact>,
    started: Instant,
    /// The output directory's lock (a pack only), held until the run ends.
    _lock: Option<File>,
}

/// `cargo lambda-pack`: plan, then carry the plan out and report it.
pub fn run(options: &Options, shell: &Shell) -> Result<()> {
    let planned = plan_run(options, shell, Mode::Pack)?;
    check_findings(&planned.plan)?;
    if options.push
        && !planned
            .plan
            .artifacts
            .iter()
            .any(|a| a.image_repository.is_some())
    {
        return Err(crate::image::push::no_repository_error());
    }
    let carried = carry_out(&planned, options, shell)?;
    report_run(&planned, &carried, options, shell)
}

/// The stages up to the plan. A pack also starts last run's first build early and takes the
/// output directory's lock; a plan writes nothing.
pub fn plan_run(options: &Options, shell: &Shell, mode: Mode) -> Result<Planned> {
    let started = Instant::now();
    let original_env: Environment = std::env::vars_os().collect();
    let mut early = start_early_build(options, mode, &original_env);
    let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
    let (resolved, shards) =
        sharding::shard_units(resolve_units(&workspace, options, shell)?, options, shell);
    let (choices, rust) =
        choose_toolchains(options, &workspace, &resolved.units, shell, &mut early)?;
    let compile_flags = read_compile_flags(&workspace, &choices)?;
    if mode == Mode::Pack {
        refuse_cpu_too_new(&resolved.units, &choices, &compile_flags)?;
    }
    let out_dir = options.out_dir(&workspace.target_dir);
    let lock = lock_output(&out_dir, &workspace.root, mode, shell)?;
    let mut requests = build::requests(&resolved.units, |unit, arch| choices.for_unit(unit, arch));
    if let Some(sharded) = &shards {
        sharding::unify_features(&mut requests, &sharded.whole);
    }
    let (dependencies, lists_changed) = auditable_data::prepare(
        &workspace,
        options,
        &resolved.units,
        &requests,
        &choices,
        &rust,
    )?;
    if lists_changed {
        // The early build checked freshness against the old lists: let it finish unadopted.
        build::abandon_early(&mut early, shell);
    }
    let context = build::BuildContext {
        workspace: &workspace,
        options,
        rustc: &rust.rustc,
        zig_env: &mut build::ZigEnvCache::load(crate::cache::zig_env(
            &options.target_dir(&workspace.target_dir),
        )),
        original_env: &original_env,
        early,
        remember_first: (mode == Mode::Pack).then(|| {
            let root = std::fs::canonicalize(&workspace.root).unwrap_or(workspace.root.clone());
            crate::cache::early_build(&options.target_dir(&workspace.target_dir), &root)
        }),
    };
    let built = build_all(&requests, context, shell)?;
    let facts = facts::gather(
        &resolved.units,
        &built,
        |unit, arch| choices.for_unit(unit, arch),
        &requests,
        &workspace,
        shell,
    )?;
    let library_origins = sbom_inputs::library_origins(&facts)?;
    let screened = screen_previous(options, &out_dir, &workspace, &resolved.units, shell);
    // Every warning already said to people is in the plan's JSON too, in the order said.
    let said: Vec<String> = resolved
        .warnings
        .iter()
        .chain(&screened.warnings)
        .cloned()
        .collect();
    let inputs = PlanInputs {
        units: facts,
        builds: requests,
        source_date_epoch: options.source_date_epoch,
        previous: screened.candidates,
        selected_packages: resolved.packages,
        workspace_packages: workspace.members.iter().map(|p| p.name.clone()).collect(),
        compile_flags,
        dependencies,
        library_origins,
    };
    let mut plan = plan_stage(&inputs, shell)?;
    plan.warnings.splice(0..0, said);
    plan.shards = shards.map(|s| s.listing);
    Ok(Planned {
        plan,
        out_dir,
        target_dir: options.target_dir(&workspace.target_dir),
        workspace_root: workspace.root,
        trusted: screened.trusted,
        started,
        _lock: lock,
    })
}

/// The previous run's first build, started now so that it checks freshness while the workspace
/// is read; adopted by the first build below only if it is the very same command.
fn start_early_build(options: &Options, mode: Mode, env: &Environment) -> Option<EarlyBuild> {
    match mode {
        Mode::Pack => EarlyBuild::start(
            &build::early_record_location(
                options.target_dir.as_deref(),
                options.manifest_path.as_deref(),
            )?,
            env,
        ),
        Mode::Plan => None,
    }
}

/// The selected packages' units, with the settings' warnings and the notes on cargo-lambda
/// settings that are not honoured (so that none is ignored silently).
fn resolve_units(workspace: &Workspace, options: &Options, shell: &Shell) -> Result<Resolved> {
    let selected = workspace.select(&options.selection)?;
    let resolved = crate::units::resolve_units(workspace, &selected, options)?;
    for warning in &resolved.warnings {
        shell.warn(warning);
    }
    let packed: Vec<&crate::workspace::Package> = workspace
        .members
        .iter()
        .filter(|p| resolved.packages.contains(&p.name))
        .collect();
    for note in workspace
        .notes
        .iter()
        .chain(packed.iter().flat_map(|p| &p.notes))
    {
        shell.note(note);
    }
    for note in crate::cargo_lambda::config_file_notes(
        std::iter::once(workspace.root.as_path()).chain(packed.iter().map(|p| p.dir.as_path())),
    ) {
        shell.note(note);
    }
    if resolved.units.is_empty() {
        return Err(nothing_to_pack(workspace, &selected));
    }
    Ok(resolved)
}

/// A Rust target and linker per architecture, installed.
fn choose_toolchains(
    options: &Options,
    workspace: &Workspace,
    units: &[Unit],
    shell: &Shell,
    early: &mut Option<EarlyBuild>,
) -> Result<(Choices, RustToolchain)> {
    let zig = match options.compiler {
        cli::CompilerChoice::Cargo => None,
        _ => toolchain::detect_zig(&crate::cache::zig_path(
            &options.target_dir(&workspace.target_dir),
        )),
    };
    let choices = Choices::choose(units, options.compiler, options.target, zig.is_some())?;
    for unit in units {
        for arch in unit
            .archs
            .iter()
            .filter(|a| choices.static_for_scratch(unit, **a))
        {
            shell.verbose(|| {
                format!(
                    "`{}` ({arch}) is built static ({}): its image is built on base_image = \"scratch\", which has no loader or shared libraries",
                    unit.name,
                    choices.for_unit(unit, *arch).0
                )
            });
        }
    }
    if let Some(zig) = &zig
        && choices
            .all()
            .iter()
            .any(|(_, linker)| *linker == Linker::Zig)
    {
        shell.verbose(|| format!("zig found: `{}`", zig.command));
    }
    let targets: BTreeSet<_> = choices.all().iter().map(|(target, _)| *target).collect();
    let rust = toolchain::RustToolchain::locate(&options.cargo, &workspace.root)?;
    shell.verbose(|| format!("Rust toolchain: `{}`", rust.sysroot.display()));
    for target in &targets {
        if toolchain::ensure_rust_target(
            &rust,
            &workspace.root,
            *target,
            options.network_forbidden(),
        )? {
            // It started without this target's standard library: let it finish, unused.
            build::abandon_early(early, shell);
            shell.note(format!(
                "installed the Rust standard library for `{target}` (rustup target add {target})"
            ));
        }
    }
    for (target, linker) in &choices.all() {
        if *linker == Linker::Host {
            shell.warn(format!(
                "`{target}` is linked by the host's linker: the binaries need this machine's glibc, which may be newer than the Lambda runtime's"
            ));
        }
    }

    // Static musl has no shared libraries, so a cdylib needs a gnu target (zig).
    for unit in units.iter().filter(|u| !u.cdylibs.is_empty()) {
        for arch in &unit.archs {
            let (target, _) = choices.for_unit(unit, *arch);
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
    Ok((choices, rust))
}

/// One run at a time per output directory: a second pack waits here, before building, and
/// clears what an interrupted run left. Nothing is written unless the directory is this tool's.
fn lock_output(out_dir: &Path, root: &Path, mode: Mode, shell: &Shell) -> Result<Option<File>> {
    if mode == Mode::Plan {
        return Ok(None);
    }
    let protected = [(root, "the workspace root")];
    let lock = emit::claim_and_lock(out_dir, "the output directory", &protected, || {
        shell.status(
            "Blocking",
            format!("waiting for file lock on {}", out_dir.display()),
        )
    })?;
    let removed = emit::remove_leftovers(out_dir)?;
    if removed > 0 {
        shell.verbose(|| format!("removed {removed} temporary file(s) left by an interrupted run"));
    }
    Ok(Some(lock))
}

/// One cargo invocation per Rust target.
fn build_all(
    requests: &[BuildRequest],
    mut context: build::BuildContext<'_>,
    shell: &Shell,
) -> Result<Built> {
    let mut built = Built::new();
    for request in requests {
        let mut what: Vec<String> = request.bins.clone();
        what.extend(request.examples.iter().map(|e| format!("example {e}")));
        what.extend(request.cdylibs.iter().map(|c| format!("lib{c}")));
        shell.status(
            "Building",
            format!("{} ({})", request.describe(), what.join(", ")),
        );
        let binaries = build::run(request, &mut context, shell);
        // Setups that succeeded are worth keeping even when a build then fails.
        context.zig_env.save();
        for binary in binaries? {
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
    Ok(built)
}

/// The previous manifest's entries, screened: only safe paths are trusted, and with --arch or
/// --target another architecture's artifacts of the same packages are not this run's to remove.
fn screen_previous(
    options: &Options,
    out_dir: &Path,
    workspace: &Workspace,
    units: &[Unit],
    shell: &Shell,
) -> manifest_paths::Screened {
    let manifest_path = out_dir.join(MANIFEST_FILE);
    let previous = match Manifest::read_previous(out_dir) {
        Ok(previous) => previous,
        Err(note) => {
            shell.note(note);
            None
        }
    };
    let covered: Option<BTreeSet<Arch>> = (options.arch.is_some() || options.target.is_some())
        .then(|| units.iter().flat_map(|u| u.archs.iter().copied()).collect());
    let screened = manifest_paths::screen(
        out_dir,
        &manifest_path,
        previous.map(|m| m.artifacts).unwrap_or_default(),
        &workspace.root,
        covered.as_ref(),
    );
    for warning in &screened.warnings {
        shell.warn(warning);
    }
    screened
}

/// The plan, with its warnings and the findings that do not stop the run.
fn plan_stage(inputs: &PlanInputs, shell: &Shell) -> Result<Plan> {
    let plan = plan::plan(inputs)?;
    for warning in &plan.warnings {
        shell.warn(warning);
    }
    for artifact in &plan.artifacts {
        for finding in artifact.findings.iter().filter(|f| !f.is_blocking()) {
            shell.warn(plan::finding_line(artifact, finding));
        }
    }
    Ok(plan)
}

/// Emit's transaction, with a status line per artifact.
fn carry_out(planned: &Planned, options: &Options, shell: &Shell) -> Result<CarriedOut> {
    let plan = &planned.plan;
    let images = crate::image::ImageOptions::new(
        &planned.target_dir,
        options.network_forbidden(),
        options.source_date_epoch,
    );
    let progress = shell.progress("Packing");
    let total = plan.artifacts.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress.set_message(format!("0/{total} artifacts"));
    let carried = emit::carry_out(
        plan,
        &planned.out_dir,
        &planned.trusted,
        &planned.workspace_root,
        &images,
        |artifact, emitted| {
            let finished = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            progress.set_message(format!(
                "{finished}/{total} artifacts, last: {}",
                artifact.name
            ));
            let size = match artifact.format {
                plan::Format::Zip => plan::human_bytes(emitted.size_zipped),
                plan::Format::Image => {
                    format!(
                        "image context of {}",
                        plan::human_bytes(artifact.size_unzipped)
                    )
                }
            };
            shell.status(
                if emitted.unchanged { "Fresh" } else { "Packed" },
                format!(
                    "{}{} {} ({}, {size})",
                    if artifact.layer_type == Some(plan::LayerType::Runtime) {
                        "runtime "
                    } else {
                        ""
                    },
                    artifact.kind.name(),
                    artifact.name,
                    artifact.arch
                ),
            );
        },
        |staged, manifest| {
            if !options.push {
                return Ok(());
            }
            // Before anything is committed: a failed push leaves the output directory as it was.
            crate::image::push::push_all(
                plan,
                staged,
                &planned.out_dir,
                manifest,
                |name, pushed| {
                    shell.status(
                        "Pushed",
                        format!(
                            "{name} as {} (tag {}, {} blob(s), {} uploaded)",
                            pushed.image_uri,
                            pushed.tag,
                            pushed.blobs_uploaded,
                            plan::human_bytes(pushed.bytes_uploaded)
                        ),
                    );
                },
            )
        },
    );
    progress.finish();
    carried
}

/// What the pack did: removals, S3-sized ZIPs, the summary table, and the manifest on stdout
/// with `--message-format json`.
fn report_run(
    planned: &Planned,
    carried: &CarriedOut,
    options: &Options,
    shell: &Shell,
) -> Result<()> {
    let out_dir = &planned.out_dir;
    for cleaned in &carried.cleaned {
        match cleaned {
            manifest_paths::Cleaned::Removed(path) => shell.status(
                "Removed",
                format!("{} (no longer produced)", path.display()),
            ),
            manifest_paths::Cleaned::Refused(warning) => shell.warn(warning),
        }
    }
    let manifest = &carried.manifest;
    for artifact in manifest
        .artifacts
        .iter()
        .filter(|a| a.upload == Some(Upload::S3))
    {
        shell.warn(format!(
            "{} ({}) is {} zipped, over the {} Lambda accepts in a direct upload: upload it to S3 and pass its location",
            artifact.name,
            artifact.arch,
            plan::human_bytes(artifact.size_zipped),
            plan::human_bytes(plan::MAX_DIRECT_UPLOAD_BYTES)
        ));
    }
    shell.status(
        "Finished",
        format!(
            "{} artifact(s) in {:.1}s; manifest: {}",
            manifest.artifacts.len(),
            planned.started.elapsed().as_secs_f64(),
            out_dir.join(MANIFEST_FILE).display()
        ),
    );
    shell.print_block(&report::summary_table(manifest, out_dir));
    if options.message_format == MessageFormat::Json {
        shell
            .print_data(&carried.merged_json)
            .map_err(stdout_error)?;
    }
    Ok(())
}

/// Errors among the binary checks stop the run before anything is written.
pub fn check_findings(plan: &Plan) -> Result<()> {
    let blocking: Vec<String> = plan
        .blocking_findings()
        .map(|(artifact, finding)| plan::finding_line(artifact, finding))
        .collect();
    if blocking.is_empty() {
        return Ok(());
    }
    if plan
        .blocking_findings()
        .all(|(_, f)| f.finding.code == crate::inspect::codes::CPU_TOO_NEW)
    {
        return Err(cpu_error(blocking));
    }
    // A name Lambda refuses stops the deploy, not the start: say so when it is the only problem.
    let names_only = plan
        .blocking_findings()
        .all(|(_, f)| f.finding.code == crate::lambda_names::INVALID_NAME);
    let mut error = Error::new(
        ErrorKind::BinaryCheck,
        if names_only {
            format!(
                "{} name check(s) failed; Lambda would refuse to create these artifacts",
                blocking.len()
            )
        } else {
            format!(
                "{} binary check(s) failed; these artifacts would not start on Lambda",
                blocking.len()
            )
        },
    );
    for line in blocking {
        error = error.with_note(line);
    }
    Err(error.with_help(
        "fix the build as each finding says, or, if you know better, downgrade a finding with --allow <code> or allow = [\"<code>\"] in [package.metadata.lambda-pack]",
    ))
}
