//! The OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/…`, holding one
//! single-platform image manifest (Lambda rejects an image index).

use std::io;
use std::path::Path;

use oci_spec::image::{
    DescriptorBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, OciLayoutBuilder,
};

use super::base::{BaseImage, hash_file, sha256_hex};
use super::config::image_config;
use super::layer::{LayerBlob, LayerSpec, write_layer};
use crate::target::Arch;

/// What the layout holds, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrittenLayout {
    /// `sha256:<hex>` of the image manifest.
    pub image_digest: String,
    pub index_json: Vec<u8>,
    /// Every layer, base first, uncompressed.
    pub uncompressed_size: u64,
}

/// The layout's tag (`oci:<layout>:latest`), the default of skopeo and umoci.
pub const REF_NAME: &str = "latest";

/// The index annotation recording a digest of everything the image was made from, so that a run
/// with the same inputs can leave the layout alone without writing it again.
pub const INPUTS_ANNOTATION: &str = "dev.cargo-lambda-pack.inputs";

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Docker's media types name the same bytes as OCI's; one manifest should not mix the two.
fn oci_layer_type(media_type: &str) -> MediaType {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" | GZIP_LAYER => {
            MediaType::ImageLayerGzip
        }
        "application/vnd.docker.image.rootfs.diff.tar"
        | "application/vnd.oci.image.layer.v1.tar" => MediaType::ImageLayer,
        "application/vnd.oci.image.layer.v1.tar+zstd" => MediaType::ImageLayerZstd,
        other => MediaType::Other(other.to_string()),
    }
}

fn blob_path(dir: &Path, digest: &str) -> std::path::PathBuf {
    dir.join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap_or(digest))
}

fn write_blob(dir: &Path, bytes: &[u8]) -> io::Result<String> {
    let digest = sha256_hex(bytes);
    std::fs::write(blob_path(dir, &digest), bytes)?;
    Ok(digest)
}

fn spec_error(err: oci_spec::OciSpecError) -> io::Error {
    io::Error::other(err.to_string())
}

/// Writes the image layout into the empty directory `dir`.
pub fn write_layout(
    dir: &Path,
    base: &BaseImage,
    layers: &[LayerSpec],
    arch: Arch,
    epoch: u64,
    inputs_key: &str,
    handler: &str,
) -> io::Result<WrittenLayout> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    let mut descriptors = Vec::new();
    let mut uncompressed_size = 0;
    for layer in &base.layers {
        let dest = blob_path(dir, &layer.digest);
        // A hard link costs nothing when the cache shares the file system; else a copy.
        if std::fs::hard_link(&layer.blob, &dest).is_err() {
            std::fs::copy(&layer.blob, &dest)?;
        }
        descriptors.push(
            DescriptorBuilder::default()
                .media_type(oci_layer_type(&layer.media_type))
                .digest(parse_digest(&layer.digest)?)
                .size(layer.size)
                .build()
                .map_err(spec_error)?,
        );
        uncompressed_size += layer.uncompressed_size;
    }
    let mut written: Vec<(LayerSpec, LayerBlob)> = Vec::new();
    for spec in layers {
        let temp = tempfile::Builder::new()
            .prefix(".layer.")
            .permissions(super::base::readable())
            .tempfile_in(&blobs)?;
        let blob = write_layer(spec, epoch, io::BufWriter::new(temp.as_file()))?;
        temp.as_file().sync_all()?;
        debug_assert_eq!(hash_file(temp.path())?.0, blob.digest);
        temp.persist(blob_path(dir, &blob.digest))
            .map_err(|e| e.error)?;
        descriptors.push(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageLayerGzip)
                .digest(parse_digest(&blob.digest)?)
                .size(blob.size)
                .build()
                .map_err(spec_error)?,
        );
        uncompressed_size += blob.uncompressed_size;
        written.push((spec.clone(), blob));
    }
    let config = image_config(base.config.as_ref(), arch, epoch, &written, handler);
    let config_digest = write_blob(dir, &config)?;
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(
            DescriptorBuilder::default()
                .media_type(MediaType::ImageConfig)
                .digest(parse_digest(&config_digest)?)
                .size(config.len() as u64)
                .build()
                .map_err(spec_error)?,
        )
        .layers(descriptors)
        .build()
        .map_err(spec_error)?;
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(io::Error::other)?;
    let image_digest = write_blob(dir, &manifest_bytes)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(parse_digest(&image_digest)?)
                .size(manifest_bytes.len() as u64)
                // One key only: a HashMap of one entry serializes the same way every time.
                .annotations(std::collections::HashMap::from([(
                    "org.opencontainers.image.ref.name".to_string(),
                    REF_NAME.to_string(),
                )]))
                .build()
                .map_err(spec_error)?,
        ])
        .annotations(std::collections::HashMap::from([(
            INPUTS_ANNOTATION.to_string(),
            inputs_key.to_string(),
        )]))
        .build()
        .map_err(spec_error)?;
    let index_json = serde_json::to_vec(&index).map_err(io::Error::other)?;
    std::fs::write(dir.join("index.json"), &index_json)?;
    let oci_layout = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(spec_error)?;
    std::fs::write(
        dir.join("oci-layout"),
        serde_json::to_vec(&oci_layout).map_err(io::Error::other)?,
    )?;
    Ok(WrittenLayout {
        image_digest,
        index_json,
        uncompressed_size,
    })
}

fn parse_digest(digest: &str) -> io::Result<oci_spec::image::Digest> {
    digest
        .parse()
        .map_err(|e: oci_spec::OciSpecError| io::Error::other(e.to_string()))
}

/// True when the layout at `existing` holds the same index and the same blobs as the freshly
/// written one at `fresh`: blobs are named by their content, so equal names mean equal images.
pub fn same_layout(fresh: &Path, existing: &Path) -> bool {
    let names = |dir: &Path| -> Option<std::collections::BTreeSet<std::ffi::OsString>> {
        std::fs::read_dir(dir.join("blobs/sha256"))
            .ok()?
            .map(|e| e.ok().map(|e| e.file_name()))
            .collect()
    };
    std::fs::read(fresh.join("index.json")).ok() == std::fs::read(existing.join("index.json")).ok()
        && names(fresh).is_some()
        && names(fresh) == names(existing)
}

/// What is at a layout's place, compared with the image a run is about to write.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// Made from the same inputs, and every blob still hashes to its digest: the image digest.
    Unchanged(String),
    /// Made from the same inputs, but a blob was changed, removed or cut since: what is wrong.
    Damaged(String),
    /// Nothing, or an image of other inputs.
    Other,
}

/// Whether the layout at `dir` is the image of `inputs_key`, intact. The index's annotation says
/// what it was made from; only when that matches are the blobs read back (their size, then their
/// hash), so a layout that must be written anyway costs nothing to check. A blob that is the
/// same file as one of `verified` (the base's cache blobs, hashed when the base was loaded, which
/// the layout hard-links) is not hashed again.
pub fn existing_image(dir: &Path, inputs_key: &str, verified: &[&Path]) -> Existing {
    let Some(index) = std::fs::read(dir.join("index.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
    else {
        return Existing::Other;
    };
    if index["annotations"][INPUTS_ANNOTATION] != inputs_key {
        return Existing::Other;
    }
    let Some(digest) = index["manifests"][0]["digest"].as_str() else {
        return Existing::Damaged("its index.json names no image manifest".into());
    };
    let size = index["manifests"][0]["size"].as_u64().unwrap_or_default();
    if let Err(problem) = check_blob(dir, digest, size) {
        return Existing::Damaged(problem);
    }
    let manifest: serde_json::Value = match std::fs::read(blob_path(dir, digest))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        Some(manifest) => manifest,
        None => return Existing::Damaged(format!("its manifest blob {digest} is not JSON")),
    };
    let descriptors = std::iter::once(&manifest["config"])
        .chain(manifest["layers"].as_array().into_iter().flatten());
    for descriptor in descriptors {
        let (Some(blob), Some(size)) = (descriptor["digest"].as_str(), descriptor["size"].as_u64())
        else {
            return Existing::Damaged(format!(
                "its manifest {digest} has a descriptor without digest or size"
            ));
        };
        if is_one_of(&blob_path(dir, blob), verified) {
            continue;
        }
        if let Err(problem) = check_blob(dir, blob, size) {
            return Existing::Damaged(problem);
        }
    }
    Existing::Unchanged(digest.to_string())
}

/// Whether `path` is the very file (same device and inode) of one of `files`.
fn is_one_of(path: &Path, files: &[&Path]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    files.iter().any(|file| {
        std::fs::symlink_metadata(file)
            .is_ok_and(|other| other.dev() == meta.dev() && other.ino() == meta.ino())
    })
}

/// Whether the blob `digest` of the layout at `dir` is there with `size` bytes that hash to it;
/// else what is wrong, naming the blob's file.
pub fn check_blob(dir: &Path, digest: &str, size: u64) -> Result<(), String> {
    let path = blob_path(dir, digest);
    let shown = path.display();
    let on_disk = match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return Err(format!("blob `{shown}` is not a regular file")),
        Err(err) => return Err(format!("blob `{shown}` cannot be read: {err}")),
    };
    if on_disk != size {
        return Err(format!(
            "blob `{shown}` is {on_disk} bytes, not the {size} its digest was taken over"
        ));
    }
    match hash_file(&path) {
        Ok((actual, _)) if actual == digest => Ok(()),
        Ok((actual, _)) => Err(format!(
            "blob `{shown}` hashes to {actual}, not to its name {digest}"
        )),
        Err(err) => Err(format!("blob `{shown}` cannot be read: {err}")),
    }
}
