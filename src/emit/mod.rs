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
use crate::plan::{Plan, PlannedArtifact};

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
                    let result = emit_zip(plan, artifact, out_dir);
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

/// Removes artifacts of earlier runs that the plan no longer produces.
pub fn remove_stale(out_dir: &Path, paths: &[String]) -> Result<()> {
    for relative in paths {
        let path = out_dir.join(relative);
        match std::fs::remove_file(&path) {
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
