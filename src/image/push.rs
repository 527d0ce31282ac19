//! `--push`: publishing image layouts to their `image_repository`.
//!
//! Blobs go first, each only when the registry lacks it (a HEAD answers that), and the manifest
//! last: a failure on the way never leaves a manifest pointing at missing blobs. The tag is
//! `<package version>-<arch>`; what the manifest records is `<repository>@<digest>`, the form
//! `aws lambda update-function-code --image-uri` takes and that no later tag move can change.

use std::path::{Path, PathBuf};

use oci_client::RegistryOperation;
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::files::Pending;
use crate::manifest::Manifest;
use crate::plan::{Format, Plan};

use super::registry::{block_on, client_for, parse_reference, registry_error};

/// What pushing one image did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// `<repository>@sha256:<hex>`.
    pub image_uri: String,
    pub tag: String,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// The error for `--push` when no function names a repository.
pub fn no_repository_error() -> Error {
    Error::config(
        "--push was given, but no function sets `image_repository` in its [package.metadata.lambda-pack]",
    )
    .with_help("set image_repository = \"<registry>/<repository>\" for the functions to push (or in [workspace.metadata.lambda-pack]), or drop --push")
}

/// Pushes every image artifact whose function names a repository and records its `image_uri`
/// in `manifest`. Layouts are read where they are now: a staged temporary directory (not yet
/// committed, so a failed push leaves the output directory as it was) or the one in place.
pub fn push_all(
    plan: &Plan,
    pending: &[Pending],
    out_dir: &Path,
    manifest: &mut Manifest,
    on_pushed: impl Fn(&str, &Pushed),
) -> Result<()> {
    for (artifact, entry) in plan.artifacts.iter().zip(manifest.artifacts.iter_mut()) {
        let (Format::Image, Some(repository), Some(layout)) = (
            artifact.format,
            artifact.image_repository.as_deref(),
            entry.oci_layout.as_deref(),
        ) else {
            continue;
        };
        let dest = out_dir.join(layout);
        let staged: Option<PathBuf> = pending.iter().find_map(|p| match p {
            Pending::Dir { temp, dest: d } if *d == dest => Some(temp.path().to_path_buf()),
            _ => None,
        });
        let tag = format!("{}-{}", artifact.version, artifact.arch);
        let pushed = push_layout(staged.as_deref().unwrap_or(&dest), repository, &tag)?;
        on_pushed(&artifact.name, &pushed);
        entry.image_uri = Some(pushed.image_uri);
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<(Vec<u8>, Value)> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, &e))?;
    let value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::new(ErrorKind::Internal, format!("{}: {e}", path.display())))?;
    Ok((bytes, value))
}

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap_or(digest))
}

/// Pushes the one image of the layout at `layout` to `repository:tag`.
pub fn push_layout(layout: &Path, repository: &str, tag: &str) -> Result<Pushed> {
    let (_, index) = read_json(&layout.join("index.json"))?;
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .ok_or_else(|| Error::internal(format!("{}: no manifest", layout.display())))?
        .to_string();
    let (manifest_bytes, manifest) = read_json(&blob_path(layout, &digest))?;
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let mut blobs: Vec<(String, u64)> = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .chain([&manifest["config"]])
        .map(|d| {
            (
                d["digest"].as_str().unwrap_or_default().to_string(),
                d["size"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    blobs.dedup();
    let target = format!("{repository}:{tag}");
    let reference = parse_reference(&target)?;
    let registry = reference.resolve_registry().to_string();
    let credential = super::credentials::lookup(&registry)?;
    let fail = |err| registry_error(&target, &registry, &credential.source, err);
    let client = client_for(&reference);
    let auth = credential.auth.clone();
    block_on(async {
        client
            .auth(&reference, &auth, RegistryOperation::Push)
            .await
            .map_err(fail)?;
        let mut pushed = Pushed {
            image_uri: format!("{repository}@{digest}"),
            tag: tag.to_string(),
            blobs_uploaded: 0,
            bytes_uploaded: 0,
        };
        for (blob, size) in &blobs {
            if client.blob_exists(&reference, blob).await.map_err(fail)? {
                continue;
            }
            let path = blob_path(layout, blob);
            let data = std::fs::read(&path).map_err(|e| Error::read(&path, &e))?;
            client
                .push_blob(&reference, data, blob)
                .await
                .map_err(fail)?;
            pushed.blobs_uploaded += 1;
            pushed.bytes_uploaded += size;
        }
        let content_type = http::HeaderValue::from_str(&media_type)
            .map_err(|e| Error::internal(format!("manifest media type: {e}")))?;
        client
            .push_manifest_raw(&reference, manifest_bytes, content_type)
            .await
            .map_err(fail)?;
        Ok(pushed)
    })
}
