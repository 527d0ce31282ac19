//! Container images built by this tool, without Docker: the base image pulled over the OCI
//! distribution API ([`base`], [`registry`]), this tool's layers written as reproducible tars
//! ([`layer`]), the configuration ([`config`]) and the OCI image layout ([`layout`]) beside the
//! Dockerfile context, at `<out>/<arch>/<function>.oci/`.
//!
//! The plan decides every file of the image (the context's entries); this module only writes
//! them, in the layers [`layer::image_layers`] derives from the context's layout.

pub mod base;
pub mod config;
pub mod credentials;
pub mod gzip;
pub mod layer;
pub mod layout;
pub mod push;
pub mod registry;
pub mod retry;

use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::files::Pending;
use crate::plan::{MAX_IMAGE_BYTES, PlannedArtifact, human_bytes};

pub use base::BaseSource;

/// Where base images come from, and the time every image records.
#[derive(Clone, Debug)]
pub struct ImageOptions {
    pub base: BaseSource,
    /// `SOURCE_DATE_EPOCH`: every layer entry's mtime and the config's `created` (else 0).
    pub source_date_epoch: Option<u64>,
}

impl ImageOptions {
    /// The cache lives in the target directory, beside cargo's own caches.
    pub fn new(target_dir: &Path, offline: bool, source_date_epoch: Option<u64>) -> ImageOptions {
        ImageOptions {
            base: BaseSource {
                cache_dir: target_dir.join("lambda-pack-cache/oci"),
                offline,
            },
            source_date_epoch,
        }
    }
}

/// What writing an image produced, for the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmittedImage {
    /// The layout directory, relative to the output directory.
    pub oci_layout: String,
    /// `sha256:<hex>` of the image manifest.
    pub image_digest: String,
    /// `sha256:<hex>` of the base's image manifest; `None` for `scratch`.
    pub base_image_digest: Option<String>,
}

/// Identifies how images are written; part of every inputs key so that a new writer never
/// reuses an image written the old way.
const IMAGE_WRITER_ID: &str = concat!(
    "cargo-lambda-pack ",
    env!("CARGO_PKG_VERSION"),
    " oci tar-gnu gzip-miniz-6-blocks-1m-stored-incompressible"
);

/// `sha256:<hex>` of everything an image is made from: the writer, the context (every entry's
/// path, mode and content, and the Dockerfile), the base image and the time.
fn inputs_key(context_digest: &str, base_digest: Option<&str>, epoch: u64) -> String {
    base::sha256_hex(
        format!(
            "{IMAGE_WRITER_ID}\n{context_digest}\n{}\n{epoch}\n",
            base_digest.unwrap_or("scratch")
        )
        .as_bytes(),
    )
}

/// The base image reference of an artifact: the metadata's, else AWS's for its runtime.
pub fn base_reference(artifact: &PlannedArtifact) -> String {
    artifact.base_image.clone().unwrap_or_else(|| {
        format!(
            "public.ecr.aws/lambda/provided:{}-{}",
            artifact.runtime.image_tag(),
            artifact.arch
        )
    })
}

/// The layout's path relative to the output directory: `<arch>/<function>.oci`.
pub fn layout_path(artifact: &PlannedArtifact) -> String {
    format!("{}.oci", artifact.path)
}

/// Writes the OCI image of an image artifact into a temporary directory beside its final one.
/// Returns what to record and, unless an identical layout is already in place, the directory to
/// move into place.
pub fn emit_image(
    artifact: &PlannedArtifact,
    out_dir: &Path,
    options: &ImageOptions,
    context_digest: &str,
) -> Result<(EmittedImage, Option<Pending>)> {
    // A dynamically linked binary on `scratch` is a plan finding (`plan::scratch`).
    let reference = base_reference(artifact);
    let base = options.base.resolve(&reference, artifact.arch)?;
    let epoch = options.source_date_epoch.unwrap_or(0);
    let relative = layout_path(artifact);
    let final_dir: PathBuf = out_dir.join(&relative);
    let inputs_key = inputs_key(context_digest, base.digest.as_deref(), epoch);
    let verified: Vec<&Path> = base.layers.iter().map(|l| l.blob.as_path()).collect();
    let damaged = match layout::existing_image(&final_dir, &inputs_key, &verified) {
        layout::Existing::Unchanged(image_digest) => {
            let emitted = EmittedImage {
                oci_layout: relative,
                image_digest,
                base_image_digest: base.digest,
            };
            return Ok((emitted, None));
        }
        layout::Existing::Damaged(problem) => {
            // Written again below, whole, in place of the damaged one.
            crate::output::warn_stderr(format!(
                "the image layout `{}` was changed after it was written: {problem}; writing it again",
                final_dir.display()
            ));
            true
        }
        layout::Existing::Other => false,
    };
    let base_size: u64 = base.layers.iter().map(|l| l.uncompressed_size).sum();
    let total = base_size + artifact.size_unzipped;
    if total > MAX_IMAGE_BYTES {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "function `{}` ({}) needs a {total}-byte ({}) image with its base `{reference}` ({}), over Lambda's {} container-image limit",
                artifact.name,
                artifact.arch,
                human_bytes(total),
                human_bytes(base_size),
                human_bytes(MAX_IMAGE_BYTES)
            ),
        )
        .with_help("shrink the includes (large data belongs in S3 or EFS), or choose a smaller base_image"));
    }
    let parent = final_dir.parent().unwrap_or(out_dir).to_path_buf();
    crate::files::create_dir_within(out_dir, &parent)?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{}.oci.", artifact.name))
        .suffix(".tmp")
        .tempdir_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    let layers = layer::image_layers(artifact);
    let written = layout::write_layout(
        temp.path(),
        &base,
        &layers,
        artifact.arch,
        epoch,
        &inputs_key,
        artifact
            .handler
            .as_deref()
            .unwrap_or(crate::units::DEFAULT_HANDLER),
    )
    .map_err(|e| Error::write(&final_dir, &e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| Error::write(&final_dir, &e))?;
    }
    let emitted = EmittedImage {
        oci_layout: relative,
        image_digest: written.image_digest,
        base_image_digest: base.digest,
    };
    // Blob names are their digests, so equal names mean equal images, unless one was damaged.
    let in_place = !damaged && layout::same_layout(temp.path(), &final_dir);
    let pending = (!in_place).then_some(Pending::Dir {
        temp,
        dest: final_dir,
    });
    Ok((emitted, pending))
}
