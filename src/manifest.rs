//! `manifest.json`, the schema every command reads and writes: what a pack wrote, with hashes.
//!
//! Schema 1: fields are added, never renamed or removed (the snapshot test in
//! `manifest/tests.rs` pins the JSON of a full manifest). Kind, format, architecture and runtime
//! are the enums the rest of the crate uses, so a reader never compares strings. One reader
//! ([`Manifest::read`]), one writer ([`Manifest::to_json`], written atomically by the pack's
//! transaction), and one view of an earlier run ([`Manifest::previous_zips`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metadata::Role;
use crate::target::{Arch, Runtime};

/// The manifest's file name inside the output directory.
pub const MANIFEST_FILE: &str = "manifest.json";
pub const SCHEMA_VERSION: u32 = 1;

/// What every manifest this tool writes says in `generator`: the tool and its version.
pub const GENERATOR: &str = concat!("cargo-lambda-pack ", env!("CARGO_PKG_VERSION"));
/// How `generator` starts in a manifest of any version of this tool.
pub const GENERATOR_PREFIX: &str = "cargo-lambda-pack ";

/// How an artifact is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Format {
    Zip,
    Image,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::Image => "image",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a layer is for, when it is more than shared files: `runtime`, a custom runtime whose
/// bootstrap lands at `/opt/bootstrap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum LayerType {
    Runtime,
}

/// How a ZIP reaches Lambda: inline in the API call, or through S3 when it is too large.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub enum Upload {
    Direct,
    S3,
}

/// `manifest.json`: every artifact this run wrote, with hashes. Documented in docs/src/manifest.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct Manifest {
    pub schema_version: u32,
    /// Who wrote the manifest: `cargo-lambda-pack <version>` ([`GENERATOR`]). It is what makes a
    /// directory holding a `manifest.json` this tool's (`out_dir::claim_output`). Absent in
    /// manifests written before it was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        test,
        schemars(
            description = "Who wrote the manifest: `cargo-lambda-pack <version>`. \
                                 Absent in manifests written before the field was added."
        )
    )]
    pub generator: Option<String>,
    pub artifacts: Vec<ManifestArtifact>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ManifestArtifact {
    pub name: String,
    pub package: String,
    pub bin: Option<String>,
    pub kind: Role,
    pub format: Format,
    pub arch: Arch,
    pub runtime: Runtime,
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
    pub compatible_architectures: Option<Vec<Arch>>,
    /// For layers and extensions: PublishLayerVersion's CompatibleRuntimes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_runtimes: Option<Vec<String>>,
    /// For ZIPs: `direct` when Lambda accepts the file inline, `s3` when it is too large for that.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<Upload>,
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
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
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
    /// The artifact's CycloneDX SBOM (`<arch>/<name>.cdx.json`), relative to the manifest's
    /// directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// How many components the SBOM lists (crates and bundled libraries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sbom_components: Option<usize>,
    /// Layers: `runtime` for a custom runtime's layer (`role = "runtime"`), whose bootstrap is
    /// `/opt/bootstrap`; absent for other layers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_type: Option<LayerType>,
    /// Functions: what Lambda passes to the runtime as `_HANDLER` and deploy sends as `Handler`
    /// (`handler`, default `bootstrap`). Absent in manifests written before it was added, which
    /// means `bootstrap`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// Functions: `memory` (MB, Lambda's MemorySize) and `ephemeral_storage` (MB, the size of
    /// `/tmp`) as the metadata sets them, so `verify` holds the function to what `deploy` sends;
    /// absent: Lambda's defaults (128 and 512).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<u64>,
    /// Functions: layers attached by version ARN (`layers` entries that are ARNs), each with its
    /// place among all the function's layers; the artifacts of `layers` fill the other places in
    /// their order ([`merge_order`]). Absent when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arn_layers: Vec<ArnLayerEntry>,
}

/// A layer a function attaches by version ARN.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema))]
pub struct ArnLayerEntry {
    /// `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`.
    pub arn: String,
    /// Index of this layer among all the function's layers, in merge order (0 is merged first).
    pub position: usize,
    /// The absolute path of a local copy of the layer's content (`zip` in the metadata): verify
    /// mounts it at `/opt`. Absent when none was named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip: Option<String>,
    /// The local copy's content in bytes, unzipped, as counted in `size_unzipped_with_layers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_unzipped: Option<u64>,
}

/// A function's layers in merge order: `positioned` items (ARN layers) at their recorded places,
/// `in_order` (the workspace's artifacts) filling the others. Positions past the end (an edited
/// manifest) keep their relative order at the end.
pub fn merge_order<T>(
    in_order: impl IntoIterator<Item = T>,
    positioned: impl IntoIterator<Item = (usize, T)>,
) -> Vec<T> {
    let mut positioned: Vec<(usize, T)> = positioned.into_iter().collect();
    positioned.sort_by_key(|(position, _)| *position);
    let mut positioned = positioned.into_iter().peekable();
    let mut in_order = in_order.into_iter().peekable();
    let mut merged = Vec::new();
    loop {
        if let Some((position, _)) = positioned.peek()
            && (*position <= merged.len() || in_order.peek().is_none())
        {
            merged.push(positioned.next().expect("peeked").1);
        } else if let Some(item) = in_order.next() {
            merged.push(item);
        } else {
            break;
        }
    }
    merged
}

/// What an earlier run recorded about a ZIP (from its manifest), to skip unchanged work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousZip {
    pub inputs_sha256: String,
    pub sha256: String,
    pub code_sha256: String,
    pub size_zipped: u64,
}

/// Why [`Manifest::read`] found no manifest; each command words it for its own situation.
#[derive(Debug)]
pub enum ReadError {
    Missing,
    Io(std::io::Error),
    Invalid(serde_json::Error),
}

impl Manifest {
    /// Reads the manifest at `path`.
    pub fn read(path: &Path) -> Result<Manifest, ReadError> {
        let bytes = std::fs::read(path).map_err(|err| {
            if err.kind() == std::io::ErrorKind::NotFound {
                ReadError::Missing
            } else {
                ReadError::Io(err)
            }
        })?;
        serde_json::from_slice(&bytes).map_err(ReadError::Invalid)
    }

    /// Reads the manifest of an earlier run in `out_dir`, if there is one. A manifest that cannot
    /// be read is treated as absent (it will be replaced), except that its failure is returned for
    /// a note.
    pub fn read_previous(out_dir: &Path) -> Result<Option<Manifest>, String> {
        let path = out_dir.join(MANIFEST_FILE);
        match Manifest::read(&path) {
            Ok(manifest) => Ok(Some(manifest)),
            Err(ReadError::Missing) => Ok(None),
            Err(ReadError::Io(err)) => Err(format!("could not read `{}`: {err}", path.display())),
            Err(ReadError::Invalid(err)) => {
                Err(format!("ignoring unreadable `{}`: {err}", path.display()))
            }
        }
    }

    /// The manifest's bytes, as written to `manifest.json` and printed with
    /// `--message-format json`.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("the manifest always serializes");
        text.push('\n');
        text
    }

    /// This run's manifest followed by `kept`, entries of the previous manifest that are still on
    /// disk and that this run neither replaced nor removed (other packages, other architectures,
    /// other workspaces), ordered like a single run's: by architecture, then name.
    pub fn merged_with(&self, kept: Vec<ManifestArtifact>) -> Manifest {
        let written: std::collections::HashSet<&str> =
            self.artifacts.iter().map(|a| a.path.as_str()).collect();
        let mut artifacts = self.artifacts.clone();
        artifacts.extend(
            kept.into_iter()
                .filter(|k| !written.contains(k.path.as_str())),
        );
        artifacts.sort_by_cached_key(|a| (a.arch, a.name.clone(), a.workspace_root.clone()));
        Manifest {
            schema_version: self.schema_version,
            generator: self.generator.clone(),
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

    /// The previous run's view: what each ZIP of `artifacts` was made from, by path.
    pub fn previous_zips(artifacts: &[ManifestArtifact]) -> BTreeMap<String, PreviousZip> {
        artifacts
            .iter()
            .filter_map(|a| {
                Some((
                    a.path.clone(),
                    PreviousZip {
                        inputs_sha256: a.inputs_sha256.clone()?,
                        sha256: a.sha256.clone(),
                        code_sha256: a.code_sha256.clone(),
                        size_zipped: a.size_zipped,
                    },
                ))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
