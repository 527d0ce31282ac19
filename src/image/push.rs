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

use super::registry::{block_on, client_for, parse_reference, step_error};
use super::retry::{self, Failed, Policy};

/// What pushing one image did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    /// `<repository>@sha256:<hex>`.
    pub image_uri: String,
    pub tag: String,
    pub blobs_uploaded: usize,
    pub bytes_uploaded: u64,
}

/// oci-client sends a chunked upload one PATCH of at most this many bytes at a time; reading the
/// file in pieces of the same size keeps one piece in memory, whatever the layer's size.
const UPLOAD_CHUNK_BYTES: usize = 4 * 1024 * 1024;

enum Upload {
    Read(std::io::Error),
    Registry(oci_client::errors::OciDistributionError),
}

/// The file's bytes, [`UPLOAD_CHUNK_BYTES`] at a time; a read error ends the stream.
struct FileChunks {
    file: Option<std::fs::File>,
}

impl Iterator for FileChunks {
    type Item = oci_client::errors::Result<bytes::Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::Read;
        let file = self.file.as_mut()?;
        let mut buffer = Vec::with_capacity(UPLOAD_CHUNK_BYTES);
        match file
            .by_ref()
            .take(UPLOAD_CHUNK_BYTES as u64)
            .read_to_end(&mut buffer)
        {
            Ok(0) => {
                self.file = None;
                None
            }
            Ok(_) => Some(Ok(bytes::Bytes::from(buffer))),
            Err(e) => {
                self.file = None;
                Some(Err(e.into()))
            }
        }
    }
}

/// Uploads one blob streamed from its file, so a large layer is never read into memory whole.
/// A registry that does not follow the distribution spec for chunked uploads gets the blob in
/// one request instead, as oci-client's own `push_blob` falls back (a stream cannot be replayed,
/// so that fallback reads the file again, whole).
async fn upload_blob(
    client: &oci_client::Client,
    reference: &oci_client::Reference,
    path: &Path,
    digest: &str,
    size: u64,
) -> std::result::Result<(), Upload> {
    let file = std::fs::File::open(path).map_err(Upload::Read)?;
    let stream = futures_util::stream::iter(FileChunks { file: Some(file) });
    match client
        .push_blob_stream(reference, stream, digest, Some(size))
        .await
    {
        Ok(_) => Ok(()),
        Err(oci_client::errors::OciDistributionError::SpecViolationError(_)) => {
            let data = std::fs::read(path).map_err(Upload::Read)?;
            client
                .push_blob(reference, data, digest)
                .await
                .map(|_| ())
                .map_err(Upload::Registry)
        }
        Err(oci_client::errors::OciDistributionError::IoError(e)) => Err(Upload::Read(e)),
        Err(e) => Err(Upload::Registry(e)),
    }
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
    // A blob changed on disk since the pack would be refused by the registry as a digest
    // mismatch, which reads like a network fault and never heals by running again: found here,
    // before any request, and named.
    let manifest_ok = super::base::sha256_hex(&manifest_bytes) == digest;
    let damaged = if manifest_ok {
        blobs
            .iter()
            .find_map(|(blob, size)| super::layout::check_blob(layout, blob, *size).err())
    } else {
        Some(format!(
            "its manifest blob `{}` no longer hashes to {digest}",
            blob_path(layout, &digest).display()
        ))
    };
    if let Some(problem) = damaged {
        return Err(Error::config(format!(
            "the image layout `{}` was changed after it was written: {problem}",
            layout.display()
        ))
        .with_help("run the pack again: it finds a damaged image and writes it again before pushing (a registry would refuse these bytes, whatever the number of retries)"));
    }
    let target = format!("{repository}:{tag}");
    let reference = parse_reference(&target)?;
    let registry = reference.resolve_registry().to_string();
    let credential = super::credentials::lookup(&registry)?;
    let policy = Policy::from_env()?;
    let fail =
        |step: &str, failed| step_error(&target, &registry, &credential.source, step, failed);
    let client = client_for(&reference, &policy);
    let auth = credential.auth.clone();
    // One step of the push, retried as `retry::retry` says.
    macro_rules! step {
        ($step:expr, $call:expr) => {{
            let step: String = $step;
            retry::retry(
                &policy,
                &registry,
                &step,
                retry::is_transient,
                retry::describe,
                || $call,
            )
            .await
            .map_err(|failed| fail(&step, failed))
        }};
    }
    block_on(async {
        step!(
            "signing in".to_string(),
            client.auth(&reference, &auth, RegistryOperation::Push)
        )?;
        let mut pushed = Pushed {
            image_uri: format!("{repository}@{digest}"),
            tag: tag.to_string(),
            blobs_uploaded: 0,
            bytes_uploaded: 0,
        };
        for (blob, size) in &blobs {
            if step!(
                format!("asking for blob {blob}"),
                client.blob_exists(&reference, blob)
            )? {
                continue;
            }
            let path = blob_path(layout, blob);
            // Each attempt starts the upload afresh from the file: a registry keeps no half
            // upload as a blob (it checks the digest when the upload completes).
            let step = format!("uploading blob {blob}");
            let uploaded = retry::retry(
                &policy,
                &registry,
                &step,
                |e: &Upload| matches!(e, Upload::Registry(e) if retry::is_transient(e)),
                |e: &Upload| match e {
                    Upload::Registry(e) => retry::describe(e),
                    Upload::Read(e) => e.to_string(),
                },
                || upload_blob(&client, &reference, &path, blob, *size),
            )
            .await;
            match uploaded {
                Ok(()) => {}
                Err(Failed {
                    error: Upload::Read(e),
                    ..
                }) => return Err(Error::read(&path, &e)),
                Err(Failed {
                    error: Upload::Registry(error),
                    attempts,
                }) => return Err(fail(&step, Failed { error, attempts })),
            }
            pushed.blobs_uploaded += 1;
            pushed.bytes_uploaded += size;
        }
        let content_type = http::HeaderValue::from_str(&media_type)
            .map_err(|e| Error::internal(format!("manifest media type: {e}")))?;
        // Last, once every blob is there: a manifest never names a blob the registry lacks.
        step!(
            format!("pushing the manifest {digest}"),
            client.push_manifest_raw(&reference, manifest_bytes.clone(), content_type.clone())
        )?;
        Ok(pushed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layout whose config blob lost a byte: refused by name before any request (the registry
    /// named does not exist, so a request would fail otherwise).
    #[test]
    fn a_damaged_layout_is_refused_before_any_request() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path();
        std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
        let put = |bytes: &[u8]| {
            let digest = super::super::base::sha256_hex(bytes);
            std::fs::write(blob_path(layout, &digest), bytes).unwrap();
            digest
        };
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_digest = put(config);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": []
        });
        let manifest_digest = put(&serde_json::to_vec(&manifest).unwrap());
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": manifest_digest, "size": 1}]});
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        let config_path = blob_path(layout, &config_digest);
        std::fs::write(&config_path, &config[1..]).unwrap();

        let error = push_layout(layout, "registry.invalid/fn", "1.0.0-x86_64").unwrap_err();
        assert_eq!(error.kind, ErrorKind::Config);
        assert!(
            error.message.contains(&format!(
                "was changed after it was written: blob `{}` is {} bytes",
                config_path.display(),
                config.len() - 1
            )),
            "{}",
            error.message
        );
        assert!(error.help.unwrap().contains("run the pack again"));
    }
}
