//! Carrying out the plan: writing archives and the manifest, atomically.
//!
//! Nothing here decides anything: names, paths, modes, entries and removals all come from the
//! [`Plan`]. Every file is written to a temporary file in its final directory and renamed into
//! place, so a crash or a full disk never leaves a truncated artifact under its final name, and
//! an artifact whose bytes did not change is left untouched (same bytes, same mtime).

mod record;
mod sbom;
mod transaction;
pub mod zip;

pub use record::manifest;
pub use transaction::{CarriedOut, carry_out};

pub use crate::out_dir::LOCK_FILE;
// Only deploy takes the deploy lock.
#[cfg(feature = "deploy")]
pub use crate::out_dir::DEPLOY_LOCK_FILE;

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::files::{created_file_mode, hex, sha256_file};
use crate::manifest::PreviousZip as Previous;
use crate::plan::{DOCKERIGNORE, Entry, Format, Plan, PlannedArtifact};

/// What writing one artifact produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emitted {
    /// Hex SHA-256 of the file.
    pub sha256: String,
    /// What Lambda reports as `CodeSha256`: base64 SHA-256 of a ZIP; for an image, the hex of
    /// its image manifest digest.
    pub code_sha256: String,
    pub size_zipped: u64,
    /// True when an identical file was already in place and was left alone.
    pub unchanged: bool,
    /// Hex SHA-256 of everything the file is made from (see [`inputs_digest`]); lets the next run
    /// skip rebuilding an archive whose inputs did not change.
    pub inputs_sha256: Option<String>,
    /// For images: the OCI image written beside the context.
    pub image: Option<crate::image::EmittedImage>,
}

/// Identifies how archives are written; part of every inputs digest so that a change in the
/// writer (version, compression) never reuses an archive written the old way.
const WRITER_ID: &str = concat!(
    "cargo-lambda-pack ",
    env!("CARGO_PKG_VERSION"),
    " zip libdeflate-8"
);

pub use crate::files::Pending;

/// Artifacts written to temporary names, in the plan's order, ready to [`commit`].
#[derive(Debug)]
pub struct Staged {
    pub emitted: Vec<Emitted>,
    pub pending: Vec<Pending>,
    /// Image artifacts whose base image could not be resolved, in the plan's order. When there
    /// are any, `emitted` and `pending` are incomplete and only these contexts may be committed.
    pub unbuilt: Vec<Unbuilt>,
    /// Directories this run created below the output directory, to remove again (when still
    /// empty) if the run fails.
    pub new_dirs: Vec<PathBuf>,
}

/// An image artifact whose base image could not be resolved (registry unreachable, image
/// missing, not in the cache offline): its build context needs no base and is staged, its OCI
/// image is not.
#[derive(Debug)]
pub struct Unbuilt {
    /// The context to move into place; `None` when an identical one is already there.
    pub context: Option<Pending>,
    pub context_dir: PathBuf,
    pub name: String,
    pub arch: crate::target::Arch,
    /// Why the base could not be resolved.
    pub error: Error,
}

/// Why an artifact was not staged: a failure that stops the whole run, or an image whose base
/// could not be resolved while its context could be written.
enum Stop {
    Failed(Error),
    /// Boxed: a context's staged directory makes it much larger than an `Error`.
    BaseUnresolved(Box<Unbuilt>),
}

impl From<Error> for Stop {
    fn from(error: Error) -> Stop {
        Stop::Failed(error)
    }
}

/// Writes every artifact of the plan to a temporary name beside its final one, in parallel across
/// cores; nothing under a final name changes until [`commit`]. If any artifact fails, every
/// temporary is deleted and the output directory is as it was. `on_done` is called as each
/// artifact is written (for status lines).
pub fn emit(
    plan: &Plan,
    out_dir: &Path,
    previous: &BTreeMap<String, Previous>,
    images: &crate::image::ImageOptions,
    on_done: impl Fn(&PlannedArtifact, &Emitted) + Sync,
) -> Result<Staged> {
    let artifacts = &plan.artifacts;
    // Before the first byte: every directory an artifact or SBOM goes to is a real directory
    // inside `out_dir`, never a link out of it (each writer checks again right before writing).
    let dirs: std::collections::BTreeSet<PathBuf> = artifacts
        .iter()
        .flat_map(|a| std::iter::once(&a.path).chain(a.sbom.as_ref().map(|s| &s.path)))
        .filter_map(|relative| out_dir.join(relative).parent().map(Path::to_path_buf))
        .collect();
    let new_dirs = missing_dirs(out_dir, &dirs);
    for dir in &dirs {
        if let Err(error) = crate::files::create_dir_within(out_dir, dir) {
            remove_empty_dirs(&new_dirs);
            return Err(error);
        }
    }
    let next = AtomicUsize::new(0);
    type Slot = Option<Result<(Emitted, Vec<Pending>), Stop>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..artifacts.len()).map(|_| None).collect());
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
                        Format::Zip => {
                            emit_zip(plan, artifact, out_dir, previous.get(&artifact.path))
                                .map(|(emitted, pending)| (emitted, Vec::from_iter(pending)))
                                .map_err(Stop::Failed)
                        }
                        Format::Image => emit_image(artifact, out_dir, images),
                    };
                    let result = result.and_then(|(emitted, mut pending)| {
                        if let Some(planned) = &artifact.sbom {
                            pending.extend(sbom::stage(planned, out_dir)?);
                        }
                        Ok((emitted, pending))
                    });
                    if let Ok((emitted, _)) = &result {
                        on_done(artifact, emitted);
                    }
                    results.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(result);
                }
            });
        }
    });
    let mut staged = Staged {
        emitted: Vec::new(),
        pending: Vec::new(),
        unbuilt: Vec::new(),
        new_dirs,
    };
    let mut failed = None;
    for slot in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        match slot.expect("every artifact was emitted") {
            Ok((emitted, pending)) => {
                staged.emitted.push(emitted);
                staged.pending.extend(pending);
            }
            Err(Stop::BaseUnresolved(unbuilt)) => staged.unbuilt.push(*unbuilt),
            Err(Stop::Failed(error)) => {
                failed.get_or_insert(error);
            }
        }
    }
    // Any other failure stops the run with nothing written, contexts included.
    if let Some(error) = failed {
        let new_dirs = std::mem::take(&mut staged.new_dirs);
        drop(staged);
        remove_empty_dirs(&new_dirs);
        return Err(error);
    }
    Ok(staged)
}

/// The directories of `dirs`, and those between `out_dir` and them, that do not exist yet.
fn missing_dirs(out_dir: &Path, dirs: &std::collections::BTreeSet<PathBuf>) -> Vec<PathBuf> {
    let mut missing = std::collections::BTreeSet::new();
    for dir in dirs {
        let mut dir = dir.as_path();
        while dir != out_dir && dir.starts_with(out_dir) && !dir.exists() {
            missing.insert(dir.to_path_buf());
            let Some(parent) = dir.parent() else { break };
            dir = parent;
        }
    }
    missing.into_iter().collect()
}

/// Removes those of `dirs` (this run's own, see [`missing_dirs`]) that are empty, deepest first,
/// so a failed run leaves no empty folders behind. `remove_dir` removes only an empty directory
/// and never follows a link, so nothing else can go; one that cannot be removed is left.
pub fn remove_empty_dirs(dirs: &[PathBuf]) {
    for dir in dirs.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Moves every staged artifact to its final name. Renames within one directory are atomic, so
/// each final name holds either the old or the new complete artifact at every moment.
pub fn commit(pending: Vec<Pending>) -> Result<()> {
    for item in pending {
        match item {
            Pending::File { temp, dest } => {
                temp.persist(&dest)
                    .map_err(|e| Error::write(&dest, &e.error))?;
            }
            Pending::Dir { temp, dest } => {
                replace_dir(temp.keep(), &dest).map_err(|e| Error::write(&dest, &e))?;
            }
        }
    }
    Ok(())
}

fn emit_zip(
    plan: &Plan,
    artifact: &PlannedArtifact,
    out_dir: &Path,
    previous: Option<&Previous>,
) -> Result<(Emitted, Option<Pending>)> {
    let final_path = out_dir.join(&artifact.path);
    let parent = final_path.parent().unwrap_or(out_dir).to_path_buf();
    // Same inputs as last time and the file still what was written then: nothing to do. Hashing
    // the inputs reads them but does not compress them, which is most of a pack's cost.
    let inputs = inputs_digest(plan, artifact).map_err(|e| Error::read(&final_path, &e))?;
    if let Some(previous) = previous
        && previous.inputs_sha256 == inputs
        && sha256_file(&final_path).ok().map(|d| hex(&d)).as_deref()
            == Some(previous.sha256.as_str())
    {
        let emitted = Emitted {
            sha256: previous.sha256.clone(),
            code_sha256: previous.code_sha256.clone(),
            size_zipped: previous.size_zipped,
            unchanged: true,
            inputs_sha256: Some(inputs),
            image: None,
        };
        return Ok((emitted, None));
    }
    crate::files::create_dir_within(out_dir, &parent)?;
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{}.", artifact.name))
        .suffix(".tmp")
        .permissions(created_file_mode())
        .tempfile_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    let size_zipped = zip::write_zip(&artifact.entries, plan.timestamp, temp.as_file())
        .map_err(|e| Error::write(&final_path, &e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::write(&final_path, &e))?;
    let digest = sha256_file(temp.path()).map_err(|e| Error::write(&final_path, &e))?;
    let unchanged = sha256_file(&final_path).ok() == Some(digest);
    let emitted = Emitted {
        sha256: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        size_zipped,
        unchanged,
        inputs_sha256: Some(inputs),
        image: None,
    };
    let pending = (!unchanged).then_some(Pending::File {
        temp,
        dest: final_path,
    });
    Ok((emitted, pending))
}

/// An image artifact: its Dockerfile context, and its OCI image beside it.
/// The context is written first: it needs no base, so a base that cannot be resolved still
/// leaves it to build with `docker build` where the registry can be reached ([`Unbuilt`]).
fn emit_image(
    artifact: &PlannedArtifact,
    out_dir: &Path,
    images: &crate::image::ImageOptions,
) -> Result<(Emitted, Vec<Pending>), Stop> {
    let (mut emitted, context) = emit_context(artifact, out_dir)?;
    let (image, layout) = match crate::image::emit_image(artifact, out_dir, images, &emitted.sha256)
    {
        Ok(written) => written,
        Err(error) if error.kind == crate::error::ErrorKind::Registry => {
            return Err(Stop::BaseUnresolved(Box::new(Unbuilt {
                context,
                context_dir: out_dir.join(&artifact.path),
                name: artifact.name.clone(),
                arch: artifact.arch,
                error,
            })));
        }
        Err(error) => return Err(Stop::Failed(error)),
    };
    emitted.unchanged &= layout.is_none();
    // What Lambda's GetFunction reports as `CodeSha256` for an image function: the hex of the
    // image manifest's digest, without `sha256:`.
    emitted.code_sha256 = image.image_digest.trim_start_matches("sha256:").to_string();
    emitted.image = Some(image);
    Ok((emitted, context.into_iter().chain(layout).collect()))
}

/// Hex SHA-256 over everything that decides an archive's bytes: the writer, the timestamp, and
/// each entry's path, mode and content.
fn inputs_digest(plan: &Plan, artifact: &PlannedArtifact) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(WRITER_ID.as_bytes());
    hasher.update(serde_json::to_vec(&plan.timestamp).unwrap_or_default());
    for entry in &artifact.entries {
        hasher.update(entry.path.as_bytes());
        hasher.update(format!("\0{:o}\0", entry.mode).as_bytes());
        if let Some(source) = &entry.source {
            hasher.update(sha256_file(source)?);
        }
        hasher.update(b"\n");
    }
    Ok(hex(&hasher.finalize()))
}

/// Writes a container image's build context: every entry, the Dockerfile and `.dockerignore`,
/// into a temporary directory beside the final one, then swaps it into place. A context whose
/// contents are unchanged is left alone.
fn emit_context(artifact: &PlannedArtifact, out_dir: &Path) -> Result<(Emitted, Option<Pending>)> {
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
    let mut pending = None;
    if !in_place {
        crate::files::create_dir_within(out_dir, &parent)?;
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{}.", artifact.name))
            .suffix(".tmp")
            .tempdir_in(&parent)
            .map_err(|e| Error::write(&parent, &e))?;
        write_context(artifact, dockerfile, temp.path())
            .map_err(|e| Error::write(&final_dir, &e))?;
        pending = Some(Pending::Dir {
            temp,
            dest: final_dir,
        });
    }
    let emitted = Emitted {
        sha256: hex(&digest),
        code_sha256: base64::engine::general_purpose::STANDARD.encode(digest),
        size_zipped: 0,
        unchanged: in_place,
        inputs_sha256: None,
        image: None,
    };
    Ok((emitted, pending))
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

/// Takes the lock of `out_dir` once it is established to be this tool's (`out_dir::claim_output`,
/// and not one of `protected` nor holding one, `out_dir::refuse_holding`): checked before anything
/// is written, and again once the lock is held, since a run waited for may have changed it.
/// `what` names the directory in a refusal.
pub fn claim_and_lock(
    out_dir: &Path,
    what: &str,
    protected: &[(&Path, &str)],
    on_wait: impl FnOnce(),
) -> Result<File> {
    crate::out_dir::refuse_holding(out_dir, what, protected)?;
    crate::out_dir::claim_output(out_dir, what)?;
    let lock = lock_out_dir(out_dir, on_wait)?;
    crate::out_dir::claim_output(out_dir, what)?;
    Ok(lock)
}

/// Takes the output directory's lock, waiting for another run to finish if it holds it
/// (`on_wait` is told once). The lock is released when the returned file is dropped, or by the
/// kernel when the process dies, so a killed run never leaves it stuck.
pub fn lock_out_dir(out_dir: &Path, on_wait: impl FnOnce()) -> Result<File> {
    lock_exclusive(out_dir, LOCK_FILE, on_wait)
}

/// Takes the deploy lock of `out_dir` (beside, not instead of, the output directory's lock, so a
/// deploy waiting on AWS does not keep `verify` from reading), waiting as [`lock_out_dir`] does.
/// `None` when there is no output directory (then there is nothing to deploy either).
#[cfg(feature = "deploy")]
pub fn lock_deploys(out_dir: &Path, on_wait: impl FnOnce()) -> Result<Option<File>> {
    if !out_dir.is_dir() {
        return Ok(None);
    }
    lock_exclusive(out_dir, DEPLOY_LOCK_FILE, on_wait).map(Some)
}

fn lock_exclusive(dir: &Path, name: &str, on_wait: impl FnOnce()) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, &e))?;
    let path = dir.join(name);
    // A lock file that is a symlink is refused (ELOOP), never followed to create a file elsewhere.
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Error::write(&path, &e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            on_wait();
            file.lock().map_err(|e| Error::write(&path, &e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::write(&path, &e)),
    }
    Ok(file)
}

/// Takes the output directory's lock shared, for readers such as `verify`: they wait while a pack
/// is writing, and several readers may hold it at once. `None` when no pack ever locked it.
pub fn lock_out_dir_shared(out_dir: &Path, on_wait: impl FnOnce()) -> Result<Option<File>> {
    let path = out_dir.join(LOCK_FILE);
    let Ok(file) = File::open(&path) else {
        return Ok(None);
    };
    match file.try_lock_shared() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            on_wait();
            file.lock_shared().map_err(|e| Error::read(&path, &e))?;
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(Error::read(&path, &e)),
    }
    Ok(Some(file))
}

/// Deletes temporary files and directories that an interrupted run left behind (`.<name>.*.tmp`,
/// `.<name>.old-*`). Call it only while holding the lock: then no other run is writing them.
pub fn remove_leftovers(out_dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in walkdir::WalkDir::new(out_dir).min_depth(1).max_depth(2) {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy();
        let leftover = name.starts_with('.')
            && (name.ends_with(".tmp") || name.contains(".old-"))
            && name != LOCK_FILE;
        if !leftover {
            continue;
        }
        let path = entry.path();
        let result = if entry.file_type().is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        match result {
            Ok(()) => removed += 1,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::write(path, &err)),
        }
    }
    Ok(removed)
}
