//! Files written whole or not at all, and their SHA-256: the leaf every writer uses (artifacts,
//! the manifest, the cache under `lambda-pack-cache/`).

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
