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
use crate::emit::zip::ZipTimestamp;
use crate::error::{Error, ErrorKind, Result};
use crate::include::IncludedFile;
use crate::inspect::{BinaryFacts, CheckTarget, Finding, Severity};
use crate::metadata::{PackageFormat, Role};
use crate::target::{Arch, GlibcVersion, Runtime, RustTarget};
use crate::toolchain::Linker;
use crate::units::{Unit, role_name};

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
/// The mode of executables and directories in archives.
pub const MODE_EXECUTABLE: u32 = 0o755;
/// The mode of other files in archives.
pub const MODE_FILE: u32 = 0o644;

/// A built binary or cdylib, as the planner sees it.
#[derive(Clone, Debug)]
pub struct BinaryInput {
    /// The Cargo target's name (bin name, or lib name for a cdylib).
    pub name: String,
    pub path: PathBuf,
    pub facts: BinaryFacts,
}

/// Everything known about one unit on one architecture once its binaries are built.
#[derive(Clone, Debug)]
pub struct UnitFacts {
    pub unit: Unit,
    pub arch: Arch,
    pub target: RustTarget,
    pub linker: Linker,
    pub glibc: Option<GlibcVersion>,
    /// In the order of `unit.bins`.
    pub binaries: Vec<BinaryInput>,
    /// In the order of `unit.cdylibs`.
    pub cdylibs: Vec<BinaryInput>,
    /// Shared libraries copied from the build host into a generated layer, each placed at
    /// `lib/<name>` where `name` is its soname.
    pub libraries: Vec<BinaryInput>,
    pub includes: Vec<IncludedFile>,
}

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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Zip,
    Image,
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
    pub kind: Role,
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
    pub findings: Vec<PlannedFinding>,
    /// Why the artifact looks the way it does, one decision per line, for `plan`.
    pub reasons: Vec<String>,
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
    let mut artifacts = inputs
        .units
        .iter()
        .map(plan_unit)
        .collect::<Result<Vec<_>>>()?;
    artifacts.sort_by(|a, b| (a.arch, &a.name).cmp(&(b.arch, &b.name)));
    let warnings = attach_layers(&mut artifacts)?;
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
    })
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
    let bin = (unit.role != Role::Layer).then(|| unit.bins[0].as_str());
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
                role_name(unit.role)
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
                role_name(unit.role),
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
        bin: (unit.role != Role::Layer).then(|| unit.bins[0].clone()),
        kind: unit.role,
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
        findings,
        reasons,
    })
}

/// A layer or extension as a function sees it.
struct Attachable {
    size: u64,
    role: Role,
    entries: Vec<Entry>,
}

/// Checks each function's attachments against Lambda's limits, totals its unzipped size with its
/// layers, routes functions that outgrow a ZIP to a container image, and warns where two layers
/// write the same path (the later one wins, as in Lambda).
fn attach_layers(artifacts: &mut [PlannedArtifact]) -> Result<Vec<String>> {
    let by_key: BTreeMap<(Arch, String), Attachable> = artifacts
        .iter()
        .filter(|a| a.kind != Role::Function)
        .map(|a| {
            let attachable = Attachable {
                size: a.size_unzipped,
                role: a.kind,
                entries: a.entries.clone(),
            };
            ((a.arch, a.name.clone()), attachable)
        })
        .collect();
    let mut warnings = Vec::new();
    for artifact in artifacts.iter_mut().filter(|a| a.kind == Role::Function) {
        let layers: Vec<&Attachable> = artifact
            .layers
            .iter()
            .map(|name| {
                by_key
                    .get(&(artifact.arch, name.clone()))
                    .expect("attached artifacts are planned for the function's architecture")
            })
            .collect();
        let extensions: usize = layers
            .iter()
            .filter(|l| l.role == Role::Extension)
            .map(|l| l.entries.iter().filter(|e| e.source.is_some()).count())
            .sum();
        if extensions > MAX_EXTENSIONS {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "function `{}` attaches {extensions} extensions; Lambda allows at most {MAX_EXTENSIONS}",
                    artifact.name
                ),
            )
            .with_help("attach fewer extensions"));
        }
        let total = artifact.size_unzipped + layers.iter().map(|l| l.size).sum::<u64>();
        artifact.size_unzipped_with_layers = Some(total);
        // A library an attached layer puts in /opt/lib (on LD_LIBRARY_PATH) is no longer missing.
        let mut satisfied = Vec::new();
        artifact.findings.retain(|finding| {
            let Some(soname) = &finding.finding.soname else {
                return true;
            };
            let path = format!("lib/{soname}");
            match artifact
                .layers
                .iter()
                .zip(&layers)
                .find(|(_, l)| l.entries.iter().any(|e| e.path == path))
            {
                Some((name, _)) => {
                    satisfied.push(format!("{soname} comes from layer `{name}` (/opt/lib)"));
                    false
                }
                None => true,
            }
        });
        artifact.reasons.extend(satisfied);
        let too_many_layers = layers.len() > MAX_LAYERS;
        let too_big = total > MAX_UNZIPPED_BYTES;
        let why_image = match artifact.requested_format {
            PackageFormat::Image => Some("package = \"image\"".to_string()),
            PackageFormat::Auto if too_big => Some(format!(
                "{} unzipped > {} limit",
                human_bytes(total),
                human_bytes(MAX_UNZIPPED_BYTES)
            )),
            PackageFormat::Auto if too_many_layers => {
                Some(format!("{} layers > {MAX_LAYERS} limit", layers.len()))
            }
            PackageFormat::Zip if too_big => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "function `{}` ({}) is {total} bytes unzipped with its layers ({}), over Lambda's {MAX_UNZIPPED_BYTES}-byte ({}) limit, and package = \"zip\" forbids a container image",
                        artifact.name,
                        artifact.arch,
                        human_bytes(total),
                        human_bytes(MAX_UNZIPPED_BYTES)
                    ),
                )
                .with_help("remove package = \"zip\" (or set \"auto\") to get a Dockerfile and build context instead, or shrink the includes or the binary"));
            }
            PackageFormat::Zip if too_many_layers => {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "function `{}` attaches {} layers ({}); Lambda allows at most {MAX_LAYERS}, and package = \"zip\" forbids a container image",
                        artifact.name,
                        layers.len(),
                        artifact.layers.join(", ")
                    ),
                )
                .with_help("merge some layer crates into one, attach fewer, or remove package = \"zip\" to get a container image"));
            }
            _ => None,
        };
        // Later layers win; report each shared path once, naming the winner.
        let mut writers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, layer) in artifact.layers.iter().zip(&layers) {
            for entry in layer.entries.iter().filter(|e| e.source.is_some()) {
                writers
                    .entry(entry.path.as_str())
                    .or_default()
                    .push(name.as_str());
            }
        }
        for (path, names) in writers {
            if names.len() > 1 {
                warnings.push(format!(
                    "layers {} of function `{}` ({}) all write /opt/{path}; `{}` wins because it is attached last",
                    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(" and "),
                    artifact.name,
                    artifact.arch,
                    names.last().expect("at least two")
                ));
            }
        }
        match why_image {
            None => artifact.reasons.push(if artifact.layers.is_empty() {
                format!(
                    "zip: {} unzipped, within the {} limit",
                    human_bytes(total),
                    human_bytes(MAX_UNZIPPED_BYTES)
                )
            } else {
                format!(
                    "zip: {} unzipped with layers {}, within the {} limit",
                    human_bytes(total),
                    artifact.layers.join(", "),
                    human_bytes(MAX_UNZIPPED_BYTES)
                )
            }),
            Some(why) => {
                let names = artifact.layers.clone();
                let named: Vec<(&str, &Attachable)> = names
                    .iter()
                    .map(String::as_str)
                    .zip(layers.iter().copied())
                    .collect();
                into_image(artifact, &named, &why)?;
            }
        }
    }
    Ok(warnings)
}

/// Turns a function into a container image: a Dockerfile and a build context holding the
/// bootstrap, the includes and every attached layer's contents.
///
/// Context layout (paths relative to `<arch>/<function>/`): `bootstrap`; `task/...` (includes,
/// copied to `${LAMBDA_TASK_ROOT}`); `opt/NN-<layer>/...` per layer in attachment order (copied
/// to `/opt`, so later layers win as in Lambda); `Dockerfile`; `.dockerignore`.
fn into_image(
    artifact: &mut PlannedArtifact,
    layers: &[(&str, &Attachable)],
    why: &str,
) -> Result<()> {
    let mut entries = Vec::new();
    for entry in &artifact.entries {
        if entry.path == BOOTSTRAP {
            entries.push(entry.clone());
        } else {
            entries.push(Entry {
                path: format!("task/{}", entry.path),
                ..entry.clone()
            });
        }
    }
    let has_task = entries.iter().any(|e| e.path.starts_with("task/"));
    if has_task {
        entries.push(Entry {
            path: "task/".into(),
            mode: MODE_EXECUTABLE,
            source: None,
            size: 0,
        });
    }
    let mut copies = Vec::new();
    for (index, (name, layer)) in layers.iter().enumerate() {
        let dir = format!("opt/{:02}-{name}/", index + 1);
        entries.push(Entry {
            path: dir.clone(),
            mode: MODE_EXECUTABLE,
            source: None,
            size: 0,
        });
        for entry in &layer.entries {
            entries.push(Entry {
                path: format!("{dir}{}", entry.path),
                ..entry.clone()
            });
        }
        copies.push(format!("# layer `{name}`\nCOPY {dir} /opt/\n"));
    }
    if !layers.is_empty() {
        entries.push(Entry {
            path: "opt/".into(),
            mode: MODE_EXECUTABLE,
            source: None,
            size: 0,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let size: u64 = entries.iter().map(|e| e.size).sum();
    if size > MAX_IMAGE_BYTES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "function `{}` ({}) needs a {size}-byte ({}) image, over Lambda's {} container-image limit",
                artifact.name,
                artifact.arch,
                human_bytes(size),
                human_bytes(MAX_IMAGE_BYTES)
            ),
        )
        .with_help("shrink the includes: large data belongs in S3 or EFS, not in the function"));
    }
    let context = format!("{}/{}", artifact.arch, artifact.name);
    let build_command = format!(
        "docker build --platform {} --provenance=false -t {} {context}",
        artifact.arch.docker_platform(),
        artifact.name
    );
    let mut dockerfile = format!(
        "# Function `{}` ({}, {}), generated by cargo-lambda-pack.\n\
         # Build from the directory holding manifest.json:\n\
         #   {build_command}\n\
         FROM {}\n",
        artifact.name,
        artifact.arch,
        artifact.runtime,
        artifact.base_image.clone().unwrap_or_else(|| format!(
            "public.ecr.aws/lambda/provided:{}-{}",
            artifact.runtime.image_tag(),
            artifact.arch
        )),
    );
    for copy in copies {
        dockerfile.push_str(&copy);
    }
    if has_task {
        dockerfile.push_str("COPY task/ ${LAMBDA_TASK_ROOT}/\n");
    }
    dockerfile.push_str("COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap\nCMD [\"bootstrap\"]\n");
    artifact.reasons.push(format!(
        "image ({why}): {} of content in {}",
        human_bytes(size),
        context
    ));
    artifact.format = Format::Image;
    artifact.path = context;
    artifact.entries = entries;
    artifact.size_unzipped = size;
    artifact.dockerfile = Some(dockerfile);
    artifact.build_command = Some(build_command);
    Ok(())
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

#[cfg(test)]
mod tests;
