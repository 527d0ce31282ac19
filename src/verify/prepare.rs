//! Before anything runs: each selected function's ZIP and its layers' ZIPs found through the
//! manifest, confined to the output directory and checked against their recorded SHA-256.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::select::is_function;
use crate::error::{Error, Result};
use crate::manifest::{Format, Manifest, ManifestArtifact};
use crate::target::Arch;

/// A function with its ZIP and its layers' ZIPs, in merge order, all checked against the
/// manifest; or an image function with its OCI layout (its layers are inside the image).
pub(super) struct Prepared<'a> {
    pub(super) artifact: &'a ManifestArtifact,
    pub(super) arch: Arch,
    pub(super) zip: PathBuf,
    /// An image: its OCI layout and the image digest the manifest records.
    pub(super) image: Option<(PathBuf, String)>,
    pub(super) layers: Vec<PathBuf>,
    /// Layers the function attaches by ARN without a local copy: not mounted at `/opt`.
    pub(super) unmounted: Vec<String>,
    /// An extension no function attaches, run against a stand-in function.
    pub(super) standalone: bool,
}

impl Prepared<'_> {
    pub(super) fn describe(&self) -> String {
        let mut parts = vec![self.arch.to_string()];
        if self.image.is_some() {
            parts.push("image".into());
        }
        match self.layers.len() {
            0 => {}
            1 => parts.push("1 layer".into()),
            n => parts.push(format!("{n} layers")),
        }
        if self.standalone {
            parts.push("extension, stand-in function".into());
        }
        if Arch::host() != Some(self.arch) {
            parts.push("qemu".into());
        }
        format!("{} ({})", self.artifact.name, parts.join(", "))
    }
}

pub(super) fn prepare<'a>(
    artifact: &'a ManifestArtifact,
    manifest: &'a Manifest,
    out_dir: &Path,
    manifest_path: &Path,
    checked: &mut BTreeSet<PathBuf>,
) -> Result<Prepared<'a>> {
    let arch = artifact.arch;
    if artifact.format == Format::Image && is_function(artifact) {
        let (layout, digest) = image_layout(out_dir, manifest_path, artifact)?;
        return Ok(Prepared {
            artifact,
            arch,
            zip: layout.clone(),
            image: Some((layout, digest)),
            layers: Vec::new(),
            unmounted: Vec::new(),
            standalone: false,
        });
    }
    let zip = confined(out_dir, manifest_path, artifact)?;
    check_sha256(artifact, &zip, checked)?;
    let mut layers = Vec::new();
    for name in &artifact.layers {
        let attachable =
            |a: &&ManifestArtifact| &a.name == name && a.arch == artifact.arch && !is_function(a);
        // The function's own workspace's layer first, when several workspaces share the manifest.
        let layer = manifest
            .artifacts
            .iter()
            .filter(attachable)
            .find(|a| a.workspace_root == artifact.workspace_root)
            .or_else(|| manifest.artifacts.iter().find(attachable))
            .ok_or_else(|| {
                Error::config(format!(
                    "function `{}` ({}) attaches `{name}`, but `{}` has no {} layer or extension `{name}`",
                    artifact.name,
                    artifact.arch,
                    manifest_path.display(),
                    artifact.arch
                ))
                .with_help("pack the workspace again so the manifest lists every attached layer (or pass --build)")
            })?;
        let path = confined(out_dir, manifest_path, layer)?;
        check_sha256(layer, &path, checked)?;
        layers.push(path);
    }
    // Layers attached by ARN: their local copies (outside the output directory, named in the
    // metadata) take their places in the merge order; the others cannot be mounted.
    let mut copies = Vec::new();
    let mut unmounted = Vec::new();
    let mut in_order: Vec<_> = artifact.arn_layers.iter().collect();
    in_order.sort_by_key(|a| a.position);
    for attached in in_order {
        match &attached.zip {
            // Positions count the unmounted layers too, which are not in this list.
            Some(zip) => copies.push((
                attached.position.saturating_sub(unmounted.len()),
                arn_copy(artifact, &attached.arn, zip)?,
            )),
            None => unmounted.push(attached.arn.clone()),
        }
    }
    let layers = crate::manifest::merge_order(layers, copies);
    Ok(Prepared {
        artifact,
        arch,
        zip,
        image: None,
        layers,
        unmounted,
        standalone: !is_function(artifact),
    })
}

/// The local copy of a layer attached by ARN: a regular file (not through a symlink's last
/// component), which verify only reads.
fn arn_copy(artifact: &ManifestArtifact, arn: &str, zip: &str) -> Result<PathBuf> {
    let path = PathBuf::from(zip);
    let is_file = std::fs::symlink_metadata(&path).map(|m| m.is_file());
    if !path.is_absolute() || !matches!(is_file, Ok(true)) {
        return Err(Error::config(format!(
            "function `{}` ({}) attaches layer {arn} with the local copy `{zip}`, which is not a regular file",
            artifact.name, artifact.arch
        ))
        .with_help("put the layer's ZIP back at that path, or pack again after fixing `zip` in its `layers` entry"));
    }
    Ok(path)
}

/// An image function's OCI layout, read through [`crate::manifest_paths::resolve`] like every
/// manifest path, and the image digest, which the layout's `index.json` must still name (every
/// blob is checked against its digest as the image is unpacked).
fn image_layout(
    out_dir: &Path,
    manifest_path: &Path,
    artifact: &ManifestArtifact,
) -> Result<(PathBuf, String)> {
    let (Some(layout), Some(digest)) = (&artifact.oci_layout, &artifact.image_digest) else {
        return Err(Error::config(format!(
            "image function `{}` ({}) in `{}` has no `oci_layout` and `image_digest`: it was packed by a version that wrote only the Dockerfile context",
            artifact.name,
            artifact.arch,
            manifest_path.display()
        ))
        .with_help("pack again (`cargo lambda-pack`, or pass --build) to write its OCI image"));
    };
    let path = crate::manifest_paths::resolve(out_dir, layout).map_err(|refused| {
        Error::config(format!(
            "image function `{}` ({}) in `{}` has oci_layout `{layout}`, which verify refuses: {refused}",
            artifact.name,
            artifact.arch,
            manifest_path.display()
        ))
        .with_help("verify reads artifacts only from inside the manifest's directory; pack again (`cargo lambda-pack`, or pass --build) to rewrite the manifest")
    })?;
    let indexed = super::image::indexed_digest(&path).map_err(|err| {
        Error::config(format!(
            "could not read the OCI image of `{}` ({}) at `{}`: {err}",
            artifact.name,
            artifact.arch,
            path.display()
        ))
        .with_help("pack again (`cargo lambda-pack`, or pass --build) to write it")
    })?;
    if &indexed != digest {
        return Err(Error::config(format!(
            "`{}` changed since it was packed: it holds image {indexed}, the manifest says {digest}",
            path.display()
        ))
        .with_help("re-run the pack (`cargo lambda-pack`, or pass --build) so the manifest and the artifacts agree"));
    }
    Ok((path, digest.clone()))
}

/// The artifact's file, its manifest path read through [`crate::manifest_paths::resolve`]: an
/// entry whose path leaves the output directory is never read, whatever its hash.
fn confined(out_dir: &Path, manifest_path: &Path, artifact: &ManifestArtifact) -> Result<PathBuf> {
    crate::manifest_paths::resolve(out_dir, &artifact.path).map_err(|refused| {
        Error::config(format!(
            "{} `{}` ({}) in `{}` has path `{}`, which verify refuses: {refused}",
            artifact.kind,
            artifact.name,
            artifact.arch,
            manifest_path.display(),
            artifact.path
        ))
        .with_help(
            "verify reads artifacts only from inside the manifest's directory; pack again \
             (`cargo lambda-pack`, or pass --build) to rewrite the manifest",
        )
    })
}

/// The file must still be the one the manifest describes.
fn check_sha256(
    artifact: &ManifestArtifact,
    path: &Path,
    checked: &mut BTreeSet<PathBuf>,
) -> Result<()> {
    if checked.contains(path) {
        return Ok(());
    }
    let actual = crate::files::sha256_hex(path).map_err(|err| {
        Error::config(format!(
            "could not read {} `{}` ({}) at `{}`: {err}",
            artifact.kind,
            artifact.name,
            artifact.arch,
            path.display()
        ))
        .with_help("pack again (`cargo lambda-pack`, or pass --build) to write it")
    })?;
    if !actual.eq_ignore_ascii_case(&artifact.sha256) {
        return Err(Error::config(format!(
            "`{}` changed since it was packed: its SHA-256 is {actual}, the manifest says {}",
            path.display(),
            artifact.sha256
        ))
        .with_help("re-run the pack (`cargo lambda-pack`, or pass --build) so the manifest and the artifacts agree"));
    }
    checked.insert(path.to_path_buf());
    Ok(())
}
