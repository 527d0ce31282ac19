//! Carrying out the plan: writing archives and the manifest, atomically.
//!
//! Nothing here decides anything: names, paths, modes, entries and removals all come from the
//! [`Plan`]. Every file is written to a temporary file in its final directory and renamed into
//! place, so a crash or a full disk never leaves a truncated artifact under its final name, and
//! an artifact whose bytes did not change is left untouched (same bytes, same mtime).

pub mod zip;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::plan::{DOCKERIGNORE, Entry, Format, Plan, PlannedArtifact};

/// What writing one artifact produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// Base64 SHA-256 of the file: what Lambda reports as `CodeSha256`.
    pub code_sha256: String,
    pub size_zipped: u64,
    /// True when an identical file was already in place and was left alone.
    pub unchanged: bool,
}

/// Writes every artifact of the plan under `out_dir`, in parallel across cores. Results are in
/// the plan's order. `on_done` is called as each artifact finishes (for status lines).
pub fn emit(
    plan: &Plan,
    out_dir: &Path,
    on_done: impl Fn(&PlannedArtifact, &Emitted) + Sync,
) -> Result<Vec<Emitted>> {
    let artifacts = &plan.artifacts;
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Emitted>>>> =
        Mutex::new((0..artifacts.len()).map(|_| None).collect());
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(artifacts.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(artifact) = artifacts.get(index) else {
                        break;
                    };
                    let result = match artifact.format {
                        Format::Zip => emit_zip(plan, artifact, out_dir),
                        Format::Image => emit_context(artifact, out_dir),
                    };
                    if let Ok(emitted) = &result {
                        on_done(artifact, emitted);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every artifact was emitted"))
        .collect()
}

fn emit_zip(plan: &Plan, artifact: &PlannedArtifact, out_dir: &Path) -> Result<Emitted> {
    let final_path = out_dir.join(&artifact.path);
    let parent = final_path.parent().unwrap_or(out_dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", artifact.name))
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    let size_zipped = zip::write_zip(&artifact.entries, plan.timestamp, temp.as_file())
        .map_err(|e| Error::write(&final_path, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(&final_path, &e))?;
    let digest = sha256_file(temp.path()).map_err(|e| Error::write(&final_path, &e))?;
    let unchanged = sha256_file(&final_path).ok() == Some(digest);
    if !unchanged {
        temp.persist(&final_path)
            .map_err(|e| Error::write(&final_path, &e.error))?;
    }
    Ok(Emitted {
        sha256: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        size_zipped,
        unchanged,
    })
}

/// Writes a container image's build context: every entry, the Dockerfile and `.dockerignore`,
/// into a temporary directory beside the final one, then swaps it into place. A context whose
/// contents are unchanged is left alone.
fn emit_context(artifact: &PlannedArtifact, out_dir: &Path) -> Result<Emitted> {
    let final_dir = out_dir.join(&artifact.path);
    let parent = final_dir.parent().unwrap_or(out_dir).to_path_buf();
    let dockerfile = artifact.dockerfile.as_deref().unwrap_or_default();
    let digest = context_digest(&artifact.entries, dockerfile, |entry| {
        entry.source.as_deref().map(sha256_file).transpose()
    })
    .map_err(|e| Error::write(&final_dir, &e))?;
    let existing = context_digest(&artifact.entries, dockerfile, |entry| {
        if entry.source.is_none() {
            return Ok(None);
        }
        sha256_file(&final_dir.join(&entry.path)).map(Some)
    });
    let in_place = existing.ok() == Some(digest)
        && std::fs::read_to_string(final_dir.join("Dockerfile"))
            .ok()
            .as_deref()
            == Some(dockerfile);
    if !in_place {
        std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", artifact.name))
            .suffix(".tmp")
            .tempdir_in(&parent)
            .map_err(|e| Error::write(&parent, &e))?;
        write_context(artifact, dockerfile, temp.path())
            .map_err(|e| Error::write(&final_dir, &e))?;
        replace_dir(temp.keep(), &final_dir).map_err(|e| Error::write(&final_dir, &e))?;
    }
    Ok(Emitted {
        sha256: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        size_zipped: 0,
        unchanged: in_place,
    })
}

fn write_context(artifact: &PlannedArtifact, dockerfile: &str, dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // Directories first (sorted paths put parents before children), then files.
    for entry in &artifact.entries {
        let path = dir.join(entry.path.trim_end_matches('/'));
        match &entry.source {
            None => std::fs::create_dir_all(&path)?,
            Some(source) => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::copy(source, &path).map_err(|err| {
                    io::Error::new(err.kind(), format!("{}: {err}", source.display()))
                })?;
            }
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(entry.mode))?;
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile)?;
    std::fs::write(dir.join(".dockerignore"), DOCKERIGNORE)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Moves `new` to `target`, replacing a directory already there: the old one is renamed aside
/// first and removed last, so `target` is never a half-written mix of both.
fn replace_dir(new: PathBuf, target: &Path) -> io::Result<()> {
    if target.exists() {
        let aside = target.with_file_name(format!(
            ".{}.old-{}",
            target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        std::fs::rename(target, &aside)?;
        std::fs::rename(&new, target)?;
        std::fs::remove_dir_all(&aside)
    } else {
        std::fs::rename(&new, target)
    }
}

/// A digest of a build context: every entry's path, mode and content hash, then the Dockerfile.
/// `content` hashes an entry's file (from its source, or from a context already on disk).
fn context_digest(
    entries: &[Entry],
    dockerfile: &str,
    content: impl Fn(&Entry) -> io::Result<Option<[u8; 32]>>,
) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    for entry in entries {
        hasher.update(entry.path.as_bytes());
        hasher.update(format!("\0{:o}\0", entry.mode).as_bytes());
        if let Some(hash) = content(entry)? {
            hasher.update(hash);
        }
        hasher.update(b"\n");
    }
    hasher.update(dockerfile.as_bytes());
    hasher.update(DOCKERIGNORE.as_bytes());
    Ok(hasher.finalize().into())
}

/// Writes `bytes` to `path` through a temporary file and a rename; leaves an identical file alone.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(());
    }
    let parent = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
    let mut temp = tempfile::Builder::new()
        .prefix(".manifest.")
        .suffix(".tmp")
        .tempfile_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    temp.write_all(bytes).map_err(|e| Error::write(path, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(path, &e))?;
    temp.persist(path)
        .map_err(|e| Error::write(path, &e.error))?;
    Ok(())
}

/// Removes artifacts of earlier runs that the plan no longer produces (a ZIP, or an image's
/// build context directory).
pub fn remove_stale(out_dir: &Path, paths: &[String]) -> Result<()> {
    for relative in paths {
        let path = out_dir.join(relative);
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::write(&path, &err)),
        }
    }
    Ok(())
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
