//! `cargo lambda-pack merge <OUT-DIR|MANIFEST>... --out-dir DIR`: joins the outputs of several
//! runs (the shards of `--shard K/N`) into one output directory and one manifest, as if one run
//! had packed them.
//!
//! Every input manifest is untrusted: each of its paths goes through `manifest_paths::resolve`,
//! every artifact is copied and its copy hashed against its entry, and the same artifact (name,
//! architecture, workspace) from several inputs is kept once only when the hashes agree. The
//! result is staged in a temporary directory beside the target and renamed into place, so the
//! target is either the complete merge or what it was before.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::{MergeArgs, MessageFormat};
use crate::error::{Error, Result};
use crate::files::sha256_hex;
use crate::manifest::{Format, MANIFEST_FILE, Manifest, ManifestArtifact, ReadError};
use crate::manifest_paths::{self, Refused};
use crate::output::{Shell, stdout_error};
use crate::target::Arch;

/// One run's output: its directory and its manifest.
struct Input {
    dir: PathBuf,
    manifest_path: PathBuf,
    manifest: Manifest,
}

pub fn run(args: &MergeArgs, shell: &Shell) -> Result<()> {
    let out_dir = &args.out_dir;
    refuse_foreign_target(out_dir)?;
    let created = !out_dir.exists();
    // The target is written as a pack writes its output directory: under its lock, so a pack or
    // another merge into it waits (and `verify`/`deploy` never read it half-swapped).
    let target_lock = crate::emit::lock_out_dir(out_dir, || {
        shell.status(
            "Blocking",
            format!("waiting for file lock on {}", out_dir.display()),
        )
    })?;
    let merged = merge_locked(args, shell, target_lock);
    if merged.is_err() && created {
        // Taking the lock created the directory; a failed merge writes nothing.
        let _ = std::fs::remove_file(out_dir.join(crate::emit::LOCK_FILE));
        let _ = std::fs::remove_dir(out_dir);
    }
    merged
}

/// The merge, once the target's lock (held until this returns) is taken.
fn merge_locked(args: &MergeArgs, shell: &Shell, _target_lock: std::fs::File) -> Result<()> {
    let out_dir = &args.out_dir;
    let target = out_dir.canonicalize().ok();
    // Each input is read under its shared lock: a shard still packing into it is waited for,
    // never copied half-written.
    let mut _input_locks = Vec::new();
    for path in &args.inputs {
        let dir = input_dir(path);
        if dir.canonicalize().ok() == target {
            continue; // already held, exclusively
        }
        _input_locks.push(crate::emit::lock_out_dir_shared(&dir, || {
            shell.status(
                "Blocking",
                format!("waiting for a pack to finish in {}", dir.display()),
            )
        })?);
    }
    let inputs = args
        .inputs
        .iter()
        .map(|path| read_input(path))
        .collect::<Result<Vec<Input>>>()?;
    let schema_version = common_schema(&inputs)?;
    let chosen = choose(&inputs)?;
    let parent = match out_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
    let name = out_dir
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    remove_stale_stages(&parent, &name)?;
    // `.<name>.*.tmp`: the shape a pack's clean-up removes if this run is killed.
    let stage = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempdir_in(&parent)
        .map_err(|e| Error::write(&parent, &e))?;
    for (input, artifact) in &chosen {
        carry(&inputs[*input], artifact, stage.path())?;
    }
    let mut artifacts: Vec<ManifestArtifact> = chosen.into_iter().map(|(_, a)| a).collect();
    artifacts.sort_by_cached_key(|a| (a.arch, a.name.clone(), a.workspace_root.clone()));
    let manifest = Manifest {
        schema_version,
        artifacts,
    };
    let json = manifest.to_json();
    let manifest_file = stage.path().join(MANIFEST_FILE);
    std::fs::write(&manifest_file, &json).map_err(|e| Error::write(&manifest_file, &e))?;
    // The new directory's lock file is the one this run holds (a second name for it), so a run
    // already waiting on the old directory's lock and one arriving after the swap wait alike.
    let lock_name = stage.path().join(crate::emit::LOCK_FILE);
    std::fs::hard_link(out_dir.join(crate::emit::LOCK_FILE), &lock_name)
        .map_err(|e| Error::write(&lock_name, &e))?;
    swap_into_place(stage, out_dir, &parent, &name)?;
    if shell_format(args) == MessageFormat::Json {
        shell.print_data(json.trim_end()).map_err(stdout_error)?;
    }
    shell.status(
        "Merged",
        format!(
            "{} artifact(s) from {} run(s); manifest: {}",
            manifest.artifacts.len(),
            inputs.len(),
            out_dir.join(MANIFEST_FILE).display()
        ),
    );
    Ok(())
}

pub fn shell_format(args: &MergeArgs) -> MessageFormat {
    args.message_format.unwrap_or(MessageFormat::Human)
}

/// The directory of an input: the output directory itself, or the one holding the manifest.
fn input_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        return path.to_path_buf();
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An output directory, or a manifest file whose directory holds its artifacts.
fn read_input(path: &Path) -> Result<Input> {
    let (dir, manifest_path) = if path.is_dir() {
        (path.to_path_buf(), path.join(MANIFEST_FILE))
    } else {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (dir, path.to_path_buf())
    };
    let manifest = Manifest::read(&manifest_path).map_err(|err| {
        let why = match err {
            ReadError::Missing => "it does not exist".to_string(),
            ReadError::Io(err) => err.to_string(),
            ReadError::Invalid(err) => format!("it is not a lambda-pack manifest: {err}"),
        };
        Error::config(format!("cannot read `{}`: {why}", manifest_path.display())).with_help(
            "pass the output directories of `cargo lambda-pack` runs (or their manifest.json)",
        )
    })?;
    Ok(Input {
        dir,
        manifest_path,
        manifest,
    })
}

/// The inputs' schema version, when they all agree on one this version can write.
fn common_schema(inputs: &[Input]) -> Result<u32> {
    let first = &inputs[0];
    for other in &inputs[1..] {
        if other.manifest.schema_version != first.manifest.schema_version {
            return Err(Error::config(format!(
                "conflicting manifest schemas: `{}` has schema_version {}, `{}` has schema_version {}",
                first.manifest_path.display(),
                first.manifest.schema_version,
                other.manifest_path.display(),
                other.manifest.schema_version
            ))
            .with_help("merge the outputs of runs of the same cargo-lambda-pack version"));
        }
    }
    let version = first.manifest.schema_version;
    if version != crate::manifest::SCHEMA_VERSION {
        return Err(Error::config(format!(
            "`{}` has schema_version {version}; this cargo-lambda-pack writes schema_version {}",
            first.manifest_path.display(),
            crate::manifest::SCHEMA_VERSION
        ))
        .with_help("merge with the cargo-lambda-pack version that packed the inputs"));
    }
    Ok(version)
}

/// Each artifact once, from the first input that has it; an artifact that two inputs hold with
/// different hashes is refused.
fn choose(inputs: &[Input]) -> Result<Vec<(usize, ManifestArtifact)>> {
    type Key = (Arch, String, Option<String>);
    let mut chosen: BTreeMap<Key, (usize, ManifestArtifact)> = BTreeMap::new();
    let mut by_path: BTreeMap<String, usize> = BTreeMap::new();
    for (index, input) in inputs.iter().enumerate() {
        for artifact in &input.manifest.artifacts {
            let key = (
                artifact.arch,
                artifact.name.clone(),
                artifact.workspace_root.clone(),
            );
            if let Some((first, kept)) = chosen.get(&key) {
                if kept.sha256 != artifact.sha256 || kept.path != artifact.path {
                    return Err(conflict(&inputs[*first], kept, input, artifact));
                }
                continue;
            }
            if let Some(first) = by_path.get(&artifact.path) {
                let kept = &inputs[*first]
                    .manifest
                    .artifacts
                    .iter()
                    .find(|a| a.path == artifact.path)
                    .expect("recorded from this manifest");
                return Err(conflict(&inputs[*first], kept, input, artifact));
            }
            by_path.insert(artifact.path.clone(), index);
            chosen.insert(key, (index, artifact.clone()));
        }
    }
    Ok(chosen.into_values().collect())
}

fn conflict(
    first: &Input,
    kept: &ManifestArtifact,
    other: &Input,
    artifact: &ManifestArtifact,
) -> Error {
    Error::config(format!(
        "artifact `{}` ({}) differs between runs: `{}` has sha256 {} (path `{}`), `{}` has sha256 {} (path `{}`)",
        artifact.name,
        artifact.arch,
        first.manifest_path.display(),
        kept.sha256,
        kept.path,
        other.manifest_path.display(),
        artifact.sha256,
        artifact.path
    ))
    .with_help("pack every shard from the same commit with the same flags and toolchain (the builds are reproducible), then merge again; nothing was written")
}

/// Refuses to replace a directory that is not an output directory: one with files but no
/// manifest.
fn refuse_foreign_target(out_dir: &Path) -> Result<()> {
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(Error::config(format!(
            "--out-dir `{}` is not a directory",
            out_dir.display()
        ))
        .with_help("pass a new directory, or an earlier output directory to replace"));
    }
    // Lock files (this run's own, once taken) are not output.
    let has_files = std::fs::read_dir(out_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            name != crate::emit::LOCK_FILE && name != crate::emit::DEPLOY_LOCK_FILE
        })
    });
    if has_files && !out_dir.join(MANIFEST_FILE).is_file() {
        return Err(Error::config(format!(
            "--out-dir `{}` holds files but no {MANIFEST_FILE}: merge replaces the whole directory",
            out_dir.display()
        ))
        .with_help("pass a new directory, or an earlier output directory to replace"));
    }
    Ok(())
}

/// Copies one artifact (and its image layout and SBOM) from its input into the stage, and checks
/// the copy's hash against the entry.
fn carry(input: &Input, artifact: &ManifestArtifact, stage: &Path) -> Result<()> {
    let refused = |why: Refused| {
        Error::config(manifest_paths::refused_entry(
            &input.manifest_path,
            artifact,
            &why,
        ))
        .with_help("merge only the output directories of cargo-lambda-pack runs, unchanged")
    };
    let copy = |relative: &str| -> Result<PathBuf> {
        let from = manifest_paths::resolve(&input.dir, relative).map_err(refused)?;
        let parts = manifest_paths::components(relative).map_err(refused)?;
        let parent = parts[..parts.len() - 1]
            .iter()
            .fold(stage.to_path_buf(), |path, part| path.join(part));
        std::fs::create_dir_all(&parent).map_err(|e| Error::write(&parent, &e))?;
        let to = manifest_paths::resolve(stage, relative).map_err(refused)?;
        copy_tree(&from, &to).map_err(|err| {
            Error::config(format!(
                "cannot copy `{relative}` of `{}` ({}): {err}",
                input.manifest_path.display(),
                artifact.name
            ))
            .with_help("the output directory is incomplete: pack that shard again")
        })?;
        Ok(to)
    };
    let copied = copy(&artifact.path)?;
    for extra in [&artifact.oci_layout, &artifact.sbom].into_iter().flatten() {
        copy(extra)?;
    }
    if let Some(dockerfile) = &artifact.dockerfile
        && !dockerfile.starts_with(&format!("{}/", artifact.path))
    {
        copy(dockerfile)?;
    }
    if let (Some(layout), Some(digest)) = (&artifact.oci_layout, &artifact.image_digest) {
        check_image_manifest(input, artifact, stage, layout, digest)?;
    }
    if artifact.format == Format::Zip {
        let found = sha256_hex(&copied).map_err(|e| Error::write(&copied, &e))?;
        if found != artifact.sha256 {
            return Err(Error::config(format!(
                "`{}` of `{}` has sha256 {found}, but its manifest entry `{}` says {}",
                artifact.path,
                input.manifest_path.display(),
                artifact.name,
                artifact.sha256
            ))
            .with_help(
                "the file changed after it was packed: pack that shard again; nothing was written",
            ));
        }
    }
    Ok(())
}

/// An image's context has no single file to hash; its OCI layout does: the image manifest blob
/// named by `image_digest` must be there (in the staged copy) with that digest.
fn check_image_manifest(
    input: &Input,
    artifact: &ManifestArtifact,
    stage: &Path,
    layout: &str,
    digest: &str,
) -> Result<()> {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    let blob =
        manifest_paths::resolve(stage, &format!("{layout}/blobs/sha256/{hex}")).map_err(|why| {
            Error::config(manifest_paths::refused_entry(
                &input.manifest_path,
                artifact,
                &why,
            ))
        })?;
    let found = sha256_hex(&blob).ok();
    if found.as_deref() != Some(hex) {
        return Err(Error::config(format!(
            "image `{}` of `{}`: its OCI layout `{layout}` does not hold the image manifest {digest} (found {})",
            artifact.name,
            input.manifest_path.display(),
            found.map_or_else(|| "no such blob".to_string(), |f| format!("sha256:{f}"))
        ))
        .with_help("the image changed after it was packed: pack that shard again; nothing was written"));
    }
    Ok(())
}

/// Copies a regular file, or a directory of regular files and directories (an image context or
/// OCI layout); a symlink anywhere is refused, since it could lead out of the input.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if meta.is_file() {
        std::fs::copy(from, to)?;
        return Ok(());
    }
    if !meta.is_dir() {
        return Err(std::io::Error::other(format!(
            "`{}` is neither a regular file nor a directory",
            from.display()
        )));
    }
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        copy_tree(&entry.path(), &to.join(entry.file_name()))?;
    }
    Ok(())
}

/// Removes the stages and set-aside outputs (`.<name>.*.tmp` beside the target) of a merge into
/// the same target that was killed. Called under the target's lock: no merge into it is running.
fn remove_stale_stages(parent: &Path, name: &str) -> Result<()> {
    let prefix = format!(".{name}.");
    for entry in std::fs::read_dir(parent).map_err(|e| Error::write(parent, &e))? {
        let Ok(entry) = entry else { continue };
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !(file_name.starts_with(&prefix) && file_name.ends_with(".tmp")) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(Error::write(&path, &err)),
        }
    }
    Ok(())
}

/// Puts the stage at `out_dir`. An existing `out_dir` is swapped with the stage in one atomic
/// exchange (Linux's `renameat2(RENAME_EXCHANGE)`), so at every moment `out_dir` is the old or
/// the new output; where the file system cannot exchange, it is renamed aside first and put back
/// if the stage cannot take its place.
fn swap_into_place(
    stage: tempfile::TempDir,
    out_dir: &Path,
    parent: &Path,
    name: &str,
) -> Result<()> {
    let stage = stage.keep();
    let undo = |err: std::io::Error| {
        let _ = std::fs::remove_dir_all(&stage);
        Error::write(out_dir, &err)
    };
    if !out_dir.exists() {
        return std::fs::rename(&stage, out_dir).map_err(undo);
    }
    if exchange(&stage, out_dir).is_ok() {
        // `stage` now holds the previous output.
        let _ = std::fs::remove_dir_all(&stage);
        return Ok(());
    }
    let aside = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempdir_in(parent)
        .map_err(undo)?;
    std::fs::rename(out_dir, aside.path()).map_err(undo)?;
    if let Err(err) = std::fs::rename(&stage, out_dir) {
        let _ = std::fs::rename(aside.path(), out_dir);
        return Err(undo(err));
    }
    // Dropping `aside` removes the previous output.
    drop(aside);
    Ok(())
}

#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: two NUL-terminated paths that outlive the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}
