//! The manifest entry of each artifact a pack wrote: the plan's decisions plus what writing
//! measured (hashes, zipped size).

use std::path::Path;

use super::Emitted;
use crate::manifest::{
    ArnLayerEntry, Format, GENERATOR, Manifest, ManifestArtifact, SCHEMA_VERSION,
};
use crate::metadata::Role;
use crate::plan::{Plan, PlannedArtifact, finding_line};

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
            kind: artifact.kind,
            format: artifact.format,
            arch: artifact.arch,
            runtime: artifact.runtime,
            target: artifact.target.clone(),
            path: artifact.path.clone(),
            sha256: emitted.sha256.clone(),
            code_sha256: emitted.code_sha256.clone(),
            size_zipped: emitted.size_zipped,
            size_unzipped: artifact.size_unzipped,
            layers: artifact.layers.clone(),
            size_unzipped_with_layers: artifact.size_unzipped_with_layers,
            compatible_architectures: (artifact.kind != Role::Function)
                .then(|| vec![artifact.arch]),
            compatible_runtimes: compatible_runtimes(artifact),
            upload: artifact.upload.map(|rule| rule.upload(emitted.size_zipped)),
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
            sbom: artifact.sbom.as_ref().map(|s| s.path.clone()),
            sbom_components: artifact.sbom.as_ref().map(|s| s.components),
            layer_type: artifact.layer_type,
            handler: artifact.handler.clone(),
            memory: artifact.memory,
            ephemeral_storage: artifact.ephemeral_storage,
            arn_layers: artifact
                .arn_layers
                .iter()
                .map(|attached| ArnLayerEntry {
                    arn: attached.layer.arn.clone(),
                    position: attached.position,
                    zip: attached
                        .layer
                        .zip
                        .as_ref()
                        .map(|zip| zip.display().to_string()),
                    size_unzipped: attached.size_unzipped,
                })
                .collect(),
        })
        .collect();
    Manifest {
        schema_version: SCHEMA_VERSION,
        generator: Some(GENERATOR.to_string()),
        artifacts,
    }
}
