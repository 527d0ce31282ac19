//! The base image: pulled over the OCI distribution API and kept content-addressed in a cache.
//!
//! Cache layout, under `<target-dir>/lambda-pack-cache/oci/`:
//! - `blobs/sha256/<hex>`: manifests, configs and layers, each checked against its digest when
//!   downloaded and again when reused;
//! - `refs/<reference>@<arch>`: the digest of the image manifest a reference named last time it
//!   was resolved, so `--offline` knows which cached manifest a tag means;
//! - `sizes/<hex>`: a layer's uncompressed size (for the 10 GB check), counted once.
//!
//! Every file is written to a temporary name and renamed, so concurrent runs (or several images
//! of one run) sharing a base never see a half-written blob.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::target::Arch;

use super::config::oci_arch;
use super::registry;

/// The reference that means "no base": an image of this tool's layers alone.
pub const SCRATCH: &str = "scratch";

pub const INDEX_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const MANIFEST_TYPES: [&str; 2] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// One layer of the base image, in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseLayer {
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    pub size: u64,
    pub blob: PathBuf,
    pub uncompressed_size: u64,
}

/// A base image ready to build on.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseImage {
    /// `sha256:<hex>` of the base's image manifest; `None` for `scratch`.
    pub digest: Option<String>,
    /// The base's configuration JSON; `None` for `scratch`.
    pub config: Option<Value>,
    pub layers: Vec<BaseLayer>,
}

/// Where base images are cached, and whether the network may be used to fill the cache.
#[derive(Clone, Debug)]
pub struct BaseSource {
    pub cache_dir: PathBuf,
    pub offline: bool,
}

impl BaseSource {
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.cache_dir.join("blobs/sha256").join(hex)
    }

    fn ref_path(&self, reference: &str, arch: Arch) -> PathBuf {
        let escaped: String = reference
            .chars()
            .map(|c| if c == '/' { '%' } else { c })
            .collect();
        self.cache_dir.join("refs").join(format!("{escaped}@{arch}"))
    }

    /// The base image `reference` for `arch`: from the cache, or pulled into it first.
    pub fn resolve(&self, reference: &str, arch: Arch) -> Result<BaseImage> {
        if reference == SCRATCH {
            return Ok(BaseImage {
                digest: None,
                config: None,
                layers: Vec::new(),
            });
        }
        let manifest_digest = if self.offline {
            self.cached_digest(reference, arch)?
        } else {
            let digest = registry::pull_base(self, reference, arch)?;
            write_file(&self.ref_path(reference, arch), digest.as_bytes())
                .map_err(|e| Error::write(&self.ref_path(reference, arch), &e))?;
            digest
        };
        self.load(reference, arch, &manifest_digest)
    }

    fn cached_digest(&self, reference: &str, arch: Arch) -> Result<String> {
        let path = self.ref_path(reference, arch);
        let missing = || {
            Error::new(
                ErrorKind::Registry,
                format!(
                    "base image `{reference}` ({arch}) is not in the cache {}, and --offline/--frozen forbid pulling it",
                    self.cache_dir.display()
                ),
            )
            .with_help("run once without --offline/--frozen (with the registry reachable) to fill the cache")
        };
        match std::fs::read_to_string(&path) {
            Ok(digest) if self.blob_path(digest.trim()).exists() => Ok(digest.trim().to_string()),
            Ok(_) => Err(missing()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(missing()),
            Err(err) => Err(Error::read(&path, &err)),
        }
    }

    /// Reads a cached image manifest and everything it names, checking every digest.
    fn load(&self, reference: &str, arch: Arch, digest: &str) -> Result<BaseImage> {
        let manifest_bytes = self.read_verified(reference, digest)?;
        let manifest: Value = serde_json::from_slice(&manifest_bytes)
            .map_err(|e| self.corrupt(reference, digest, &e.to_string()))?;
        let config_digest = manifest["config"]["digest"]
            .as_str()
            .ok_or_else(|| self.corrupt(reference, digest, "no config"))?;
        let config_bytes = self.read_verified(reference, config_digest)?;
        let config: Value = serde_json::from_slice(&config_bytes)
            .map_err(|e| self.corrupt(reference, config_digest, &e.to_string()))?;
        let found = config["architecture"].as_str().unwrap_or_default();
        if found != oci_arch(arch) {
            return Err(Error::new(
                ErrorKind::Registry,
                format!(
                    "base image `{reference}` is for {found}, not {arch} ({})",
                    oci_arch(arch)
                ),
            )
            .with_help(format!(
                "set base_image to an image (or an index) that has linux/{}",
                oci_arch(arch)
            )));
        }
        let mut layers = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let layer_digest = layer["digest"].as_str().unwrap_or_default().to_string();
            let blob = self.blob_path(&layer_digest);
            let (actual, _) =
                hash_file(&blob).map_err(|e| self.corrupt(reference, &layer_digest, &e.to_string()))?;
            if actual != layer_digest {
                let _ = std::fs::remove_file(&blob);
                return Err(self.corrupt(reference, &layer_digest, "its content does not match its digest; it was removed"));
            }
            layers.push(BaseLayer {
                media_type: layer["mediaType"].as_str().unwrap_or_default().to_string(),
                size: layer["size"].as_u64().unwrap_or_default(),
                uncompressed_size: self.uncompressed_size(&layer_digest, &blob)?,
                digest: layer_digest,
                blob,
            });
        }
        Ok(BaseImage {
            digest: Some(digest.to_string()),
            config: Some(config),
            layers,
        })
    }

    fn corrupt(&self, reference: &str, digest: &str, why: &str) -> Error {
        Error::new(
            ErrorKind::Registry,
            format!(
                "base image `{reference}`: cached blob {digest} in {} is unusable: {why}",
                self.cache_dir.display()
            ),
        )
        .with_help("run again without --offline/--frozen to pull it anew")
    }

    fn read_verified(&self, reference: &str, digest: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = std::fs::read(&path).map_err(|e| self.corrupt(reference, digest, &e.to_string()))?;
        if sha256_hex(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            return Err(self.corrupt(reference, digest, "its content does not match its digest; it was removed"));
        }
        Ok(bytes)
    }

    /// A gzip layer's uncompressed size, counted once and remembered in `sizes/`.
    fn uncompressed_size(&self, digest: &str, blob: &Path) -> Result<u64> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let record = self.cache_dir.join("sizes").join(hex);
        if let Some(size) = std::fs::read_to_string(&record)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Ok(size);
        }
        let file = std::fs::File::open(blob).map_err(|e| Error::read(blob, &e))?;
        let mut decoder = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
        let size = io::copy(&mut decoder, &mut io::sink()).map_err(|e| Error::read(blob, &e))?;
        write_file(&record, size.to_string().as_bytes()).map_err(|e| Error::write(&record, &e))?;
        Ok(size)
    }

    /// Stores `bytes` as the blob `digest` after checking they hash to it.
    pub fn store(&self, reference: &str, digest: &str, bytes: &[u8]) -> Result<()> {
        if sha256_hex(bytes) != digest {
            return Err(digest_mismatch(reference, digest, &sha256_hex(bytes)));
        }
        let path = self.blob_path(digest);
        write_file(&path, bytes).map_err(|e| Error::write(&path, &e))
    }

    /// A temporary file for downloading blob `digest`, and where it goes once checked.
    pub fn blob_download(&self, digest: &str) -> Result<(tempfile::NamedTempFile, PathBuf)> {
        let path = self.blob_path(digest);
        let dir = path.parent().expect("blob paths have a parent").to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, &e))?;
        let temp = tempfile::Builder::new()
            .prefix(".download.")
            .tempfile_in(&dir)
            .map_err(|e| Error::write(&dir, &e))?;
        Ok((temp, path))
    }

    /// True when blob `digest` is in the cache with the right content.
    pub fn has_blob(&self, digest: &str) -> bool {
        hash_file(&self.blob_path(digest)).is_ok_and(|(actual, _)| actual == digest)
    }
}

pub fn digest_mismatch(reference: &str, expected: &str, actual: &str) -> Error {
    Error::new(
        ErrorKind::Registry,
        format!(
            "base image `{reference}`: the registry sent a blob whose digest is {actual}, not the {expected} it was asked for; nothing was cached"
        ),
    )
    .with_help("run again; if it persists, the registry (or a proxy in between) is serving corrupt data")
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// `sha256:<hex>` and size of a file.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((super::layer::sha256_digest(hasher), size))
}

/// Writes a file through a temporary name and a rename.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::Builder::new().prefix(".tmp.").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
