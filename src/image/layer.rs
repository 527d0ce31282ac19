//! The layers this tool adds on top of the base image, and their reproducible tar+gzip blobs.
//!
//! The layers follow the image context the plan laid out (see `plan::into_image`), so the OCI
//! image and the Dockerfile build the same file system: one layer per attached Lambda layer in
//! attachment order (`opt/NN-<name>/…` → `/opt/…`), one for the includes (`task/…` → `/var/task/…`)
//! and one for the bootstrap (→ `/var/runtime/bootstrap`).
//!
//! A tar is reproducible when nothing of the machine or the moment leaks in: entries sorted,
//! every mtime the run's fixed time, uid/gid 0 without user or group names, plain GNU headers
//! (no pax records, hence no access or change times), and a gzip stream without a file name or
//! time, compressed by one fixed implementation and level.

use std::io::{self, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::plan::{BOOTSTRAP, Entry, MODE_EXECUTABLE, PlannedArtifact};

/// One entry of an image layer: where it lands in the image, from which planned entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerEntry {
    /// Path in the image without the leading `/`; directories end with `/`.
    pub path: String,
    pub entry: Entry,
}

/// A layer to write, in image order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerSpec {
    /// Recorded in the image's history, in the words of the Dockerfile line it matches.
    pub created_by: String,
    /// Sorted by path, parents before children.
    pub entries: Vec<LayerEntry>,
}

/// A layer blob written to disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// `sha256:<hex>` of the compressed blob (the manifest's descriptor).
    pub digest: String,
    pub size: u64,
    /// `sha256:<hex>` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
}

fn directory(path: &str) -> LayerEntry {
    LayerEntry {
        path: path.to_string(),
        entry: Entry {
            path: path.to_string(),
            mode: MODE_EXECUTABLE,
            source: None,
            size: 0,
        },
    }
}

/// The layers of an image artifact, from the entries of its build context.
pub fn image_layers(artifact: &PlannedArtifact) -> Vec<LayerSpec> {
    let mut layers: Vec<LayerSpec> = Vec::new();
    // Lambda layers: `opt/NN-<name>/` directories, whose sorted order is the attachment order.
    let layer_dirs: Vec<&Entry> = artifact
        .entries
        .iter()
        .filter(|e| {
            e.source.is_none() && e.path.starts_with("opt/") && e.path.matches('/').count() == 2
        })
        .collect();
    for dir in layer_dirs {
        let name = dir.path["opt/".len()..].trim_end_matches('/');
        let name = name.split_once('-').map_or(name, |(_, name)| name);
        let mut entries = vec![directory("opt/")];
        for entry in &artifact.entries {
            if let Some(rest) = entry.path.strip_prefix(dir.path.as_str())
                && !rest.is_empty()
            {
                entries.push(LayerEntry {
                    path: format!("opt/{rest}"),
                    entry: entry.clone(),
                });
            }
        }
        layers.push(LayerSpec {
            created_by: format!("COPY {} /opt/ # layer `{name}`", dir.path),
            entries,
        });
    }
    let task: Vec<LayerEntry> = artifact
        .entries
        .iter()
        .filter_map(|entry| {
            let rest = entry.path.strip_prefix("task/")?;
            (!rest.is_empty()).then(|| LayerEntry {
                path: format!("var/task/{rest}"),
                entry: entry.clone(),
            })
        })
        .collect();
    if !task.is_empty() {
        let mut entries = vec![directory("var/"), directory("var/task/")];
        entries.extend(task);
        layers.push(LayerSpec {
            created_by: "COPY task/ ${LAMBDA_TASK_ROOT}/".into(),
            entries,
        });
    }
    if let Some(bootstrap) = artifact.entries.iter().find(|e| e.path == BOOTSTRAP) {
        layers.push(LayerSpec {
            created_by: "COPY bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap".into(),
            entries: vec![
                directory("var/"),
                directory("var/runtime/"),
                LayerEntry {
                    path: "var/runtime/bootstrap".into(),
                    entry: bootstrap.clone(),
                },
            ],
        });
    }
    for layer in &mut layers {
        layer.entries.sort_by(|a, b| a.path.cmp(&b.path));
        layer.entries.dedup_by(|a, b| a.path == b.path);
    }
    layers
}

/// Counts and hashes what passes through, on the way to `inner`.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hashing<W>(inner: W) -> Hashing<W> {
    Hashing {
        inner,
        hasher: Sha256::new(),
        bytes: 0,
    }
}

pub fn sha256_digest(hasher: Sha256) -> String {
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Writes one layer as a gzip-compressed tar to `out`; `mtime` is every entry's time.
pub fn write_layer(layer: &LayerSpec, mtime: u64, out: impl Write) -> io::Result<LayerBlob> {
    let compressed = hashing(out);
    // Deterministic, and a plain copy for blocks deflate cannot shrink (see `gzip.rs`).
    let gzip = super::gzip::GzipBlocks::new(compressed);
    let mut tar = tar::Builder::new(hashing(gzip));
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(true);
    for item in &layer.entries {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(item.entry.mode);
        match &item.entry.source {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, &item.path, io::empty())?;
            }
            Some(source) => {
                let file = std::fs::File::open(source).map_err(|e| with_path(source, e))?;
                let size = file.metadata()?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                // `take`: a file that grew since would otherwise overrun its header's size.
                tar.append_data(
                    &mut header,
                    &item.path,
                    io::Read::take(io::BufReader::new(file), size),
                )
                .map_err(|e| with_path(source, e))?;
            }
        }
    }
    tar.finish()?;
    let uncompressed = tar.into_inner()?;
    let diff_id = sha256_digest(uncompressed.hasher);
    let uncompressed_size = uncompressed.bytes;
    let mut compressed = uncompressed.inner.finish()?;
    compressed.flush()?;
    Ok(LayerBlob {
        digest: sha256_digest(compressed.hasher),
        size: compressed.bytes,
        diff_id,
        uncompressed_size,
    })
}

fn with_path(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}
