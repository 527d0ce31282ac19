//! Unpacking function and layer ZIPs the way Lambda does, refusing archives that would escape.
//!
//! Every entry is checked before anything is written: `..` components, absolute names, symlinks
//! whose target leaves the destination (or climbs out through another symlink of the archive)
//! and absurd compression ratios are refused with the entry named.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::VerifyError;

/// An entry larger than this may not inflate more than [`MAX_RATIO`] times.
const RATIO_CHECK_ABOVE: u64 = 1024 * 1024;
/// Deflate tops out near 1032:1; anything beyond is crafted.
const MAX_RATIO: u64 = 1000;
/// No function or layer unpacks to more than this (Lambda's own cap is 250 MiB).
const MAX_TOTAL_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// A symlink's target is its entry's data; longer than PATH_MAX is not a path.
const MAX_LINK_TARGET: u64 = 4096;

/// What [`extract_zip`] wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExtractStats {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    /// Uncompressed bytes of the regular files.
    pub bytes: u64,
}

enum Kind {
    Dir { mode: u32 },
    File { mode: u32, size: u64 },
    Symlink { target: String },
}

struct Planned {
    index: usize,
    path: PathBuf,
    kind: Kind,
}

/// Unzips `zip` into `dest` (created if missing), honouring the unix modes stored in the ZIP
/// (exec bits) and creating symlink entries. Files already in `dest` are replaced, so layers
/// extracted one after the other merge like on Lambda (a later layer's file wins).
///
/// Refuses, before writing anything, any entry that escapes `dest`: `..` components, absolute
/// paths, symlinks whose target resolves outside `dest`, entries inflating more than 1000:1
/// (above 1 MiB) and archives unpacking to more than 10 GiB.
pub fn extract_zip(zip: &Path, dest: &Path) -> Result<ExtractStats, VerifyError> {
    let file = File::open(zip).map_err(|e| VerifyError::io("open", zip, e))?;
    let bad_zip = |source| VerifyError::BadZip {
        zip: zip.to_path_buf(),
        source,
    };
    let mut archive = zip::ZipArchive::new(file).map_err(bad_zip)?;
    let plan = check_entries(zip, &mut archive)?;

    fs::create_dir_all(dest).map_err(|e| VerifyError::io("create", dest, e))?;
    let mut stats = ExtractStats::default();
    // Directories and files first, symlinks last: nothing is ever written through a link.
    for entry in plan
        .iter()
        .filter(|p| !matches!(p.kind, Kind::Symlink { .. }))
    {
        let target = dest.join(&entry.path);
        match entry.kind {
            Kind::Dir { .. } => {
                refuse_links_on_the_way(dest, &entry.path, zip)?;
                fs::create_dir_all(&target).map_err(|e| VerifyError::io("create", &target, e))?;
                stats.dirs += 1;
            }
            Kind::File { mode, size } => {
                refuse_links_on_the_way(dest, &entry.path, zip)?;
                let mut data = archive.by_index(entry.index).map_err(bad_zip)?;
                write_file(&mut data, &target, mode, size, zip, &entry.path)?;
                stats.files += 1;
                stats.bytes += size;
            }
            Kind::Symlink { .. } => {}
        }
    }
    // Links are checked twice: lexically before anything was written, and here physically, the
    // way the kernel will resolve them, through links of this archive and of layers extracted
    // before it. If any link is refused, every link this archive made is removed again.
    let mut created = Vec::new();
    let linked = create_links(&plan, dest, zip, &mut created);
    let checked = linked.and_then(|()| {
        let dest_real = fs::canonicalize(dest).map_err(|e| VerifyError::io("resolve", dest, e))?;
        match created.iter().find(|(_, path)| {
            !resolve_physically(path).is_some_and(|real| real.starts_with(&dest_real))
        }) {
            Some((entry, _)) => Err(VerifyError::UnsafeEntry {
                zip: zip.to_path_buf(),
                entry: entry.display().to_string(),
                reason: "is a symlink that leads outside the destination once the links around it are followed".to_string(),
            }),
            None => Ok(()),
        }
    });
    if let Err(err) = checked {
        for (_, path) in &created {
            let _ = fs::remove_file(path);
        }
        return Err(err);
    }
    stats.symlinks = created.len();
    // Folder modes last, so a read-only folder does not block writing its own files.
    for entry in &plan {
        if let Kind::Dir { mode } = entry.kind {
            set_mode(&dest.join(&entry.path), mode)?;
        }
    }
    Ok(stats)
}

fn check_entries(
    zip: &Path,
    archive: &mut zip::ZipArchive<File>,
) -> Result<Vec<Planned>, VerifyError> {
    let unsafe_entry = |entry: &str, reason: &str| VerifyError::UnsafeEntry {
        zip: zip.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    };
    let mut plan = Vec::with_capacity(archive.len());
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive
            .by_index_raw(index)
            .map_err(|source| VerifyError::BadZip {
                zip: zip.to_path_buf(),
                source,
            })?;
        let name = entry
            .name()
            .map_err(|_| unsafe_entry(&format!("#{index}"), "has a name that is not valid text"))?
            .into_owned();
        let path = check_name(&name).map_err(|reason| unsafe_entry(&name, reason))?;
        let Some(path) = path else { continue };
        let mode = entry.unix_mode().map(|m| m & 0o777);
        if entry.is_symlink() {
            plan.push(Planned {
                index,
                path,
                kind: Kind::Symlink {
                    target: String::new(),
                },
            });
        } else if entry.is_dir() {
            plan.push(Planned {
                index,
                path,
                kind: Kind::Dir {
                    mode: mode.unwrap_or(0o755),
                },
            });
        } else {
            let size = entry.size();
            let compressed = entry.compressed_size();
            if size > RATIO_CHECK_ABOVE && size / compressed.max(1) > MAX_RATIO {
                return Err(VerifyError::CompressionRatio {
                    zip: zip.to_path_buf(),
                    entry: name,
                    compressed,
                    uncompressed: size,
                    limit_ratio: MAX_RATIO,
                });
            }
            total = total.saturating_add(size);
            if total > MAX_TOTAL_BYTES {
                return Err(VerifyError::TooLarge {
                    zip: zip.to_path_buf(),
                    total,
                    limit: MAX_TOTAL_BYTES,
                });
            }
            plan.push(Planned {
                index,
                path,
                kind: Kind::File {
                    mode: mode.unwrap_or(0o644),
                    size,
                },
            });
        }
    }

    // Symlink targets are entry data: read them (bounded) and check where they lead.
    let links: HashSet<PathBuf> = plan
        .iter()
        .filter(|p| matches!(p.kind, Kind::Symlink { .. }))
        .map(|p| p.path.clone())
        .collect();
    for planned in &mut plan {
        if let Kind::Symlink { target } = &mut planned.kind {
            let name = planned.path.display().to_string();
            let entry = archive
                .by_index(planned.index)
                .map_err(|source| VerifyError::BadZip {
                    zip: zip.to_path_buf(),
                    source,
                })?;
            let mut raw = Vec::new();
            entry
                .take(MAX_LINK_TARGET + 1)
                .read_to_end(&mut raw)
                .map_err(|e| VerifyError::io("read", zip, e))?;
            if raw.len() as u64 > MAX_LINK_TARGET {
                return Err(unsafe_entry(
                    &name,
                    "is a symlink with an absurdly long target",
                ));
            }
            let text = String::from_utf8(raw)
                .map_err(|_| unsafe_entry(&name, "is a symlink whose target is not valid text"))?;
            check_link(&planned.path, &text, &links).map_err(|reason| {
                unsafe_entry(&name, &format!("is a symlink to `{text}`, which {reason}"))
            })?;
            *target = text;
        }
    }
    Ok(plan)
}

/// The relative path an entry name stands for, `None` for names that are only the root.
fn check_name(name: &str) -> Result<Option<PathBuf>, &'static str> {
    if name.contains('\0') {
        return Err("has a NUL byte in its name");
    }
    if name.starts_with('/') || name.starts_with('\\') || name.get(1..2) == Some(":") {
        return Err("is an absolute path");
    }
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("climbs out of the destination with `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path"),
        }
    }
    Ok((!path.as_os_str().is_empty()).then_some(path))
}

/// Resolves `target` (lexically) from the link's folder; it must stay inside and must not take
/// `..` out of another symlink of the archive (the kernel would resolve that physically).
fn check_link(link: &Path, target: &str, links: &HashSet<PathBuf>) -> Result<(), &'static str> {
    if target.is_empty() {
        return Err("is empty");
    }
    if target.starts_with('/') {
        return Err("is absolute and so points outside the destination");
    }
    let mut resolved: Vec<&std::ffi::OsStr> = Vec::new();
    if let Some(parent) = link.parent() {
        resolved.extend(parent.components().map(|c| c.as_os_str()));
    }
    for component in Path::new(target).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                let here: PathBuf = resolved.iter().collect();
                if links.contains(&here) {
                    return Err("climbs `..` out of another symlink");
                }
                if resolved.pop().is_none() {
                    return Err("points outside the destination");
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err("is absolute and so points outside the destination");
            }
        }
    }
    Ok(())
}

fn write_file(
    data: &mut impl Read,
    target: &Path,
    mode: u32,
    size: u64,
    zip: &Path,
    entry: &Path,
) -> Result<(), VerifyError> {
    make_parent(target)?;
    remove_non_dir(target)?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| VerifyError::io("create", target, e))?;
    let written = io::copy(&mut data.take(size + 1), &mut out)
        .map_err(|e| VerifyError::io("extract into", target, e))?;
    if written != size {
        return Err(VerifyError::UnsafeEntry {
            zip: zip.to_path_buf(),
            entry: entry.display().to_string(),
            reason: format!("declares {size} bytes but holds a different amount"),
        });
    }
    // `mode` above is filtered by the umask; Lambda keeps the archive's bits.
    set_mode(target, mode)
}

/// Creates the archive's symlinks, recording each one made (even when a later one fails).
fn create_links(
    plan: &[Planned],
    dest: &Path,
    zip: &Path,
    created: &mut Vec<(PathBuf, PathBuf)>,
) -> Result<(), VerifyError> {
    for entry in plan {
        if let Kind::Symlink { target: link } = &entry.kind {
            let path = dest.join(&entry.path);
            refuse_links_on_the_way(dest, &entry.path, zip)?;
            make_parent(&path)?;
            remove_non_dir(&path)?;
            std::os::unix::fs::symlink(link, &path)
                .map_err(|e| VerifyError::io("create the symlink", &path, e))?;
            created.push((entry.path.clone(), path));
        }
    }
    Ok(())
}

/// Refuses to write `relative` under `dest` when a folder on the way is a symlink (left by an
/// earlier layer): writing through it could land anywhere.
fn refuse_links_on_the_way(dest: &Path, relative: &Path, zip: &Path) -> Result<(), VerifyError> {
    let mut here = dest.to_path_buf();
    let parents = relative
        .parent()
        .map(|p| p.components().count())
        .unwrap_or(0);
    for component in relative.components().take(parents) {
        here.push(component);
        match fs::symlink_metadata(&here) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(VerifyError::UnsafeEntry {
                    zip: zip.to_path_buf(),
                    entry: relative.display().to_string(),
                    reason: format!(
                        "would be written through the symlink `{}` that is already there",
                        here.strip_prefix(dest).unwrap_or(&here).display()
                    ),
                });
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// Where the symlink at `link` leads, resolved the way the kernel would: each component that
/// exists is followed physically (links included), `..` goes to the physical parent. `None` for
/// a loop or an unreadable link.
fn resolve_physically(link: &Path) -> Option<PathBuf> {
    let target = fs::read_link(link).ok()?;
    let mut here = fs::canonicalize(link.parent()?).ok()?;
    for component in target.components() {
        match component {
            Component::RootDir | Component::Prefix(_) => here = PathBuf::from("/"),
            Component::CurDir => {}
            Component::ParentDir => {
                here.pop();
            }
            Component::Normal(part) => {
                let next = here.join(part);
                here = match fs::symlink_metadata(&next) {
                    Ok(_) => fs::canonicalize(&next).ok()?,
                    Err(_) => next,
                };
            }
        }
    }
    Some(here)
}

fn make_parent(path: &Path) -> Result<(), VerifyError> {
    match path.parent() {
        Some(parent) => {
            fs::create_dir_all(parent).map_err(|e| VerifyError::io("create", parent, e))
        }
        None => Ok(()),
    }
}

/// Makes room for a file or link: an earlier layer's file or link at the same path goes.
fn remove_non_dir(path: &Path) -> Result<(), VerifyError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(VerifyError::io(
            "replace the directory",
            path,
            io::Error::new(io::ErrorKind::IsADirectory, "a directory is in the way"),
        )),
        Ok(_) => fs::remove_file(path).map_err(|e| VerifyError::io("replace", path, e)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), VerifyError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| VerifyError::io("set permissions on", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check_name("a/./b").unwrap(), Some(PathBuf::from("a/b")));
        assert_eq!(check_name("./").unwrap(), None);
        assert!(check_name("../x").is_err());
        assert!(check_name("a/../../x").is_err());
        assert!(check_name("/etc/passwd").is_err());
        assert!(check_name("C:/x").is_err());
    }

    #[test]
    fn links() {
        let none = HashSet::new();
        assert!(check_link(Path::new("lib/a.so"), "b.so", &none).is_ok());
        assert!(check_link(Path::new("lib/a.so"), "../bin/x", &none).is_ok());
        assert!(check_link(Path::new("lib/a.so"), "../../x", &none).is_err());
        assert!(check_link(Path::new("a"), "/etc/passwd", &none).is_err());
        let links: HashSet<PathBuf> = [PathBuf::from("a/s")].into_iter().collect();
        assert!(check_link(Path::new("t"), "a/s/..", &links).is_err());
    }
}
