//! Files written whole or not at all, and their SHA-256: the leaf every writer uses (artifacts,
//! the manifest, the cache under `lambda-pack-cache/`). Also the one place for "write without
//! following links": [`create_dir_within`] makes (or checks) every directory between a root the
//! tool owns and the directory about to be written, and refuses a symlink on the way by name, so
//! no byte lands outside the root through a link planted inside it.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The mode a temporary file that becomes an artifact or a manifest is created with: 0666 less
/// the umask (0644 under the usual 022), as `File::create` would make it, so that the renamed
/// file is as readable as any other the user creates. tempfile's own default, 0600, would
/// survive the rename and lock out a release step running as another user.
pub(crate) fn created_file_mode() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o666)
}

/// Creates `dir` and every directory between `root` and it, or checks them when they exist: each
/// must be a real directory, never a symlink (which could lead a write anywhere). `root` itself is
/// the directory the user named (it may be a link they chose); everything below it is the tool's.
/// Returns `dir`. Called before the first byte is written below `root`; a temporary file created
/// in `dir` then lives beside its target, inside `root`.
pub fn create_dir_within(root: &Path, dir: &Path) -> Result<PathBuf> {
    let relative = dir.strip_prefix(root).map_err(|_| {
        Error::internal(format!(
            "`{}` is not inside `{}`",
            dir.display(),
            root.display()
        ))
    })?;
    std::fs::create_dir_all(root).map_err(|e| Error::write(root, &e))?;
    let mut path = root.to_path_buf();
    for part in relative.components() {
        let std::path::Component::Normal(part) = part else {
            return Err(Error::internal(format!(
                "`{}` is not a plain path below `{}`",
                dir.display(),
                root.display()
            )));
        };
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(link_refused(root, &path)),
            Ok(meta) if meta.is_dir() => continue,
            Ok(_) => {
                return Err(Error::new(
                    crate::error::ErrorKind::WriteFailed,
                    format!(
                        "could not write into `{}`: it is not a directory",
                        path.display()
                    ),
                )
                .with_help(format!(
                    "move it away, or pick an empty or new directory instead of `{}`",
                    root.display()
                )));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::write(&path, &err)),
        }
        // mkdir never follows a link at its last component; a link that appeared since the check
        // above makes it fail with AlreadyExists, and the check below names it.
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                let meta = std::fs::symlink_metadata(&path).map_err(|e| Error::write(&path, &e))?;
                if !meta.is_dir() {
                    return Err(link_refused(root, &path));
                }
            }
            Err(err) => return Err(Error::write(&path, &err)),
        }
    }
    Ok(path)
}

/// The refusal of a link (or other non-directory) found below a directory the tool writes.
fn link_refused(root: &Path, path: &Path) -> Error {
    Error::config(format!(
        "refusing to write through `{}`: it is a symlink (or not a directory) inside `{}`, and cargo-lambda-pack never follows a link out of the directory it writes",
        path.display(),
        root.display()
    ))
    .with_help(format!(
        "remove the link, or pick an empty or new directory instead of `{}`; nothing was written through it",
        root.display()
    ))
}

/// Writes `bytes` to `path` through a temporary file and a rename; leaves an identical file alone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(temp) = stage(path, bytes)? {
        temp.persist(path)
            .map_err(|e| Error::write(path, &e.error))?;
    }
    Ok(())
}

/// A synced temporary file beside `path` holding `bytes`, for the caller to rename over it;
/// `None` when `path` already holds these bytes.
pub fn stage(path: &Path, bytes: &[u8]) -> Result<Option<tempfile::NamedTempFile>> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(None);
    }
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
    // `.<stem>.*.tmp` beside the file: the shape `remove_leftovers` cleans up after a killed run.
    let stem = path
        .file_stem()
        .map_or_else(|| "file".into(), |stem| stem.to_string_lossy());
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{stem}."))
        .suffix(".tmp")
        .permissions(created_file_mode())
        .tempfile_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    temp.write_all(bytes).map_err(|e| Error::write(path, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(path, &e))?;
    Ok(Some(temp))
}

pub fn sha256_file(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().into())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex SHA-256 of the file at `path`.
pub fn sha256_hex(path: &Path) -> io::Result<String> {
    sha256_file(path).map(|digest| hex(&digest))
}

/// A written artifact waiting to be moved to its final name by `emit::commit`. Dropping it deletes
/// the temporary file or directory.
#[derive(Debug)]
pub enum Pending {
    File {
        temp: tempfile::NamedTempFile,
        dest: PathBuf,
    },
    Dir {
        temp: tempfile::TempDir,
        dest: PathBuf,
    },
}

impl Pending {
    /// The final name the staged artifact will take.
    pub fn dest(&self) -> &Path {
        match self {
            Pending::File { dest, .. } | Pending::Dir { dest, .. } => dest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_dir_within_makes_real_directories_and_refuses_a_link_on_the_way() {
        let root = tempfile::tempdir().unwrap();
        let (out, victim) = (root.path().join("out"), root.path().join("victim"));
        std::fs::create_dir_all(&victim).unwrap();
        let made = create_dir_within(&out, &out.join("x86_64/ctx")).unwrap();
        assert!(made.is_dir() && !made.is_symlink());
        // A link planted after the directory was found to be the tool's: refused by name, and
        // nothing is created through it.
        std::os::unix::fs::symlink(&victim, out.join("arm64")).unwrap();
        let err = create_dir_within(&out, &out.join("arm64/deeper")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("`{}`", out.join("arm64").display()))
                && text.contains("symlink"),
            "{text}"
        );
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        std::fs::write(out.join("file"), b"").unwrap();
        assert!(create_dir_within(&out, &out.join("file/x")).is_err());
        assert!(create_dir_within(&out, &root.path().join("elsewhere")).is_err());
    }
}
