//! Unpacking an image's layers into one root file system, the way a container runtime does:
//! each layer's tar applied over the ones before it, whiteouts honoured (`.wh.<name>` removes
//! `<name>` of a lower layer, `.wh..wh..opq` empties a directory of its lower layers' entries).
//!
//! An image legitimately holds absolute symlinks (`/bin/sh -> /usr/bin/bash`), which are only
//! meaningful inside the image. So nothing here ever lets the kernel follow a link of the image:
//! every path is resolved component by component with the image's root as `/`
//! ([`resolve_in_root`]), and the last component is never followed. Entries naming `..` out of
//! the root, device nodes, hard links to anything but a file of the image and layers unpacking
//! to more than 10 GiB (Lambda's image limit) are refused with the entry named.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::VerifyError;

/// No image unpacks to more than this: Lambda's limit for an uncompressed image is 10 GB.
pub(super) const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// A symlink target longer than PATH_MAX is not a path.
const MAX_LINK_TARGET: usize = 4096;
/// Linux's own limit on links followed while resolving one path.
const MAX_HOPS: usize = 40;

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// What unpacking the layers measured, across layers.
#[derive(Default)]
pub(super) struct Unpacked {
    /// Bytes of regular files written.
    pub bytes: u64,
    /// Final modes of the directories, applied once every layer is in (a read-only directory
    /// must not stop a later layer from writing into it).
    dir_modes: BTreeMap<PathBuf, u32>,
}

impl Unpacked {
    /// Gives every directory its mode from the image.
    pub fn finish(&self, root: &Path) -> Result<(), VerifyError> {
        // Deepest first, so a parent losing its write bit comes after its children.
        for (relative, mode) in self.dir_modes.iter().rev() {
            let path = root.join(relative);
            if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                fs::set_permissions(&path, fs::Permissions::from_mode(*mode))
                    .map_err(|e| VerifyError::io("set permissions on", &path, e))?;
            }
        }
        Ok(())
    }
}

/// Counts and hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn hex_digest(hasher: Sha256) -> String {
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// One layer blob to apply: where it is and what its bytes must hash to.
pub(super) struct LayerBlob<'a> {
    pub blob: &'a Path,
    pub media_type: &'a str,
    /// `sha256:…` of the blob as stored (the manifest's descriptor).
    pub digest: &'a str,
    /// `sha256:…` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: &'a str,
}

/// Applies one layer over `root`. The blob's digest and the tar's diff id are checked as it is
/// read; a mismatch fails the whole unpack (the caller discards the root).
pub(super) fn apply_layer(
    root: &Path,
    layer: &LayerBlob<'_>,
    unpacked: &mut Unpacked,
) -> Result<(), VerifyError> {
    let file = fs::File::open(layer.blob).map_err(|e| VerifyError::io("open", layer.blob, e))?;
    let compressed = Hashing {
        inner: io::BufReader::new(file),
        hasher: Sha256::new(),
    };
    let gzip = match layer.media_type {
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip" => true,
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => false,
        other => {
            return Err(bad_layer(
                layer,
                format!(
                    "has media type `{other}`, which verify does not unpack (gzip or plain tar only)"
                ),
            ));
        }
    };
    let decoded = if gzip {
        Decoded::Gzip(Box::new(flate2::read::MultiGzDecoder::new(compressed)))
    } else {
        Decoded::Plain(compressed)
    };
    let tar_stream = Hashing {
        inner: decoded,
        hasher: Sha256::new(),
    };
    let mut archive = tar::Archive::new(tar_stream);
    let mut this_layer: HashSet<PathBuf> = HashSet::new();
    let unreadable = |e: io::Error| bad_layer(layer, format!("is not a readable tar ({e})"));
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        apply_entry(root, layer, &mut entry, unpacked, &mut this_layer)?;
    }
    // Read to the end so that the digests cover the whole blob (tar padding, gzip trailer).
    let to_end = |e: io::Error| bad_layer(layer, format!("could not be read to its end ({e})"));
    let mut tar_stream = archive.into_inner();
    io::copy(&mut tar_stream, &mut io::sink()).map_err(to_end)?;
    let diff_id = hex_digest(tar_stream.hasher);
    let mut compressed = tar_stream.inner.into_compressed();
    io::copy(&mut compressed, &mut io::sink()).map_err(to_end)?;
    let digest = hex_digest(compressed.hasher);
    if digest != layer.digest {
        return Err(bad_layer(
            layer,
            format!(
                "holds content with digest {digest}, not the manifest's {}",
                layer.digest
            ),
        ));
    }
    if diff_id != layer.diff_id {
        return Err(bad_layer(
            layer,
            format!(
                "unpacks to a tar with digest {diff_id}, not the config's diff id {}",
                layer.diff_id
            ),
        ));
    }
    Ok(())
}

/// The layer's tar stream, decompressed or not, keeping the hashing reader of the blob.
enum Decoded<R: Read> {
    Gzip(Box<flate2::read::MultiGzDecoder<R>>),
    Plain(R),
}

impl<R: Read> Decoded<R> {
    fn into_compressed(self) -> R {
        match self {
            Decoded::Gzip(decoder) => decoder.into_inner(),
            Decoded::Plain(reader) => reader,
        }
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoded::Gzip(decoder) => decoder.read(buf),
            Decoded::Plain(reader) => reader.read(buf),
        }
    }
}

fn bad_layer(layer: &LayerBlob<'_>, reason: String) -> VerifyError {
    VerifyError::BadImage {
        what: format!("layer {}", layer.digest),
        reason,
    }
}

fn refuse(layer: &LayerBlob<'_>, entry: &str, reason: impl Into<String>) -> VerifyError {
    VerifyError::UnsafeEntry {
        zip: layer.blob.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.into(),
    }
}

/// The relative path a tar entry name stands for (`./a`, `/a` and `a` alike); `None` for the
/// root itself.
fn entry_path(name: &[u8]) -> Result<Option<PathBuf>, &'static str> {
    if name.contains(&0) {
        return Err("has a NUL byte in its name");
    }
    let mut path = PathBuf::new();
    for component in Path::new(std::ffi::OsStr::from_bytes(name)).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => return Err("climbs out of the root with `..`"),
            Component::Prefix(_) => return Err("is not a Unix path"),
        }
    }
    Ok((!path.as_os_str().is_empty()).then_some(path))
}

fn apply_entry<R: Read>(
    root: &Path,
    layer: &LayerBlob<'_>,
    entry: &mut tar::Entry<'_, R>,
    unpacked: &mut Unpacked,
    this_layer: &mut HashSet<PathBuf>,
) -> Result<(), VerifyError> {
    let name_bytes = entry.path_bytes().into_owned();
    let name = String::from_utf8_lossy(&name_bytes).into_owned();
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        tar::EntryType::XGlobalHeader | tar::EntryType::XHeader
    ) {
        return Ok(());
    }
    let Some(path) = entry_path(&name_bytes).map_err(|reason| refuse(layer, &name, reason))? else {
        return Ok(()); // the root directory itself
    };
    let file_name = path.file_name().unwrap_or_default().to_os_string();
    let parent_in_image = path.parent().unwrap_or(Path::new(""));
    let parent = resolve_in_root(root, parent_in_image, true)
        .map_err(|reason| refuse(layer, &name, reason))?;
    let file_name_bytes = file_name.as_bytes();
    if file_name_bytes == OPAQUE.as_bytes() {
        let dir = root.join(&parent);
        if let Ok(children) = fs::read_dir(&dir) {
            for child in children.flatten() {
                let relative = parent.join(child.file_name());
                if !this_layer.contains(&relative) {
                    remove_any(&child.path())?;
                }
            }
        }
        return Ok(());
    }
    if let Some(hidden) = file_name_bytes.strip_prefix(WHITEOUT.as_bytes()) {
        // `.wh..` and `.wh...` would name the directory itself or its parent (the root's parent,
        // at the top), not an entry of a lower layer.
        if hidden == b"." || hidden == b".." {
            return Err(refuse(
                layer,
                &name,
                "is a whiteout of `.` or `..`, which hides no entry of a lower layer",
            ));
        }
        if !hidden.is_empty() {
            let hidden = parent.join(std::ffi::OsStr::from_bytes(hidden));
            remove_any(&root.join(&hidden))?;
        }
        return Ok(());
    }
    let relative = parent.join(&file_name);
    let target = root.join(&relative);
    this_layer.insert(relative.clone());
    let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
    match kind {
        tar::EntryType::Directory => {
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    remove_any(&target)?;
                    create_dir(&target)?;
                }
                Err(_) => create_dir(&target)?,
            }
            unpacked.dir_modes.insert(relative, mode);
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            let size = entry.size();
            unpacked.bytes = unpacked.bytes.saturating_add(size);
            if unpacked.bytes > MAX_IMAGE_BYTES {
                return Err(VerifyError::TooLarge {
                    zip: layer.blob.to_path_buf(),
                    total: unpacked.bytes,
                    limit: MAX_IMAGE_BYTES,
                });
            }
            remove_any(&target)?;
            let mut out = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(|e| VerifyError::io("create", &target, e))?;
            let written = io::copy(entry, &mut out)
                .map_err(|e| VerifyError::io("extract into", &target, e))?;
            if written != size {
                return Err(refuse(
                    layer,
                    &name,
                    format!("declares {size} bytes but holds {written}"),
                ));
            }
            set_mode(&target, mode)?;
        }
        tar::EntryType::Symlink => {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse(layer, &name, "is a symlink without a target"))?;
            if link.is_empty() || link.len() > MAX_LINK_TARGET || link.contains(&0) {
                return Err(refuse(
                    layer,
                    &name,
                    "is a symlink with an empty, absurdly long or NUL-holding target",
                ));
            }
            remove_any(&target)?;
            // Never followed here; inside the image the kernel resolves it with the image as `/`.
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&link), &target)
                .map_err(|e| VerifyError::io("create the symlink", &target, e))?;
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name_bytes()
                .ok_or_else(|| refuse(layer, &name, "is a hard link without a target"))?;
            let linked = entry_path(&link)
                .ok()
                .flatten()
                .and_then(|p| resolve_in_root(root, &p, false).ok())
                .map(|p| root.join(p))
                .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
                .ok_or_else(|| {
                    refuse(
                        layer,
                        &name,
                        format!(
                            "is a hard link to `{}`, which is not a file of the image",
                            String::from_utf8_lossy(&link)
                        ),
                    )
                })?;
            if linked != target {
                remove_any(&target)?;
                fs::hard_link(&linked, &target)
                    .map_err(|e| VerifyError::io("create the hard link", &target, e))?;
            }
        }
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(refuse(
                layer,
                &name,
                "is a device node; an image for Lambda has no use for one and verify creates none",
            ));
        }
        // A named pipe holds no data: nothing of the function can depend on its content.
        tar::EntryType::Fifo => {}
        other => {
            return Err(refuse(
                layer,
                &name,
                format!("has an entry type verify does not know ({other:?})"),
            ));
        }
    }
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), VerifyError> {
    fs::create_dir(path).map_err(|e| VerifyError::io("create", path, e))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), VerifyError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| VerifyError::io("set permissions on", path, e))
}

/// Removes whatever is at `path` without following it (a directory with its contents).
pub(super) fn remove_any(path: &Path) -> Result<(), VerifyError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            make_removable(path);
            fs::remove_dir_all(path).map_err(|e| VerifyError::io("remove", path, e))
        }
        Ok(_) => fs::remove_file(path).map_err(|e| VerifyError::io("remove", path, e)),
        Err(_) => Ok(()),
    }
}

/// Gives every directory under `dir` (itself included) its owner's rwx, so that an image's
/// read-only directories can be emptied and removed.
pub(super) fn make_removable(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.file_type().is_dir()
            && let Ok(meta) = entry.metadata()
        {
            let mode = meta.permissions().mode();
            if mode & 0o700 != 0o700 {
                let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode | 0o700));
            }
        }
    }
}

/// Resolves `path` (relative to the image's root) the way the kernel would inside the image,
/// without ever following a link on the host: each symlink met on the way is read and its
/// target resolved again from the image's root (absolute) or from where it sits (relative), and
/// `..` stops at the root. With `create`, missing components are made as directories (the parents
/// of an entry); the last component is followed when it is a symlink. Returns the resolved path,
/// relative to `root`.
pub(super) fn resolve_in_root(root: &Path, path: &Path, create: bool) -> Result<PathBuf, String> {
    let mut todo: VecDeque<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    let mut here = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = todo.pop_front() {
        if part == ".." {
            here.pop();
            continue;
        }
        let candidate = here.join(&part);
        let host = root.join(&candidate);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_HOPS {
                    return Err(format!(
                        "passes through more than {MAX_HOPS} symlinks (a loop?) at `/{}`",
                        candidate.display()
                    ));
                }
                let target = fs::read_link(&host).map_err(|e| e.to_string())?;
                if target.is_absolute() {
                    here = PathBuf::new();
                }
                for component in target.components().rev() {
                    match component {
                        Component::Normal(p) => todo.push_front(p.to_os_string()),
                        Component::ParentDir => todo.push_front(OsString::from("..")),
                        _ => {}
                    }
                }
            }
            Ok(meta) if meta.is_dir() => here = candidate,
            Ok(_) if todo.is_empty() => here = candidate,
            Ok(_) => {
                return Err(format!(
                    "needs `/{}` to be a directory, but a file of the image is there",
                    candidate.display()
                ));
            }
            Err(_) if create => {
                fs::create_dir(&host)
                    .map_err(|e| format!("cannot create `/{}`: {e}", candidate.display()))?;
                here = candidate;
            }
            Err(_) => here = candidate,
        }
    }
    Ok(here)
}

#[cfg(test)]
mod tests;
