//! What a run tells its users: the JSON manifest (for scripts) and the summary table and plan
//! listing (for people). Rendering only; printing goes through [`crate::output::Shell`].

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::emit::Emitted;
use crate::error::{Error, Result};
use crate::metadata::Role;
use crate::plan::{Format, Plan, PlannedArtifact, PlannedFinding, human_bytes};
use crate::units::role_name;

/// The manifest's file name inside the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SCHEMA_VERSION: u32 = 1;
/// The largest ZIP Lambda accepts inline (`ZipFile`): the API refuses requests over 69,905,067
/// bytes, and base64 makes 3 bytes into 4, so 52,428,800 bytes (50 MiB) of ZIP fit. Larger
/// artifacts have to go through S3.
pub const MAX_DIRECT_UPLOAD_BYTES: u64 = 52_428_800;

/// `manifest.json`: every artifact this run wrote, with hashes. Documented in README.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub artifacts: Vec<ManifestArtifact>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestArtifact {
    pub name: String,
    pub package: String,
    pub bin: Option<String>,
    pub kind: String,
    pub format: String,
    pub arch: String,
    pub runtime: String,
    /// The Rust target triple the binaries were built for.
    pub target: String,
    /// Relative to the manifest's directory, `/`-separated.
    pub path: String,
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Base64 SHA-256 of the file, as Lambda reports `CodeSha256`.
    pub code_sha256: String,
    pub size_zipped: u64,
    pub size_unzipped: u64,
    /// Artifact names of the layers the function attaches, in order.
    pub layers: Vec<String>,
    /// The function plus its attached layers, unzipped (functions only): what Lambda limits to
    /// 262,144,000 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_unzipped_with_layers: Option<u64>,
    /// For layers and extensions: PublishLayerVersion's CompatibleArchitectures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_architectures: Option<Vec<String>>,
    /// For layers and extensions: PublishLayerVersion's CompatibleRuntimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_runtimes: Option<Vec<String>>,
    /// For ZIPs: `direct` when Lambda accepts the file inline, `s3` when it is too large for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    /// glibc the binaries were linked against, when pinned (zig, gnu targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub glibc: Option<String>,
    /// For images: the Dockerfile, relative to the manifest's directory (`path` is its context).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// For images: bytes of content the image adds to its base (bootstrap, includes, layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<u64>,
    /// For images: the command that builds it, to run in the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_command: Option<String>,
    /// For ZIPs: hex SHA-256 of everything the archive is made from (entries' paths, modes and
    /// contents, timestamp, writer); an unchanged value means an unchanged archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs_sha256: Option<String>,
    /// Binary-check findings that did not stop the run (warnings, and errors allowed by `allow`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Functions: their environment variables from the metadata (`env`), as written in
    /// Cargo.toml, for verify and deploy.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub env: std::collections::BTreeMap<String, String>,
    /// The root directory of the Cargo workspace that produced the artifact. Several workspaces
    /// may share one output directory (a shared `CARGO_TARGET_DIR`): a pack removes and `verify`
    /// runs only its own workspace's entries. Absent in manifests written before it was added;
    /// such entries count as the current workspace's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_root: Option<String>,
    /// For images: the OCI image layout directory, relative to the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_layout: Option<String>,
    /// For images: `sha256:<hex>` of the image manifest (what a registry names the image by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// For images: `sha256:<hex>` of the base image's manifest (absent for `scratch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_image_digest: Option<String>,
    /// For images pushed with `--push`: `<image_repository>@<image_digest>`, what
    /// `update-function-code --image-uri` takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
}

fn kind_name(kind: Role) -> &'static str {
    role_name(kind)
}

/// One line for a finding: `fn-a (x86_64) bootstrap: [glibc-too-new] needs ...; help: ...`.
pub fn finding_line(artifact: &PlannedArtifact, finding: &PlannedFinding) -> String {
    let mut line = format!(
        "{} ({}) {}: [{}] {}",
        artifact.name, artifact.arch, finding.entry, finding.finding.code, finding.finding.message
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

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Zip => "zip",
        Format::Image => "image",
    }
}

/// Layers and extensions: the metadata's `compatible_runtimes` (with the attaching functions'
/// runtimes), else the runtimes of the functions attaching it.
fn compatible_runtimes(artifact: &PlannedArtifact) -> Option<Vec<String>> {
    if artifact.kind == Role::Function {
        return None;
    }
    Some(
        artifact
            .compatible_runtimes
            .clone()
            .unwrap_or_else(|| artifact.runtimes.iter().map(|r| r.to_string()).collect()),
    )
}

/// The manifest of what this run wrote; `workspace_root` is recorded on every entry.
pub fn manifest(plan: &Plan, emitted: &[Emitted], workspace_root: &Path) -> Manifest {
    let artifacts = plan
        .artifacts
        .iter()
        .zip(emitted)
        .map(|(artifact, emitted)| ManifestArtifact {
            name: artifact.name.clone(),
            package: artifact.package.clone(),
            bin: artifact.bin.clone(),
            kind: kind_name(artifact.kind).to_string(),
            format: format_name(artifact.format).to_string(),
            arch: artifact.arch.to_string(),
            runtime: artifact.runtime.to_string(),
            target: artifact.target.clone(),
            path: artifact.path.clone(),
            sha256: emitted.sha256.clone(),
            code_sha256: emitted.code_sha256.clone(),
            size_zipped: emitted.size_zipped,
            size_unzipped: artifact.size_unzipped,
            layers: artifact.layers.clone(),
            size_unzipped_with_layers: artifact.size_unzipped_with_layers,
            compatible_architectures: (artifact.kind != Role::Function)
                .then(|| vec![artifact.arch.to_string()]),
            compatible_runtimes: compatible_runtimes(artifact),
            upload: (artifact.format == Format::Zip).then(|| {
                if emitted.size_zipped > MAX_DIRECT_UPLOAD_BYTES {
                    "s3"
                } else {
                    "direct"
                }
                .to_string()
            }),
            glibc: artifact.glibc.clone(),
            dockerfile: (artifact.format == Format::Image)
                .then(|| format!("{}/Dockerfile", artifact.path)),
            image_size: (artifact.format == Format::Image).then_some(artifact.size_unzipped),
            build_command: artifact.build_command.clone(),
            inputs_sha256: emitted.inputs_sha256.clone(),
            warnings: artifact
                .findings
                .iter()
                .filter(|f| !f.is_blocking())
                .map(|f| finding_line(artifact, f))
                .collect(),
            env: artifact.env.clone(),
            workspace_root: Some(workspace_root.display().to_string()),
            oci_layout: emitted.image.as_ref().map(|i| i.oci_layout.clone()),
            image_digest: emitted.image.as_ref().map(|i| i.image_digest.clone()),
            base_image_digest: emitted
                .image
                .as_ref()
                .and_then(|i| i.base_image_digest.clone()),
            image_uri: None,
        })
        .collect();
    Manifest {
        schema_version: SCHEMA_VERSION,
        artifacts,
    }
}

impl Manifest {
    /// This run's manifest followed by `kept`, entries of the previous manifest that are still on
    /// disk and that this run neither replaced nor removed (other packages, other architectures,
    /// other workspaces), ordered like a single run's: by architecture, then name.
    pub fn merged_with(&self, kept: Vec<ManifestArtifact>) -> Manifest {
        let mut artifacts = self.artifacts.clone();
        artifacts.extend(
            kept.into_iter()
                .filter(|k| !self.artifacts.iter().any(|a| a.path == k.path)),
        );
        artifacts.sort_by_cached_key(|a| {
            (
                crate::target::Arch::parse(&a.arch),
                a.name.clone(),
                a.workspace_root.clone(),
            )
        });
        Manifest {
            schema_version: self.schema_version,
            artifacts,
        }
    }

    /// Whether `artifact` belongs to the workspace at `root` (entries without a recorded root
    /// come from a version that did not record it, and count as the current workspace's).
    pub fn belongs_to(artifact: &ManifestArtifact, root: &Path) -> bool {
        artifact
            .workspace_root
            .as_deref()
            .is_none_or(|recorded| Path::new(recorded) == root)
    }

    /// What each ZIP of this manifest was made from, by path, for skipping unchanged work.
    pub fn previous_inputs(&self) -> std::collections::BTreeMap<String, crate::emit::Previous> {
        self.artifacts
            .iter()
            .filter_map(|a| {
                Some((
                    a.path.clone(),
                    crate::emit::Previous {
                        inputs_sha256: a.inputs_sha256.clone()?,
                        sha256: a.sha256.clone(),
                        code_sha256: a.code_sha256.clone(),
                        size_zipped: a.size_zipped,
                    },
                ))
            })
            .collect()
    }

    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("the manifest always serializes");
        text.push('\n');
        text
    }

    /// Reads the manifest of an earlier run, if there is one. A manifest that cannot be read is
    /// treated as absent (it will be replaced), except that its failure is returned for a note.
    pub fn read_previous(out_dir: &Path) -> std::result::Result<Option<Manifest>, String> {
        let path = out_dir.join(MANIFEST_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(format!("could not read `{}`: {err}", path.display())),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|err| format!("ignoring unreadable `{}`: {err}", path.display()))
    }

    /// Reads a manifest a user points at (for commands that consume one).
    pub fn read(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).map_err(|err| {
            Error::config(format!(
                "could not read manifest `{}`: {err}",
                path.display()
            ))
            .with_help("run `cargo lambda-pack` first, or pass the manifest's path")
        })?;
        serde_json::from_slice(&bytes).map_err(|err| {
            Error::config(format!(
                "`{}` is not a lambda-pack manifest: {err}",
                path.display()
            ))
            .with_help("regenerate it with `cargo lambda-pack`")
        })
    }
}

/// The summary table printed on stderr after a pack.
pub fn summary_table(manifest: &Manifest, out_dir: &Path) -> String {
    let header = ["artifact", "kind", "arch", "zipped", "unzipped", "path"];
    let mut rows: Vec<[String; 6]> = vec![header.map(str::to_string)];
    for artifact in &manifest.artifacts {
        let mut path = out_dir.join(&artifact.path).display().to_string();
        if artifact.upload.as_deref() == Some("s3") {
            path.push_str("  (upload via S3)");
        }
        // The manifest's build command runs from the manifest's directory; shown here with the
        // context's full path so it can be pasted anywhere.
        if let Some(command) = &artifact.build_command {
            let program = command
                .strip_suffix(artifact.path.as_str())
                .unwrap_or(command);
            path.push_str(&format!(
                "  (image: {program}{})",
                out_dir.join(&artifact.path).display()
            ));
        }
        rows.push([
            artifact.name.clone(),
            if artifact.format == "image" {
                format!("{} image", artifact.kind)
            } else {
                artifact.kind.clone()
            },
            artifact.arch.clone(),
            if artifact.format == "image" {
                "-".to_string()
            } else {
                human_bytes(artifact.size_zipped)
            },
            human_bytes(artifact.size_unzipped),
            path,
        ]);
    }
    render_table(&rows)
}

fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            if index + 1 == N {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

/// The human rendering of a plan: builds, then each artifact with its entries and reasons.
pub fn plan_listing(plan: &Plan, out_dir: &Path) -> String {
    let mut text = String::new();
    for build in &plan.builds {
        text.push_str(&format!(
            "build {}: packages {}; bins {}\n",
            build.describe(),
            build.packages.join(", "),
            build.bins.join(", ")
        ));
    }
    for artifact in &plan.artifacts {
        text.push_str(&artifact_listing(artifact, out_dir));
    }
    for stale in &plan.stale {
        text.push_str(&format!(
            "remove {} (no longer produced)\n",
            out_dir.join(stale).display()
        ));
    }
    text
}

fn artifact_listing(artifact: &PlannedArtifact, out_dir: &Path) -> String {
    let mut text = format!(
        "{}: {} {} {} -> {}\n",
        artifact.name,
        kind_name(artifact.kind),
        format_name(artifact.format),
        artifact.arch,
        out_dir.join(&artifact.path).display()
    );
    for reason in &artifact.reasons {
        text.push_str(&format!("    {reason}\n"));
    }
    if !artifact.layers.is_empty() {
        text.push_str(&format!(
            "    layers, in merge order: {}\n",
            artifact.layers.join(", ")
        ));
    }
    for finding in &artifact.findings {
        let label = if finding.is_blocking() {
            "error"
        } else {
            "warning"
        };
        text.push_str(&format!(
            "    {label}: {}\n",
            finding_line(artifact, finding)
        ));
    }
    for entry in &artifact.entries {
        text.push_str(&format!(
            "    {:o} {:>10} {}\n",
            entry.mode,
            human_bytes(entry.size),
            entry.path
        ));
    }
    text
}

/// What `inspect` reports for one file.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    pub path: String,
    pub facts: crate::inspect::BinaryFacts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<crate::target::Runtime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<crate::inspect::Finding>>,
}

/// The human rendering of [`InspectReport`].
pub fn inspect_listing(report: &InspectReport) -> String {
    let facts = &report.facts;
    let mut text = format!("{}\n", report.path);
    let kind = serde_json::to_value(facts.kind)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default();
    let arch = facts
        .arch
        .map(|a| a.to_string())
        .unwrap_or_else(|| "not a Lambda architecture".into());
    text.push_str(&format!(
        "  machine:      {} ({}, {arch}), ELF{}\n",
        facts.machine_name, facts.machine, facts.elf_class
    ));
    text.push_str(&format!("  kind:         {kind}\n"));
    match &facts.interpreter {
        Some(interpreter) => text.push_str(&format!(
            "  linkage:      dynamic, interpreter {interpreter}\n"
        )),
        None => text.push_str("  linkage:      static\n"),
    }
    if let Some(libc) = facts.libc {
        let name = match libc {
            crate::target::Libc::Gnu => "glibc",
            crate::target::Libc::Musl => "musl",
        };
        text.push_str(&format!("  libc:         {name}\n"));
    }
    if !facts.needed.is_empty() {
        text.push_str(&format!("  needed:       {}\n", facts.needed.join(", ")));
    }
    if let Some(soname) = &facts.soname {
        text.push_str(&format!("  soname:       {soname}\n"));
    }
    if let Some(glibc) = facts.max_glibc_name() {
        text.push_str(&format!("  newest glibc: {glibc}\n"));
    }
    text.push_str(&format!(
        "  stripped:     {}{}\n",
        if facts.stripped { "yes" } else { "no" },
        if facts.debug_info {
            ", has debug info"
        } else {
            ""
        }
    ));
    text.push_str(&format!(
        "  size:         {} ({} bytes)\n",
        human_bytes(facts.size),
        facts.size
    ));
    if let (Some(runtime), Some(findings)) = (report.runtime, &report.findings) {
        if findings.is_empty() {
            text.push_str(&format!("  {runtime}: no findings\n"));
        }
        for finding in findings {
            text.push_str(&format!(
                "  {runtime}: {} [{}] {}\n",
                finding.severity, finding.code, finding.message
            ));
            if let Some(lambda) = &finding.lambda_error {
                text.push_str(&format!("      Lambda would fail with: {lambda}\n"));
            }
            text.push_str(&format!("      help: {}\n", finding.help));
        }
    }
    text
}
