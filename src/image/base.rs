//! The base image: pulled over the OCI distribution API and kept content-addressed in a cache.
//!
//! The cache, `<target-dir>/lambda-pack-cache/oci/`, is an OCI image layout: `blobs/sha256/<hex>`
//! holds manifests, indexes, configs and layers, each checked against its digest when
//! downloaded and again when reused; `index.json` maps each reference pulled
//! (`org.opencontainers.image.ref.name` = the reference as written in `base_image`) to what it
//! named (an index or a manifest), so `--offline` knows what a tag means. Being a layout, it can
//! also be filled without this tool: `skopeo copy --all docker://<ref> oci:<cache>:<ref>`.
//! `sizes/<hex>` remembers a layer's uncompressed size (for the 10 GB check), counted once.
//!
//! Every file is written to a temporary name and renamed, and `index.json` is updated under a
//! lock, so concurrent runs (or several images of one run) sharing a base never see a
//! half-written blob or lose each other's entries.

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

/// The annotation naming an entry of an OCI layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What a reference named when pulled: an image index or an image manifest, now in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// The digest of the index's image for linux on `arch`.
pub fn choose_platform(index: &Value, arch: Arch) -> Option<String> {
    index["manifests"]
        .as_array()?
        .iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == oci_arch(arch))
        .and_then(|m| m["digest"].as_str().map(str::to_string))
}

pub fn is_index(manifest: &Value) -> bool {
    manifest["mediaType"]
        .as_str()
        .is_some_and(|t| INDEX_TYPES.contains(&t))
        || (manifest.get("manifests").is_some() && manifest.get("layers").is_none())
}

pub fn no_platform(reference: &str, arch: Arch, index: &Value) -> Error {
    let offered: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap_or("?"),
                m["platform"]["architecture"].as_str().unwrap_or("?")
            )
        })
        .collect();
    Error::new(
        ErrorKind::Registry,
        format!(
            "base image `{reference}` has no linux/{} image (it offers {})",
            oci_arch(arch),
            if offered.is_empty() {
                "none".to_string()
            } else {
                offered.join(", ")
            }
        ),
    )
    .with_help(format!(
        "set base_image to an image that is built for {arch}"
    ))
}

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

/// The hex part of a `sha256:<64 hex digits>` digest. A digest comes from a registry or from the
/// cache's `index.json`; anything else (`sha256:../../x`) would name a path of its choosing.
fn digest_hex(digest: &str) -> Option<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl BaseSource {
    /// Where blob `digest` is cached; `None` for a digest that is not a sha256 one.
    fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        digest_hex(digest).map(|hex| self.cache_dir.join("blobs/sha256").join(hex))
    }

    /// [`Self::blob_path`], or the error naming the malformed digest.
    fn checked_blob_path(&self, reference: &str, digest: &str) -> Result<PathBuf> {
        self.blob_path(digest).ok_or_else(|| {
            Error::new(
                ErrorKind::Registry,
                format!(
                    "base image `{reference}` names a blob `{digest}`, which is not a sha256 digest (`sha256:` and 64 hex digits)"
                ),
            )
            .with_help(format!(
                "check base_image; if the cache {} was filled by hand, delete it to pull afresh",
                self.cache_dir.display()
            ))
        })
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
        // The cache is written below: it must hold only what this tool (or skopeo) puts there.
        crate::out_dir::claim_base_cache(&self.cache_dir)?;
        let top = if self.offline {
            self.cached_ref(reference, arch)?
        } else {
            let pulled = registry::pull_base(self, reference, arch)?;
            self.record_ref(reference, &pulled)?;
            pulled
        };
        let manifest_digest = if INDEX_TYPES.contains(&top.media_type.as_str()) {
            let index: Value = serde_json::from_slice(&self.read_verified(reference, &top.digest)?)
                .map_err(|e| self.corrupt(reference, &top.digest, &e.to_string()))?;
            choose_platform(&index, arch).ok_or_else(|| no_platform(reference, arch, &index))?
        } else {
            top.digest
        };
        self.load(reference, arch, &manifest_digest)
    }

    /// What `reference` named when it was last pulled, from the cache's `index.json`.
    fn cached_ref(&self, reference: &str, arch: Arch) -> Result<Pulled> {
        let index = self.read_index()?;
        let entry = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["annotations"][REF_NAME] == reference);
        let digest = entry.map(|e| e["digest"].as_str().unwrap_or_default());
        // An entry naming a malformed digest is refused by name, not taken for a missing blob.
        let blob = digest
            .map(|digest| self.checked_blob_path(reference, digest))
            .transpose()?;
        match entry {
            Some(entry) if blob.is_some_and(|path| path.exists()) => {
                Ok(Pulled {
                    digest: entry["digest"].as_str().unwrap_or_default().to_string(),
                    media_type: entry["mediaType"].as_str().unwrap_or_default().to_string(),
                    size: entry["size"].as_u64().unwrap_or_default(),
                })
            }
            _ => Err(Error::new(
                ErrorKind::Registry,
                format!(
                    "base image `{reference}` ({arch}) is not in the cache {}, and --offline/--frozen forbid pulling it",
                    self.cache_dir.display()
                ),
            )
            .with_help(format!(
                "run once without --offline/--frozen to fill the cache, or fill it with `skopeo copy --all docker://{reference} oci:{}:{reference}`",
                self.cache_dir.display()
            ))),
        }
    }

    fn read_index(&self) -> Result<Value> {
        let path = self.cache_dir.join("index.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::new(
                    ErrorKind::Registry,
                    format!("{}: not an OCI index: {e}", path.display()),
                )
                .with_help(format!(
                    "delete {} to start the cache afresh",
                    self.cache_dir.display()
                ))
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                Ok(serde_json::json!({"schemaVersion": 2, "manifests": []}))
            }
            Err(err) => Err(Error::read(&path, &err)),
        }
    }

    /// Records in `index.json` what `reference` names now, replacing what it named before.
    fn record_ref(&self, reference: &str, pulled: &Pulled) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let lock_path = self.cache_dir.join(".index.lock");
        crate::files::create_dir_within(&self.cache_dir, &self.cache_dir)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| Error::write(&lock_path, &e))?;
        lock.lock().map_err(|e| Error::write(&lock_path, &e))?;
        let mut index = self.read_index()?;
        let manifests = index["manifests"]
            .as_array_mut()
            .ok_or_else(|| Error::internal("cache index.json has no manifests array"))?;
        manifests.retain(|m| m["annotations"][REF_NAME] != reference);
        manifests.push(serde_json::json!({
            "mediaType": pulled.media_type,
            "digest": pulled.digest,
            "size": pulled.size,
            "annotations": {REF_NAME: reference},
        }));
        index["mediaType"] = "application/vnd.oci.image.index.v1+json".into();
        let path = self.cache_dir.join("index.json");
        self.write(
            &path,
            &serde_json::to_vec_pretty(&index).unwrap_or_default(),
        )?;
        self.write(
            &self.cache_dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
    }

    /// Writes a file of the cache whole, never through a link below the cache directory.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(dir) = path.parent() {
            crate::files::create_dir_within(&self.cache_dir, dir)?;
        }
        write_file(path, bytes).map_err(|e| Error::write(path, &e))
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
        let layer_count = manifest["layers"].as_array().map_or(0, Vec::len);
        if let Err(why) = check_config_shape(&config, layer_count) {
            return Err(Error::new(
                ErrorKind::Registry,
                format!("base image `{reference}`: its config {config_digest} {why}"),
            )
            .with_help("set base_image to a well-formed image (one `docker pull` runs)"));
        }
        let mut layers = Vec::new();
        for layer in manifest["layers"].as_array().into_iter().flatten() {
            let layer_digest = layer["digest"].as_str().unwrap_or_default().to_string();
            let blob = self.checked_blob_path(reference, &layer_digest)?;
            let (actual, _) = hash_file(&blob)
                .map_err(|e| self.corrupt(reference, &layer_digest, &e.to_string()))?;
            if actual != layer_digest {
                let _ = std::fs::remove_file(&blob);
                return Err(self.corrupt(
                    reference,
                    &layer_digest,
                    "its content does not match its digest; it was removed",
                ));
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
        let path = self.checked_blob_path(reference, digest)?;
        let bytes =
            std::fs::read(&path).map_err(|e| self.corrupt(reference, digest, &e.to_string()))?;
        if sha256_hex(&bytes) != digest {
            let _ = std::fs::remove_file(&path);
            return Err(self.corrupt(
                reference,
                digest,
                "its content does not match its digest; it was removed",
            ));
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
        self.write(&record, size.to_string().as_bytes())?;
        Ok(size)
    }

    /// Stores `bytes` as the blob `digest` after checking they hash to it.
    pub fn store(&self, reference: &str, digest: &str, bytes: &[u8]) -> Result<()> {
        if sha256_hex(bytes) != digest {
            return Err(digest_mismatch(reference, digest, &sha256_hex(bytes)));
        }
        let path = self.checked_blob_path(reference, digest)?;
        self.write(&path, bytes)
    }

    /// A temporary file for downloading blob `digest`, and where it goes once checked.
    pub fn blob_download(
        &self,
        reference: &str,
        digest: &str,
    ) -> Result<(tempfile::NamedTempFile, PathBuf)> {
        let path = self.checked_blob_path(reference, digest)?;
        let dir = path
            .parent()
            .expect("blob paths have a parent")
            .to_path_buf();
        crate::files::create_dir_within(&self.cache_dir, &dir)?;
        let temp = tempfile::Builder::new()
            .prefix(".download.")
            .permissions(readable())
            .tempfile_in(&dir)
            .map_err(|e| Error::write(&dir, &e))?;
        Ok((temp, path))
    }

    /// True when blob `digest` is in the cache with the right content.
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest)
            .is_some_and(|path| hash_file(&path).is_ok_and(|(actual, _)| actual == digest))
    }
}

/// What the image config is built on: `config` an object (or null), and one diff id in
/// `rootfs.diff_ids` per layer of the manifest (a config that disagrees with its manifest makes
/// an image no runtime accepts).
fn check_config_shape(config: &Value, layers: usize) -> std::result::Result<(), String> {
    if !matches!(
        config.get("config"),
        None | Some(Value::Null | Value::Object(_))
    ) {
        return Err("has a `config` that is not an object".into());
    }
    let rootfs = match config.get("rootfs") {
        None => None,
        Some(Value::Object(rootfs)) => Some(rootfs),
        Some(_) => return Err("has a `rootfs` that is not an object".into()),
    };
    let diff_ids = match rootfs.and_then(|r| r.get("diff_ids")) {
        None => &Vec::new(),
        Some(Value::Array(ids)) => ids,
        Some(_) => return Err("has a `rootfs.diff_ids` that is not a list".into()),
    };
    if diff_ids.len() != layers || !diff_ids.iter().all(Value::is_string) {
        return Err(format!(
            "lists {} diff ids in `rootfs.diff_ids` for the {layers} layers of its manifest",
            diff_ids.len()
        ));
    }
    Ok(())
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
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp.")
        .permissions(readable())
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Blobs are hard-linked from the cache into image layouts: readable by all (0644 under the
/// usual umask), as any file the user creates, not tempfile's private 0600.
pub fn readable() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o644)
}
