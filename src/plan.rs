//! The plan: every artifact, its kind, format, entries, modes and paths, decided without I/O.
//!
//! [`plan`] is a pure function of the units (settings merged), the build requests and the facts
//! gathered about built binaries and includes. The same inputs give the same plan, byte for byte
//! once serialized; `emit` then carries it out without making a decision of its own, and
//! `cargo lambda-pack plan` prints it without writing anything.
//!
//! Layouts, as Lambda extracts them:
//! - function ZIP → `/var/task`: `bootstrap` (0755) and includes;
//! - extension layer → `/opt`: `extensions/<bin>` (0755; the file name is the name the extension
//!   registers under) and includes;
//! - shared-code layer → `/opt`: `bin/<bin>` (on PATH), `lib/lib<name>.so` (on LD_LIBRARY_PATH) and
//!   includes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::Serialize;

use crate::build::BuildRequest;
mod attach;
mod bootstrap;
pub mod cpu_floor;
mod deprecated_runtime;
mod image;
mod lambda_binary;
mod libs_layer;
mod sbom;
mod scratch;
use attach::attach_layers;
use image::into_image;
use libs_layer::with_libs_layers;
use scratch::scratch_findings;
mod timestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::facts::{BinaryInput, UnitFacts};
use crate::inspect::{CheckTarget, Finding, Severity};
use crate::metadata::{PackageFormat, Role};
use crate::target::{Arch, Runtime};
use crate::toolchain::Linker;
pub use timestamp::ZipTimestamp;
// verify's (log stream names, telemetry timestamps), which exists on Linux only.
#[cfg(target_os = "linux")]
pub(crate) use timestamp::civil_from_days;

/// The file name Lambda's OS-only runtimes execute.
pub const BOOTSTRAP: &str = "bootstrap";
/// Lambda's limit on a function and all its layers, unzipped (`Unzipped size must be smaller
/// than 262144000 bytes`).
pub const MAX_UNZIPPED_BYTES: u64 = 262_144_000;
/// The most entries a ZIP holds without ZIP64 records, which not every reader handles.
pub const MAX_ZIP_ENTRIES: usize = 65_535;
/// Lambda's limit on layers per function.
pub const MAX_LAYERS: usize = 5;
/// Lambda's limit on extensions per function.
pub const MAX_EXTENSIONS: usize = 10;
/// Lambda's limit on a container image, all layers uncompressed (10 GB, in AWS's 1024-based units).
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// What a context's `.dockerignore` holds: everything but the files the Dockerfile copies, so
/// stray files never reach the image.
pub const DOCKERIGNORE: &str = "*\n!bootstrap\n!task/\n!opt/\n";
/// The largest ZIP Lambda accepts inline (`ZipFile`): the API refuses requests over 69,905,067
/// bytes, and base64 makes 3 bytes into 4, so 52,428,800 bytes (50 MiB) of ZIP fit. Larger
/// artifacts have to go through S3.
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 52_428_800;
/// The mode of executables and directories in archives.
pub const MODE_EXECUTABLE: u32 = 0o755;
/// The mode of other files in archives.
pub const MODE_FILE: u32 = 0o644;

#[derive(Clone, Debug)]
pub struct PlanInputs {
    pub units: Vec<UnitFacts>,
    pub builds: Vec<BuildRequest>,
    pub source_date_epoch: Option<u64>,
    /// Artifacts the previous manifest in the output directory lists: `(path, package)`.
    pub previous: Vec<(String, String)>,
    /// Packages this run packs; their earlier artifacts that are not produced again are stale.
    pub selected_packages: BTreeSet<String>,
    /// Every workspace member; artifacts of packages that left the workspace are stale too.
    pub workspace_packages: BTreeSet<String>,
    /// Per Rust target (triple): the rustflags and C flags its build gets from the environment
    /// and cargo's configuration, checked against Lambda's CPU floor.
    pub compile_flags: BTreeMap<String, crate::rustflags::CompileFlags>,
    /// Per Rust target (triple): cargo's resolved crate graph, for each artifact's SBOM.
    pub dependencies: BTreeMap<String, crate::sbom::DependencyGraph>,
    /// Each bundled library file's hash and Debian package, for the libs layers' SBOMs.
    pub library_origins: BTreeMap<PathBuf, crate::sbom::LibraryOrigin>,
}

use crate::manifest::Upload;
pub use crate::manifest::{Format, LayerType};

/// How a ZIP reaches Lambda, as the plan decides it: inline in the API call up to `max_direct`
/// zipped bytes, through S3 above. The size it turns on is known once the ZIP is written, so
/// emit applies the rule ([`UploadRule::upload`]) to what it measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UploadRule {
    pub max_direct: u64,
}

impl UploadRule {
    /// Lambda's rule for a ZIP.
    pub const LAMBDA: UploadRule = UploadRule {
        max_direct: MAX_DIRECT_UPLOAD_BYTES,
    };

    /// The upload a ZIP of `size_zipped` bytes needs.
    pub fn upload(self, size_zipped: u64) -> Upload {
        if size_zipped > self.max_direct {
            Upload::S3
        } else {
            Upload::Direct
        }
    }
}

/// One entry of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// Path inside the archive; directories end with `/`.
    pub path: String,
    pub mode: u32,
    /// The file to copy, or `None` for a directory.
    pub source: Option<PathBuf>,
    pub size: u64,
}

/// A binary-check finding, placed: which entry it concerns and whether `allow` downgraded it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedFinding {
    /// The entry's path inside the artifact.
    pub entry: String,
    /// True when `--allow` or `allow = [...]` downgraded an error to a warning.
    pub allowed: bool,
    #[serde(flatten)]
    pub finding: Finding,
}

impl PlannedFinding {
    pub fn is_blocking(&self) -> bool {
        self.finding.severity == Severity::Error && !self.allowed
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedArtifact {
    pub name: String,
    pub package: String,
    pub bin: Option<String>,
    /// `function`, `extension` or `layer` (a runtime crate's artifact is a layer).
    pub kind: Role,
    /// Layers: `runtime` for a custom runtime's layer (its bootstrap at `/opt/bootstrap`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_type: Option<LayerType>,
    /// Functions: what Lambda passes to the runtime as `_HANDLER` (`handler`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub format: Format,
    pub arch: Arch,
    /// The function's runtime; for layers and extensions the first of `runtimes`.
    pub runtime: Runtime,
    /// Runtimes the artifact is compatible with (a layer's CompatibleRuntimes).
    pub runtimes: Vec<Runtime>,
    pub target: String,
    pub linker: Linker,
    pub glibc: Option<String>,
    /// Where the artifact goes, relative to the output directory, `/`-separated.
    pub path: String,
    pub entries: Vec<Entry>,
    /// Artifact names of the attached layers and extensions, in merge order (functions only).
    pub layers: Vec<String>,
    /// Layers attached by version ARN, each with its place in the merge order (functions only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub arn_layers: Vec<crate::units::AttachedArn>,
    /// Functions: MemorySize and EphemeralStorage (MB) from the metadata; `None`: Lambda's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<u64>,
    pub size_unzipped: u64,
    /// The function plus every attached layer, unzipped (functions only): what Lambda limits.
    pub size_unzipped_with_layers: Option<u64>,
    /// What the metadata asked for (`package = ...`); `format` is what the plan chose.
    pub requested_format: PackageFormat,
    /// For images: the Dockerfile's text (`entries` are then the build context's files).
    pub dockerfile: Option<String>,
    /// For images: the `docker build` command, relative to the output directory.
    pub build_command: Option<String>,
    /// For images: the Dockerfile's `FROM`, when the metadata overrides AWS's base image.
    pub base_image: Option<String>,
    /// For images: where `--push` sends it (`image_repository`), and the tag it gets there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    #[serde(skip)]
    pub version: String,
    /// Functions: their environment variables (`env`), recorded in the manifest for verify and
    /// deploy.
    pub env: std::collections::BTreeMap<String, String>,
    /// Layers and extensions: `compatible_runtimes` from the metadata, when set.
    pub compatible_runtimes: Option<Vec<String>>,
    /// ZIPs: how the manifest's `upload` is decided once the zipped size is known; images have
    /// none (they are pushed). Not part of `plan`'s output, which shows no upload.
    #[serde(skip)]
    pub upload: Option<UploadRule>,
    /// Finding codes `allow` downgrades, for the findings decided after the artifact itself
    /// (`no-bootstrap`, once the layers are known).
    #[serde(skip)]
    pub allow: Vec<String>,
    pub findings: Vec<PlannedFinding>,
    /// The CycloneDX SBOM written beside the artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<PlannedSbom>,
    /// Why the artifact looks the way it does, one decision per line, for `plan`.
    pub reasons: Vec<String>,
}

/// The SBOM of an artifact: where it goes and what it lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedSbom {
    /// `<arch>/<name>.cdx.json`, relative to the output directory.
    pub path: String,
    /// How many components it lists (crates and bundled libraries).
    pub components: usize,
    #[serde(skip)]
    pub contents: crate::sbom::cyclonedx::Contents,
    /// `SOURCE_DATE_EPOCH`: the document's timestamp, when given.
    #[serde(skip)]
    pub source_date_epoch: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub builds: Vec<BuildRequest>,
    pub timestamp: ZipTimestamp,
    pub artifacts: Vec<PlannedArtifact>,
    /// Files of earlier runs to delete, relative to the output directory: artifacts of packages
    /// packed in this run (or gone from the workspace) that this run no longer produces.
    pub stale: Vec<String>,
    /// Things worth a person's attention that do not stop the run (overlapping layer paths).
    pub warnings: Vec<String>,
    /// With `--shard K/N`: every shard's functions (set by the command, not by [`plan`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shards: Option<Vec<crate::shard::ShardListing>>,
}

impl Plan {
    /// Findings that stop a pack: errors nobody allowed.
    pub fn blocking_findings(&self) -> impl Iterator<Item = (&PlannedArtifact, &PlannedFinding)> {
        self.artifacts
            .iter()
            .flat_map(|a| a.findings.iter().map(move |f| (a, f)))
            .filter(|(_, f)| f.is_blocking())
    }
}

pub fn plan(inputs: &PlanInputs) -> Result<Plan> {
    let mut warnings = Vec::new();
    let units = lambda_binary::leave_out_non_lambda(&inputs.units, &mut warnings);
    lambda_binary::warn_of_extensions_packed_as_functions(&units, &mut warnings);
    let mut artifacts = with_libs_layers(&units)?
        .iter()
        .map(|facts| {
            let mut artifact = plan_unit(facts)?;
            artifact.findings.extend(lambda_binary::finding(facts));
            // A generated libs layer holds the host's libraries, not code this build compiled.
            if !facts.binaries.is_empty() || !facts.cdylibs.is_empty() {
                let flags = inputs.compile_flags.get(&facts.target.triple());
                artifact
                    .findings
                    .extend(cpu_findings(&facts.unit.allow, facts.arch, flags));
            }
            artifact.sbom = sbom::plan_sbom(facts, inputs);
            Ok(artifact)
        })
        .collect::<Result<Vec<_>>>()?;
    artifacts.sort_by(|a, b| (a.arch, &a.name).cmp(&(b.arch, &b.name)));
    warnings.extend(attach_layers(&mut artifacts)?);
    warnings.extend(deprecated_runtime::deprecated_runtime_warnings(&artifacts));
    scratch_findings(inputs, &mut artifacts);
    let produced: BTreeSet<&str> = artifacts.iter().map(|a| a.path.as_str()).collect();
    let mut stale: Vec<String> = inputs
        .previous
        .iter()
        .filter(|(path, package)| {
            !produced.contains(path.as_str())
                && (inputs.selected_packages.contains(package)
                    || !inputs.workspace_packages.contains(package))
        })
        .map(|(path, _)| path.clone())
        .collect();
    stale.sort();
    stale.dedup();
    Ok(Plan {
        builds: inputs.builds.clone(),
        timestamp: ZipTimestamp::from_epoch(inputs.source_date_epoch),
        artifacts,
        stale,
        warnings,
        shards: None,
    })
}

/// The `cpu-too-new` findings of a unit built with `flags` for `arch`, placed on the artifact's
/// `build flags` and downgraded when the unit allows the code.
pub fn cpu_findings(
    allow: &[String],
    arch: Arch,
    flags: Option<&crate::rustflags::CompileFlags>,
) -> Vec<PlannedFinding> {
    let Some(flags) = flags else {
        return Vec::new();
    };
    cpu_floor::findings(flags, arch)
        .into_iter()
        .map(|finding| PlannedFinding {
            entry: "build flags".into(),
            allowed: allow.iter().any(|a| a == finding.code),
            finding,
        })
        .collect()
}

/// Where a role's binaries go inside its archive, and the path Lambda sees them at.
fn binary_entry(role: Role, name: &str) -> (String, String) {
    match role {
        Role::Function => (BOOTSTRAP.to_string(), format!("/var/task/{BOOTSTRAP}")),
        Role::Extension => (
            format!("extensions/{name}"),
            format!("/opt/extensions/{name}"),
        ),
        Role::Layer => (format!("bin/{name}"), format!("/opt/bin/{name}")),
        // A custom runtime's one binary: Lambda runs /opt/bootstrap when the function has none.
        Role::Runtime => (BOOTSTRAP.to_string(), format!("/opt/{BOOTSTRAP}")),
    }
}

fn plan_unit(facts: &UnitFacts) -> Result<PlannedArtifact> {
    let unit = &facts.unit;
    let mut files: Vec<Entry> = Vec::new();
    let mut findings = Vec::new();
    let check = |input: &BinaryInput,
                 entry: &str,
                 lambda_path: String,
                 findings: &mut Vec<PlannedFinding>| {
        let target = CheckTarget {
            arch: facts.arch,
            runtime: unit.runtimes[0],
            libc: facts.target.libc,
            role_path: lambda_path,
            host_linker: facts.linker == crate::toolchain::Linker::Host,
        };
        // A layer serves every runtime of its attachers: check against each, keep each finding once.
        let mut seen = BTreeSet::new();
        for runtime in &unit.runtimes {
            let target = CheckTarget {
                runtime: *runtime,
                ..target.clone()
            };
            for finding in crate::inspect::check_binary(&input.facts, target) {
                if seen.insert((finding.code, finding.message.clone())) {
                    findings.push(PlannedFinding {
                        entry: entry.to_string(),
                        allowed: finding.severity == Severity::Error
                            && unit.allow.iter().any(|a| a == finding.code),
                        finding,
                    });
                }
            }
        }
    };
    for binary in &facts.binaries {
        let (entry, lambda_path) = binary_entry(unit.role, &binary.name);
        check(binary, &entry, lambda_path, &mut findings);
        files.push(Entry {
            path: entry,
            mode: MODE_EXECUTABLE,
            source: Some(binary.path.clone()),
            size: binary.facts.size,
        });
    }
    for cdylib in &facts.cdylibs {
        let file_name = format!("lib{}.so", cdylib.name.replace('-', "_"));
        let entry = format!("lib/{file_name}");
        check(
            cdylib,
            &entry,
            format!("/opt/lib/{file_name}"),
            &mut findings,
        );
        files.push(Entry {
            path: entry,
            mode: MODE_EXECUTABLE,
            source: Some(cdylib.path.clone()),
            size: cdylib.facts.size,
        });
    }
    for library in &facts.libraries {
        let entry = format!("lib/{}", library.name);
        check(
            library,
            &entry,
            format!("/opt/lib/{}", library.name),
            &mut findings,
        );
        files.push(Entry {
            path: entry,
            mode: MODE_EXECUTABLE,
            source: Some(library.path.clone()),
            size: library.facts.size,
        });
    }
    // A layer's bins are many (or none); a handler-only function has none.
    let bin = (unit.role != Role::Layer)
        .then(|| unit.bins.first().map(String::as_str))
        .flatten();
    if let Some(finding) = crate::lambda_names::check(unit.role, &unit.name, &unit.package, bin) {
        findings.push(PlannedFinding {
            entry: "name".into(),
            allowed: unit.allow.iter().any(|a| a == finding.code),
            finding,
        });
    }
    let owned: BTreeSet<String> = files.iter().map(|e| e.path.clone()).collect();
    // Libraries this artifact itself puts in lib/ (→ /opt/lib, on LD_LIBRARY_PATH) are not missing.
    findings.retain(|f| {
        f.finding
            .soname
            .as_ref()
            .is_none_or(|soname| !owned.contains(&format!("lib/{soname}")))
    });
    for file in &facts.includes {
        if owned.contains(&file.dest)
            || owned
                .iter()
                .any(|p| file.dest.starts_with(&format!("{p}/")))
        {
            return Err(Error::config(format!(
                "include \"{}\" of package `{}` would overwrite `{}`, a binary of the {}",
                file.spec,
                unit.package,
                file.dest,
                unit.role.name()
            ))
            .with_help("give the include another destination with `source:destination`"));
        }
        files.push(Entry {
            path: file.dest.clone(),
            mode: if file.executable {
                MODE_EXECUTABLE
            } else {
                MODE_FILE
            },
            source: Some(file.source.clone()),
            size: file.size,
        });
    }
    let mut directories = BTreeSet::new();
    for file in &files {
        let mut parent = file.path.as_str();
        while let Some((dir, _)) = parent.rsplit_once('/') {
            directories.insert(format!("{dir}/"));
            parent = dir;
        }
    }
    let mut entries = files;
    entries.extend(directories.into_iter().map(|path| Entry {
        path,
        mode: MODE_EXECUTABLE,
        source: None,
        size: 0,
    }));
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if entries.len() > MAX_ZIP_ENTRIES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "the {} `{}` ({}) would hold {} entries; a ZIP without ZIP64 records holds at most {MAX_ZIP_ENTRIES}",
                unit.role.name(),
                unit.name,
                facts.arch,
                entries.len()
            ),
        )
        .with_help("include fewer files (an archive of them, or a narrower glob), or move data to S3"));
    }
    let size_unzipped = entries.iter().map(|e| e.size).sum();

    let mut reasons = unit.reasons.clone();
    reasons.push(format!(
        "runtime {}",
        unit.runtimes
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    reasons.push(match facts.glibc {
        Some(glibc) => format!(
            "{} linked by {} against glibc {glibc}",
            facts.target,
            facts.linker.describe()
        ),
        None => format!("{} linked by {}", facts.target, facts.linker.describe()),
    });
    if !facts.includes.is_empty() {
        reasons.push(format!("{} included file(s)", facts.includes.len()));
    }
    Ok(PlannedArtifact {
        name: unit.name.clone(),
        package: unit.package.clone(),
        bin: bin.map(str::to_string),
        kind: unit.role.artifact_kind(),
        layer_type: (unit.role == Role::Runtime).then_some(LayerType::Runtime),
        handler: (unit.role == Role::Function).then(|| unit.handler.clone()),
        format: Format::Zip,
        arch: facts.arch,
        runtime: unit.runtimes[0],
        runtimes: unit.runtimes.clone(),
        target: facts.target.triple(),
        linker: facts.linker,
        glibc: facts.glibc.map(|g| g.to_string()),
        path: format!("{}/{}.zip", facts.arch, unit.name),
        entries,
        layers: unit.layers.clone(),
        arn_layers: unit.arn_layers.clone(),
        memory: unit.memory,
        ephemeral_storage: unit.ephemeral_storage,
        size_unzipped,
        size_unzipped_with_layers: None,
        requested_format: unit.format,
        dockerfile: None,
        build_command: None,
        base_image: unit.base_image.clone(),
        image_repository: unit.image_repository.clone(),
        version: unit.version.clone(),
        env: unit.env.clone(),
        compatible_runtimes: unit.compatible_runtimes.clone(),
        upload: Some(UploadRule::LAMBDA),
        allow: unit.allow.clone(),
        findings,
        sbom: None,
        reasons,
    })
}

/// Sizes the way AWS writes its limits: in steps of 1024, so Lambda's 262,144,000-byte limit
/// reads `250.0 MB` here as it does in AWS's documentation.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// One line for a finding: `fn-a (x86_64) bootstrap: [glibc-too-new] needs ...; help: ...`.
pub fn finding_line(artifact: &PlannedArtifact, finding: &PlannedFinding) -> String {
    finding_line_for(&artifact.name, artifact.arch, finding)
}

/// [`finding_line`] for an artifact known by name, before it is planned.
pub fn finding_line_for(name: &str, arch: Arch, finding: &PlannedFinding) -> String {
    let mut line = format!(
        "{name} ({arch}) {}: [{}] {}",
        finding.entry, finding.finding.code, finding.finding.message
    );
    if let Some(lambda) = &finding.finding.lambda_error {
        line.push_str(&format!("; Lambda would fail with: {lambda}"));
    }
    if finding.allowed {
        line.push_str(" (allowed)");
    } else {
        line.push_str(&format!("; help: {}", finding.finding.help));
    }
    line
}

#[cfg(test)]
mod tests;
