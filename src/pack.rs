//! The pack pipeline: settings → workspace → toolchain → build → facts → plan → emit → report.
//! Orchestration only: each step is a call into the module that owns it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::cli::{self, MessageFormat};
use crate::error::{Error, ErrorKind, Result};
use crate::output::Shell;
use crate::plan::PlanInputs;
use crate::report::Manifest;
use crate::settings::Options;
use crate::target::{self, Arch};
use crate::toolchain::{self, Linker};
use crate::workspace::Workspace;
use crate::{build, emit, facts, manifest_paths, plan, report, stdout_error, units};

/// Where, under the target directory, the location of zig found by an earlier run is kept.
const ZIG_CACHE: &str = "lambda-pack-cache/zig-path";
/// Where, under the target directory, cargo-zigbuild's setup for each zig target is remembered.
const ZIG_ENV_CACHE: &str = "lambda-pack-cache/zig-env.json";

/// Whether a run writes artifacts or only shows what it would write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pack,
    Plan,
}

pub fn pack(options: &Options, shell: &Shell, mode: Mode) -> Result<()> {
    let started = Instant::now();
    let original_env: build::Environment = std::env::vars_os().collect();
    // The previous run's first build, started now so that it checks freshness while the
    // workspace is read; adopted by the first build below only if it is the very same command.
    let mut early = match mode {
        Mode::Pack => build::EarlyBuild::start(
            &build::early_record_candidates(
                options.target_dir.as_deref(),
                options.manifest_path.as_deref(),
            ),
            &original_env,
        ),
        Mode::Plan => None,
    };
    let workspace = Workspace::load(&options.cargo, options.manifest_path.as_deref())?;
    let selected = workspace.select(&options.selection)?;
    let resolved = units::resolve_units(&workspace, &selected, options)?;
    for warning in &resolved.warnings {
        shell.warn(warning);
    }
    // cargo-lambda settings that are not honoured, so that none is ignored silently.
    let packed: Vec<&crate::workspace::Package> = workspace
        .members
        .iter()
        .filter(|p| resolved.packages.contains(&p.name))
        .collect();
    for note in packed.iter().flat_map(|p| &p.notes) {
        shell.note(note);
    }
    for note in crate::cargo_lambda::config_file_notes(
        std::iter::once(workspace.root.as_path()).chain(packed.iter().map(|p| p.dir.as_path())),
    ) {
        shell.note(note);
    }
    let units = resolved.units;
    if units.is_empty() {
        return Err(nothing_to_pack(&workspace, &selected));
    }

    // Pick a Rust target and linker per architecture, then make sure they are installed.
    let zig = match options.compiler {
        cli::CompilerChoice::Cargo => None,
        _ => toolchain::detect_zig(&options.target_dir(&workspace).join(ZIG_CACHE)),
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
            early = None;
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
    let mut built = build::Built::new();
    let mut zig_env = build::ZigEnvCache::load(options.target_dir(&workspace).join(ZIG_ENV_CACHE));
    let mut context = build::BuildContext {
        workspace: &workspace,
        options,
        rustc: &rust.rustc,
        zig_env: &mut zig_env,
        original_env: &original_env,
        early,
        remember_first: (mode == Mode::Pack)
            .then(|| options.target_dir(&workspace).join(build::EARLY_RECORD)),
    };
    for request in &requests {
        let mut what: Vec<String> = request.bins.clone();
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

    let facts = facts::gather(&units, &built, &choices, &requests, &workspace, shell)?;

    let manifest_path = out_dir.join(report::MANIFEST_FILE);
    let previous = match Manifest::read_previous(&out_dir) {
        Ok(previous) => previous,
        Err(note) => {
            shell.note(note);
            None
        }
    };
    // With --arch or --target, this run builds one architecture: another architecture's
    // artifacts of the same packages are not this run's to remove.
    let covered: Option<BTreeSet<Arch>> = (options.arch.is_some() || options.target.is_some())
        .then(|| units.iter().flat_map(|u| u.archs.iter().copied()).collect());
    let screened = manifest_paths::screen(
        &out_dir,
        &manifest_path,
        previous.map(|m| m.artifacts).unwrap_or_default(),
        &workspace.root,
        covered.as_ref(),
    );
    for warning in &screened.warnings {
        shell.warn(warning);
    }
    let previous_inputs = Manifest {
        schema_version: report::SCHEMA_VERSION,
        artifacts: screened.trusted.clone(),
    }
    .previous_inputs();
    let inputs = PlanInputs {
        units: facts,
        builds: requests,
        source_date_epoch: options.source_date_epoch,
        previous: screened.candidates,
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
    if options.push && !plan.artifacts.iter().any(|a| a.image_repository.is_some()) {
        return Err(crate::image::push::no_repository_error());
    }

    let progress = shell.progress("Packing");
    let total = plan.artifacts.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    progress.set_message(format!("0/{total} artifacts"));
    let images = crate::image::ImageOptions::new(
        &options.target_dir(&workspace),
        options.network_forbidden(),
        options.source_date_epoch,
    );
    let emitted = emit::emit(
        &plan,
        &out_dir,
        &previous_inputs,
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
                    "{} {} ({}, {size})",
                    units::role_name(artifact.kind),
                    artifact.name,
                    artifact.arch
                ),
            );
        },
    )?;
    progress.finish();
    let (pending, emitted) = (emitted.pending, emitted.emitted);
    let mut manifest = report::manifest(&plan, &emitted, &workspace.root);
    if options.push {
        // Before anything is committed: a failed push leaves the output directory as it was.
        crate::image::push::push_all(&plan, &pending, &out_dir, &mut manifest, |name, pushed| {
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
        })?;
    }
    let stale: Vec<&report::ManifestArtifact> = screened
        .trusted
        .iter()
        .filter(|a| plan.stale.contains(&a.path))
        .collect();
    // Entries this run neither wrote nor removed (other packages, architectures or workspaces)
    // stay listed while their artifact is still there.
    let kept: Vec<report::ManifestArtifact> = screened
        .trusted
        .iter()
        .filter(|a| !plan.stale.contains(&a.path))
        .filter(|a| {
            matches!(
                manifest_paths::removable(&out_dir, a),
                Ok(manifest_paths::Removable::File(_) | manifest_paths::Removable::Context(_))
            )
        })
        .cloned()
        .collect();
    let merged = manifest.merged_with(kept);
    let merged_json = merged.to_json();
    // Everything is written and the manifest is ready; now swap it all in, then the manifest
    // that describes it, with as little as possible in between (a kill there leaves a manifest
    // describing the previous version of a replaced artifact).
    emit::commit(pending)?;
    emit::write_atomic(&manifest_path, merged_json.as_bytes())?;
    for cleaned in manifest_paths::remove_stale(&out_dir, &manifest_path, &stale)? {
        match cleaned {
            manifest_paths::Cleaned::Removed(path) => shell.status(
                "Removed",
                format!("{} (no longer produced)", path.display()),
            ),
            manifest_paths::Cleaned::Refused(warning) => shell.warn(warning),
        }
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
            manifest_path.display()
        ),
    );
    shell.print_block(&report::summary_table(&manifest, &out_dir));
    if options.message_format == MessageFormat::Json {
        shell.print_data(&merged_json).map_err(stdout_error)?;
    }
    Ok(())
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

/// The error for a selection without a binary or cdylib. A root library package whose functions
/// live in member crates is the usual case: those members are named, with the flags that select
/// them.
fn nothing_to_pack(workspace: &Workspace, selected: &[&crate::workspace::Package]) -> Error {
    let error = Error::new(
        ErrorKind::NothingToPack,
        format!(
            "nothing to pack: no binary or cdylib target in {}",
            if selected.is_empty() {
                "the selected packages".to_string()
            } else {
                selected
                    .iter()
                    .map(|p| format!("`{}`", p.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    )
    .with_note(format!(
        "workspace: `{}`",
        workspace.root_manifest.display()
    ));
    let others: Vec<&crate::workspace::Package> = workspace
        .members
        .iter()
        .filter(|p| !selected.iter().any(|s| s.name == p.name))
        .filter(|p| !p.bins.is_empty() || !p.cdylibs.is_empty())
        .collect();
    match others.as_slice() {
        [] => error.with_help(
            "a Lambda function is a binary crate (src/main.rs or [[bin]]); select one with -p, or add one",
        ),
        [only] => error
            .with_note(format!(
                "member `{}` has {}",
                only.name,
                targets_of(only)
            ))
            .with_help(format!(
                "pack it with `-p {}`, or every member with `--workspace`",
                only.name
            )),
        _ => error
            .with_note(format!(
                "members with binaries: {}",
                others
                    .iter()
                    .map(|p| format!("`{}` ({})", p.name, targets_of(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_help(format!(
                "pack them all with `--workspace`, or one with `-p <member>` (e.g. `-p {}`)",
                others[0].name
            )),
    }
}

/// `bin fn-a, fn-b` / `cdylib codec`, for naming what a member would pack.
fn targets_of(package: &crate::workspace::Package) -> String {
    let mut parts = Vec::new();
    if !package.bins.is_empty() {
        parts.push(format!("bin {}", package.bins.join(", ")));
    }
    if !package.cdylibs.is_empty() {
        parts.push(format!("cdylib {}", package.cdylibs.join(", ")));
    }
    parts.join("; ")
}
